"""The train_expert stage's own reason code: clips it cannot cut windows from are quarantined, not trained on.

Clips whose video and landmarks disagree (`frame_count_mismatch`) are the shards stage's: it
quarantines them (tests/shards/test_shards_stage.py checks the code and message) and train_expert,
which reads only the shards, never sees them.
"""

from __future__ import annotations

import pandas as pd

from headflow.nn.expert_config import ExpertConfig
from headflow.sync.params import TrainExpertParams
from headflow.training.config import LoopConfig

CLIPS = {"a-000000000a": 40, "b-000000000b": 40, "u-00000000a3": 40, "v-00000000a1": 40, "w-00000000a2": 40,
         "n-000000000f": 40, "m-000000000e": 30}
# The expert trains on train + val speakers (EXPERT_TRAIN_SPLITS) and is held out on test.
SPEAKERS = {"a-000000000a": ("s1", "train"), "b-000000000b": ("s1", "train"), "n-000000000f": ("s1", "train"),
            "m-000000000e": ("s1", "train"), "u-00000000a3": ("s3", "val"),
            "v-00000000a1": ("s2", "test"), "w-00000000a2": ("s2", "test")}


def test_clips_without_windows_are_quarantined_and_short_videos_never_reach_the_stage(tmp_path, monkeypatch):
    from shard_project import write_project

    from headflow.shards.params import ShardsParams
    from headflow.shards.stage import run_stage as cut_shards
    from headflow.sync.train_expert import run_stage

    # n: every face frame invalid (no 5 valid consecutive frames); m: the video has 30 frames, its
    # landmarks 40 (the shards stage quarantines it as frame_count_mismatch).
    write_project(tmp_path, CLIPS, invalid={"n-000000000f": list(range(40))},
                  landmark_frames={"m-000000000e": 40}, speakers=SPEAKERS)
    cut_shards(ShardsParams(workers=1), project_root=tmp_path, progress=False)
    shard_quarantine = pd.read_parquet(tmp_path / "data/interim/shards/quarantine.parquet")
    assert dict(zip(shard_quarantine.clip_id, shard_quarantine.reason_code)) == {"m-000000000e": "frame_count_mismatch"}

    monkeypatch.chdir(tmp_path)
    params = TrainExpertParams(model=ExpertConfig(width=0.125, depth=1),
                               loop=LoopConfig(epochs=1, batch_size=16, lr=1e-3, warmup_steps=1),
                               samples_per_epoch=32, val_samples=16, eval_shifts=[3], max_offset=3, threads=1)
    metrics = run_stage(params, progress=False)
    quarantine = pd.read_parquet("data/interim/train_expert/quarantine.parquet")
    reasons = dict(zip(quarantine.clip_id, quarantine.reason_code))
    assert reasons == {"n-000000000f": "no_sync_windows"}
    assert "no 5 valid consecutive face frames" in quarantine.message.iloc[0]
    # a, b (train) and u (val) train; v, w (test, speaker s2) are held out; n is quarantined here, m by shards.
    assert metrics["train_clips"] == 3 and metrics["held_out_clips"] == 2 and metrics["held_out_speakers"] == ["s2"]
    evaluation = pd.read_parquet("data/interim/train_expert/sync_eval.parquet")
    assert sorted(set(evaluation.clip_id)) == ["v-00000000a1", "w-00000000a2"]
    assert sorted(evaluation.applied_shift.tolist()) == [0, 0, 3, 3]
