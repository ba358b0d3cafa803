"""The sync_check stage: decisions per mode, accounting, quarantine codes, shifted mels, manifests."""

from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from headflow.catalog import CATALOG
from headflow.metrics import lse as scoring
from headflow.sync import sync_check as check
from headflow.sync.sync_check import decide, run_stage
from headflow.sync.params import SyncCheckParams
from headflow.nn.expert import PUBLISHED_EXPERT, SyncExpert
from headflow.sync.train import save_expert


@pytest.mark.parametrize("mode, offset, lse_c, expected", [
    ("report", 0, 0.5, ("keep", 0, None)),
    ("report", 6, 0.5, ("keep", 0, "sync_offset")),
    ("report", 0, 0.01, ("keep", 0, "sync_low_confidence")),
    ("drop", 2, 0.5, ("keep", 0, None)),          # |offset| == k is tolerated
    ("drop", -3, 0.5, ("drop", 0, "sync_offset")),
    ("drop", 0, 0.01, ("drop", 0, "sync_low_confidence")),
    ("shift", 6, 0.5, ("shift", -6, "sync_offset")),
    ("shift", -4, 0.5, ("shift", 4, "sync_offset")),
    ("shift", 6, 0.01, ("drop", 0, "sync_low_confidence")),   # an untrusted offset is never applied
    ("shift", 15, 0.5, ("drop", 0, "sync_offset")),           # on the scan's edge: true offset unknown
])
def test_decide(mode, offset, lse_c, expected):
    p = SyncCheckParams(mode=mode, max_abs_offset=2, min_confidence=0.1)
    assert tuple(asdict(decide(offset, lse_c, p)).values()) == expected


def test_unscorable_clips_are_dropped_only_outside_report_mode():
    assert decide(None, None, SyncCheckParams(mode="report"), "too_short_for_sync").action == "keep"
    assert decide(None, None, SyncCheckParams(mode="drop"), "too_short_for_sync").action == "drop"
    assert decide(None, None, SyncCheckParams(mode="shift", drop_unscorable=False), "too_short_for_sync").action == "keep"


def _project(root: Path, n_frames: dict[str, int]) -> None:
    """A minimal project: tiny videos, faces and audio_features manifests, their shards and an (untrained) expert."""
    from shard_project import write_project

    from headflow.shards.params import ShardsParams
    from headflow.shards.stage import run_stage as cut_shards

    write_project(root, n_frames)
    cut_shards(ShardsParams(workers=1), project_root=root, progress=False)
    cfg = replace(PUBLISHED_EXPERT, width=0.125, depth=1)
    torch.manual_seed(0)
    ckpt = root / "data/models/expert/last.pt"
    ckpt.parent.mkdir(parents=True)
    save_expert(SyncExpert(cfg), ckpt)


IDS = {"a-000000000a": 50, "b-000000000b": 50, "c-000000000c": 50, "short-0000000001": 12}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("sync_check")
    _project(root, IDS)
    return root


def test_report_mode_scores_every_clip_with_the_real_expert_and_keeps_all(project, monkeypatch):
    monkeypatch.chdir(project)
    metrics = run_stage(SyncCheckParams(max_offset=5), progress=False)
    scores = pd.read_parquet("data/interim/sync_check/scores.parquet")
    clips = pd.read_parquet("data/interim/sync_check/clips.parquet")
    assert list(scores.clip_id) == sorted(IDS) and list(clips.clip_id) == sorted(IDS)
    short = scores.set_index("clip_id").loc["short-0000000001"]
    assert short.reason == "too_short_for_sync" and short.action == "keep" and pd.isna(short.offset)
    scored = scores[scores.offset.notna()].set_index("clip_id")
    assert len(scored) == 3
    # The stage records what the scorer says about each clip (offset, LSE-D, LSE-C, windows), cut from
    # the clip's shard (face96's lower half and the mel) with the same checkpoint: recomputed here with
    # read_clip + clip_arrays and score_clip directly.
    from headflow.shards import read_clip
    from headflow.sync.data import clip_arrays
    from headflow.sync.train import load_expert

    model = load_expert(project / "data/models/expert/last.pt")
    for clip_id, row in scored.iterrows():
        clip = clip_arrays(read_clip(clip_id, views=("face96", "mel"), root="data/interim/shards",
                                     project_root=project))
        assert clip.mouths.shape == (IDS[clip_id], 48, 96, 3) and clip.valid.all(), clip_id
        np.testing.assert_array_equal(clip.mel, np.load(project / f"data/interim/audio_features/mel/{clip_id}.npy"))
        want = scoring.score_clip(model, clip, max_offset=5)
        assert (row.offset, row.n_windows) == (want.offset, IDS[clip_id] - 4), clip_id
        np.testing.assert_allclose([row.lse_d, row.lse_c], [want.lse_d, want.lse_c], rtol=1e-5, err_msg=clip_id)
    assert (scores.audio_shift_frames == 0).all() and scores.mel_path.str.startswith("data/interim/audio_features").all()
    assert metrics["clips"] == 4 and metrics["scored"] == 3 and metrics["dropped"] == 0
    assert sum(metrics["offset_histogram"].values()) == 3 and metrics["scoring_frames_per_s"] > 0
    assert len(pd.read_parquet("data/interim/sync_check/quarantine.parquet")) == 0


def _fake_scores(monkeypatch, offsets: dict[str, tuple[int, float]]):
    """Scores by clip id (the expert's accuracy is not under test here); the short clip really is too short."""
    real = scoring.score_clip

    def fake(model, clip, max_offset=15, min_pairs=5, device="cpu"):
        if clip.clip_id not in offsets:
            return real(model, clip, max_offset, min_pairs)
        off, conf = offsets[clip.clip_id]
        dist = np.full(2 * max_offset + 1, 1.0)
        dist[off + max_offset] = 1.0 - conf
        return scoring.score_distances(dist, len(clip.mouths) - 4, max_offset)

    monkeypatch.setattr(scoring, "score_clip", fake)


@pytest.mark.parametrize("mode", ["drop", "shift"])
def test_drop_and_shift_modes_quarantine_and_correct(project, monkeypatch, mode):
    monkeypatch.chdir(project)
    _fake_scores(monkeypatch, {"a-000000000a": (0, 0.5), "b-000000000b": (4, 0.5), "c-000000000c": (0, 0.01)})
    params = SyncCheckParams(mode=mode, max_offset=5, max_abs_offset=1, min_confidence=0.1, max_reject_fraction=0.9,
                             min_length_s=0.0)   # these synthetic clips are ~1-2 s: trust their offsets
    metrics = run_stage(params, progress=False)
    scores = pd.read_parquet("data/interim/sync_check/scores.parquet").set_index("clip_id")
    clips = pd.read_parquet("data/interim/sync_check/clips.parquet")
    quarantine = pd.read_parquet("data/interim/sync_check/quarantine.parquet")
    reasons = dict(zip(quarantine.clip_id, quarantine.reason_code))
    assert len(clips) + len(quarantine) == len(IDS)                  # rows in = out + quarantined
    assert set(clips.clip_id).isdisjoint(reasons)
    assert reasons["c-000000000c"] == "sync_low_confidence" and reasons["short-0000000001"] == "too_short_for_sync"
    assert scores.loc["a-000000000a", "action"] == "keep"
    shifted_mel = Path("data/interim/sync_check/mel/b-000000000b.npy")
    if mode == "drop":
        assert reasons["b-000000000b"] == "sync_offset" and not shifted_mel.exists()
        assert metrics["dropped"] == 3 and metrics["shifted"] == 0
    else:
        b = scores.loc["b-000000000b"]
        assert b.action == "shift" and b.audio_shift_frames == -4 and b.mel_path == shifted_mel.as_posix()
        original = np.load(project / "data/interim/audio_features/mel/b-000000000b.npy")
        shifted = np.load(shifted_mel)
        n = round(4 * 80 / 25)                                        # 4 frames = 13 mel frames, advanced
        np.testing.assert_array_equal(shifted[:-n], original[n:])
        assert (shifted[-n:] == original.min()).all()
        assert metrics["dropped"] == 2 and metrics["shifted"] == 1
    # decisions.parquet: every clip, keep (kept or shifted) or drop, what the training join reads
    decisions = pd.read_parquet("data/interim/sync_check/decisions.parquet").set_index("clip_id")
    assert list(decisions.index) == sorted(IDS)
    assert set(decisions.index[decisions.decision == "keep"]) == set(clips.clip_id)
    assert set(decisions.index[decisions.decision == "drop"]) == set(reasons)
    assert (decisions.mel_path == scores.mel_path).all() and (decisions.reason.fillna("") == scores.reason.fillna("")).all()
    training = CATALOG.training_clips()
    assert list(training.clip_id) == sorted(clips.clip_id)
    assert list(training.mel_path) == list(clips.sort_values("clip_id").mel_path)


def test_runs_on_another_project_root_without_changing_folder(project, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                              # nothing of the project here
    metrics = run_stage(SyncCheckParams(enabled=False), progress=False, project_root=project,
                        out_dir=Path("elsewhere/sync"), metrics_path=Path("elsewhere/sync.json"))
    decisions = pd.read_parquet(project / "elsewhere/sync/decisions.parquet")
    assert list(decisions.clip_id) == sorted(IDS) and (decisions.decision == "keep").all()
    assert (decisions.reason == "disabled").all() and metrics["clips"] == len(IDS)
    assert (project / "elsewhere/sync.json").is_file() and not (tmp_path / "elsewhere").exists()


def test_missing_expert_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="dvc repro train_expert"):
        check.resolve_expert("trained", tmp_path)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        check.resolve_expert("nope.pt", tmp_path)


def test_short_clips_are_never_shifted_or_dropped_on_their_offset():
    # min_length_s 2.4: a 1.2 s clip (30 frames) off by 7 frames with high confidence is flagged, kept unshifted
    for mode in ("report", "drop", "shift"):
        p = SyncCheckParams(mode=mode, max_abs_offset=2, min_length_s=2.4)
        assert asdict(decide(7, 0.9, p, length_s=1.2)) == {"action": "keep", "audio_shift_frames": 0,
                                                          "reason": "sync_offset_short"}
    # at or above the length the offset acts again; low confidence still drops short clips (not the offset)
    assert decide(7, 0.9, SyncCheckParams(mode="shift", min_length_s=2.4), length_s=2.4).action == "shift"
    assert decide(0, 0.01, SyncCheckParams(mode="drop", min_confidence=0.1, min_length_s=2.4),
                  length_s=1.2).reason == "sync_low_confidence"
    # 0 trusts every offset
    assert decide(7, 0.9, SyncCheckParams(mode="drop", min_length_s=0.0), length_s=1.2).action == "drop"


def test_stage_keeps_a_short_clip_whose_offset_it_cannot_trust(project, monkeypatch):
    # the fixture's clips are 50 frames = 2.0 s, under the default min_length_s (2.6 s, bench/sync_length.py)
    monkeypatch.chdir(project)
    _fake_scores(monkeypatch, {"a-000000000a": (0, 0.5), "b-000000000b": (4, 0.5), "c-000000000c": (0, 0.5)})
    params = SyncCheckParams(mode="shift", max_offset=5, max_abs_offset=1, max_reject_fraction=0.9)
    assert params.min_length_s > 2.0
    metrics = run_stage(params, progress=False)
    b = pd.read_parquet("data/interim/sync_check/scores.parquet").set_index("clip_id").loc["b-000000000b"]
    assert (b.action, b.audio_shift_frames, b.reason, b.offset) == ("keep", 0, "sync_offset_short", 4)
    assert not Path("data/interim/sync_check/mel/b-000000000b.npy").exists() and metrics["shifted"] == 0
