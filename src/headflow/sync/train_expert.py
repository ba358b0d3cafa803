"""The train_expert stage: the expert's arrays from the shards, training, held-out evaluation, metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from headflow.catalog import CATALOG
from headflow.manifest import Quarantine, check_accounting, read_manifest
from headflow.stage import finish_quarantine, log, write_json, write_metrics, write_validated
from headflow.sync.data import clip_arrays, window_starts
from headflow.sync.params import TrainExpertParams
from headflow.metrics.lse import ClipTooShort, score_clip, shift_audio
from headflow.sync.train import train_expert
from headflow.training.runtime import distributed_env

STAGE = "train_expert"


EXPERT_TRAIN_SPLITS = ("train", "val")
"""Splits the expert trains on; every other split (test) is its held-out set."""


def run_stage(params: TrainExpertParams, map_fn: Callable | None = None, progress: bool = True,
              shards_dir: Path = CATALOG.folder("shards"),
              out_dir: Path = CATALOG.folder("train_expert"), model_dir: Path = CATALOG.model("train_expert", "expert"),
              metrics_path: Path = CATALOG.metrics("train_expert"),
              plot_path: Path = CATALOG.plot("train_expert", "history")) -> dict:
    """Read the shards (face96 + mel), train, evaluate on held-out speakers. Under torchrun only rank 0
    evaluates. Paths (and those inside the manifests) are relative to the current folder.

    `map_fn` is unused (the shards are read in this process); it keeps the signature Prefect calls.
    """
    from headflow.shards import read_clip

    torch.set_num_threads(params.threads)
    rank, _, world = distributed_env()
    clips = read_manifest(shards_dir / "shards.parquet", "shards")
    t0 = time.perf_counter()
    quarantine = Quarantine(STAGE)
    arrays, split = {}, dict(zip(clips.clip_id, clips.split))
    for clip_id, source in zip(clips.clip_id, clips.source_path):
        arr = clip_arrays(read_clip(clip_id, views=("face96", "mel"), root=shards_dir))
        if len(window_starts(arr)) == 0:
            quarantine.add(clip_id, "no_sync_windows", f"{clip_id}: no 5 valid consecutive face frames with a "
                           "complete mel window", source)
            continue
        arrays[clip_id] = arr
    check_accounting(list(clips.clip_id), list(arrays), [q["clip_id"] for q in quarantine.rows], STAGE)
    shard_s = time.perf_counter() - t0
    # The expert learns from the train and val speakers and is held out on test: generators validate
    # on val (their own selection), the expert's figure stays on speakers it never saw.
    train = [a for c, a in arrays.items() if split[c] in EXPERT_TRAIN_SPLITS]
    held_out = [a for c, a in arrays.items() if split[c] not in EXPERT_TRAIN_SPLITS]
    if not train or not held_out:
        raise RuntimeError(f"train_expert needs clips of both training and held-out speakers; got {len(train)} "
                           f"train and {len(held_out)} held-out (check ingest.split)")
    t1 = time.perf_counter()
    history = train_expert(train, held_out, params, model_dir, progress=progress)
    train_s = time.perf_counter() - t1
    if rank != 0:
        return {}
    from headflow.sync.train import load_expert

    model = load_expert(model_dir / "last.pt")
    evaluation, score_fps = evaluate_offsets(model, held_out, params)
    write_validated(evaluation, out_dir / "sync_eval.parquet", "sync_eval")
    last = history[-1]
    unshifted = evaluation[evaluation.applied_shift == 0]
    shifted = evaluation[evaluation.applied_shift != 0]
    metrics = {
        "train_clips": len(train), "held_out_clips": len(held_out),
        "held_out_speakers": sorted({split_speaker for split_speaker in clips[~clips.split.isin(EXPERT_TRAIN_SPLITS)].speaker_id}),
        "val_balanced_accuracy": round(last["val_balanced_accuracy"], 4), "val_loss": round(last["val_loss"], 4),
        "offset_recovery": round(float((shifted.recovered_offset == shifted.applied_shift).mean()), 4)
        if len(shifted) else None,
        "lse_c_unshifted": round(float(unshifted.lse_c.mean()), 4), "lse_d_unshifted": round(float(unshifted.lse_d.mean()), 4),
        "offset_unshifted_zero": round(float((unshifted.recovered_offset == 0).mean()), 4),
        "train_samples_per_s": round(float(np.mean([h["samples_per_s"] for h in history])), 1),
        "data_wait_fraction": round(float(np.mean([h["data_wait_fraction"] for h in history])), 4),
        "augment_fraction": round(float(np.mean([h["prepare_fraction"] for h in history])), 4),
        "scoring_frames_per_s": round(score_fps, 1), "train_seconds": round(train_s, 1),
        "shard_seconds": round(shard_s, 1), "stall_warning": bool(last["stalled"]),
    }
    write_metrics(metrics_path, metrics)
    write_json([{k: h[k] for k in ("epoch", "train_loss", "val_loss", "val_balanced_accuracy")} for h in history],
               plot_path)
    log.info("expert: held-out balanced accuracy %.3f, offset recovery %s, %.0f samples/s, %.0f s training",
             metrics["val_balanced_accuracy"], metrics["offset_recovery"], metrics["train_samples_per_s"], train_s)
    finish_quarantine(quarantine, out_dir / "quarantine.parquet", len(clips), params.max_reject_fraction)
    return metrics


def evaluate_offsets(model, clips: list, params: TrainExpertParams) -> tuple[pd.DataFrame, float]:
    """Score every held-out clip unshifted and with each of `eval_shifts`; returns rows and frames/s."""
    rows, frames, seconds = [], 0, 0.0
    for clip in clips:
        for shift in [0, *params.eval_shifts]:
            t = time.perf_counter()
            try:
                s = score_clip(model, shift_audio(clip, shift) if shift else clip, params.max_offset)
            except ClipTooShort as err:
                rows.append({"clip_id": clip.clip_id, "applied_shift": shift, "recovered_offset": None,
                             "lse_d": None, "lse_c": None, "note": str(err)})
                continue
            seconds += time.perf_counter() - t
            frames += len(clip.mouths)
            rows.append({"clip_id": clip.clip_id, "applied_shift": shift, "recovered_offset": s.offset,
                         "lse_d": s.lse_d, "lse_c": s.lse_c, "note": None})
    return pd.DataFrame(rows), frames / max(seconds, 1e-9)
