"""Visemes, coarticulation, blinks, head pose and the landmark deformation model."""

from dataclasses import dataclass

import numpy as np
import pytest

from headflow.demo.animation import (VISEMES, FaceFrame, apply_pose, blink_track, deform_mouth_and_eyes,
                                     head_pose_track, mouth_track)


@dataclass
class Ph:
    start: float
    end: float
    label: str


def _phones(seq, dur=0.12):
    t, out = 0.0, []
    for label in seq:
        out.append(Ph(t, t + dur, label))
        t += dur
    return out


def test_every_arpabet_phone_has_a_viseme():
    arpabet = ("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V "
               "W Y Z ZH SIL").split()
    assert set(arpabet) <= set(VISEMES)


def test_bilabial_closes_the_mouth_between_open_vowels():
    # AA M AA: the M frames must close (dominance) although both neighbours are wide open.
    phones = _phones(["SIL", "AA", "AA", "M", "AA", "AA", "SIL"], dur=0.12)
    track = mouth_track(phones, n_frames=21, fps=25)
    t = (np.arange(21) + 0.5) / 25
    in_m = (t >= 0.36) & (t < 0.48)
    in_aa = (t >= 0.14) & (t < 0.34)
    assert track[in_m, 0].max() < 0.25 and track[in_aa, 0].max() > 0.6


def test_coarticulation_anticipates_rounding():
    # The S before UW is rounder than the S before IY (lip shape spreads from the vowel).
    before_uw = mouth_track(_phones(["SIL", "S", "UW", "SIL"]), 12, 25)
    before_iy = mouth_track(_phones(["SIL", "S", "IY", "SIL"]), 12, 25)
    s_frame = int((0.12 + 0.06) * 25)
    assert before_uw[s_frame, 2] > before_iy[s_frame, 2] + 0.1


def test_blinks_and_pose_are_seeded_and_bounded():
    rng = np.random.default_rng(0)
    blink = blink_track(250, 25, rng)
    assert 0 <= blink.min() and blink.max() <= 1 and (blink > 0.9).sum() >= 2   # ~2-5 blinks in 10 s
    pose = head_pose_track(250, 25, np.random.default_rng(1), 384)
    assert np.allclose(pose[0], [0, 0, 0, 0, 0, 1], atol=1e-6)   # starts at the photo's own pose
    assert np.abs(pose[:, 0]).max() <= 4.0 and np.abs(np.diff(pose[:, 0])).max() < 0.5   # smooth
    assert np.array_equal(pose, head_pose_track(250, 25, np.random.default_rng(1), 384))


def test_neutral_frame_reproduces_the_photo_landmarks():
    rng = np.random.default_rng(0)
    lm = rng.uniform(100, 200, (68, 2))
    lm[36], lm[45] = (120, 130), (180, 126)
    frame = FaceFrame.from_landmarks(lm)
    face = frame.to_face(lm)
    np.testing.assert_allclose(frame.to_image(face), lm, atol=1e-9)
    xyz = np.column_stack([face, np.zeros(68)])
    np.testing.assert_allclose(apply_pose(xyz, np.array([0, 0, 0, 0, 0, 1.0]), frame), lm, atol=1e-9)


def test_jaw_opening_moves_lower_lip_and_chin_not_eyes():
    rng = np.random.default_rng(0)
    face = rng.normal(0, 0.5, (68, 2))
    opened = deform_mouth_and_eyes(face, 1.0, 0.0, 0.0, 0.0)
    assert opened[57, 1] - face[57, 1] == pytest.approx(0.36)
    assert 0.2 < opened[8, 1] - face[8, 1] < 0.36
    np.testing.assert_array_equal(opened[17:48], face[17:48])
    blinked = deform_mouth_and_eyes(face, 0.0, 0.0, 0.0, 1.0)
    gap = face[41, 1] - face[37, 1]
    assert blinked[37, 1] - face[37, 1] == pytest.approx(0.88 * gap)
