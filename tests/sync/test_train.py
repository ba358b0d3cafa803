"""A tiny expert learns the synthetic sync task; resuming from a checkpoint equals training straight."""

import math

import pytest
import torch

from headflow.nn.expert import ExpertConfig, SyncExpert
from headflow.sync.train import TrainConfig, load_expert, train_expert
from synthetic import synthetic_clip

TINY = ExpertConfig(width=0.125, depth=1)


def test_model_shapes_and_unit_embeddings():
    model = SyncExpert(TINY).eval()
    fe, ae = model(torch.rand(3, 15, 48, 96), torch.rand(3, 1, 80, 16))
    assert fe.shape == ae.shape == (3, model.embedding_size)
    assert torch.allclose(fe.norm(dim=1), torch.ones(3), atol=1e-5) and (fe >= 0).all()


@pytest.mark.parametrize("face_input", ["gray_norm", "gray_motion_norm"])
def test_normalised_grey_inputs_ignore_brightness_and_contrast_but_keep_a_still_shape(face_input):
    model = SyncExpert(ExpertConfig(width=0.125, depth=1, face_input=face_input))
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
    cfg = TrainConfig(model=model, epochs=6, samples_per_epoch=1024, val_samples=512, batch_size=32, lr=2e-3,
                      warmup_steps=20)
    history = train_expert(train, val, cfg, tmp_path, progress=False)
    print([round(h["val_balanced_accuracy"], 3) for h in history])
    assert history[-1]["val_balanced_accuracy"] > 0.75
    assert history[-1]["train_loss"] < math.log(2) - 0.05
    assert (tmp_path / "best.pt").exists() and (tmp_path / "history.json").exists()
    load_expert(tmp_path / "best.pt")


def test_resume_from_checkpoint_is_equivalent(tmp_path):
    clips = [synthetic_clip(f"t{i}", 30, i) for i in range(3)]
    cfg = TrainConfig(model=TINY, epochs=2, samples_per_epoch=64, val_samples=32, batch_size=16)
    straight = train_expert(clips, clips, cfg, tmp_path / "a", progress=False)
    first = train_expert(clips, clips, TrainConfig(**{**cfg.__dict__, "epochs": 1}), tmp_path / "b", progress=False)
    resumed = train_expert(clips, clips, cfg, tmp_path / "b", progress=False)
    assert len(first) == 1 and len(resumed) == 2
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert straight[-1]["train_loss"] == resumed[-1]["train_loss"]


def test_checkpoint_of_other_settings_is_not_resumed(tmp_path):
    clips = [synthetic_clip(f"t{i}", 30, i) for i in range(2)]
    cfg = TrainConfig(model=TINY, epochs=1, samples_per_epoch=32, val_samples=16, batch_size=16)
    train_expert(clips, clips, cfg, tmp_path, progress=False)
    other = TrainConfig(**{**cfg.__dict__, "lr": 1e-4, "epochs": 2})
    history = train_expert(clips, clips, other, tmp_path, progress=False)
    assert [h["epoch"] for h in history] == [1, 2]     # trained afresh for 2 epochs, not resumed at 1


def test_checkpoint_of_other_data_is_not_resumed(tmp_path):
    """dvc keeps data/models/expert between runs (persist): a changed corpus must start afresh."""
    clips = [synthetic_clip(f"t{i}", 30, i) for i in range(2)]
    cfg = TrainConfig(model=TINY, epochs=1, samples_per_epoch=32, val_samples=16, batch_size=16)
    train_expert(clips, clips, cfg, tmp_path, progress=False)
    more = TrainConfig(**{**cfg.__dict__, "epochs": 2})
    other = clips + [synthetic_clip("t2", 30, 2)]
    history = train_expert(other, clips, more, tmp_path, progress=False)
    assert [h["epoch"] for h in history] == [1, 2]     # afresh on the new clips, not resumed at 1
    resumed = train_expert(other, clips, TrainConfig(**{**cfg.__dict__, "epochs": 3}), tmp_path, progress=False)
    assert [h["epoch"] for h in resumed] == [1, 2, 3]  # the same clips do resume
