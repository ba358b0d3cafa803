"""The built-in demo model: size, landmark placement, and modes that do what their names say."""

from __future__ import annotations

import numpy as np
import pytest

from headflow.morphable.builtin import LANDMARKS_XY, builtin_model


@pytest.fixture(scope="module")
def model():
    return builtin_model()


def moved(model, name: str, amount: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Neutral and expressed landmarks (68, 3) for one expression mode."""
    e = np.zeros(model.n_exp)
    e[model.exp_index(name)] = amount
    return model.landmarks(), model.landmarks(exp_coeffs=e)


def test_size_and_names(model):
    assert model.n_vertices >= 1000 and model.n_id >= 10 and model.n_exp >= 12
    for name in ("jawOpen", "mouthFunnel", "mouthPucker", "mouthStretch_L", "mouthStretch_R", "mouthSmile_L",
                 "mouthSmile_R", "eyeBlink_L", "eyeBlink_R", "browInnerUp"):
        model.exp_index(name)
    assert builtin_model() is model  # cached, deterministic


def test_mesh_faces_the_camera(model):
    v = model.mean[model.triangles]
    normals = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    assert (normals[:, 2] > 0).mean() > 0.95  # CCW seen from +z on the front of the face
    used = np.unique(model.triangles)
    assert len(used) == model.n_vertices


def test_landmarks_sit_where_placed(model):
    lm = model.mean[model.landmarks68]
    # Grid step 0.19 cm: the nearest vertex is within half a cell diagonal (0.134 cm).
    assert np.abs(lm[:, :2] - LANDMARKS_XY).max() < 0.14
    assert len(set(model.landmarks68.tolist())) == 68
    assert lm[30, 2] > lm[[36, 45, 48, 54], 2].max() + 1.0  # the nose tip sticks out
    assert lm[0, 0] < 0 < lm[16, 0]  # landmark 0 is the subject's right: -x


def test_jaw_open_moves_chin_down(model):
    before, after = moved(model, "jawOpen")
    assert after[8, 1] - before[8, 1] < -1.0
    assert abs(after[62, 1] - before[62, 1]) < 0.05  # upper lip stays
    assert after[66, 1] - before[66, 1] < -1.0      # lower lip goes with the jaw
    np.testing.assert_allclose(after[17:48], before[17:48], atol=1e-3)  # brows, nose, eyes still


@pytest.mark.parametrize("side, upper, lower", [("R", [37, 38], [41, 40]), ("L", [43, 44], [47, 46])])
def test_blink_closes_the_eye(model, side, upper, lower):
    before, after = moved(model, f"eyeBlink_{side}")
    gap_before = before[upper, 1] - before[lower, 1]
    gap_after = np.abs(after[upper, 1] - after[lower, 1])
    assert (gap_after < 0.25 * gap_before).all()
    other = [43, 44] if side == "R" else [37, 38]
    np.testing.assert_allclose(after[other], before[other], atol=1e-3)


def test_mouth_modes(model):
    width = lambda lm: lm[54, 0] - lm[48, 0]  # noqa: E731
    before, pucker = moved(model, "mouthPucker")
    assert width(pucker) < width(before) - 0.3 and pucker[51, 2] > before[51, 2] + 0.2
    _, funnel = moved(model, "mouthFunnel")
    assert funnel[51, 1] > before[51, 1] and funnel[57, 1] < before[57, 1] and funnel[62, 2] > before[62, 2]
    for side, corner, other, sign in (("L", 54, 48, 1), ("R", 48, 54, -1)):
        _, smile = moved(model, f"mouthSmile_{side}")
        assert smile[corner, 1] > before[corner, 1] + 0.3 and abs(smile[other, 1] - before[other, 1]) < 0.05
        _, stretch = moved(model, f"mouthStretch_{side}")
        assert sign * (stretch[corner, 0] - before[corner, 0]) > 0.4


def test_brow_modes(model):
    before, up = moved(model, "browInnerUp")
    assert (up[[21, 22], 1] > before[[21, 22], 1] + 0.3).all()
    _, down = moved(model, "browDown_L")
    assert down[24, 1] < before[24, 1] - 0.2 and abs(down[19, 1] - before[19, 1]) < 0.05


def test_identity_modes_are_global_and_named(model):
    lm0 = model.landmarks()
    coeff = lambda name: np.eye(model.n_id)[model.id_names.index(name)]  # noqa: E731
    wide = model.landmarks(coeff("face_width"))
    assert wide[16, 0] - wide[0, 0] > (lm0[16, 0] - lm0[0, 0]) * 1.05
    jaw = model.landmarks(coeff("jaw_width"))
    assert jaw[12, 0] - jaw[4, 0] > lm0[12, 0] - lm0[4, 0] + 0.3
    nose = model.landmarks(coeff("nose_protrusion"))
    assert nose[30, 2] > lm0[30, 2] + 0.3
    eyes = model.landmarks(coeff("eye_spacing"))
    assert eyes[42, 0] - eyes[39, 0] > lm0[42, 0] - lm0[39, 0] + 0.2
