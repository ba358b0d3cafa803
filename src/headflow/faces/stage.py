"""The faces stage: every ingested clip -> a face track row, per-frame landmarks, a crop video.

Reads `data/interim/ingest/clips.parquet`; writes under `data/interim/faces/`:
    faces.parquet       one row per accepted clip (detection rate, tracks, face size, jitter, timings)
    landmarks.parquet   one row per frame of accepted clips (box, 68 landmarks, valid, score, transform)
    crops/<clip_id>.mp4 the 256x256 aligned crop video (mouth/<clip_id>.mp4 too with crop.mouth_video)
    quarantine.parquet  rejected clips with reason codes
DVC (`stages/faces.py`) and Prefect (`pipelines/preprocess.py`) both call `run_stage`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from headflow.catalog import CATALOG
from headflow.faces.faces import ClipFaces
from headflow.faces.params import FacesParams
from headflow.faces.worker import ClipJob, faces_for_clip, init_worker
from headflow.manifest import Quarantine, check_accounting, read_manifest
from headflow.manifest.schemas import schema_for
from headflow.stage import Timer, finish_quarantine, log, validated_writer, write_metrics, write_validated

STAGE = "faces"
REASON_CODES = ("no_face", "face_too_small", "ambiguous_speaker", "shot_cut", "low_detection_rate",
                "face_out_of_frame", "crop_outside_frame", "unreadable")


@dataclass(frozen=True)
class FacesResult:
    faces: pd.DataFrame
    landmarks: pa.Table | None
    """landmarks.parquet rows; None when `run_faces` wrote them to its `landmarks_path`."""
    quarantine: Quarantine
    n_inputs: int
    shot_cuts: dict[str, list[int]] | None = None
    """Accepted clips with shot cuts: clip_id -> the frames that start a new shot."""
    crop_outside: dict[str, float] | None = None
    """Accepted clip -> median fraction of its aligned crop outside the source frame."""


def frame_table(clip_id: str, r: ClipFaces) -> pa.Table:
    """The landmarks.parquet rows of one clip."""
    T = len(r.valid)
    lm = r.landmarks.reshape(T, 136)
    raw = r.landmarks_raw.reshape(T, 136)
    mask = pa.array(~r.valid)   # invalid frames: null landmarks (never -1 or a copied frame)

    def fixed(values: np.ndarray, n: int, dtype: pa.DataType, null_mask=None) -> pa.Array:
        arr = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), type=dtype), n)
        if null_mask is None:
            return arr
        return pa.FixedSizeListArray.from_arrays(arr.values, n, mask=null_mask)

    cols = {
        "clip_id": pa.array([clip_id] * T, pa.string()),
        "frame": pa.array(np.arange(T, dtype=np.int32)),
        "valid": pa.array(r.valid),
        "detected": pa.array(r.detected),
        "score": pa.array(r.score, pa.float32(), from_pandas=True),
        "box": fixed(r.boxes.astype(np.float32), 4, pa.float32()),
        "landmarks": fixed(np.nan_to_num(lm).astype(np.float32), 136, pa.float32(), mask),
        "landmarks_raw": fixed(np.nan_to_num(raw).astype(np.float32), 136, pa.float32(), mask),
        "crop_transform": fixed(r.transforms.reshape(T, 6), 6, pa.float64()),
        "crop_outside": pa.array(r.crop_outside if r.crop_outside is not None else np.full(T, np.nan, np.float32),
                                 pa.float32(), from_pandas=True),
    }
    return pa.table(cols).cast(schema_for("landmarks"))


def run_faces(params: FacesParams, clips_path: Path, out_dir: Path, project_root: Path | None = None,
              map_fn: Callable | None = None, progress: bool = True,
              landmarks_path: Path | None = None) -> FacesResult:
    """Process every clip of `clips_path`; crop videos are written, manifests returned.

    Clips are processed in clip_id order and each clip's result is dropped once its rows are taken,
    so memory holds one clip's arrays (a few more with workers) plus, with `landmarks_path`, one
    batch of landmarks rows (`headflow.stage.validated_writer`): landmarks.parquet is validated and
    written batch by batch as clips finish, atomically at the end, and `FacesResult.landmarks` is
    None. Without it the landmarks table is built in memory and returned (~1.3 KB per frame).
    """
    project_root = project_root or Path.cwd()
    clips = read_manifest(clips_path, "clips")
    crops_dir, mouth_dir = out_dir / "crops", out_dir / "mouth"
    crops_dir.mkdir(parents=True, exist_ok=True)
    if params.crop.mouth_video:
        mouth_dir.mkdir(parents=True, exist_ok=True)
    jobs = sorted((ClipJob(c.clip_id, c.source_path, str(project_root / c.video_path), str(crops_dir / f"{c.clip_id}.mp4"),
                           str(mouth_dir / f"{c.clip_id}.mp4") if params.crop.mouth_video else None, float(c.fps), params)
                   for c in clips.itertuples()), key=lambda j: j.clip_id)
    quarantine = Quarantine(STAGE)
    rows, tables = [], []
    cuts: dict[str, list[int]] = {}
    outside: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        if map_fn is None and params.workers > 1 and len(jobs) > 1:
            # forkserver, not fork: a parent that already ran OpenCV (its thread pool) deadlocks forked children.
            ctx = multiprocessing.get_context("forkserver")
            # The server would import __main__ by default (the stage entry point pulls in pandas and
            # great-expectations, ~2.5 s, before any worker starts); workers need only this module.
            ctx.set_forkserver_preload(["headflow.faces.worker"])
            pool = stack.enter_context(ProcessPoolExecutor(params.workers, mp_context=ctx, initializer=init_worker))
            results = pool.map(faces_for_clip, jobs)
        else:
            results = (map_fn or map)(faces_for_clip, jobs)
        sink = (stack.enter_context(validated_writer(landmarks_path, "landmarks", sorted_by="clip_id"))
                if landmarks_path is not None else None)
        for job, (clip_id, res, rejection) in tqdm(zip(jobs, results), total=len(jobs), desc="faces",
                                                   disable=not progress):
            if res is None:
                quarantine.add(clip_id, rejection[0], rejection[1], job.source_path)
                continue
            outside[clip_id] = float(res.summary.get("crop_outside_median", 0.0))
            if res.summary.get("shot_cuts"):
                cuts[clip_id] = list(res.summary["shot_cuts"])
                log.info("faces: %s: shot cut(s) at frame(s) %s; the face re-found after each (%d track(s) joined)",
                         job.source_path, cuts[clip_id], res.summary.get("speaker_tracks", 1))
            rows.append({"clip_id": clip_id, "crop_path": os.path.relpath(job.crop, project_root),
                         "mouth_path": os.path.relpath(job.mouth, project_root) if job.mouth else None, **res.summary})
            (sink.add if sink is not None else tables.append)(frame_table(clip_id, res))
        keep = {r["clip_id"] for r in rows}
        for folder in (crops_dir, mouth_dir):   # artifacts of clips rejected now must not linger from a past run
            if folder.is_dir():
                for f in folder.iterdir():
                    if f.stem not in keep or (folder == mouth_dir and not params.crop.mouth_video):
                        f.unlink()
        # Inside the writer's block: a failed check leaves the previous landmarks.parquet in place.
        check_accounting(list(clips.clip_id), [r["clip_id"] for r in rows], [q["clip_id"] for q in quarantine.rows],
                         STAGE)
    cols = schema_for("faces").names
    faces = pd.DataFrame(rows, columns=cols).sort_values("clip_id", ignore_index=True)
    landmarks = None
    if sink is None:   # jobs run in clip_id order and frames come in order: already sorted
        landmarks = pa.concat_tables(tables) if tables else schema_for("landmarks").empty_table()
    return FacesResult(faces=faces, landmarks=landmarks, quarantine=quarantine, n_inputs=len(clips), shot_cuts=cuts,
                       crop_outside=outside)


def stage_metrics(result: FacesResult, seconds: float) -> dict:
    f = result.faces
    n_frames = int(f.n_frames.sum()) if len(f) else 0

    def med(col: str) -> float | None:
        v = f[col].dropna() if len(f) else []
        return round(float(np.median(v)), 4) if len(v) else None

    return {
        "inputs": result.n_inputs, "accepted": len(f), "quarantined": len(result.quarantine),
        "quarantine_reasons": dict(sorted(result.quarantine.reasons().items())),
        "frames": n_frames,
        "detection_rate_mean": round(float(f.detection_rate.mean()), 4) if len(f) else None,
        "detection_rate_min": round(float(f.detection_rate.min()), 4) if len(f) else None,
        "jitter_raw_median_pct_iod": med("jitter_raw"), "jitter_median_pct_iod": med("jitter"),
        "crop_motion_raw_median_px": med("crop_motion_raw"), "crop_motion_median_px": med("crop_motion"),
        "mean_face_size_px": med("mean_face_size"),
        "clips_with_shot_cuts": len(result.shot_cuts or {}),
        "crop_outside_median": round(float(np.median(list(result.crop_outside.values()))), 4) if result.crop_outside else None,
        "crop_outside_p90": round(float(np.percentile(list(result.crop_outside.values()), 90)), 4) if result.crop_outside else None,
        "seconds": round(seconds, 2), "frames_per_s": round(n_frames / seconds, 1) if seconds else None,
    }


def run_stage(params: FacesParams, clips_path: Path = CATALOG.manifest("ingest", "clips"),
              out_dir: Path = CATALOG.folder("faces"), metrics_path: Path = CATALOG.metrics("faces"),
              map_fn: Callable | None = None, progress: bool = True) -> dict:
    """Run the faces stage and write its manifests and metrics; returns the metrics."""
    with Timer() as t:
        result = run_faces(params, clips_path, out_dir, map_fn=map_fn, progress=progress,
                           landmarks_path=out_dir / "landmarks.parquet")
    write_validated(result.faces, out_dir / "faces.parquet", "faces")
    metrics = stage_metrics(result, t.seconds)
    write_metrics(metrics_path, metrics)
    log.info("faces: %d clips -> %d tracked, %d quarantined (%.1f s, %s frames/s)", result.n_inputs,
             len(result.faces), len(result.quarantine), t.seconds, metrics["frames_per_s"])
    finish_quarantine(result.quarantine, out_dir / "quarantine.parquet", result.n_inputs, params.max_reject_fraction)
    return metrics
