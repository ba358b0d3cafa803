"""The sync judge: trained by train_expert's own training function with its own params block."""

import json
import time

import pandas as pd
import pytest
import torch

from evaluate_fixture import copy_project


def test_judge_defaults_differ_from_the_expert_it_must_not_copy():
    from headflow.evaluate.params import TrainJudgeParams
    from headflow.sync.params import TrainExpertParams

    judge, expert = TrainJudgeParams(), TrainExpertParams()
    assert judge.seed != expert.seed and judge.face_input != expert.face_input and judge.width < expert.width
    assert judge.epochs < expert.epochs                    # a few minutes of the demo's 30, not fifteen
    assert {f for f in judge.__dataclass_fields__} == {f for f in expert.__dataclass_fields__}


def test_params_yaml_blocks_load_and_keep_the_judge_apart(project_root):
    from headflow import params

    blocks = params.load_all(project_root / "params.yaml")
    judge, expert, evaluate = blocks["train_judge"], blocks["train_expert"], blocks["evaluate"]
    assert (judge.seed, judge.face_input) != (expert.seed, expert.face_input)
    assert evaluate.judge == "data/models/judge/last.pt" and evaluate.loss_expert == "data/models/expert/last.pt"


def test_evaluate_params_validate_names_the_field():
    from headflow.config import ConfigError, from_dict
    from headflow.evaluate.params import EvaluateParams

    with pytest.raises(ConfigError, match="frame_start must be >= 1"):
        from_dict(EvaluateParams, {"frame_start": 0}, "evaluate")
    with pytest.raises(ConfigError, match="ci must lie in"):
        from_dict(EvaluateParams, {"ci": 95}, "evaluate")
    with pytest.raises(ConfigError, match="expected one of 'reconstruction', 'dubbing'"):
        from_dict(EvaluateParams, {"protocols": ["reenactment"]}, "evaluate")
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(EvaluateParams, {"n_bootstrap": 10}, "evaluate")


@pytest.mark.slow
def test_train_judge_stage_on_a_tiny_config(eval_project, tmp_path, monkeypatch):
    """Tiny config only (the demo's 16 epochs are not run here): shapes, files, settings, time."""
    from headflow.evaluate.judge import run_stage
    from headflow.evaluate.params import TrainJudgeParams

    root = copy_project(eval_project, tmp_path / "project")
    monkeypatch.chdir(root)
    params = TrainJudgeParams(epochs=2, samples_per_epoch=64, val_samples=32, batch_size=16, warmup_steps=2,
                              eval_shifts=[3], max_offset=3, workers=1, threads=1)
    t = time.perf_counter()
    metrics = run_stage(params, progress=False)
    seconds = time.perf_counter() - t
    print(f"train_judge tiny config: {seconds:.1f} s, {metrics['train_samples_per_s']} pairs/s")
    state = torch.load("data/models/judge/last.pt", weights_only=False)
    model = state["config"]["model"]
    assert model["face_input"] == "gray_norm" and model["width"] == 0.25 and state["config"]["seed"] == 1
    assert state["epoch"] == 1 and len(json.loads(open("data/models/judge/history.json").read())) == 2
    assert metrics["train_clips"] == 1 and metrics["held_out_clips"] == 3
    assert 0 <= metrics["val_balanced_accuracy"] <= 1 and metrics["face_input"] == "gray_norm"
    evaluation = pd.read_parquet("data/interim/train_judge/sync_eval.parquet")
    assert sorted(evaluation.applied_shift.unique()) == [0, 3] and len(evaluation) == 6
    assert len(pd.read_parquet("data/interim/train_judge/quarantine.parquet")) == 0
    assert json.loads(open("reports/metrics/train_judge.json").read()) == metrics
    from headflow.sync.train import load_expert

    load_expert("data/models/judge/last.pt")          # the evaluate stage loads it the same way
