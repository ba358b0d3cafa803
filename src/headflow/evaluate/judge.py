"""The `train_judge` stage: a second lip-sync expert that only the evaluation uses.

Generators are trained against the `train_expert` expert (its sync loss), so they can learn to fool
it; sync is therefore judged by an expert no generator trained against (DESIGN, "Evaluation
contract"). The judge is trained by the very same code (`headflow.sync.train.train_expert`, called
through its public entry point, with `config_from` and `headflow.sync.train_expert.evaluate_offsets`)
on the same clips, with its own params block: another seed, another face input variant
(`gray_norm`) and a smaller width, so it is not a copy of the expert either.

Inputs: ingest's clips (split, speakers), the faces boxes, audio_features' mels. The mouth crops are
cut in memory with `headflow.sync.shards.mouth_crops` (the crop rule training and scoring share) and
not written as shards (they would double the expert's ~100 MB of shards in the DVC cache).
Outputs: `data/models/judge/{last,best}.pt`, `data/interim/train_judge/{sync_eval,quarantine}.parquet`,
`reports/metrics/train_judge.json`, `reports/plots/judge_history.json`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from headflow.evaluate.params import TrainJudgeParams
from headflow.manifest import Quarantine, Rejected, check_accounting, read_manifest
from headflow.parallel import map_jobs
from headflow.stage import finish_quarantine, log, write_json, write_metrics, write_validated

STAGE = "train_judge"
CLIPS = Path("data/interim/ingest/clips.parquet")
FACES = Path("data/interim/faces/faces.parquet")
LANDMARKS = Path("data/interim/faces/landmarks.parquet")
AUDIO = Path("data/interim/audio_features/audio_features.parquet")
OUT = Path("data/interim/train_judge")
MODEL_DIR = Path("data/models/judge")
METRICS = Path("reports/metrics/train_judge.json")
PLOT = Path("reports/plots/judge_history.json")


def _crop_job(args: tuple) -> tuple[str, np.ndarray | None, tuple[str, str] | None]:
    from headflow.sync.shards import mouth_crops

    clip_id, video, boxes, valid = args
    try:
        return clip_id, mouth_crops(Path(video), boxes, valid), None
    except Rejected as rej:
        return clip_id, None, (rej.reason_code, rej.message)


def load_training_clips(clips_path: Path, faces_path: Path, landmarks_path: Path, audio_path: Path,
                        workers: int = 1, map_fn: Callable | None = None, progress: bool = True,
                        ) -> tuple[pd.DataFrame, dict, Quarantine]:
    """Every clip that passed ingest, faces and audio_features as `ClipArrays`, plus the quarantine.

    Returns:
        (clips table, {clip_id: ClipArrays}, quarantine of clips without a usable window).
    """
    from headflow.sync.data import ClipArrays, window_starts

    clips = read_manifest(clips_path, "clips")
    faces = read_manifest(faces_path, "faces")
    audio = read_manifest(audio_path, "audio_features")
    clips = (clips.merge(faces[["clip_id"]], on="clip_id").merge(audio[["clip_id", "mel_path"]], on="clip_id")
             .sort_values("clip_id", ignore_index=True))
    landmarks = read_manifest(landmarks_path, "landmarks")
    by_clip = dict(tuple(landmarks[["clip_id", "frame", "box", "valid"]].groupby("clip_id")))
    jobs = []
    for r in clips.itertuples():
        rows = by_clip[r.clip_id].sort_values("frame")
        jobs.append((r.clip_id, r.video_path, np.stack(rows["box"].to_numpy()).astype(np.float64),
                     rows["valid"].to_numpy(bool)))
    results = map_jobs(_crop_job, jobs, workers, map_fn, desc="judge crops", progress=progress)
    quarantine = Quarantine(STAGE)
    arrays = {}
    info = clips.set_index("clip_id")
    for (clip_id, mouths, rejection), job in zip(results, jobs):
        if rejection:
            quarantine.add(clip_id, *rejection, info.at[clip_id, "source_path"])
            continue
        arr = ClipArrays(clip_id, mouths, np.load(info.at[clip_id, "mel_path"]), job[3], 25.0,
                         info.at[clip_id, "speaker_id"])
        if len(window_starts(arr)) == 0:
            quarantine.add(clip_id, "no_sync_windows", f"{clip_id}: no 5 valid consecutive face frames with a "
                           "complete mel window", info.at[clip_id, "source_path"])
            continue
        arrays[clip_id] = arr
    check_accounting(list(clips.clip_id), list(arrays), [q["clip_id"] for q in quarantine.rows], STAGE)
    return clips, arrays, quarantine


def run_stage(params: TrainJudgeParams, clips_path: Path = CLIPS, faces_path: Path = FACES,
              landmarks_path: Path = LANDMARKS, audio_path: Path = AUDIO, out_dir: Path = OUT,
              model_dir: Path = MODEL_DIR, metrics_path: Path = METRICS, plot_path: Path = PLOT,
              map_fn: Callable | None = None, progress: bool = True) -> dict:
    """Train the judge on the training speakers, evaluate it on the held-out ones, write its outputs.

    Returns:
        The metrics written to `metrics_path` (held-out balanced accuracy, offset recovery, seconds).

    Raises:
        RuntimeError: no clip of the training split or none of the held-out splits.
        headflow.manifest.TooManyRejected: more than `max_reject_fraction` of the clips unusable.
    """
    import torch

    from headflow.sync.train import config_from, load_expert, train_expert
    from headflow.sync.train_expert import evaluate_offsets

    torch.set_num_threads(params.threads)
    t0 = time.perf_counter()
    clips, arrays, quarantine = load_training_clips(clips_path, faces_path, landmarks_path, audio_path,
                                                    params.workers, map_fn, progress)
    crop_s = time.perf_counter() - t0
    split = dict(zip(clips.clip_id, clips.split))
    train = [a for c, a in arrays.items() if split[c] == "train"]
    held_out = [a for c, a in arrays.items() if split[c] != "train"]
    if not train or not held_out:
        raise RuntimeError(f"train_judge needs clips of both training and held-out speakers; got {len(train)} "
                           f"train and {len(held_out)} held-out (check ingest.split)")
    t1 = time.perf_counter()
    history = train_expert(train, held_out, config_from(params), Path(model_dir), progress=progress)
    train_s = time.perf_counter() - t1
    model = load_expert(Path(model_dir) / "last.pt")
    evaluation, score_fps = evaluate_offsets(model, held_out, params)
    write_validated(evaluation, Path(out_dir) / "sync_eval.parquet", "sync_eval")
    last = history[-1]
    shifted = evaluation[evaluation.applied_shift != 0]
    metrics = {
        "train_clips": len(train), "held_out_clips": len(held_out),
        "val_balanced_accuracy": round(last["val_balanced_accuracy"], 4), "val_loss": round(last["val_loss"], 4),
        "offset_recovery": round(float((shifted.recovered_offset == shifted.applied_shift).mean()), 4)
        if len(shifted) else None,
        "width": params.width, "face_input": params.face_input, "seed": params.seed, "epochs": params.epochs,
        "train_samples_per_s": round(float(np.mean([h["samples_per_s"] for h in history])), 1),
        "train_seconds": round(train_s, 1), "crop_seconds": round(crop_s, 1),
        "scoring_frames_per_s": round(score_fps, 1),
    }
    write_metrics(metrics_path, metrics)
    write_json([{k: h[k] for k in ("epoch", "train_loss", "val_loss", "val_balanced_accuracy")} for h in history],
               plot_path)
    log.info("judge: held-out balanced accuracy %.3f, offset recovery %s, %.0f s training",
             metrics["val_balanced_accuracy"], metrics["offset_recovery"], train_s)
    finish_quarantine(quarantine, Path(out_dir) / "quarantine.parquet", len(clips), params.max_reject_fraction)
    return metrics
