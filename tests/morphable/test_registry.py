"""fit3dmm.model specs: parsing, clear errors naming where the real models come from."""

from __future__ import annotations

import pytest

from headflow.morphable.registry import ModelSpecError, load_model, parse_spec


def test_builtin_and_paths_resolve_against_the_project_root(tmp_path):
    assert parse_spec("builtin").kind == "builtin"
    assert load_model("builtin").name == "builtin_demo"
    s = parse_spec("ict_npz:models/ict.npz", tmp_path)
    assert (s.kind, s.path) == ("ict_npz", tmp_path / "models/ict.npz")
    assert parse_spec(f"bfm:{tmp_path}/BFM_model_front.mat", "/elsewhere").path == tmp_path / "BFM_model_front.mat"


@pytest.mark.parametrize("spec, match", [
    ("basel", "unknown model spec 'basel'.*builtin, ict_npz:<path>"),
    ("bfm", "bfm needs a path.*faces.dmi.unibas.ch"),
    ("flame:", "flame needs a path.*flame.is.tue.mpg.de"),
    ("builtin:x.npz", "builtin model takes no path"),
])
def test_spec_errors(spec, match):
    with pytest.raises(ModelSpecError, match=match):
        parse_spec(spec)


@pytest.mark.parametrize("kind, where", [
    ("ict_npz", "github.com/ICT-VGL/ICT-FaceKit"), ("ict_folder", "github.com/ICT-VGL/ICT-FaceKit"),
    ("bfm", "BFM_model_front.mat.*faces.dmi.unibas.ch"), ("flame", "flame.is.tue.mpg.de"),
])
def test_missing_files_say_where_to_get_the_model(tmp_path, kind, where):
    with pytest.raises(ModelSpecError, match=f"not found.*{where}"):
        load_model(f"{kind}:missing/model", tmp_path)


def test_flame_needs_its_landmark_embedding(tmp_path):
    (tmp_path / "generic_model.pkl").write_bytes(b"")
    with pytest.raises(ModelSpecError, match="landmark_embedding.npy"):
        load_model("flame:generic_model.pkl", tmp_path)
