"""BFM (Deep3DFaceRecon layout) and FLAME (chumpy pickle) loaders on tiny files written here."""

from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import pytest
from scipy.io import savemat

from headflow.morphable.bfm import load_bfm_deep3d
from headflow.morphable.flame import load_flame, load_flame_pickle
from headflow.morphable.model import ModelFormatError

V = 70


def test_bfm_deep3d_layout(tmp_path):
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(V, 3))
    id_base, ex_base = rng.normal(size=(3 * V, 80)), rng.normal(size=(3 * V, 64))
    tri0 = np.array([[0, 1, 2], [2, 3, V - 1]])
    kp0 = np.arange(68) + 1
    savemat(tmp_path / "BFM_model_front.mat", {
        "meanshape": mean.reshape(1, -1), "idBase": id_base, "exBase": ex_base, "tri": tri0 + 1,
        "keypoints": (kp0 + 1).reshape(1, 68).astype(np.float64), "meantex": np.zeros((1, 3 * V))})
    m = load_bfm_deep3d(tmp_path / "BFM_model_front.mat")
    assert (m.n_vertices, m.n_id, m.n_exp) == (V, 80, 64)
    np.testing.assert_array_equal(m.triangles, tri0)
    np.testing.assert_array_equal(m.landmarks68, kp0)
    # Deep3DFaceRecon: face_shape = meanshape + idBase @ id + exBase @ exp, reshaped (V, 3).
    a, b = rng.normal(size=80), rng.normal(size=64)
    expected = (mean.reshape(-1) + id_base @ a + ex_base @ b).reshape(V, 3)
    np.testing.assert_allclose(m.shape(a, b), expected, rtol=1e-4, atol=1e-4)
    centred = load_bfm_deep3d(tmp_path / "BFM_model_front.mat", recenter=True)
    np.testing.assert_allclose(centred.mean.mean(axis=0), 0, atol=1e-5)


def test_bfm_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="BFM_model_front.mat.*faces.dmi.unibas.ch"):
        load_bfm_deep3d(tmp_path / "BFM_model_front.mat")
    savemat(tmp_path / "raw.mat", {"shapeMU": np.zeros((3, 1))})
    with pytest.raises(ModelFormatError, match="missing keys"):
        load_bfm_deep3d(tmp_path / "raw.mat")


class Ch:
    """Mimics chumpy.ch.Ch for pickling: the array lives in `x`."""

    def __init__(self, x):
        self.x = np.asarray(x)
        self.label = "fake"

    def __getstate__(self):
        return {"x": self.x, "label": self.label}

    def __setstate__(self, state):
        self.__dict__.update(state)


def write_fake_flame(path, monkeypatch, n_shape=300, n_exp=100):
    """A tiny generic_model.pkl whose v_template and shapedirs are (fake) chumpy objects."""
    rng = np.random.default_rng(1)
    data = {"v_template": Ch(rng.normal(size=(V, 3))), "shapedirs": Ch(rng.normal(size=(V, 3, n_shape + n_exp))),
            "f": np.array([[0, 1, 2], [1, 2, 3]], dtype=np.uint32), "posedirs": rng.normal(size=(V, 3, 36)),
            "kintree_table": np.zeros((2, 5), np.int64)}
    with monkeypatch.context() as mp:  # chumpy.ch exists only while pickling
        chumpy, ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")
        Ch.__module__, ch.Ch, chumpy.ch = "chumpy.ch", Ch, ch
        mp.setitem(sys.modules, "chumpy", chumpy)
        mp.setitem(sys.modules, "chumpy.ch", ch)
        path.write_bytes(pickle.dumps(data, protocol=2))
    Ch.__module__ = __name__
    return {k: (v.x if isinstance(v, Ch) else v) for k, v in data.items()}


def test_flame_without_chumpy(tmp_path, monkeypatch):
    raw = write_fake_flame(tmp_path / "generic_model.pkl", monkeypatch)
    assert "chumpy" not in sys.modules
    loaded = load_flame_pickle(tmp_path / "generic_model.pkl")
    np.testing.assert_array_equal(loaded["shapedirs"], raw["shapedirs"])
    m = load_flame(tmp_path / "generic_model.pkl", landmarks68=np.arange(68))
    assert (m.n_vertices, m.n_id, m.n_exp, m.units) == (V, 300, 100, "m")
    np.testing.assert_array_equal(m.mean, raw["v_template"].astype(np.float32))
    # FLAME: v = v_template + shapedirs[..., :300] @ beta + shapedirs[..., 300:] @ psi
    beta, psi = np.random.default_rng(2).normal(size=(2, 300)), np.zeros(100)
    psi[:7] = 1.0
    expected = raw["v_template"] + raw["shapedirs"][..., :300] @ beta[0] + raw["shapedirs"][..., 300:] @ psi
    np.testing.assert_allclose(m.shape(beta[0], psi), expected, rtol=1e-4, atol=1e-3)


def test_flame_landmark_embedding(tmp_path, monkeypatch):
    write_fake_flame(tmp_path / "generic_model.pkl", monkeypatch)
    faces = np.tile([0, 1], 34).reshape(1, 68)
    bary = np.tile([[0.1, 0.7, 0.2]], (68, 1)).reshape(1, 68, 3)
    np.save(tmp_path / "landmark_embedding.npy",
            np.array({"full_lmk_faces_idx": faces, "full_lmk_bary_coords": bary}, dtype=object))
    m = load_flame(tmp_path / "generic_model.pkl", landmark_embedding=tmp_path / "landmark_embedding.npy")
    # Corner 1 (weight 0.7) of face 0 = [0, 1, 2] is vertex 1; of face 1 = [1, 2, 3] is vertex 2.
    np.testing.assert_array_equal(m.landmarks68, np.tile([1, 2], 34))
    with pytest.raises(ValueError, match="landmarks68"):
        load_flame(tmp_path / "generic_model.pkl")


def test_flame_refuses_foreign_classes_and_names_the_source(tmp_path):
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"f": types.SimpleNamespace(a=1)}))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_flame_pickle(tmp_path / "evil.pkl")
    with pytest.raises(FileNotFoundError, match="flame.is.tue.mpg.de"):
        load_flame(tmp_path / "generic_model.pkl", landmarks68=np.arange(68))
