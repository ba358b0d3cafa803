"""Known answers for the measurement functions of bench/discohead_disentangle.py (the bench itself reads a
project run's outputs and takes ~2 minutes: not run here)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.discohead_disentangle import (compare, crop_roll_deg, expected_pose, fit_pose, mouth_opening_ratio,
                                         pearson, pose_error, reference_shape)
from headflow.rotations import euler_to_matrix


def _face3d(seed: int = 0) -> np.ndarray:
    """A rigid (68, 3) point cloud with a face's extent (pixels; depth spread like a nose vs the eyes)."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(-60, 60, 68), rng.uniform(-70, 70, 68), rng.uniform(-40, 30, 68)])


def _project(X: np.ndarray, angles, s: float, t) -> np.ndarray:
    """Orthographic image (68, 2) of X rotated by (yaw, pitch, roll), scaled by s, shifted by t (y down)."""
    return s * (X @ euler_to_matrix(np.asarray(angles, float)).T)[:, :2] + np.asarray(t, float)


def test_fit_pose_recovers_a_known_rotation_scale_and_shift():
    X = _face3d()
    X = X - X[17:48].mean(0)
    lm = _project(X, (3.0, -2.0, 1.5), 1.3, (128.0, 120.0))
    got = fit_pose(lm, X)
    np.testing.assert_allclose(got, [3.0, -2.0, 1.5], atol=1e-4)
    # a 10-degree yaw the other way: no small-angle assumption inside
    np.testing.assert_allclose(fit_pose(_project(X, (-10.0, 4.0, -6.0), 0.8, (0, 0)), X), [-10, 4, -6], atol=1e-4)
    # a NaN in a used point gives NaN (no silent partial fit)
    lm[20] = np.nan
    assert np.isnan(fit_pose(lm, X)).all()


def test_reference_shape_is_pose_zero_on_its_own_frame_and_scales_the_template_depth():
    template = _face3d(1) / 100.0                       # template in "face units"
    ref = _project(template, (0, 0, 20.0), 250.0, (100.0, 90.0))   # the reference: rotated 20 deg in plane, x250
    shape = reference_shape(ref, template)
    np.testing.assert_allclose(shape[:, :2], ref - ref.mean(0), atol=1e-9)
    # the similarity that maps the template's xy onto ref has scale 250, so depth is the template's x 250
    z = template[:, 2] * 250.0
    np.testing.assert_allclose(shape[:, 2], z - z.mean(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fit_pose(ref, shape), [0, 0, 0], atol=1e-9)
    # the reference face yawed by 5 deg about the image's axes (orthographic, same size): measured (5, 0, 0)
    moved = _project(shape, (5.0, 0.0, 0.0), 1.0, ref.mean(0))
    np.testing.assert_allclose(fit_pose(moved, shape), [5.0, 0.0, 0.0], atol=1e-4)
    with pytest.raises(ValueError, match="68, 2"):
        reference_shape(ref[:60], template)


def test_crop_roll_and_expected_pose():
    a = np.deg2rad(30.0)
    k = 0.7
    M = np.array([[k * np.cos(a), -k * np.sin(a), 5.0], [k * np.sin(a), k * np.cos(a), -3.0]])
    assert crop_roll_deg(M[None])[0] == pytest.approx(30.0)
    # why roll alone shifts: the crop turns the head by a, Rz(a) Rz(r) Rx(p) Ry(y) = R(y, p, r + a)
    turned = euler_to_matrix(np.array([0.0, 0.0, 30.0])) @ euler_to_matrix(np.array([2.0, -1.0, 4.0]))
    np.testing.assert_allclose(turned, euler_to_matrix(np.array([2.0, -1.0, 34.0])), atol=1e-12)
    truth = np.array([[2.0, -1.0, 4.0, 0.0, 0.0, 1.0]])
    # reference crop turned by 25 deg: expected roll 4 + 30 - 25 = 9
    np.testing.assert_allclose(expected_pose(truth, np.array([30.0]), 25.0), [[2.0, -1.0, 9.0]])


def test_mouth_opening_ratio():
    lm = np.zeros((68, 2))
    lm[36], lm[45] = (100.0, 100.0), (160.0, 100.0)   # IOD 60
    lm[[61, 62, 63], 1] = 150.0
    lm[[67, 66, 65], 1] = [153.0, 156.0, 153.0]          # gaps 3, 6, 3: mean 4
    lm[[61, 67], 0], lm[[62, 66], 0], lm[[63, 65], 0] = 120.0, 130.0, 140.0
    assert mouth_opening_ratio(lm) == pytest.approx(4.0 / 60.0)
    # scale free: the same face twice as large
    assert mouth_opening_ratio(2 * lm[None])[0] == pytest.approx(4.0 / 60.0)


def test_pose_error_and_pearson():
    m = np.array([[1.0, 0.0, 0.0], [3.0, np.nan, 1.0]])
    e = np.array([[0.0, 1.0, 0.0], [1.0, 1.0, -1.0]])
    np.testing.assert_allclose(pose_error(m, e), [1.5, 1.0, 1.0])   # |1|,|2| -> 1.5; NaN frame left out
    assert pearson([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert pearson([1, 2, 3, 4], [8, 6, 4, 2]) == pytest.approx(-1.0)
    assert np.isnan(pearson([1, 1, 1], [1, 2, 3]))             # constant side: undefined, not 0
    assert np.isnan(pearson([0.1, 0.1, 0.1], [1, 2, 3]))       # a float constant too (its std is ~1e-17, not 0)


def test_compare_pairs_systems_by_clip_and_orients_the_winner():
    import pandas as pd

    from bench.discohead_disentangle import FIGURES

    rows = []
    for i in range(6):
        for system, err, r in (("discohead", 1.0 + 0.01 * i, 0.5), ("source_warp", 2.0 + 0.01 * i, 0.5 + 0.01 * i)):
            rows.append({"system": system, "source_clip": f"c{i}", **{f: err for f, _ in FIGURES if "err" in f},
                         "mouth_r_vs_audio": r, "mouth_r_vs_driver": r})
    out = compare(pd.DataFrame(rows[::-1])).set_index("figure")      # row order must not matter
    assert out.loc["pose_err_vs_driver", "discohead - source_warp"] == pytest.approx(-1.0)
    assert out.loc["pose_err_vs_driver", "winner"] == "discohead"     # lower error wins
    assert out.loc["mouth_r_vs_audio", "discohead - source_warp"] == pytest.approx(-0.025)
    assert out.loc["mouth_r_vs_audio", "winner"] == "source_warp"     # higher r wins; every d < 0 but d_0 = 0
