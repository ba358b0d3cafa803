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


@pytest.mark.quality   # ~3 min on 2 cores (both variants): `make quality`
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


@pytest.mark.slow
def test_trained_expert_recovers_offsets_through_score_clip(tmp_path):
    """Two short epochs on the synthetic task (held-out balanced accuracy 0.79 when measured), then the
    public scorer finds known audio shifts of an unseen clip; the same network untrained does not."""
    from headflow.metrics.lse import score_clip, shift_audio

    train = [synthetic_clip(f"t{i}", 60, i) for i in range(6)]
    val = [synthetic_clip(f"v{i}", 60, 100 + i) for i in range(2)]
    cfg = with_loop(TrainConfig(model=STAGE_INPUTS, samples_per_epoch=512, val_samples=128), epochs=2, batch_size=32,
                    lr=2e-3, warmup_steps=10)
    clip = synthetic_clip("unseen", 120, 300)

    def offsets(expert):
        return {shift: score_clip(expert, shift_audio(clip, shift), max_offset=8).offset for shift in (-4, 0, 4)}

    torch.manual_seed(cfg.loop.seed)
    untrained = offsets(SyncExpert(STAGE_INPUTS).eval())
    history = train_expert(train, val, cfg, tmp_path, progress=False)
    found = offsets(load_expert(tmp_path / "last.pt"))
    print(f"held-out balanced accuracy {history[-1]['val_balanced_accuracy']:.3f}; offsets found {found}, "
          f"untrained {untrained}")
    assert found == {-4: -4, 0: 0, 4: 4}
    assert untrained != found


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


def test_an_ema_run_exports_the_network_its_history_scored(tmp_path):
    """With ema_decay > 0 the harness evaluates the EMA copy; load_expert must return that copy, not the raw
    weights (which differ after any step with decay > 0), so its held-out figure equals the history's."""
    from headflow.sync.data import SyncPairs, prepare_clip
    from headflow.sync.train import evaluate

    clips = [synthetic_clip(f"t{i}", 40, i) for i in range(3)]
    cfg = tiny_config(samples_per_epoch=64, val_samples=64, ema_decay=0.9)
    history = train_expert(clips, clips, cfg, tmp_path, progress=False, live_dir=None)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    raw, ema = state["networks"]["generator"], state["ema"]
    assert any(not torch.equal(raw[k], ema[k]) for k in raw if raw[k].is_floating_point())
    loaded = load_expert(tmp_path / "last.pt").state_dict()
    assert all(torch.equal(loaded[k], ema[k]) for k in ema)
    model = load_expert(tmp_path / "last.pt")
    pairs = SyncPairs([prepare_clip(model, c) for c in clips], 64, cfg.loop.seed + 1, cfg.min_shift,
                      cfg.other_clip_fraction)                # the validation pairs, as train_expert draws them
    assert evaluate(model, pairs, 16)["loss"] == pytest.approx(history[-1]["val_loss"], rel=1e-5)


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


class _FixedProbabilities(torch.nn.Module):
    """A stand-in expert whose P(sync) for each pair is the value stored in the pair's mel: face
    embedding (1, 0), audio embedding (p, sqrt(1 - p^2)), so their cosine similarity is p."""

    def forward(self, face, mel):
        p = mel[:, 0, 0, 0]
        return torch.stack([torch.ones_like(p), torch.zeros_like(p)], 1), torch.stack([p, (1 - p ** 2).sqrt()], 1)


def test_evaluate_balanced_accuracy_on_known_predictions():
    from headflow.sync.train import evaluate

    # 4 in-sync pairs, 3 called in sync (p > 0.5): TPR 3/4. 6 out-of-sync pairs, 4 called out (p <= 0.5):
    # TNR 4/6. Balanced accuracy = (0.75 + 0.6667) / 2 = 0.7083; plain accuracy would be 7/10 = 0.7.
    probs = [0.9, 0.8, 0.3, 0.7] + [0.1, 0.6, 0.2, 0.4, 0.45, 0.55]
    labels = [1.0] * 4 + [0.0] * 6
    data = [(torch.zeros(1), torch.full((1, 1, 1), p), torch.tensor(y)) for p, y in zip(probs, labels)]
    out = evaluate(_FixedProbabilities(), data, batch_size=3, device="cpu")
    assert out["tpr"] == pytest.approx(3 / 4) and out["tnr"] == pytest.approx(4 / 6)
    assert out["balanced_accuracy"] == pytest.approx((3 / 4 + 4 / 6) / 2)
    bce = -sum(math.log(p) if y else math.log(1 - p) for p, y in zip(probs, labels)) / len(probs)
    assert out["loss"] == pytest.approx(bce, rel=1e-5)
    # Unbalanced classes: calling everything "in sync" is right on 9 of 10 pairs, balanced accuracy 0.5.
    skewed = [(torch.zeros(1), torch.full((1, 1, 1), 0.9), torch.tensor(1.0 if i else 0.0)) for i in range(10)]
    skewed_out = evaluate(_FixedProbabilities(), skewed, batch_size=4, device="cpu")
    assert skewed_out["balanced_accuracy"] == pytest.approx(0.5)


def test_evaluate_breaks_balanced_accuracy_down_by_group():
    from headflow.sync.train import evaluate

    # Group "a": in-sync 0.9, 0.3 (TPR 1/2), out 0.1 (TNR 1) -> 0.75. Group "b": in-sync 0.8 (TPR 1), out
    # 0.6, 0.2 (TNR 1/2) -> 0.75. The pair labelled None counts overall only. Overall: in-sync 0.9, 0.3,
    # 0.8, 0.7 (TPR 3/4), out 0.1, 0.6, 0.2 (TNR 2/3).
    probs = [0.9, 0.3, 0.1, 0.8, 0.6, 0.2, 0.7]
    labels = [1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0]
    groups = ["a", "a", "a", "b", "b", "b", None]
    data = [(torch.zeros(1), torch.full((1, 1, 1), p), torch.tensor(y)) for p, y in zip(probs, labels)]
    out = evaluate(_FixedProbabilities(), data, batch_size=3, device="cpu", groups=groups)
    assert out["balanced_accuracy"] == pytest.approx((3 / 4 + 2 / 3) / 2)
    assert set(out) == {"loss", "balanced_accuracy", "tpr", "tnr", "by_group"}   # the history's fields + the breakdown
    assert set(out["by_group"]) == {"a", "b"}
    a, b = out["by_group"]["a"], out["by_group"]["b"]
    assert (a["tpr"], a["tnr"], a["n_pos"], a["n_neg"]) == (pytest.approx(0.5), 1, 2, 1)
    assert (b["tpr"], b["tnr"], b["n_pos"], b["n_neg"]) == (1, pytest.approx(0.5), 1, 2)
    assert a["balanced_accuracy"] == pytest.approx(0.75) and b["balanced_accuracy"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="one label per pair"):
        evaluate(_FixedProbabilities(), data, batch_size=3, device="cpu", groups=groups[:-1])


class _LeftColumn(torch.nn.Module):
    """A stand-in expert whose P(sync) is the face window's first (leftmost) column value."""

    def forward(self, face, mel):
        p = face[:, 0, 0, 0]
        return torch.stack([torch.ones_like(p), torch.zeros_like(p)], 1), torch.stack([p, (1 - p ** 2).sqrt()], 1)


def test_evaluate_mirror_averages_the_window_and_its_mirror_image():
    from headflow.sync.train import evaluate

    # Faces of width 2: (left, right). Plain P = left: 0.9, 0.8 (both called in sync), 0.2 (called out).
    # Mirrored P = right; averaged: (0.9 + 0.3) / 2 = 0.6 (in), (0.8 + 0.0) / 2 = 0.4 (out), (0.2 + 0.9) / 2
    # = 0.55 (in). Labels 1, 1, 0: plain TPR 1, TNR 1; mirror TPR 1/2, TNR 0.
    cols = [(0.9, 0.3), (0.8, 0.0), (0.2, 0.9)]
    data = [(torch.tensor([[[l, r]]]), torch.zeros(1, 1, 1), torch.tensor(y)) for (l, r), y in zip(cols, [1.0, 1.0, 0.0])]
    plain = evaluate(_LeftColumn(), data, batch_size=2, device="cpu")
    assert plain["tpr"] == 1 and plain["tnr"] == 1
    mirrored = evaluate(_LeftColumn(), data, batch_size=2, device="cpu", mirror=True)
    assert mirrored["tpr"] == pytest.approx(0.5) and mirrored["tnr"] == 0
    bce = -(math.log(0.6) + math.log(0.4) + math.log(1 - 0.55)) / 3
    assert mirrored["loss"] == pytest.approx(bce, rel=1e-5)


@pytest.mark.parametrize("n, world", [(10, 1), (10, 3), (11, 4), (3, 4)])
def test_rank_sampler_splits_one_permutation_across_ranks(n, world):
    from headflow.training.sampler import RankSampler

    def order(rank, epoch):
        s = RankSampler(n, seed=7, rank=rank, world=world)
        s.set_epoch(epoch)
        out = list(s)
        assert len(out) == len(s)
        return out

    for epoch in (0, 1):
        parts = [order(r, epoch) for r in range(world)]
        single = RankSampler(n, seed=7)                        # one process: the whole permutation
        single.set_epoch(epoch)
        single = list(single)
        # Disjoint, together every index once, and rank r takes positions r, r + world, ... of the
        # single-process permutation (so a DDP run sees the same samples as one process).
        flat = [i for p in parts for i in p]
        assert sorted(flat) == list(range(n)) and len(set(flat)) == n
        for r, p in enumerate(parts):
            assert p == single[r::world]
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    if n > 3:
        assert order(0, 0) != order(0, 1)                       # reshuffled every epoch
        assert order(0, 0) == order(0, 0)                       # seeded


def test_stall_warning_fires_only_when_the_loss_sits_at_ln2(tmp_path, caplog):
    """One epoch of 4 steps with stall_steps 4: the watch sees exactly the epoch's losses, so it must
    fire iff |train_loss - ln 2| < stall_tolerance. The tolerance is set just either side of that gap."""
    import logging

    clips = [synthetic_clip(f"t{i}", 30, i) for i in range(2)]
    base = replace(tiny_config(samples_per_epoch=64, val_samples=16, epochs=1, batch_size=16, warmup_steps=0,
                               stall_steps=4), augment=False)
    first = train_expert(clips, clips, with_loop(base, stall_tolerance=1e-9), tmp_path / "a", progress=False,
                         live_dir=None)
    gap = abs(first[-1]["train_loss"] - math.log(2))
    assert not first[-1]["stalled"]
    # The harness's stall watch (headflow.training.stall) logs on "headflow.training".
    with caplog.at_level(logging.WARNING, logger="headflow.training"):
        near = train_expert(clips, clips, with_loop(base, stall_tolerance=gap * 1.01 + 1e-6), tmp_path / "b",
                            progress=False, live_dir=None)
        far = train_expert(clips, clips, with_loop(base, stall_tolerance=gap * 0.99), tmp_path / "c",
                           progress=False, live_dir=None)
    assert near[-1]["train_loss"] == far[-1]["train_loss"] == first[-1]["train_loss"]   # same seeded run
    assert near[-1]["stalled"] and not far[-1]["stalled"]
    warnings = [r.getMessage() for r in caplog.records if "stalled" in r.getMessage()]
    assert len(warnings) == 1 and "ln 2" in warnings[0] and "learning rate" in warnings[0]


def test_bench_scores_a_checkpoint_on_the_pairs_training_scored(tmp_path):
    """bench/expert.py --checkpoint: its "own pairs" figure is the run's last validation figure (same pairs,
    same model), and the mirror-averaged figure is evaluate(mirror=True) on them."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("bench_expert", Path(__file__).resolve().parents[2] / "bench/expert.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    clips = [synthetic_clip(f"t{i}", 30, i, speaker="s") for i in range(3)]
    history = train_expert(clips, clips, tiny_config(samples_per_epoch=32, val_samples=16, seed=3), tmp_path,
                           progress=False, live_dir=None)
    rows = bench.score_checkpoints([tmp_path / "last.pt", tmp_path / "last.pt"], clips, batch_size=8, common_pairs=24)
    assert rows[0]["seed"] == 3 and rows[0] == rows[1]
    assert rows[0]["own"] == pytest.approx(history[-1]["val_balanced_accuracy"])
    for key in ("own_mirror", "common", "common_mirror"):
        assert 0 <= rows[0][key] <= 1
