"""Style geometry from landmarks: known ratios, invariance to the face's placement, per-speaker normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from headflow.metrics.style import FEATURES, clip_style_features, geometry_series, speaker_normalise


def _face(mouth_open: float = 0.0) -> np.ndarray:
    """68 iBUG points of an upright face with inter-ocular distance 2 (eye centres at x = -1 and +1, y = 0)."""
    lm = np.zeros((68, 2))
    lm[36:42] = [-1.0, 0.0]
    lm[42:48] = [1.0, 0.0]
    lm[17:27] = [0.0, -0.6]                       # brows 0.6 above the eyes
    lm[33] = [0.0, 1.0]                           # nose tip
    lm[8] = [0.0, 3.0]                            # chin
    lm[48], lm[54] = [-0.8, 2.0], [0.8, 2.0]      # mouth corners: width 1.6
    lm[51], lm[57] = [0.0, 1.8], [0.0, 2.4]       # outer lip centre at y = 2.1, 0.1 below the corners
    lm[61:64] = [[-0.2, 2.0], [0.0, 2.0], [0.2, 2.0]]
    lm[65:68] = [[0.2, 2.0 + mouth_open], [0.0, 2.0 + mouth_open], [-0.2, 2.0 + mouth_open]]
    return lm


def test_geometry_of_a_known_face_in_inter_ocular_units():
    g = geometry_series(_face(mouth_open=1.0))
    # io = 2: open 1 / 2 = 0.5; width 1.6 / 2 = 0.8; corner lift (2.1 - 2.0) / 2 = 0.05 (corners above the lip
    # centre); jaw (3 - 1) / 2 = 1; brow (0 - -0.6) / 2 = 0.3
    assert np.allclose(g, [0.5, 0.8, 0.05, 1.0, 0.3])


def test_geometry_is_invariant_to_position_scale_and_in_plane_rotation():
    lm = _face(0.4)
    a = np.deg2rad(25.0)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    moved = 37.0 * lm @ rot.T + [120.0, 80.0]
    assert np.allclose(geometry_series(moved), geometry_series(lm))
    bad = lm.copy()
    bad[5] = np.nan
    assert np.isnan(geometry_series(np.stack([bad, lm]))[0]).all()
    with pytest.raises(ValueError, match="68"):
        geometry_series(np.zeros((5, 2)))


def test_clip_features_summarise_the_mouth_motion():
    opens = np.array([0.0, 1.0, 0.0, 1.0, 0.0])          # in pixels; io = 2 -> 0, 0.5, 0, 0.5, 0
    clip = np.stack([_face(o) for o in opens])
    f = dict(zip(FEATURES, clip_style_features(clip)))
    assert len(f) == 21
    assert f["mouth_open_mean"] == pytest.approx(0.2)
    assert f["mouth_open_std"] == pytest.approx(np.std([0, 0.5, 0, 0.5, 0]))
    assert f["mouth_open_speed"] == pytest.approx(0.5)    # every step changes the opening by 0.5
    assert f["mouth_width_std"] == pytest.approx(0.0)
    # leaving out frames 1 and 3 leaves a closed mouth (the speed skips the gaps: no finite step)
    g = dict(zip(FEATURES, clip_style_features(clip, np.array([True, False, True, False, True]))))
    assert g["mouth_open_mean"] == 0.0 and g["mouth_open_speed"] == 0.0
    assert np.isnan(clip_style_features(clip[:1])).all()


def test_speaker_normalise_removes_each_speakers_offset_and_scale():
    base = np.array([[0.0], [1.0], [2.0]])
    x = np.vstack([base, 10.0 + 3.0 * base])           # speaker b: the same clips, offset and stretched
    z = speaker_normalise(x, np.array(["a"] * 3 + ["b"] * 3))
    assert np.allclose(z[:3], z[3:]) and np.allclose(z[:3].ravel(), (base.ravel() - 1) / np.std([0, 1, 2]))
    # outputs of speaker b normalised by b's real clips
    out = speaker_normalise(np.array([[13.0]]), np.array(["b"]), x[3:], np.array(["b"] * 3))
    assert np.allclose(out, [[0.0]])
    with pytest.raises(ValueError, match="speaker 'c'"):
        speaker_normalise(np.array([[1.0]]), np.array(["c"]), x, np.array(["a"] * 3 + ["b"] * 3))
