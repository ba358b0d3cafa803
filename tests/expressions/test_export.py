"""Deep3DFaceRecon / StyleTalk .mat export: layout, angle convention, camera conversion, refusal of non-BFM fits."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.io import loadmat

from headflow.rotations import euler_to_matrix
from headflow.expressions.stage import (deep3d_angles, deep3d_rotation, export_deep3d_mat, pose_in_crop)


def _rot(yaw, pitch, roll):
    """Our convention: R = Rz(roll) Rx(pitch) Ry(yaw), degrees."""
    return euler_to_matrix([yaw, pitch, roll])


def _fit(T=6, name="bfm_deep3d", k_id=80, k_exp=64, seed=0):
    rng = np.random.default_rng(seed)
    R = np.stack([_rot(*rng.uniform(-20, 20, 3)) for _ in range(T)])
    return SimpleNamespace(model_name=name, id_coeffs=rng.normal(size=k_id).astype(np.float32),
                           exp_coeffs=rng.normal(size=(T, k_exp)).astype(np.float32), rotation=R.astype(np.float32),
                           translation=rng.uniform(150, 250, (T, 2)).astype(np.float32),
                           scale=rng.uniform(8, 12, T).astype(np.float32), valid=np.ones(T, bool))


def _deep3d_R(x, y, z):
    """Deep3D's R = Rz(z) Ry(y) Rx(x), each factor written out (the camera check's own copy)."""
    Rx = np.array([[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]])
    Ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    Rz = np.array([[np.cos(z), -np.sin(z), 0], [np.sin(z), np.cos(z), 0], [0, 0, 1]])
    return Rz @ Ry @ Rx


def _similarity(c, deg, bx, by):
    a = np.radians(deg)
    return np.array([[c * np.cos(a), c * np.sin(a), bx], [-c * np.sin(a), c * np.cos(a), by]])


# Deep3DFaceRecon's compute_rotation, for column vectors: R = Rz(z) Ry(y) Rx(x), each the standard
# right-handed rotation. The single-axis matrices below are written out by hand (30, 45 and 60 degrees:
# cos/sin are sqrt(3)/2, 1/2, sqrt(2)/2), so they check the implementation instead of repeating it.
S3, S2 = np.sqrt(3) / 2, np.sqrt(2) / 2
SINGLE_AXIS = [
    # (Deep3D angles x, y, z in radians, R)
    ((np.pi / 6, 0, 0), [[1, 0, 0], [0, S3, -0.5], [0, 0.5, S3]]),           # x = 30: y axis tips towards +z
    ((0, np.pi / 4, 0), [[S2, 0, S2], [0, 1, 0], [-S2, 0, S2]]),             # y = 45: z axis turns towards +x
    ((0, 0, np.pi / 3), [[0.5, -S3, 0], [S3, 0.5, 0], [0, 0, 1]]),           # z = 60: x axis turns towards +y
    # x = 90 then z = 90 (Ry = I): Rz Rx maps x -> y, y -> z, z -> x; Rx Rz (the wrong order) would not
    ((np.pi / 2, 0, np.pi / 2), [[0, 0, 1], [1, 0, 0], [0, 1, 0]]),
]


@pytest.mark.parametrize("angles, R", SINGLE_AXIS)
def test_deep3d_rotation_and_angles_on_hand_derived_matrices(angles, R):
    np.testing.assert_allclose(deep3d_rotation(np.array(angles)), R, atol=1e-12)
    np.testing.assert_allclose(deep3d_angles(np.array(R, float)), angles, atol=1e-12)


def test_our_single_axis_angles_map_to_deep3d_axes():
    """Ours R = Rz(roll) Rx(pitch) Ry(yaw) in degrees: on one axis, yaw is Deep3D's y, pitch x, roll z."""
    d = np.radians
    np.testing.assert_allclose(deep3d_angles(_rot(30, 0, 0)), [0, d(30), 0], atol=1e-12)
    np.testing.assert_allclose(deep3d_angles(_rot(0, 20, 0)), [d(20), 0, 0], atol=1e-12)
    np.testing.assert_allclose(deep3d_angles(_rot(0, 0, 10)), [0, 0, d(10)], atol=1e-12)


def test_pose_in_crop_on_hand_derived_transforms():
    """Crop transforms written out: a shift, a zoom and a 90-degree in-plane turn of the image."""
    R = np.stack([_rot(30, 0, 0)] * 3)
    t = np.array([[100.0, 50.0]] * 3)
    s = np.array([10.0] * 3)
    A = np.array([[[1, 0, -60], [0, 1, -40]],        # shift: t - (60, 40), pose and scale unchanged
                  [[2, 0, 0], [0, 2, 0]],            # zoom x2: t and s double, pose unchanged
                  [[0, 1, 0], [-1, 0, 0]]], float)   # (u, v) -> (v, -u): the image turns 90 deg counter-clockwise
    R2, t2, s2 = pose_in_crop(R, t, s, A)
    np.testing.assert_allclose(t2, [[40, 10], [200, 100], [50, -100]], atol=1e-12)
    np.testing.assert_allclose(s2, [10, 20, 10], atol=1e-12)
    np.testing.assert_allclose(R2[:2], R[:2], atol=1e-12)
    # The turn composes with roll: model +x, drawn at image (s, 0) from t, lands at (0, -s) from t',
    # i.e. model +x now points up (+y): R' = Rz(90) R, and Deep3D's angles are (0, 30 deg, 90 deg).
    np.testing.assert_allclose(R2[2], np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]]) @ R[2], atol=1e-12)
    np.testing.assert_allclose(deep3d_angles(R2[2]), [0, np.pi / 6, np.pi / 2], atol=1e-12)


def test_angles_round_trip():
    rng = np.random.default_rng(1)
    angles = rng.uniform(-0.6, 0.6, (20, 3))
    np.testing.assert_allclose(deep3d_angles(deep3d_rotation(angles)), angles, atol=1e-9)


def test_mat_layout_and_camera(tmp_path):
    fit = _fit()
    T = len(fit.exp_coeffs)
    tr = np.stack([_similarity(1.1, 5.0 * t, -60.0, -40.0) for t in range(T)])
    path = export_deep3d_mat(fit, tmp_path / "clip.mat", tr, crop_size=256)
    coeff = loadmat(str(path))["coeff"]
    assert coeff.shape == (T, 257) and coeff.dtype == np.float32
    np.testing.assert_allclose(coeff[:, :80], np.broadcast_to(fit.id_coeffs, (T, 80)), atol=1e-6)
    np.testing.assert_allclose(coeff[:, 80:144], fit.exp_coeffs, atol=1e-6)
    assert not coeff[:, 144:224].any() and not coeff[:, 227:254].any()      # texture, lighting: zeros
    # points project to the same 224-crop pixels under Deep3D's camera at the face depth as under the fit
    X = np.random.default_rng(2).normal(size=(30, 3)) * 5
    for t in range(T):
        P = X @ fit.rotation[t].T.astype(np.float64)
        src = np.stack([fit.scale[t] * P[:, 0] + fit.translation[t, 0], -fit.scale[t] * P[:, 1] + fit.translation[t, 1]], 1)
        ours = (src @ tr[t, :, :2].T + tr[t, :, 2]) * 224 / 256
        Rd, trans = _deep3d_R(*coeff[t, 224:227].astype(np.float64)), coeff[t, 254:257].astype(np.float64)
        Xc = X @ Rd.T + trans
        f = 1015.0 / (10.0 - trans[2])                      # weak perspective at the face's depth
        theirs = np.stack([f * Xc[:, 0] + 112, 224 - (f * Xc[:, 1] + 112)], 1)
        np.testing.assert_allclose(theirs, ours, atol=2e-2)
    assert path.read_bytes() == export_deep3d_mat(fit, tmp_path / "again.mat", tr).read_bytes()  # deterministic


def test_exported_angles_of_single_axis_poses(tmp_path):
    """Fits posed on one axis, cropped with and without an in-plane turn: the .mat angles written out."""
    fit = _fit(T=4)
    fit.rotation = np.stack([_rot(30, 0, 0), _rot(0, 20, 0), _rot(0, 0, 10), _rot(30, 0, 0)]).astype(np.float32)
    tr = np.stack([_similarity(1.0, 0.0, 0.0, 0.0)] * 3 + [_similarity(1.0, 90.0, 0.0, 0.0)])
    coeff = loadmat(str(export_deep3d_mat(fit, tmp_path / "c.mat", tr)))["coeff"]
    d = np.radians
    # _similarity(1, 90) is (u, v) -> (v, -u): the image turns 90 degrees, which adds 90 to the roll
    np.testing.assert_allclose(coeff[:, 224:227], [[0, d(30), 0], [d(20), 0, 0], [0, 0, d(10)], [0, d(30), d(90)]],
                               atol=1e-6)


def test_fewer_modes_are_zero_padded_and_without_crop_the_pose_stays_in_the_source(tmp_path):
    fit = _fit(k_id=40, k_exp=32)
    coeff = loadmat(str(export_deep3d_mat(fit, tmp_path / "c.mat")))["coeff"]
    assert not coeff[:, 40:80].any() and not coeff[:, 112:144].any() and not coeff[:, 254:257].any()
    np.testing.assert_allclose(_deep3d_R(*coeff[0, 224:227].astype(np.float64)), fit.rotation[0], atol=1e-5)


@pytest.mark.parametrize("name, k_id, k_exp", [("builtin_demo", 12, 17), ("ict_facekit_light_face", 80, 53),
                                               ("flame", 80, 64), ("bfm_deep3d", 100, 64)])
def test_non_bfm_fits_are_refused(tmp_path, name, k_id, k_exp):
    with pytest.raises(ValueError, match="needs a BFM fit"):
        export_deep3d_mat(_fit(name=name, k_id=k_id, k_exp=k_exp), tmp_path / "x.mat")
    assert not (tmp_path / "x.mat").exists()


# Radians. The fit (2 alternations, random identity basis) misses the pose by up to 0.0135 rad (yaw 5.77
# instead of 5 degrees), measured 2026-11-29 with `pytest tests/expressions/test_export.py -k bfm`;
# gate = measured x 1.25. A wrong convention is far outside it: a flipped roll sign is off by 0.10, x and
# y swapped by 0.087.
BFM_ANGLE_ATOL = 0.017


def test_bfm_fit_round_trip(tmp_path):
    """A BFM-layout file written here -> registry `bfm:` -> fit_video -> .mat: slices hold the fit's values."""
    from scipy.io import savemat

    from headflow.morphable.builtin import builtin_model
    from headflow.fit3dmm.fit import FitConfig, fit_video
    from headflow.morphable.registry import load_model

    b = builtin_model()
    ids = b.landmarks68
    rng = np.random.default_rng(0)
    mean = b.mean[ids].astype(np.float64)
    id_base = rng.normal(0, 0.05, (3 * 68, 80))
    ex_base = np.zeros((3 * 68, 64))
    ex_base[:, :b.n_exp] = b.exp_basis[:, ids].reshape(b.n_exp, -1).T
    tri = np.array([[i, i + 1, i + 2] for i in range(0, 60, 3)]) + 1
    savemat(tmp_path / "BFM_model_front.mat", {"meanshape": mean.reshape(1, -1), "idBase": id_base, "exBase": ex_base,
                                               "tri": tri, "keypoints": (np.arange(68) + 1).reshape(1, 68).astype(float)})
    model = load_model("bfm:BFM_model_front.mat", tmp_path)
    T = 8
    exp = np.zeros((T, 64))
    exp[:, b.exp_index("jawOpen")] = np.linspace(0, 1, T)
    X = model.landmarks(np.zeros(80), exp)
    lm = np.stack([np.stack([9 * x[:, 0] + 200, -9 * x[:, 1] + 200], 1) for x in X @ _rot(5, 0, 0).T]).astype(np.float32)
    fit = fit_video(model, lm, np.ones(T, bool), FitConfig(iterations=2))
    tr = np.tile(_similarity(1.0, 3.0, -70.0, -70.0), (T, 1, 1))
    coeff = loadmat(str(export_deep3d_mat(fit, tmp_path / "clip.mat", tr)))["coeff"]
    assert coeff.shape == (T, 257)
    np.testing.assert_allclose(coeff[:, :80], np.broadcast_to(fit.id_coeffs, (T, 80)), atol=1e-6)
    np.testing.assert_allclose(coeff[:, 80:144], fit.exp_coeffs, atol=1e-6)
    # posed at yaw 5 degrees, cropped with a 3-degree in-plane turn: Deep3D (x, y, z) = (0, 5, 3) degrees
    np.testing.assert_allclose(coeff[:, 224:227], np.broadcast_to(np.radians([0, 5, 3]), (T, 3)), atol=BFM_ANGLE_ATOL)


def test_deep3d_shares_the_axes_and_differs_only_in_factor_order():
    for yaw, pitch, roll in [(30, 0, 10), (0, -25, 40), (0, 0, 0)]:       # one of yaw / pitch zero: equal
        np.testing.assert_allclose(deep3d_rotation(np.deg2rad([pitch, yaw, roll])),
                                   euler_to_matrix([yaw, pitch, roll]), atol=1e-15)
    R = euler_to_matrix([30, 30, 0])
    assert not np.allclose(deep3d_rotation(np.deg2rad([30, 30, 0])), R, atol=1e-3)   # Ry Rx != Rx Ry
    np.testing.assert_allclose(deep3d_rotation(deep3d_angles(R)), R, atol=1e-12)   # convert via the matrix
