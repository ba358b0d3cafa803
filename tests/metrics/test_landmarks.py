"""F-LMD, M-LMD and AKD on synthetic 68-point landmarks with known displacements."""

from __future__ import annotations

import math

import numpy as np
import pytest

from headflow.metrics.landmarks import MOUTH, akd, f_lmd, lmd_per_frame, m_lmd


@pytest.fixture()
def gt() -> np.ndarray:
    """Three frames of 68 points in a 256x256 crop, eye corners 36 and 45 exactly 50 px apart."""
    rng = np.random.default_rng(0)
    pts = rng.uniform(60, 200, (3, 68, 2))
    pts[:, 36] = [100, 110]
    pts[:, 45] = [150, 110]
    return pts


def test_f_lmd_uniform_shift(gt):
    # every point off by (3, 4) px -> Euclidean distance 5 at every point of every frame
    assert f_lmd(gt + [3, 4], gt) == pytest.approx(5.0)
    assert f_lmd(gt, gt) == 0.0


def test_m_lmd_divides_by_the_20_mouth_points(gt):
    pred = gt.copy()
    pred[:, MOUTH] += [3, 4]  # only the 20 mouth points move, by 5 px each
    assert m_lmd(pred, gt) == pytest.approx(5.0)
    # F-LMD sees 20 of 68 points off by 5: 5 * 20 / 68 = 1.4706
    assert f_lmd(pred, gt) == pytest.approx(100 / 68)
    # Guard against the public-script bug of summing the 20 mouth errors and dividing by 68:
    # that gives 100 / 68 = 1.47, i.e. 3.4x too small.
    assert m_lmd(pred, gt) / (100 / 68) == pytest.approx(3.4)


def test_valid_mask_and_non_finite_frames_are_ignored(gt):
    pred = gt + [3, 4]
    pred[1] += 1000  # a frame with a failed detection, marked invalid
    assert f_lmd(pred, gt, valid=np.array([True, False, True])) == pytest.approx(5.0)
    pred[2, 10] = np.nan  # a non-finite coordinate also drops its frame
    assert m_lmd(pred, gt, valid=np.array([True, False, True])) == pytest.approx(5.0)
    assert math.isnan(f_lmd(pred, gt, valid=np.zeros(3, bool)))  # nothing compared -> NaN, never 0
    with pytest.raises(ValueError, match=r"\(T,\)"):
        f_lmd(pred, gt, valid=np.ones(2, bool))


def test_single_frame_and_shape_errors(gt):
    assert f_lmd(gt[0] + [0, 2], gt[0]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="same shape"):
        f_lmd(gt, gt[:2])
    with pytest.raises(ValueError, match="68 landmarks"):
        f_lmd(gt[:, :20], gt[:, :20])


def test_interocular_normalisation(gt):
    # 5 px error / 50 px between the outer eye corners = 0.1
    assert f_lmd(gt + [3, 4], gt, normalize="interocular") == pytest.approx(0.1)
    with pytest.raises(ValueError, match="normalize"):
        lmd_per_frame(gt, gt, normalize="face")


def test_center_mouth_removes_translation(gt):
    pred = gt.copy()
    pred[:, MOUTH] += [7, -2]  # the whole mouth translated: no shape change
    assert m_lmd(pred, gt) == pytest.approx(math.hypot(7, 2))
    assert m_lmd(pred, gt, center_mouth=True) == pytest.approx(0.0, abs=1e-12)


def test_akd_is_fomm_per_coordinate_l1(gt):
    # FOMM's cmp_kp.py: mean |dx|, |dy| -> (3 + 4) / 2 = 3.5 for a (3, 4) shift (Euclidean would be 5)
    assert akd(gt + [3, 4], gt) == pytest.approx(3.5)
    pred = gt + [3, 4]
    pred[0] += 100
    assert akd(pred, gt, valid=np.array([False, True, True])) == pytest.approx(3.5)
    assert math.isnan(akd(pred, gt, valid=np.zeros(3, bool)))
    assert akd(gt[:, :10] + [0, 1], gt[:, :10]) == pytest.approx(0.5)  # any number of keypoints
