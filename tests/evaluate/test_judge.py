"""The sync judge: the train_expert stage itself, run with its own params block into the judge's paths."""

import dataclasses
import hashlib
import inspect
import json
import time

import pandas as pd
import pytest

from evaluate_fixture import copy_project


def test_params_yaml_keeps_the_judge_apart_from_the_expert(project_root):
    from headflow import params
    from headflow.sync.params import TrainExpertParams

    blocks = params.load_all(project_root / "params.yaml")
    judge, expert = blocks["train_judge"], blocks["train_expert"]
    assert type(judge) is TrainExpertParams and params.BLOCKS["train_judge"] == params.BLOCKS["train_expert"]
    # another seed and input variant (not a copy of the expert), smaller: a few minutes of the demo's 30
    assert judge.loop.seed != expert.loop.seed and judge.model.face_input != expert.model.face_input
    assert judge.model.width <= expert.model.width and judge.loop.epochs < expert.loop.epochs


def test_the_judge_and_evaluate_read_and_write_the_catalogs_paths():
    from headflow.catalog import CATALOG
    from headflow.evaluate import judge, stage

    kw = {k: p.default for k, p in inspect.signature(judge.run_stage).parameters.items()}
    assert kw["model_dir"] == CATALOG.model("train_judge", "judge") != CATALOG.model("train_expert", "expert")
    assert kw["out_dir"] == CATALOG.folder("train_judge") and kw["plot_path"] == CATALOG.plot("train_judge", "history")
    assert kw["shards_dir"] == CATALOG.folder("shards")
    assert stage.JUDGE.parent == CATALOG.model("train_judge", "judge")
    assert stage.LOSS_EXPERT.parent == CATALOG.model("train_expert", "expert")
    inputs = CATALOG.inputs("evaluate")
    assert {"data/models/judge", "data/models/expert"} <= set(inputs)
    assert all(f"{CATALOG.folder(s)}/generated.parquet" in inputs for s in CATALOG.stages if s.startswith("generate_"))


def test_evaluate_params_validate_names_the_field(tmp_path):
    from headflow import params
    from headflow.config import ConfigError

    p = tmp_path / "params.yaml"
    for text, message in (("frame_start: 0", "evaluate.frame_start: got 0; allowed: >= 1"),
                          ("ci: 95", "evaluate.ci: got 95"),
                          ("protocols: [dubbing, dubbing]",
                           "evaluate.protocols: got ['dubbing', 'dubbing']; allowed: no protocol twice"),
                          ("protocols: [reenactment]", "expected one of 'reconstruction', 'dubbing'"),
                          ("n_bootstrap: 10", "unknown key")):
        p.write_text(f"evaluate:\n  {text}\n")
        with pytest.raises(ConfigError) as err:
            params.load("evaluate", p)
        assert message in str(err.value), str(err.value)


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.mark.slow
def test_train_judge_stage_on_a_tiny_config(eval_project, tmp_path, monkeypatch, project_root):
    """The real train_judge block shrunk to 2 short epochs on the fixture's shards: settings, files, paths, time."""
    from headflow import params
    from headflow.evaluate.judge import run_stage
    from headflow.shards.params import ShardsParams
    from headflow.shards.stage import run_stage as run_shards
    from headflow.sync.train import load_expert
    from headflow.training.checkpoint import load_checkpoint

    root = copy_project(eval_project, tmp_path / "project")
    monkeypatch.chdir(root)
    run_shards(ShardsParams(workers=1), progress=False)
    expert_before = _sha("data/models/expert/last.pt")
    block = params.load("train_judge", project_root / "params.yaml")
    tiny = dataclasses.replace(block, loop=dataclasses.replace(block.loop, epochs=2, batch_size=16, warmup_steps=2),
                               samples_per_epoch=64, val_samples=32, eval_shifts=[3], max_offset=3, threads=1)
    t = time.perf_counter()
    metrics = run_stage(tiny, progress=False)
    seconds = time.perf_counter() - t
    print(f"train_judge tiny config: {seconds:.1f} s, {metrics['train_samples_per_s']} pairs/s")
    state = load_checkpoint("data/models/judge/last.pt")
    model = state["settings"]["family"]["model"]
    assert model["face_input"] == "gray_norm" and model["width"] == block.model.width
    assert state["settings"]["loop"]["seed"] == block.loop.seed == 1 and state["epoch"] == 2
    assert len(json.loads(open("data/models/judge/history.json").read())) == 2
    # the fixture's one train clip trains it; the three test clips are its held-out set
    assert metrics["train_clips"] == 1 and metrics["held_out_clips"] == 3
    assert 0 <= metrics["val_balanced_accuracy"] <= 1
    evaluation = pd.read_parquet("data/interim/train_judge/sync_eval.parquet")
    assert sorted(evaluation.applied_shift.unique()) == [0, 3] and len(evaluation) == 6
    assert len(pd.read_parquet("data/interim/train_judge/quarantine.parquet")) == 0
    assert json.loads(open("reports/metrics/train_judge.json").read()) == metrics
    assert len(json.loads(open("reports/plots/judge_history.json").read())) == 2
    # the expert's paths are untouched: the judge never overwrites the model generators train against
    assert _sha("data/models/expert/last.pt") == expert_before
    assert not (root / "data/interim/train_expert").exists()
    assert not (root / "reports/metrics/train_expert.json").exists()
    load_expert("data/models/judge/last.pt")          # the evaluate stage loads it the same way
