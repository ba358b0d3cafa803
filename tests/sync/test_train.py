"""A tiny expert learns the synthetic sync task; resuming from a checkpoint equals training straight."""

import logging
import math
from dataclasses import replace

import pytest
import torch

from headflow.nn.expert import PUBLISHED_EXPERT, ExpertConfig, SyncExpert
from headflow.sync.train import TrainConfig, load_expert, train_expert
from headflow.training.config import LoopConfig
from synthetic import synthetic_clip

TINY = replace(PUBLISHED_EXPERT, width=0.125, depth=1)   # the published inputs (rgb, no clip centring), tiny


def tiny_config(model: ExpertConfig = TINY, samples_per_epoch: int = 64, val_samples: int = 32, **loop) -> TrainConfig:
    """A small run: constant learning rate 1e-3 after a 50-step warm-up, no mel warp, DVCLive off by the caller."""
    loop = LoopConfig(**{"epochs": 1, "batch_size": 16, "lr": 1e-3, "warmup_steps": 50, **loop})
    return TrainConfig(model=model, loop=loop, samples_per_epoch=samples_per_epoch, val_samples=val_samples,
                       augment_mel_warp=0.0)


def with_loop(cfg: TrainConfig, **loop) -> TrainConfig:
    return replace(cfg, loop=replace(cfg.loop, **loop))


def test_model_shapes_and_unit_embeddings():
    model = SyncExpert(TINY).eval()
    fe, ae = model(torch.rand(3, 15, 48, 96), torch.rand(3, 1, 80, 16))
    assert fe.shape == ae.shape == (3, model.embedding_size)
    assert torch.allclose(fe.norm(dim=1), torch.ones(3), atol=1e-5) and (fe >= 0).all()


@pytest.mark.parametrize("face_input", ["gray_norm", "gray_motion_norm"])
def test_normalised_grey_inputs_ignore_brightness_and_contrast_but_keep_a_still_shape(face_input):
    model = SyncExpert(replace(TINY, face_input=face_input))
    face = torch.rand(2, 15, 48, 96)
    changed = face * 0.8 + 0.15      # brighter and less contrast: the same mouth
    a, b = model.prepare_face(face), model.prepare_face(changed)
    assert (a - b).abs().max() < 0.05 * a.abs().max()     # equal up to the std's small epsilon
    still_open, still_shut = torch.zeros(1, 15, 48, 96), torch.zeros(1, 15, 48, 96)
    still_open[..., 20:30, 30:60] = 1.0      # a mouth held open over the 5 frames vs held shut
    still_shut[..., 24:26, 30:60] = 1.0
    assert not torch.allclose(model.prepare_face(still_open), model.prepare_face(still_shut), atol=0.1)


STAGE_INPUTS = ExpertConfig(width=0.125, depth=1, face_input="gray_motion_norm", audio_input="raw",
                            face_centre="clip", audio_centre="clip")   # the demo's input settings


@pytest.mark.slow
@pytest.mark.parametrize("model", [TINY, STAGE_INPUTS], ids=["rgb", "clip_centred"])
def test_tiny_expert_learns_synthetic_sync_well_above_chance(tmp_path, model):
    train = [synthetic_clip(f"t{i}", 60, i) for i in range(8)]
    val = [synthetic_clip(f"v{i}", 60, 100 + i) for i in range(3)]
    cfg = tiny_config(model, samples_per_epoch=1024, val_samples=512, epochs=6, batch_size=32, lr=2e-3,
                      warmup_steps=20)
    history = train_expert(train, val, cfg, tmp_path, progress=False, live_dir=None)
    print([round(h["val_balanced_accuracy"], 3) for h in history])
    assert history[-1]["val_balanced_accuracy"] > 0.75
    assert history[-1]["train_loss"] < math.log(2) - 0.05
    assert (tmp_path / "best.pt").exists() and (tmp_path / "history.json").exists()
    load_expert(tmp_path / "best.pt")


def test_resume_from_checkpoint_is_equivalent(tmp_path):
    clips = [synthetic_clip(f"t{i}", 30, i) for i in range(3)]
    cfg = tiny_config(epochs=2)
    straight = train_expert(clips, clips, cfg, tmp_path / "a", progress=False, live_dir=None)
    first = train_expert(clips, clips, with_loop(cfg, epochs=1), tmp_path / "b", progress=False, live_dir=None)
    resumed = train_expert(clips, clips, cfg, tmp_path / "b", progress=False, live_dir=None)
    assert len(first) == 1 and len(resumed) == 2
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["networks"]["generator"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["networks"]["generator"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert straight[-1]["train_loss"] == resumed[-1]["train_loss"]


def test_checkpoint_of_other_settings_is_not_resumed(tmp_path):
    clips = [synthetic_clip(f"t{i}", 30, i) for i in range(2)]
    cfg = tiny_config(samples_per_epoch=32, val_samples=16)
    train_expert(clips, clips, cfg, tmp_path, progress=False, live_dir=None)
    other = with_loop(cfg, lr=1e-4, epochs=2)
    history = train_expert(clips, clips, other, tmp_path, progress=False, live_dir=None)
    assert [h["epoch"] for h in history] == [1, 2]     # trained afresh for 2 epochs, not resumed at 1
    wider = replace(cfg, model=replace(TINY, width=0.25), loop=replace(cfg.loop, epochs=3))
    history = train_expert(clips, clips, wider, tmp_path, progress=False, live_dir=None)
    assert [h["epoch"] for h in history] == [1, 2, 3]  # a model setting changed: afresh too


def test_checkpoint_of_other_data_is_not_resumed(tmp_path):
    """dvc keeps data/models/expert between runs (persist): a changed corpus must start afresh."""
    clips = [synthetic_clip(f"t{i}", 30, i) for i in range(2)]
    cfg = tiny_config(samples_per_epoch=32, val_samples=16)
    train_expert(clips, clips, cfg, tmp_path, progress=False, live_dir=None)
    more = with_loop(cfg, epochs=2)
    other = clips + [synthetic_clip("t2", 30, 2)]
    history = train_expert(other, clips, more, tmp_path, progress=False, live_dir=None)
    assert [h["epoch"] for h in history] == [1, 2]     # afresh on the new clips, not resumed at 1
    resumed = train_expert(other, clips, with_loop(cfg, epochs=3), tmp_path, progress=False, live_dir=None)
    assert [h["epoch"] for h in resumed] == [1, 2, 3]  # the same clips do resume


def test_checkpoint_of_the_old_layout_is_refused_with_a_message(tmp_path, caplog):
    """DVC persists data/models/expert: a checkpoint written before the harness must not crash a run."""
    clips = [synthetic_clip(f"t{i}", 30, i) for i in range(2)]
    old = {"model": SyncExpert(TINY).state_dict(), "optimizer": {}, "epoch": 0, "step": 2, "history": [],
           "torch_rng": torch.get_rng_state(), "config": {"model": TINY.__dict__}, "data": "x"}
    torch.save(old, tmp_path / "last.pt")
    with pytest.raises(ValueError, match="retrain"):
        load_expert(tmp_path / "last.pt")
    with caplog.at_level(logging.WARNING, logger="headflow.training"):
        history = train_expert(clips, clips, tiny_config(samples_per_epoch=32, val_samples=16), tmp_path,
                               progress=False, live_dir=None)
    assert [h["epoch"] for h in history] == [1]
    assert any("format 1" in r.getMessage() and "starting afresh" in r.getMessage() for r in caplog.records)
    load_expert(tmp_path / "last.pt")                  # overwritten in the current layout


def test_history_rows_and_dvclive_series(tmp_path):
    clips = [synthetic_clip(f"t{i}", 30, i) for i in range(2)]
    history = train_expert(clips, clips, tiny_config(samples_per_epoch=32, val_samples=16), tmp_path, progress=False)
    row = history[0]
    for key in ("epoch", "step", "train_loss", "sync_bce", "val_loss", "val_balanced_accuracy", "val_tpr",
                "val_tnr", "lr", "samples_per_s", "data_wait_fraction", "prepare_fraction", "stalled"):
        assert key in row, key
    assert row["train_loss"] == row["sync_bce"] and row["step"] == 2     # one term of weight 1; 32 pairs / 16
    assert 0 <= row["val_balanced_accuracy"] <= 1 and row["lr"] == pytest.approx(1e-3 * 2 / 50)  # warm-up
    series = (tmp_path / "dvclive/plots/metrics/sync_bce.tsv").read_text().splitlines()
    assert series[0].split("\t") == ["step", "sync_bce"] and float(series[1].split("\t")[1]) == pytest.approx(row["sync_bce"])
    assert (tmp_path / "dvclive/plots/metrics/val_balanced_accuracy.tsv").is_file()
