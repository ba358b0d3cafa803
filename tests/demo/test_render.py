"""Portrait warping: exact at rest, mouth interior when open, dlib agrees with the ground truth."""

import numpy as np
import pytest

from headflow.demo.portraits import PORTRAITS, PortraitError, load_photo, prepare_portrait
from headflow.demo.render import PortraitAnimator
from headflow.faces.dlib_backend import detect_faces, landmarks68
from headflow.landmarks68 import inter_ocular

REST = (np.zeros(3), 0.0, np.array([0, 0, 0, 0, 0, 1.0]))


def test_all_portraits_ship_in_installed_packages():
    for name in PORTRAITS:
        assert load_photo(name).ndim == 3
    with pytest.raises(PortraitError, match="unknown portrait"):
        load_photo("nobody")


def test_rest_pose_renders_the_photo_itself():
    p = prepare_portrait("astronaut", 256)
    anim = PortraitAnimator(p)
    lm, ring = anim.landmarks(*REST)
    np.testing.assert_allclose(lm, p.landmarks, atol=1e-4)
    frame = anim.render(lm, ring)
    assert np.abs(frame.astype(int) - p.image.astype(int)).mean() < 1.0


def test_open_mouth_shows_a_dark_interior():
    p = prepare_portrait("grace_hopper", 256)
    anim = PortraitAnimator(p)
    lm, ring = anim.landmarks(np.array([0.8, 0.0, 0.0]), 0.0, REST[2])
    frame = anim.render(lm, ring)
    gap_centre = ((lm[62] + lm[66]) / 2).round().astype(int)
    below_teeth = gap_centre[1] + 2
    inside = frame[below_teeth - 1:below_teeth + 2, gap_centre[0] - 1:gap_centre[0] + 2].mean()
    assert lm[66, 1] - lm[62, 1] > 0.25 * p.inter_ocular
    assert inside < frame.mean()


@pytest.mark.parametrize("name", ["astronaut", "t1_2"])
def test_dlib_tracks_the_animated_landmarks(name):
    # A short articulation sweep with motion: dlib's landmarks stay within 5% IOD of the truth.
    anim = PortraitAnimator(prepare_portrait(name, 384))
    rng = np.random.default_rng(3)
    errors = []
    for k in range(12):
        mouth = np.array([k / 11, rng.uniform(-0.4, 0.5), rng.uniform(0, 0.8)])
        pose = np.array([*rng.uniform(-4, 4, 3), *rng.uniform(-5, 5, 2), rng.uniform(0.98, 1.02)])
        lm, ring = anim.landmarks(mouth, float(k % 4 == 3), pose)
        frame = anim.render(lm, ring)
        faces = detect_faces(frame)
        assert len(faces) == 1
        pred = landmarks68(frame, faces[0][:4])
        errors.append(np.linalg.norm(pred - lm, axis=1).mean() / inter_ocular(lm))
    assert np.median(errors) < 0.05
