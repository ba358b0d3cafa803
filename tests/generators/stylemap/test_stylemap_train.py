"""Training the stylemap family: a resumed run equals an uninterrupted one; clips without poses are quarantined."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from headflow.generators.stylemap.model import load_generator
from headflow.generators.stylemap.params import tiny_params
from headflow.generators.stylemap.train import train_stylemap, usable_clips
from headflow.losses.perceptual import PerceptualLoss
from tests.generators.stylemap.conftest import synthetic_clip


def _run(params, out_dir):
    size = params.model.image_size
    clips = [synthetic_clip(10, "a", size, seed=1), synthetic_clip(10, "b", size, seed=2)]
    return train_stylemap(clips, [synthetic_clip(5, "v", size, seed=3)], params, out_dir,
                          perceptual=PerceptualLoss("weight_free"), accelerator="cpu", progress=False)


@pytest.mark.slow
def test_resumed_training_equals_uninterrupted(tmp_path):
    two = dataclasses.replace(tiny_params(), loop=dataclasses.replace(tiny_params().loop, epochs=2))
    one = tiny_params()                                  # epochs 1; loop.epochs may change on resume
    _run(one, tmp_path / "resumed")
    resumed = _run(two, tmp_path / "resumed")
    straight = _run(two, tmp_path / "straight")
    assert [r["step"] for r in resumed["history"]] == [2, 4]
    a, _ = load_generator(resumed["generator"])
    b, _ = load_generator(straight["generator"])
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k


def test_clips_without_fitted_poses_are_quarantined():
    good = synthetic_clip(4, "g")
    bad = synthetic_clip(4, "x", valid=np.zeros(4, bool))
    ok, rejected = usable_clips([good, bad])
    assert [c.clip_id for c in ok] == ["g"]
    assert rejected[0]["clip_id"] == "x" and rejected[0]["reason_code"] == "no_fitted_pose"
