"""The harness's pure parts: schedule, sampler, stall watch, EMA, R1, checkpoints, sample grids, config."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from torch import nn

from headflow.config import ConfigError, from_dict
from headflow.training.checkpoint import (CHECKPOINT_FORMAT, CheckpointError, Fingerprint, load_checkpoint,
                                          resume_refusal, save_checkpoint, try_resume)
from headflow.training.config import LoopConfig
from headflow.training.ema import EMA
from headflow.training.terms import r1_penalty
from headflow.training.sampler import RankSampler
from headflow.training.samples import image_grid
from headflow.training.schedule import lr_factor
from headflow.training.stall import StallRule, StallWatch


def test_lr_factor_known_values():
    # Warm-up 10 steps: step 0 -> 1/10, step 4 -> 5/10, step 9 and after -> 1 (constant).
    assert [lr_factor(s, 10, 100) for s in (0, 4, 9, 50)] == [0.1, 0.5, 1.0, 1.0]
    # Cosine over steps 10..110 to a floor of 0.05: at the midpoint t = 0.5, 0.05 + 0.95 * 0.5 * (1 + cos(pi/2)) = 0.525;
    # at the end 0.05; at step 10 (t = 0) 1.0.
    assert lr_factor(10, 10, 110, "cosine") == pytest.approx(1.0)
    assert lr_factor(60, 10, 110, "cosine") == pytest.approx(0.525)
    assert lr_factor(110, 10, 110, "cosine") == pytest.approx(0.05)
    assert lr_factor(500, 10, 110, "cosine") == pytest.approx(0.05)           # stays at the floor
    assert lr_factor(4, 10, 110, "cosine") == pytest.approx(0.5)              # warm-up x cosine(t = 0) = 0.5
    # linear_tail, no warm-up, 100 steps, last 20% annealed to 0: full rate through step 80, then 1 - (t - 0.8) / 0.2
    tail = [lr_factor(s, 0, 100, "linear_tail", 0.0, 0.2) for s in (0, 79, 80, 90, 95, 100, 120)]
    assert tail == pytest.approx([1.0, 1.0, 1.0, 0.5, 0.25, 0.0, 0.0])
    assert lr_factor(90, 0, 100, "linear_tail", 0.1, 0.2) == pytest.approx(0.55)   # floor 0.1: 1 - 0.9 * 0.5
    with pytest.raises(ValueError, match="lr_schedule"):
        lr_factor(0, 0, 10, "linear")


def test_rank_sampler_splits_one_permutation_and_repeats_it_per_epoch():
    n, world = 11, 3
    shares = [list(RankSampler(n, seed=5, rank=r, world=world)) for r in range(world)]
    assert sorted(sum(shares, [])) == list(range(n))                          # disjoint, complete, no padding
    assert [len(s) for s in shares] == [len(RankSampler(n, 5, r, world)) for r in range(world)] == [4, 4, 3]
    one = RankSampler(n, seed=5)
    first = list(one)
    one.set_epoch(1)
    assert list(one) != first and sorted(one) == list(range(n))
    one.set_epoch(0)
    assert list(one) == first
    # Rank r's share is every world-th item of the single-process order.
    assert shares[1] == first[1::world]


def test_stall_watch_fires_once_after_warmup_when_the_mean_sits_at_the_value(caplog):
    rule = StallRule(math.log(2), "chance", "try a lower learning rate")
    watch = StallWatch(rule, steps=4, tolerance=0.01, after_step=5)
    fired = [watch.update(s, math.log(2) + 0.001) for s in range(1, 10)]
    # Steps 1-5 are within warm-up; step 6 is the first after it with 4 losses in the window.
    assert fired == [False] * 5 + [True] + [False] * 3
    quiet = StallWatch(rule, steps=4, tolerance=0.01)
    assert not any(quiet.update(s, 0.3) for s in range(1, 20))               # a learning run never fires
    resumed = StallWatch(rule, steps=4, tolerance=0.01)
    resumed.load_state_dict(watch.state_dict())
    assert resumed.fired and list(resumed.recent) == list(watch.recent)
    with caplog.at_level(logging.WARNING, logger="headflow.training"):
        assert StallWatch(rule, steps=1, tolerance=0.01).update(1, 0.69)
    assert "try a lower learning rate" in caplog.text and "chance" in caplog.text


def test_ema_known_answer_and_buffers():
    net = nn.BatchNorm1d(2)
    ema = EMA(net, decay=0.9)
    with torch.no_grad():
        net.weight.fill_(2.0)                       # the EMA copy starts at 1.0
        net.running_mean.fill_(10.0)                # from 0.0
        net.num_batches_tracked.fill_(7)
    ema.update(net)
    # 0.9 * 1 + 0.1 * 2 = 1.1; 0.9 * 0 + 0.1 * 10 = 1.0; integer buffers are copied.
    assert torch.allclose(ema.module.weight, torch.full((2,), 1.1))
    assert torch.allclose(ema.module.running_mean, torch.full((2,), 1.0))
    assert int(ema.module.num_batches_tracked) == 7
    assert not ema.module.training and not ema.module.weight.requires_grad
    with pytest.raises(ValueError, match="ema_decay"):
        EMA(net, 1.0)


def test_r1_penalty_of_a_linear_discriminator_is_the_squared_weight_norm():
    # D(x) = <w, x> has gradient w everywhere, so R1 = ||w||^2 = 1 + 4 + 4 = 9 for every sample.
    w = torch.tensor([1.0, -2.0, 2.0])
    real = torch.randn(5, 3).requires_grad_(True)
    assert r1_penalty(real, real @ w).item() == pytest.approx(9.0)
    with pytest.raises(ValueError, match="require grad"):
        r1_penalty(torch.randn(5, 3), torch.randn(5))


def test_checkpoints_are_atomic_versioned_and_resumed_only_on_equal_settings_and_data(tmp_path, caplog):
    path = tmp_path / "last.pt"
    settings = {"loop": {"epochs": 2, "lr": 1e-3, "betas": (0.9, 0.999)}, "family": {"width": 0.5}}
    save_checkpoint({"settings": settings, "data": "abc", "epoch": 1}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]                # no temporary file left
    assert load_checkpoint(path)["format"] == CHECKPOINT_FORMAT
    longer = {**settings, "loop": {**settings["loop"], "epochs": 5}}
    assert resume_refusal(load_checkpoint(path), longer, "abc", may_change=("loop.epochs",)) is None
    why = resume_refusal(load_checkpoint(path), longer, "abc")
    assert "loop.epochs: 2 -> 5" in why
    assert "other data" in resume_refusal(load_checkpoint(path), settings, "xyz")
    assert try_resume(path, settings, "abc") is not None
    torch.save({"model": {}, "config": {}}, tmp_path / "old.pt")               # the expert's layout before
    with pytest.raises(CheckpointError, match="format 1"):
        load_checkpoint(tmp_path / "old.pt")
    with caplog.at_level(logging.WARNING, logger="headflow.training"):
        assert try_resume(tmp_path / "old.pt", settings, "abc") is None
    assert "starting afresh" in caplog.text


def test_fingerprint_sees_array_content_and_order():
    a, b = np.zeros((2, 3), np.uint8), np.ones((2, 3), np.uint8)
    one = Fingerprint().update("x").update(a).update(b).hexdigest()
    assert one == Fingerprint().update("x").update(a.copy()).update(b).hexdigest()
    assert one != Fingerprint().update("x").update(b).update(a).hexdigest()
    assert one != Fingerprint().update("x").update(a.astype(np.int16)).update(b).hexdigest()   # dtype counts
    assert one != Fingerprint().update("x").update(a).update(None).update(b).hexdigest()


def test_image_grid_layout():
    images = torch.zeros(5, 1, 2, 3)
    images[4] = 1.0
    grid = image_grid(images, nrow=2, pad=1)
    # 3 rows of 2 tiles: height 1 + 3 * (2 + 1) = 10, width 1 + 2 * (3 + 1) = 9; white padding.
    assert grid.shape == (10, 9, 3) and grid.dtype == np.uint8
    assert (grid[1:3, 1:4] == 0).all() and (grid[7:9, 1:4] == 255).all() and grid[0, 0, 0] == 255
    with pytest.raises(ValueError, match="n, 1 or 3"):
        image_grid(torch.zeros(2, 2, 4, 4))


@pytest.mark.parametrize("block, message", [
    ({"epochs": 1, "batch_size": 8, "lr": 1e-3, "lr_schedule": "linear"}, "lr_schedule"),
    ({"epochs": 1, "batch_size": 0, "lr": 1e-3}, "batch_size"),
    ({"epochs": 1, "batch_size": 8, "lr": 1e-3, "ema_decay": 1.0}, "ema_decay"),
    ({"epochs": 1, "batch_size": 8}, "lr: required"),
    ({"epochs": 1, "batch_size": 8, "lr": 1e-3, "warmup": 5}, "warmup_steps"),    # did you mean
])
def test_loop_config_errors_name_the_key(block, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(LoopConfig, block, "loop")
