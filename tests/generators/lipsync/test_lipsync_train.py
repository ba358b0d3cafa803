"""The lip-sync family's training side: clip indexing with quarantine rows, validation windows,
fingerprints, and the exported generator file."""

from __future__ import annotations

import pytest
import torch

from headflow.generators.lipsync import model, train
from headflow.generators.lipsync.model import LipsyncGenerator
from headflow.generators.lipsync.params import ModelParams, tiny_params


def test_index_clips_turns_unusable_clips_into_quarantine_rows():
    from tests.generators.lipsync.conftest import synthetic_clip

    p = tiny_params()
    good, short = synthetic_clip(30, "good"), synthetic_clip(5, "short")
    indexes, rejected = train.index_clips([good, short], p)
    assert [ix.clip.clip_id for ix in indexes] == ["good"]
    assert len(rejected) == 1 and rejected[0]["clip_id"] == "short" and rejected[0]["stage"] == "train_lipsync"
    assert rejected[0]["reason_code"] == "no_reference_frames" and "clip short" in rejected[0]["message"]


def test_validation_batch_is_fixed():
    from tests.generators.lipsync.conftest import synthetic_clip

    p = tiny_params()
    indexes, _ = train.index_clips([synthetic_clip(30)], p)
    a, b = train.validation_batch(indexes, p), train.validation_batch(indexes, p)
    assert a["faces"].shape == (p.val_windows, 5, 3, 96, 96)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert train.validation_batch([], p) is None


def test_fingerprint_changes_with_the_data():
    from tests.generators.lipsync.conftest import synthetic_clip

    a = synthetic_clip(20)
    fp = train.data_fingerprint([a])
    assert train.data_fingerprint([synthetic_clip(20)]) == fp
    a.mel[3, 3] += 1
    assert train.data_fingerprint([a]) != fp


def test_exported_generator_round_trips_and_refuses_another_width(tmp_path):
    p = tiny_params()
    torch.manual_seed(0)
    g = LipsyncGenerator(p.model).eval()
    sha = model.save_generator(g, p, tmp_path / "generator.pt")
    assert sha == model.file_sha256(tmp_path / "generator.pt")
    loaded, saved = model.load_generator(tmp_path / "generator.pt", p.model)
    x = (torch.rand(5, 3, 96, 96), torch.randn(5, 1, 80, 16), torch.rand(1, 2, 3, 96, 96))
    with torch.no_grad():
        torch.testing.assert_close(loaded(*x).image, g(*x).image)
    assert saved["model"]["width"] == p.model.width
    with pytest.raises(ValueError, match=r"another architecture.*'width': \(0.0625, 0.25\)"):
        model.load_generator(tmp_path / "generator.pt", ModelParams(width=0.25))
    with pytest.raises(FileNotFoundError, match="train_lipsync"):
        model.load_generator(tmp_path / "missing.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a lip-sync generator"):
        model.load_generator(tmp_path / "other.pt")


def _tiny_run(tmp_path, name, epochs, stage2=0, expert=None):
    import dataclasses

    from headflow.losses.perceptual import PerceptualLoss
    from tests.generators.lipsync.conftest import synthetic_clip

    p = tiny_params()
    p = dataclasses.replace(p, loop=dataclasses.replace(p.loop, epochs=epochs), stage2_epochs=stage2)
    clips = [synthetic_clip(30, "a", seed=1), synthetic_clip(30, "b", seed=2), synthetic_clip(5, "short")]
    return train.train_lipsync(clips, [synthetic_clip(25, "v", seed=3)], p, tmp_path / name, expert=expert,
                               expert_sha="0" * 64, perceptual=PerceptualLoss("weight_free"), accelerator="cpu",
                               progress=False)


def test_tiny_two_stage_run_exports_a_generator_and_quarantines_short_clips(tmp_path):
    from tests.generators.lipsync.test_lipsync_losses import tiny_expert

    out = _tiny_run(tmp_path, "run", epochs=1, stage2=1, expert=tiny_expert())
    h1, h2 = out["history"]["stage1"], out["history"]["stage2"]
    assert len(h1) == 1 and len(h2) == 1
    assert {"l1_masked", "perceptual", "mask_bce", "sync", "val_l1_masked", "val_sync"} <= set(h1[0])
    assert {"gan_g", "gan_d", "r1", "d_loss"} <= set(h2[0])
    assert [r["clip_id"] for r in out["quarantine"]] == ["short"]
    g, saved = model.load_generator(out["generator"])
    assert saved["model"]["width"] == tiny_params().model.width
    assert out["generator_sha256"] == model.file_sha256(out["generator"])
    assert (tmp_path / "run" / "stage1" / "last.pt").exists() and (tmp_path / "run" / "stage2" / "last.pt").exists()


def test_resumed_run_equals_an_uninterrupted_one(tmp_path):
    straight = _tiny_run(tmp_path, "straight", epochs=2)
    first = _tiny_run(tmp_path, "resumed", epochs=1)
    resumed = _tiny_run(tmp_path, "resumed", epochs=2)                   # continues from last.pt after epoch 1
    # It did resume: epoch 1's row (wall times included) comes from the checkpoint, not a new run.
    assert resumed["history"]["stage1"][0] == first["history"]["stage1"][0]
    a = torch.load(straight["generator"], weights_only=True)["state_dict"]
    b = torch.load(resumed["generator"], weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_loss_expert_loads_what_the_expert_stage_writes(tmp_path):
    from headflow.nn.expert import ExpertConfig, SyncExpert
    from headflow.sync.train import load_expert, save_expert

    torch.manual_seed(0)
    model = SyncExpert(ExpertConfig(width=0.05, depth=1)).eval()
    save_expert(model, tmp_path / "best.pt")
    ours, theirs = train.load_loss_expert(tmp_path / "best.pt"), load_expert(tmp_path / "best.pt")
    assert not ours.training and not any(p.requires_grad for p in ours.parameters())
    face, mel = torch.rand(2, 15, 48, 96), torch.randn(2, 1, 80, 16)
    with torch.no_grad():
        for a, b in zip(ours(face, mel), theirs(face, mel)):
            torch.testing.assert_close(a, b)
    assert ours.face_centre == theirs.face_centre
    with pytest.raises(FileNotFoundError, match="train_expert"):
        train.load_loss_expert(tmp_path / "missing.pt")
