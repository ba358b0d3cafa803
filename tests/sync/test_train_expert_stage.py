"""The train_expert stage's own reason codes: clips it cannot cut windows from are quarantined, not trained on."""

from __future__ import annotations

import pandas as pd

from headflow.sync.params import TrainExpertParams
from test_sync_check import _project

CLIPS = {"a-000000000a": 40, "b-000000000b": 40, "v-00000000a1": 40, "w-00000000a2": 40,
         "n-000000000f": 40, "m-000000000e": 40}
SPLIT = {"a-000000000a": ("s1", "train"), "b-000000000b": ("s1", "train"), "n-000000000f": ("s1", "train"),
         "m-000000000e": ("s1", "train"), "v-00000000a1": ("s2", "val"), "w-00000000a2": ("s2", "val")}


def test_clips_without_windows_or_with_short_video_are_quarantined(tmp_path, monkeypatch):
    # n: every face frame invalid (no 5 valid consecutive frames); m: the video decodes 30 of 40 frames.
    _project(tmp_path, CLIPS, split=SPLIT, invalid=("n-000000000f",), video_frames={"m-000000000e": 30})
    monkeypatch.chdir(tmp_path)
    from headflow.sync.train_expert import run_stage

    params = TrainExpertParams(width=0.125, epochs=1, samples_per_epoch=32, val_samples=16, batch_size=16,
                               warmup_steps=1, eval_shifts=[3], max_offset=3, threads=1, workers=1)
    metrics = run_stage(params, progress=False)
    quarantine = pd.read_parquet("data/interim/train_expert/quarantine.parquet")
    reasons = dict(zip(quarantine.clip_id, quarantine.reason_code))
    assert reasons == {"n-000000000f": "no_sync_windows", "m-000000000e": "frame_count_mismatch"}
    message = dict(zip(quarantine.clip_id, quarantine.message))
    assert "decoded 30 frames, landmarks cover 40" in message["m-000000000e"]
    assert metrics["train_clips"] == 2 and metrics["held_out_clips"] == 2 and metrics["held_out_speakers"] == ["s2"]
    evaluation = pd.read_parquet("data/interim/train_expert/sync_eval.parquet")
    assert sorted(set(evaluation.clip_id)) == ["v-00000000a1", "w-00000000a2"]
    assert sorted(evaluation.applied_shift.tolist()) == [0, 0, 3, 3]
