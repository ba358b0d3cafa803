"""`headflow params [block]`: every field with its type, default, value in use and docstring."""

from __future__ import annotations

import dataclasses
from typing import get_type_hints

from headflow import params
from headflow.cli import main


def leaf_keys(cls: type, where: str) -> list[str]:
    keys = []
    for f in dataclasses.fields(cls):
        tp = get_type_hints(cls)[f.name]
        keys += leaf_keys(tp, f"{where}.{f.name}") if dataclasses.is_dataclass(tp) else [f"{where}.{f.name}"]
    return keys


def test_one_block_expands_nested_blocks_with_types_defaults_values_and_docs(tmp_path, capsys):
    p = tmp_path / "params.yaml"
    p.write_text("faces:\n  detect: {every: 3}\n  crop: {preset: veryfast}\n")
    assert main(["params", "faces", "--params", str(p)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("faces: FacesParams  Ingested clips -> main-speaker face track")
    i = lines.index("    faces.detect.every: int = 15  [params.yaml: 3]")
    # the attribute docstring under the field, folded and indented below it
    assert lines[i + 1].strip() == "Run the detector every this many frames; track with landmarks in between."
    assert "  faces.detect: DetectParams" in lines and "      Detection." in lines
    assert ("    faces.crop.preset: 'ultrafast' | 'superfast' | 'veryfast' | 'faster' | 'fast' | 'medium' | 'slow' | "
            "'slower' | 'veryslow' = 'ultrafast'  [params.yaml: 'veryfast']") in lines
    # an absent key: the default is in use, and DVC's -S needs a "+" to add it ("Could not override" without)
    assert ("  faces.min_face_px: float = 48.0  [not in params.yaml: default 48.0 in use; "
            "dvc exp run -S +faces.min_face_px=...]") in lines
    assert not any(l.startswith("align") for l in lines)


def test_every_block_and_every_leaf_field_of_the_real_params(project_root, capsys, monkeypatch):
    monkeypatch.chdir(project_root)
    assert main(["params"]) == 0
    out = capsys.readouterr().out
    for name in params.BLOCKS:
        assert f"\n{name}: " in f"\n{out}"
        for key in leaf_keys(params.block_class(name), name):
            assert f" {key}: " in out, key
    # nested blocks of several stages expand (FitConfig is the fitter's own dataclass)
    assert " fit3dmm.fit.admm_iters: int = 10  [" in out
    assert " align.builtin.init: 'flat' | 'espeak_dtw' | 'espeak_hmm' = 'espeak_hmm'" in out
    assert " fit3dmm.n_id: int | null = None" in out


def test_without_a_params_file_it_prints_defaults_only(tmp_path, capsys):
    assert main(["params", "expressions", "--params", str(tmp_path / "none.yaml")]) == 0
    out = capsys.readouterr().out
    assert "not found: defaults only" in out
    assert "  expressions.export_mat: bool = False\n" in out


def test_unknown_block_and_bad_values_are_errors(tmp_path, capsys):
    assert main(["params", "facse"]) == 1
    assert "unknown params block 'facse'" in capsys.readouterr().err
    p = tmp_path / "params.yaml"
    p.write_text("faces:\n  detect: {every: 0}\n")
    assert main(["params", "faces", "--params", str(p)]) == 1
    assert "faces.detect.every: got 0; allowed: >= 1" in capsys.readouterr().err


def test_report_without_evaluate_outputs_says_what_to_run(tmp_path, capsys):
    assert main(["report", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert "no evaluate outputs" in err and "dvc repro evaluate" in err and not (tmp_path / "r.html").exists()
