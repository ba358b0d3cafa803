"""The catalog (headflow.catalog) and dvc.yaml agree, and every stage's code deps cover what it imports.

Data-driven: each stage of `headflow.catalog.STAGES` is checked against its dvc.yaml block, so a new
stage needs only its catalog entry and its block.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from import_graph import ImportGraph
from headflow import params as P
from headflow.catalog import CATALOG, STAGES, Catalog, StageOutputs, expert_clips, preprocessing_clips, training_clips
from headflow.manifest import write_manifest

ROOT = Path(__file__).resolve().parents[1]
CODE_ROOTS = ("src/", "stages/")


def dvc_stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def out_paths(entries: list) -> dict[str, dict]:
    """dvc.yaml outs/metrics/plots entries (a path, or {path: options}) -> {path: options}."""
    result = {}
    for e in entries or []:
        if isinstance(e, str):
            result[e] = {}
        else:
            (path, options), = e.items()
            result[path] = options or {}
    return result


def covers(dep: str, file: str) -> bool:
    return file == dep or file.startswith(dep.rstrip("/") + "/")


def missing_code_deps(deps: list[str], files: set[str]) -> list[str]:
    """The files (relative paths) that no dep (a file, or a folder covering its files) covers."""
    return sorted(f for f in files if not any(covers(d, f) for d in deps))


def stale_code_deps(deps: list[str], files: set[str], root: Path) -> list[str]:
    """Code deps that cover no imported file: a Python file or folder the stage never imports.

    A non-Python file (an asset the code reads) cannot be checked by imports and is left alone.
    """
    code = [d for d in deps if d.startswith(CODE_ROOTS)]
    return [d for d in code if not any(covers(d, f) for f in files)
            and ((root / d).is_dir() or d.endswith(".py"))]


def stage_files(graph: ImportGraph, name: str, root: Path = ROOT) -> set[str]:
    """Files a stage runs: its entry point, what it imports, and its params module (`params.load` imports it)."""
    entry = root / "stages" / f"{name}.py"
    modules = graph.entry_closure(entry)
    if name in P.BLOCKS:
        modules |= graph.closure(graph.resolve({P.BLOCKS[name].partition(":")[0]}))
    return {entry.relative_to(root).as_posix()} | {graph.files[m].relative_to(root).as_posix() for m in modules}


@pytest.fixture(scope="module")
def graph() -> ImportGraph:
    return ImportGraph.build(ROOT / "src")


def test_every_catalog_stage_is_a_dvc_stage_in_the_same_order():
    assert list(dvc_stages()) == list(STAGES)


@pytest.mark.parametrize("name", list(STAGES))
def test_outs_metrics_and_plots_are_the_catalogs(name):
    stage = dvc_stages()[name]
    outs = out_paths(stage.get("outs"))
    assert sorted(outs) == sorted(CATALOG.outs(name))
    for path in STAGES[name].models.values():      # trained networks survive a re-run (resume from last.pt)
        assert outs[path].get("persist") is True, f"{name}: model folder {path} must be `persist: true`"
    assert list(out_paths(stage.get("metrics"))) == ([STAGES[name].metrics] if STAGES[name].metrics else [])
    assert sorted(out_paths(stage.get("plots"))) == sorted(STAGES[name].plots.values())


@pytest.mark.parametrize("name", list(STAGES))
def test_data_deps_are_the_catalogs_inputs(name):
    deps = [d for d in dvc_stages()[name].get("deps", []) if not d.startswith(CODE_ROOTS)]
    assert sorted(deps) == sorted(CATALOG.inputs(name))


def test_top_level_plots_draw_catalog_plot_files():
    files = {f for entry in yaml.safe_load((ROOT / "dvc.yaml").read_text()).get("plots", [])
             for spec in entry.values() for f in (spec.get("y") or {})}
    assert files and files <= {p for s in STAGES.values() for p in s.plots.values()}


@pytest.mark.parametrize("name", list(STAGES))
def test_code_deps_cover_every_module_the_stage_imports(graph, name):
    deps = dvc_stages()[name]["deps"]
    files = stage_files(graph, name)
    missing, stale = missing_code_deps(deps, files), stale_code_deps(deps, files, ROOT)
    assert not missing, f"dvc.yaml {name}: the stage imports these files; add them (or their folders): {missing}"
    assert not stale, f"dvc.yaml {name}: the stage imports nothing of these deps; remove them: {stale}"


def test_the_stages_package_init_runs_nothing():
    # `python -m stages.<name>` runs stages/__init__.py too; it is left out of the deps because it only
    # holds a docstring. Anything more and it would have to be a dep of every stage.
    body = ast.parse((ROOT / "stages/__init__.py").read_text()).body
    assert all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def _package(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_the_checker_finds_a_missing_dep_and_a_function_level_import(tmp_path):
    # A synthetic project: the stage imports pkg (headflow.b) whose function imports headflow.c.d, whose
    # package __init__ imports headflow.e. The deps list headflow.b only, like the old expressions stage
    # listing two files of a package it imported whole.
    _package(tmp_path, {
        "stages/synthetic.py": "from headflow.b import run\n",
        "src/headflow/b.py": "def run():\n    from headflow.c.d import x\n    return x\n",
        "src/headflow/c/__init__.py": "import headflow.e\n",
        "src/headflow/c/d.py": "x = 1\n",
        "src/headflow/e.py": "",
        "src/headflow/unused.py": "",
    })
    graph = ImportGraph.build(tmp_path / "src")
    files = stage_files(graph, "synthetic", tmp_path)
    assert files == {"stages/synthetic.py", "src/headflow/b.py", "src/headflow/c/__init__.py",
                     "src/headflow/c/d.py", "src/headflow/e.py"}
    deps = ["stages/synthetic.py", "src/headflow/b.py", "src/headflow/c/d.py"]
    assert missing_code_deps(deps, files) == ["src/headflow/c/__init__.py", "src/headflow/e.py"]
    assert missing_code_deps(deps + ["src/headflow/c", "src/headflow/e.py"], files) == []
    assert stale_code_deps(deps + ["src/headflow/unused.py"], files, tmp_path) == ["src/headflow/unused.py"]


def test_catalog_paths_follow_the_root(tmp_path):
    cat = Catalog(tmp_path)
    assert cat.manifest("faces", "landmarks") == tmp_path / "data/interim/faces/landmarks.parquet"
    assert cat.artifacts("audio_features", "mel") == tmp_path / "data/interim/audio_features/mel"
    assert cat.model("train_expert", "expert") == tmp_path / "data/models/expert"
    assert CATALOG.manifest("ingest", "clips") == Path("data/interim/ingest/clips.parquet")   # stays relative
    assert CATALOG.inputs("expressions") == ["data/interim/fit3dmm/fits.parquet", "data/interim/fit3dmm/fits"]
    with pytest.raises(KeyError, match="writes no manifest 'landmark'.*faces, landmarks"):
        cat.manifest("faces", "landmark")
    with pytest.raises(KeyError, match="no stage 'face'"):
        cat.folder("face")


def test_evaluate_reads_the_generated_manifest_of_every_generate_stage():
    from headflow.catalog import evaluate_stage

    assert list(STAGES)[-1] == "evaluate"
    from headflow.generators import FAMILIES

    generate_stages = [n for n in STAGES if n.startswith("generate_")]
    assert {f"generate_{f}" for f in FAMILIES} <= set(generate_stages)      # every family can be scored
    assert CATALOG.generated_manifests() == [Path(f"data/interim/{n}/generated.parquet") for n in generate_stages]
    base = [i for i in CATALOG.inputs("evaluate") if not i.endswith("/generated.parquet")]
    earlier = {n: s for n, s in STAGES.items() if n != "evaluate" and not n.startswith("generate_")}
    for family in ("lipsync", "styletalk"):      # registering a generate stage is its catalog entry
        earlier[f"generate_{family}"] = StageOutputs(f"generate_{family}", f"data/interim/generate_{family}",
                                                     ("generated", "quarantine"))
    earlier["train_lipsync"] = StageOutputs("train_lipsync", "data/interim/train_lipsync", ("generated",))
    cat = Catalog(".", {**earlier, "evaluate": evaluate_stage(earlier)})
    gen = [f"data/interim/{n}/generated.parquet" for n in earlier if n.startswith("generate_")]
    assert gen[-1] == "data/interim/generate_styletalk/generated.parquet"
    assert cat.inputs("evaluate") == [*base, *gen]
    assert cat.generated_manifests() == [Path(g) for g in gen]
    assert CATALOG.outs("evaluate") == ["data/interim/evaluate", "reports/report.html"]
    with pytest.raises(KeyError, match="'evaluate' reads 'generate_x.generated', but 'generate_x' writes no manifest"):
        bad = {**earlier, "generate_x": StageOutputs("generate_x", "data/interim/generate_x", ("outputs",))}
        Catalog(".", {**bad, "evaluate": evaluate_stage(bad)}).inputs("evaluate")


def test_a_read_of_an_unknown_item_fails():
    bad = Catalog(".", {**STAGES, "x": StageOutputs("x", "data/interim/x", reads=("faces.nothing",))})
    with pytest.raises(KeyError, match="'x' reads 'faces.nothing', but 'faces' writes no manifest"):
        bad.inputs("x")


def _clip(clip_id: str) -> dict:
    return {"clip_id": clip_id, "source_path": f"{clip_id}.mp4", "video_path": f"m/{clip_id}.mp4",
            "speaker_id": "s", "split": "train", "fps": 25.0}


def test_joins_keep_only_clips_every_stage_accepted(tmp_path):
    cat = Catalog(tmp_path)
    ids = ["a-000000000a", "b-000000000b", "c-000000000c", "d-000000000d"]
    write_manifest([_clip(i) for i in ids], cat.manifest("ingest", "clips"), "clips")
    # faces lost d; audio_features lost c; sync_check dropped b and shifted a by -2 frames
    write_manifest([{"clip_id": i, "crop_path": f"crops/{i}.mp4"} for i in ids[:3]], cat.manifest("faces", "faces"),
                   "faces")
    write_manifest([{"clip_id": i, "mel_path": f"mel/{i}.npy"} for i in ids[:2]],
                   cat.manifest("audio_features", "audio_features"), "audio_features")
    write_manifest([{"clip_id": ids[0], "decision": "keep", "reason": "sync_offset", "audio_shift_frames": -2,
                     "mel_path": f"shifted/{ids[0]}.npy"},
                    {"clip_id": ids[1], "decision": "drop", "reason": "sync_low_confidence", "audio_shift_frames": 0,
                     "mel_path": f"mel/{ids[1]}.npy"}], cat.manifest("sync_check", "decisions"), "decisions")
    pre = cat.preprocessing_clips()
    assert list(pre.clip_id) == ids[:3] and list(pre.crop_path) == [f"crops/{i}.mp4" for i in ids[:3]]
    assert list(cat.expert_clips().clip_id) == ids[:2]
    train = cat.training_clips()
    assert list(train.clip_id) == [ids[0]]
    assert train.mel_path.iloc[0] == f"shifted/{ids[0]}.npy" and train.audio_shift_frames.iloc[0] == -2
    assert train.source_path.iloc[0] == f"{ids[0]}.mp4"
    assert expert_clips(cat.manifest("ingest", "clips"), cat.manifest("faces", "faces"),
                        cat.manifest("audio_features", "audio_features")).equals(cat.expert_clips())
    assert preprocessing_clips(cat.manifest("ingest", "clips"), cat.manifest("faces", "faces")).equals(pre)
    assert training_clips(cat.manifest("ingest", "clips"), cat.manifest("faces", "faces"),
                          cat.manifest("audio_features", "audio_features"),
                          cat.manifest("sync_check", "decisions")).equals(train)


def test_preprocess_flow_runs_catalog_stages_in_catalog_order():
    # read statically: importing the flow module imports prefect (seconds)
    tree = ast.parse((ROOT / "pipelines/preprocess.py").read_text())
    table = next(n.value for n in tree.body if isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "") == "STAGES")
    flow_stages = [k.value for k in table.keys]
    assert flow_stages and set(flow_stages) <= set(STAGES)
    assert flow_stages == [s for s in STAGES if s in flow_stages]
