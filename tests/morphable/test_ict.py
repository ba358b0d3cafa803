"""ICT-FaceKit loaders on the real files in ../shared (official OBJ folder and the plain npz)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from headflow.morphable import ict
from headflow.morphable.model import MorphableModel


@pytest.fixture(scope="module")
def ict_dir(shared_dir: Path) -> Path:
    path = shared_dir / "models" / "ict_facekit"
    if not (path / "FaceXModel").is_dir() or not (path / "ict_face_model_light_full.npz").is_file():
        pytest.skip(f"ICT-FaceKit material not found under {path}")
    return path


@pytest.fixture(scope="module")
def npz_model(ict_dir):
    return ict.load_ict_npz(ict_dir / "ict_face_model_light_full.npz")


def test_parse_obj_mixed_faces(tmp_path):
    obj = tmp_path / "m.obj"
    obj.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv 2 0 0\nvt 0 0\n"
                   "f 1/1 2/1 3/1 4/1\nf 2 5 3\nf -3 -2 -1\n")
    verts, tris = ict.parse_obj(obj)
    assert verts.shape == (5, 3)
    np.testing.assert_array_equal(tris, [[0, 1, 2], [0, 2, 3], [1, 4, 2], [2, 3, 4]])


@pytest.mark.shared
def test_npz_loader(npz_model):
    m = npz_model
    assert (m.n_vertices, m.n_id, m.n_exp, len(m.triangles)) == (26719, 100, 53, 52220)
    assert m.units == "cm" and "jawOpen" in m.exp_names
    assert m.landmarks68.max() < ict.FACE_AREA_VERTICES  # all 68 on the face area
    np.testing.assert_array_equal(m.jaw_contour[0], ict.RIGHT_JAWLINE)
    np.testing.assert_array_equal(m.jaw_contour[1], ict.LEFT_JAWLINE)
    # jawOpen moves the chin (landmark 8) down (+y is up in ICT's frame) more than it moves the nose.
    e = np.zeros(m.n_exp)
    e[m.exp_index("jawOpen")] = 1.0
    d = m.landmarks(exp_coeffs=e) - m.landmarks()
    assert d[8, 1] < -1.0 and abs(d[30, 1]) < 0.1


@pytest.mark.shared
def test_face_only_subset(ict_dir, npz_model):
    face = ict.load_ict_npz(ict_dir / "ict_face_model_light_full.npz", face_only=True)
    assert face.n_vertices == ict.FACE_AREA_VERTICES and face.triangles.max() < face.n_vertices
    np.testing.assert_allclose(face.landmarks(np.ones(5)), npz_model.landmarks(np.ones(5)), atol=1e-5)


@pytest.mark.shared
def test_folder_import_agrees_with_npz(ict_dir, npz_model, tmp_path):
    """Same vertex order in the OBJ files and the npz: neutral, triangles and bases agree."""
    with pytest.warns(UserWarning, match="incomplete"):
        m = ict.load_ict_folder(ict_dir / "FaceXModel", cache_dir=tmp_path)
    np.testing.assert_array_equal(m.mean, npz_model.mean)
    np.testing.assert_array_equal(m.triangles, npz_model.triangles)
    np.testing.assert_array_equal(m.landmarks68, npz_model.landmarks68)
    assert m.id_names == ("identity000", "identity001")
    assert m.exp_names == ("eyeBlink_L", "jawOpen", "mouthFunnel")  # official order, present ones only
    np.testing.assert_allclose(m.id_basis, npz_model.id_basis[:2], atol=1e-5)
    for i, name in enumerate(m.exp_names):
        np.testing.assert_allclose(m.exp_basis[i], npz_model.exp_basis[npz_model.exp_index(name)], atol=1e-5)
    assert m.meta["complete"] is False

    # Second call: served from the cache (no OBJ parsing, no warning), identical arrays.
    cached = list(tmp_path.glob("ict_facekit_*.npz"))
    assert len(cached) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = ict.load_ict_folder(ict_dir / "FaceXModel", cache_dir=tmp_path)
    np.testing.assert_array_equal(again.exp_basis, m.exp_basis)
    assert MorphableModel.load_npz(cached[0]).exp_names == m.exp_names
    with pytest.raises(FileNotFoundError, match="incomplete"):
        ict.load_ict_folder(ict_dir / "FaceXModel", cache_dir=tmp_path, require_complete=True)


def test_cache_key_follows_the_file_list(tmp_path):
    (tmp_path / "a.obj").write_text("v 0 0 0\n")
    key = ict.folder_key(tmp_path)
    (tmp_path / "b.obj").write_text("v 0 0 0\n")
    assert ict.folder_key(tmp_path) != key


def test_missing_files_name_the_source(tmp_path):
    with pytest.raises(FileNotFoundError, match="generic_neutral_mesh.obj.*ICT-FaceKit"):
        ict.load_ict_folder(tmp_path, cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        ict.load_ict_npz(tmp_path / "nope.npz")
