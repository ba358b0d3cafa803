"""MorphableModel: evaluation, linearity, validation, cache round trip (on the built-in demo model)."""

from __future__ import annotations

import numpy as np
import pytest

from headflow.morphable.builtin import builtin_model
from headflow.morphable.model import ModelFormatError, MorphableModel


def tiny_model(**overrides) -> MorphableModel:
    """4 vertices, 2 triangles, 2 identity and 3 expression modes with known values."""
    rng = np.random.default_rng(0)
    fields = dict(name="tiny", mean=rng.normal(size=(4, 3)), id_basis=rng.normal(size=(2, 4, 3)),
                  exp_basis=rng.normal(size=(3, 4, 3)), triangles=[[0, 1, 2], [0, 2, 3]],
                  landmarks68=np.arange(68) % 4, exp_names=("a", "b", "c"))
    fields.update(overrides)
    return MorphableModel(**fields)


def test_shape_matches_explicit_sum():
    m = tiny_model()
    a, b = np.array([0.5, -1.0]), np.array([2.0, 0.0, 1.0])
    expected = m.mean + 0.5 * m.id_basis[0] - m.id_basis[1] + 2 * m.exp_basis[0] + m.exp_basis[2]
    np.testing.assert_allclose(m.shape(a, b), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(m.shape(), m.mean)
    # Fewer coefficients than modes: the missing trailing modes are zero.
    np.testing.assert_allclose(m.shape(exp_coeffs=[1.0]), m.mean + m.exp_basis[0], atol=1e-6)


def test_shape_is_linear_and_batched():
    m = builtin_model()
    rng = np.random.default_rng(1)
    a1, a2 = rng.normal(size=(2, m.n_id))
    b1, b2 = rng.uniform(size=(2, m.n_exp))
    lhs = m.shape(a1 + a2, b1 + b2)
    rhs = m.shape(a1, b1) + m.shape(a2, b2) - m.mean
    np.testing.assert_allclose(lhs, rhs, atol=1e-4)
    exp_track = rng.uniform(size=(5, m.n_exp))
    batch = m.shape(a1, exp_track)
    assert batch.shape == (5, m.n_vertices, 3) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[3], m.shape(a1, exp_track[3]), atol=1e-5)
    lms = m.landmarks(a1, exp_track)
    assert lms.shape == (5, 68, 3)
    np.testing.assert_allclose(lms, batch[:, m.landmarks68], atol=1e-5)


def test_bad_coefficients_are_rejected():
    m = tiny_model()
    with pytest.raises(ValueError, match="exp_coeffs"):
        m.shape(exp_coeffs=np.zeros(4))
    with pytest.raises(KeyError, match="available: a, b, c"):
        m.exp_index("jawOpen")


@pytest.mark.parametrize("override, message", [
    (dict(triangles=[[1, 2, 3], [2, 3, 4]]), "1-based"),
    (dict(landmarks68=np.arange(60)), r"landmarks68 must be \(68,\)"),
    (dict(landmarks68=np.arange(68)), "landmarks68 index range"),
    (dict(exp_basis=np.zeros((3, 5, 3))), "exp_basis must be"),
    (dict(exp_names=("a",)), "1 exp_names for 3"),
    (dict(jaw_contour=([0, 9],)), "jaw_contour"),
])
def test_validate_names_the_problem(override, message):
    with pytest.raises(ModelFormatError, match=message):
        tiny_model(**override).validate()


def test_arrays_are_read_only():
    m = tiny_model()
    with pytest.raises(ValueError):
        m.mean[0, 0] = 1.0


def test_cache_round_trip(tmp_path):
    m = builtin_model()
    path = m.save_npz(tmp_path / "sub" / "demo.npz")
    back = MorphableModel.load_npz(path)
    for key in ("mean", "id_basis", "exp_basis", "triangles", "landmarks68"):
        np.testing.assert_array_equal(getattr(back, key), getattr(m, key))
    assert (back.name, back.exp_names, back.id_names, back.units, back.meta) == \
        (m.name, m.exp_names, m.id_names, m.units, m.meta)
    assert len(back.jaw_contour) == 2
    for c1, c2 in zip(back.jaw_contour, m.jaw_contour):
        np.testing.assert_array_equal(c1, c2)
    assert [p.name for p in path.parent.iterdir()] == ["demo.npz"]  # no temporary left behind


def test_load_npz_rejects_foreign_files(tmp_path):
    np.savez(tmp_path / "x.npz", neutral=np.zeros((3, 3)))
    with pytest.raises(ModelFormatError, match="not a headflow morphable-model cache"):
        MorphableModel.load_npz(tmp_path / "x.npz")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        MorphableModel.load_npz(tmp_path / "missing.npz")
