"""The 68-point layout: groups tile the face, sides and corners match a face, the measures' known answers."""

from __future__ import annotations


import numpy as np
import pytest

from headflow import landmarks68 as L
from headflow.morphable.builtin import LANDMARKS_XY   # an average face in iBUG order, +x = subject's left


def test_groups_tile_the_68_points_once():
    parts = [L.JAW, L.BROWS, L.NOSE, L.EYES, L.MOUTH]
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(68))
    np.testing.assert_array_equal(np.concatenate([L.JAW_RIGHT, [L.CHIN], L.JAW_LEFT]), L.JAW)
    np.testing.assert_array_equal(np.concatenate([L.RIGHT_BROW, L.LEFT_BROW]), L.BROWS)
    np.testing.assert_array_equal(np.concatenate([L.NOSE_BRIDGE, L.NOSE_LOWER]), L.NOSE)
    np.testing.assert_array_equal(np.concatenate([L.RIGHT_EYE, L.LEFT_EYE]), L.EYES)
    np.testing.assert_array_equal(np.concatenate([L.OUTER_LIPS, L.INNER_LIPS]), L.MOUTH)
    np.testing.assert_array_equal(L.UPPER_FACE, np.concatenate([L.BROWS, L.NOSE, L.EYES]))
    assert L.NOSE_TIP == L.NOSE_BRIDGE[-1] and set(L.EYE_CORNERS) <= set(L.EYES)
    assert set(L.INNER_LIP_UPPER) | set(L.INNER_LIP_LOWER) | {60, 64} == set(L.INNER_LIPS)


def test_rigid_sets_are_the_ones_the_published_figures_used():
    # fit3dmm's camera initialisation used np.r_[27:36, 36, 39, 42, 45]; faces' jitter the 11 points below.
    np.testing.assert_array_equal(L.RIGID, [27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 39, 42, 45])
    np.testing.assert_array_equal(L.RIGID_JITTER, [27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45])


def test_constants_are_read_only():
    with pytest.raises(ValueError):
        L.MOUTH[0] = 0


def test_sides_and_corners_match_a_face():
    xy = LANDMARKS_XY                         # cm, +x = the subject's left, +y up
    assert (xy[L.RIGHT_EYE, 0] < 0).all() and (xy[L.LEFT_EYE, 0] > 0).all()
    assert (xy[L.RIGHT_BROW, 0] < 0).all() and (xy[L.LEFT_BROW, 0] > 0).all()
    assert (xy[L.JAW_RIGHT, 0] < 0).all() and (xy[L.JAW_LEFT, 0] > 0).all() and abs(xy[L.CHIN, 0]) < 1e-9
    assert xy[L.RIGHT_EYE_OUTER, 0] == xy[L.RIGHT_EYE, 0].min() and xy[L.RIGHT_EYE_INNER, 0] == xy[L.RIGHT_EYE, 0].max()
    assert xy[L.LEFT_EYE_INNER, 0] == xy[L.LEFT_EYE, 0].min() and xy[L.LEFT_EYE_OUTER, 0] == xy[L.LEFT_EYE, 0].max()
    assert xy[L.MOUTH_CORNERS[0], 0] == xy[L.MOUTH].min(0)[0] and xy[L.MOUTH_CORNERS[1], 0] == xy[L.MOUTH].max(0)[0]
    assert (xy[L.NOSE_BRIDGE, 0] == 0).all() and xy[L.NOSE_TIP, 1] == xy[L.NOSE_BRIDGE, 1].min()
    # inner lips: each lower point faces its upper point (same x) and lies below it
    np.testing.assert_allclose(xy[L.INNER_LIP_LOWER, 0], xy[L.INNER_LIP_UPPER, 0])
    assert (xy[L.INNER_LIP_LOWER, 1] < xy[L.INNER_LIP_UPPER, 1]).all()
    assert (xy[L.MOUTH_OPENING_PAIR, 0] == 0).all()


def test_inter_ocular_is_the_outer_corner_distance():
    lm = np.zeros((2, 68, 2))
    lm[:, 36], lm[:, 45] = (10.0, 20.0), (13.0, 24.0)      # 3-4-5 triangle: 5 px
    lm[:, 39], lm[:, 42] = (11.0, 20.0), (12.0, 20.0)      # inner corners do not count
    lm[1, 45, 0] = np.nan
    out = L.inter_ocular(lm)
    assert out.shape == (2,) and out[0] == 5.0 and np.isnan(out[1])
    xyz = np.zeros((68, 3))
    xyz[45] = (2.0, 3.0, 6.0)                               # 2^2 + 3^2 + 6^2 = 49
    assert L.inter_ocular(xyz) == 7.0
    with pytest.raises(ValueError, match=r"\(\.\.\., 68, D\).*\(66, 2\)"):
        L.inter_ocular(np.zeros((66, 2)))


def test_eye_centres_and_mouth_opening():
    lm = np.zeros((68, 2))
    lm[L.RIGHT_EYE] = [[0, 0], [1, -1], [2, -1], [3, 0], [2, 1], [1, 1]]   # centre (1.5, 0)
    lm[L.LEFT_EYE] = lm[L.RIGHT_EYE] + [10, 2]                             # centre (11.5, 2)
    right, left = L.eye_centres(lm)
    np.testing.assert_array_equal(right, [1.5, 0.0])
    np.testing.assert_array_equal(left, [11.5, 2.0])
    lm[62], lm[66], lm[61], lm[67] = (5, 30), (5, 34), (4, 30), (4, 40)   # 61/67 must not count
    assert L.mouth_opening(lm) == 4.0
    batch = np.stack([lm, lm * 2])
    np.testing.assert_array_equal(L.mouth_opening(batch), [4.0, 8.0])
    np.testing.assert_array_equal(L.eye_centres(batch)[1], [[11.5, 2.0], [23.0, 4.0]])
