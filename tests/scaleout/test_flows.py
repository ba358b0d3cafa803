"""The Prefect flows cover dvc.yaml's stages, in its order, with the functions its entry points call."""

from __future__ import annotations

import ast
import importlib
import logging
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _entry_function(stage: str) -> str:
    """'module:function' that `python -m stages.<stage>` imports from headflow and calls (read, not run)."""
    tree = ast.parse((ROOT / "stages" / f"{stage}.py").read_text())
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("headflow"):
            for a in node.names:
                if a.name in called and a.name.startswith("run"):
                    return f"{node.module}:{a.name}"
    raise AssertionError(f"stages/{stage}.py calls no run... function it imports from headflow")


def _flow_function(stage: str) -> str:
    """'module:function' the flows call for `stage`."""
    from pipelines.flows import stage_function_target
    from pipelines.preprocess import STAGES

    return stage_function_target(stage) or f"{STAGES[stage][0]}:run_stage"


def test_pipeline_runs_every_dvc_stage_once_in_dvc_order():
    from headflow.generators import FAMILIES
    from pipelines.flows import AFTER_EXPERT, EXPERT_STAGES, training_stages_of

    dvc_order = list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])
    # pipeline(): preprocess(EXPERT_STAGES), train(expert), preprocess(AFTER_EXPERT), train(judge), then per
    # family its training stages and its generate stage, evaluate
    flow_order = [*EXPERT_STAGES, "train_expert", *AFTER_EXPERT, "train_judge",
                  *(s for f in FAMILIES for s in [*training_stages_of(f), f"generate_{f}"]), "evaluate"]
    assert flow_order == dvc_order


@pytest.mark.parametrize("stage", list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]))
def test_each_flow_task_calls_the_dvc_stage_function(stage):
    entry, ours = _entry_function(stage), _flow_function(stage)
    assert entry == ours, f"{stage}: dvc.yaml runs {entry}, the flow {ours}"
    module, _, name = ours.partition(":")
    assert callable(getattr(importlib.import_module(module), name))


def _entry_param_blocks(stage: str) -> list[str]:
    """The params blocks `stages/<stage>.py` passes to its run function: `params.load("<block>")` arguments, in order."""
    tree = ast.parse((ROOT / "stages" / f"{stage}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id.startswith("run"):
            blocks = [a.args[0].value for a in node.args
                      if isinstance(a, ast.Call) and isinstance(a.func, ast.Attribute) and a.func.attr == "load"
                      and a.args and isinstance(a.args[0], ast.Constant)]
            if blocks:
                return blocks
    raise AssertionError(f"stages/{stage}.py passes no params.load(...) block to a run... function")


@pytest.mark.parametrize("stage", list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]))
def test_each_flow_task_passes_the_params_blocks_the_dvc_stage_passes(stage):
    """A flow task calls the stage function with the same params blocks, in the same order: a stage taking a
    second block (Head2HeadFS's generate) once failed in the pipeline flow alone."""
    from pipelines.flows import stage_param_blocks, stage_function_target

    entry = _entry_param_blocks(stage)
    ours = stage_param_blocks(stage) if stage_function_target(stage) else [stage]   # stage_task: its own block
    assert entry == ours, f"{stage}: stages/{stage}.py passes {entry}, the flow {ours}"


def test_unknown_names_are_errors():
    from pipelines.flows import pipeline, train_stage_of

    with pytest.raises(ValueError, match=r"unknown model 'wav2lip'; choose from \['expert', 'judge'"):
        train_stage_of("wav2lip")
    with pytest.raises(ValueError, match="not pipeline stages"):
        pipeline.fn(stages=["preprocess_everything"])


def test_epoch_log_line_drives_the_progress_artifact(monkeypatch):
    """The training loop's own epoch line (headflow.training.loop._log_epoch) moves the progress bar."""
    import pipelines.flows as flows
    from headflow.training.config import LoopConfig
    from headflow.training.loop import _log_epoch

    calls = []
    monkeypatch.setattr(flows, "create_progress_artifact",
                        lambda p, key, description: calls.append(("new", p, key, description)) or 7)
    monkeypatch.setattr(flows, "update_progress_artifact",
                        lambda a, p, description: calls.append(("update", p, a, description)))
    monkeypatch.setattr(flows, "get_run_logger", lambda: logging.getLogger("test-flows"))
    cfg = LoopConfig(epochs=4, batch_size=2, lr=1e-3)
    row = {"epoch": 1, "train_loss": 0.5, "samples_per_s": 10.0, "data_wait_fraction": 0.0}
    with flows.EpochProgress("expert-progress"):
        _log_epoch("expert", cfg, row)
        _log_epoch("expert", cfg, {**row, "epoch": 3, "train_loss": 0.25})
    _log_epoch("expert", cfg, {**row, "epoch": 4})            # after the block: no longer observed
    # epoch 1 of 4 -> 25 %, epoch 3 of 4 -> 75 % (updating the artifact the first call created, id 7)
    assert calls == [("new", 25.0, "expert-progress", "expert: epoch 1/4, train loss 0.5000"),
                     ("update", 75.0, 7, "expert: epoch 3/4, train loss 0.2500")]


def test_deployments_expose_the_run_parameters():
    """`make serve` and prefect.yaml deploy every flow; the pipeline's UI form has params file, stages, experiment."""
    from pipelines.flows import FLOWS
    from pipelines.serve import DEPLOYMENT, deployments

    built = {d.flow_name: d for d in deployments()}
    assert set(built) == set(FLOWS) and all(d.name == DEPLOYMENT for d in built.values())
    from prefect.utilities.callables import parameter_schema

    schema = {name: set(parameter_schema(f.fn).properties) for name, f in FLOWS.items()}   # the UI's form
    form = schema["pipeline"]
    assert {"params_path", "stages", "experiment", "shard_size"} <= set(form)
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    entry = {d["entrypoint"] for d in spec["deployments"]}
    assert entry == {f"pipelines/{'preprocess' if n == 'preprocess' else 'flows'}.py:{n}" for n in FLOWS}
    for d in spec["deployments"]:
        path, _, name = d["entrypoint"].partition(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert getattr(module, name).name == name          # the flow object of that name
        assert set(d.get("parameters", {})) <= schema[name]


@pytest.mark.slow
def test_deploy_all_and_deployment_ls_work_against_a_local_server(prefect_server, tmp_path):
    """README's work-pool route: `prefect deploy --all` registers every deployment of prefect.yaml and
    `prefect deployment ls` lists them (both once failed with HTTP 422 on the client's explicit
    `"limit": null` under fastapi >= 0.151, which no longer maps a null body field to its default)."""
    import os
    import subprocess
    import sys

    from prefect.settings import PREFECT_API_URL

    from pipelines.flows import FLOWS

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_HOME": str(tmp_path),
           "COLUMNS": "200"}
    prefect = [str(Path(sys.executable).parent / "prefect"), "--no-prompt"]

    def cli(*args: str) -> str:
        done = subprocess.run([*prefect, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"prefect {' '.join(args)}: rc {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    cli("work-pool", "create", "headflow", "--type", "process")
    deployed = cli("deploy", "--all")
    listed = cli("deployment", "ls")
    for name in FLOWS:
        assert f"Deployment '{name}/headflow' successfully created" in deployed, deployed
        assert f"{name}/headflow" in listed, listed


def test_sample_grids_are_inlined_in_the_samples_artifact(tmp_path):
    """The UI cannot open file:// links: the last grid of each run folder is a downscaled data-URI PNG."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    from pipelines.flows import samples_markdown

    assert samples_markdown(tmp_path) == ""
    for rel, value in [("stage1/samples/epoch_001.png", 10), ("stage1/samples/epoch_002.png", 200),
                       ("stage2/samples/epoch_001.png", 90), ("stage1/dvclive/plots/images/samples/epoch_002.png", 50)]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((300, 1200, 3), value, np.uint8)).save(tmp_path / rel)
    md = samples_markdown(tmp_path)
    inline = [part.split("(data:image/png;base64,")[1].rstrip(")") for part in md.split("\n\n") if "base64," in part]
    assert len(inline) == 2                                     # stage1's last epoch and stage2's; not DVCLive's copy
    images = [np.asarray(Image.open(io.BytesIO(base64.b64decode(b)))) for b in inline]
    assert [im.shape for im in images] == [(128, 512, 3)] * 2    # longer side 512, aspect kept (300 x 1200 -> 128 x 512)
    assert [int(im[0, 0, 0]) for im in images] == [200, 90]     # epoch_002 of stage1, not epoch_001
    assert "**stage1/samples/epoch_002.png**" in md and "All 3 sample grids" in md
    assert "dvclive" not in md and "file://" not in md


def test_preprocess_report_makes_every_stages_tables_with_the_shared_function(tmp_path, monkeypatch):
    """The preprocess flow's artifacts come from `stage_artifacts`, as the train/generate flows' do: a
    `<stage>-quarantine` table from the stage's quarantine manifest and a `<stage>-metrics` table."""
    import pandas as pd

    import pipelines.preprocess as pre
    from headflow.catalog import CATALOG

    monkeypatch.chdir(tmp_path)
    q = tmp_path / CATALOG.quarantine("faces")
    q.parent.mkdir(parents=True)
    pd.DataFrame({"clip_id": ["a", "b", "c"], "reason_code": ["no_face", "no_face", "too_short"]}).to_parquet(q)
    tables = {}
    monkeypatch.setattr(pre, "create_table_artifact", lambda key, table, description: tables.update({key: table}))
    monkeypatch.setattr(pre, "create_markdown_artifact", lambda key, markdown, description: None)
    pre._report({"ingest": {"accepted": 3}, "faces": {"accepted": 0, "quarantined": 3}})
    assert tables["faces-quarantine"] == [{"reason_code": "no_face", "rows": 2}, {"reason_code": "too_short", "rows": 1}]
    assert "ingest-quarantine" not in tables                     # no manifest written: no table, no made-up row
    assert tables["faces-metrics"] == [{"metric": "accepted", "value": 0}, {"metric": "quarantined", "value": 3}]
    assert tables["ingest-metrics"] == [{"metric": "accepted", "value": 3}]


def _entry_keywords(stage: str) -> set[str]:
    """The keyword names `stages/<stage>.py` passes to its run function besides `progress`."""
    tree = ast.parse((ROOT / "stages" / f"{stage}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id.startswith("run"):
            return {k.arg for k in node.keywords if k.arg not in (None, "progress")}
    return set()


@pytest.mark.parametrize("stage", list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]))
def test_each_flow_task_passes_the_keywords_the_dvc_stage_passes(stage):
    """generate_stylemap's pose and identity measurements come in as a keyword from its stages/ entry point;
    a flow that called the family's function without it wrote metrics without those intervals."""
    from pipelines.flows import EXTRA_KWARGS, stage_function_target

    ours = set(EXTRA_KWARGS[stage]()) if stage in EXTRA_KWARGS else set()
    entry = _entry_keywords(stage)
    assert not ours or stage_function_target(stage), f"{stage}: EXTRA_KWARGS only applies to family stages"
    assert entry == ours, f"{stage}: stages/{stage}.py passes keywords {sorted(entry)}, the flow {sorted(ours)}"
