"""The train_expert block embeds the library configs (no copied defaults); choices are Literals."""

from __future__ import annotations

import dataclasses

import pytest

from headflow import params as P
from headflow.config import ConfigError, from_dict
from headflow.nn.expert import PUBLISHED_EXPERT, ExpertConfig
from headflow.sync.config import TrainConfig
from headflow.sync.params import SyncCheckParams, TrainExpertParams
from headflow.training.config import LoopConfig


def test_params_yaml_is_the_dataclass_defaults(project_root):
    """params.yaml and the defaults cannot drift apart: a bench, a test or a library caller building
    TrainConfig() / ExpertConfig() gets the expert the stage trains."""
    block = P.load("train_expert", project_root / "params.yaml")
    assert block == TrainExpertParams()
    assert block.model == ExpertConfig() and block.train_config() == TrainConfig()
    assert isinstance(block.loop, LoopConfig) and block.loop.lr_schedule == "cosine"
    assert PUBLISHED_EXPERT != ExpertConfig() and PUBLISHED_EXPERT.width == 1.0 and PUBLISHED_EXPERT.face_input == "rgb"


def test_the_block_is_a_train_config_plus_stage_fields_only():
    config = {f.name for f in dataclasses.fields(TrainConfig)}
    stage = {f.name for f in dataclasses.fields(TrainExpertParams)} - config
    assert stage == {"threads", "eval_shifts", "max_offset", "max_reject_fraction"}
    parsed = from_dict(TrainExpertParams, {"model": {"width": 0.25}, "loop": {"epochs": 3, "batch_size": 8, "lr": 1e-3}},
                       "train_expert")
    assert parsed.model.width == 0.25 and parsed.model.face_centre == "clip" and parsed.loop.epochs == 3


@pytest.mark.parametrize("block, message", [
    ({"model": {"face_input": "colour"}}, "train_expert.model.face_input: expected one of"),
    ({"model": {"face_centre": "window"}}, "face_centre"),
    ({"loop": {"epochs": 1, "batch_size": 8, "lr": 1e-3, "lr_schedule": "step"}}, "lr_schedule"),
    ({"width": 0.25}, "unknown key"),                                   # the old flat layout says where it went
    ({"model": {"widht": 0.25}}, "did you mean 'width'"),
    ({"eval_shifts": [20]}, "max_offset"),
    ({"augment_scale": 1.5}, "augment_scale"),
])
def test_bad_train_expert_params_name_the_key(block, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(TrainExpertParams, block, "train_expert")


def test_expert_choices_are_checked_when_built_directly():
    from headflow.nn.expert import SyncExpert

    with pytest.raises(ValueError, match="face_input"):
        SyncExpert(dataclasses.replace(ExpertConfig(), face_input="colour"))


def test_sync_check_validates_through_the_loader():
    with pytest.raises(ConfigError, match="max_abs_offset"):
        from_dict(SyncCheckParams, {"max_abs_offset": 20}, "sync_check")
