"""The `shards` stage: every clip that passed faces and audio_features -> one compressed file of training arrays.

Reads `data/interim/ingest/clips.parquet`, `data/interim/faces/{faces,landmarks}.parquet` (+ one crop
video, for faces.crop.size) and `data/interim/audio_features/audio_features.parquet` + mels; writes
under `data/interim/shards/`:
    clips/<clip_id>.npz  one shard per clip (`headflow.shards.store`; what is in it: README "Shards")
    shards.parquet       one row per clip: path, speaker, split, fps, frame counts, view sizes, bytes, sha256
    quarantine.parquet   unreadable | frame_count_mismatch
and `reports/metrics/shards.json` (clips/s, MB per clip, compression per array).
DVC (`stages/shards.py`) and Prefect (`pipelines/preprocess.py`) both call `run_stage`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from headflow.manifest import Quarantine, check_accounting, read_manifest
from headflow.parallel import map_jobs
from headflow.shards.cut import ShardJob, shard_clip
from headflow.shards.geometry import CROP_SIZE, FACE_SIZE
from headflow.shards.params import ShardsParams
from headflow.stage import Timer, finish_quarantine, log, write_metrics, write_validated

STAGE = "shards"
REASON_CODES = ("unreadable", "frame_count_mismatch")
# Paths this stage reads and writes (relative to the project root), for the catalog.
CLIPS = Path("data/interim/ingest/clips.parquet")
FACES = Path("data/interim/faces")
AUDIO = Path("data/interim/audio_features/audio_features.parquet")
OUT = Path("data/interim/shards")
METRICS = Path("reports/metrics/shards.json")


def view_sizes(params: ShardsParams) -> str:
    """The `sizes` column: `view=HxW` of every pixel view, e.g. 'face96=96x96 crop256=256x256 ...'."""
    sizes = {"face96": (FACE_SIZE, FACE_SIZE), "crop256": (CROP_SIZE, CROP_SIZE),
             "mouth": (params.mouth.height, params.mouth.width), "eyes": (params.eyes.height, params.eyes.width)}
    return " ".join(f"{k}={h}x{w}" for k, (h, w) in sizes.items())


def shard_inputs(clips_path: Path, faces_dir: Path, audio_path: Path) -> pd.DataFrame:
    """Clips accepted by both faces and audio_features, sorted by clip_id (the stage's rows in)."""
    clips = read_manifest(clips_path, "clips")
    faces = read_manifest(faces_dir / "faces.parquet", "faces")
    audio = read_manifest(audio_path, "audio_features")
    return (clips.merge(faces[["clip_id", "crop_path"]], on="clip_id")
            .merge(audio[["clip_id", "mel_path"]], on="clip_id").sort_values("clip_id", ignore_index=True))


def faces_crop_size(crop_video: Path) -> int:
    """The side of the faces stage's aligned crop (what `crop_transform` maps onto), from one crop video."""
    from headflow.media import read_frames

    frame = next(iter(read_frames(crop_video)), None)
    if frame is None or frame.shape[0] != frame.shape[1]:
        raise ValueError(f"{crop_video}: expected a square crop video from the faces stage; re-run `dvc repro faces`")
    return int(frame.shape[0])


LANDMARK_COLUMNS = ["clip_id", "frame", "box", "valid", "landmarks", "crop_transform"]
"""The landmarks.parquet columns a shard needs (landmarks_raw, score, ... are never read)."""


def frame_arrays(frames: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """boxes (T, 4), valid (T,), landmarks (T, 68, 2) NaN where invalid, crop_transform (T, 2, 3) of one
    clip's landmarks.parquet rows (`LANDMARK_COLUMNS`, any row order)."""
    frames = frames.sort_by("frame")
    T = frames.num_rows
    valid = frames.column("valid").to_numpy().astype(bool)
    lm = np.full((T, 68, 2), np.nan, np.float32)
    if valid.any():   # invalid frames are null lists: take the valid ones only
        kept = frames.column("landmarks").filter(pa.array(valid)).combine_chunks().flatten()
        lm[valid] = kept.to_numpy().reshape(-1, 68, 2)

    def fixed(name: str, shape: tuple[int, ...]) -> np.ndarray:
        return frames.column(name).combine_chunks().flatten().to_numpy().reshape(T, *shape).astype(np.float64)

    return fixed("box", (4,)), valid, lm, fixed("crop_transform", (2, 3))


def _sorted_by_clip(pf: pq.ParquetFile) -> bool:
    """Whether the file's clip_id column never decreases (read alone, batch by batch)."""
    last = None
    for batch in pf.iter_batches(65536, columns=["clip_id"]):
        ids = batch.column(0)
        if not len(ids):
            continue
        if (last is not None and ids[0].as_py() < last) or (
                len(ids) > 1 and not pc.all(pc.less_equal(ids.slice(0, len(ids) - 1), ids.slice(1))).as_py()):
            return False
        last = ids[len(ids) - 1].as_py()
    return True


def clip_frames(landmarks_path: Path, batch_size: int = 8192) -> Iterator[tuple[str, pa.Table]]:
    """(clip_id, its landmarks.parquet rows) per clip in clip_id order, `LANDMARK_COLUMNS` only.

    The faces stage writes the file sorted by clip_id (`headflow.stage.validated_writer`), so it is
    read `batch_size` rows at a time and memory holds about one batch (8192 rows ~ 5 MB) and one
    clip; a file that is not sorted (written by other code) is read whole and sorted first.
    """
    pf = pq.ParquetFile(landmarks_path)
    if _sorted_by_clip(pf):
        batches: Iterable[pa.RecordBatch] = pf.iter_batches(batch_size, columns=LANDMARK_COLUMNS)
    else:
        log.info("shards: %s is not sorted by clip_id; reading it whole", landmarks_path)
        batches = pf.read(columns=LANDMARK_COLUMNS).sort_by([("clip_id", "ascending"), ("frame", "ascending")]).to_batches(batch_size)
    current, parts = None, []
    for batch in batches:
        ids = batch.column(0).to_pylist()
        start = 0
        for i in range(1, len(ids) + 1):
            if i < len(ids) and ids[i] == ids[start]:
                continue
            if ids[start] != current:
                if parts:
                    yield current, pa.Table.from_batches(parts)
                current, parts = ids[start], []
            parts.append(batch.slice(start, i - start))
            start = i
    if parts:
        yield current, pa.Table.from_batches(parts)


def _frames_of(clip_ids: Iterable[str], landmarks_path: Path) -> Iterator[pa.Table]:
    """The landmarks rows of each of `clip_ids` (sorted), merged against `clip_frames` (a subset of its clips)."""
    frames = clip_frames(landmarks_path)
    have = None
    for clip_id in clip_ids:
        while have is None or have[0] < clip_id:
            have = next(frames, (chr(0x10FFFF), None))
        if have[0] != clip_id:
            raise ValueError(f"{landmarks_path}: no rows for clip {clip_id}, which faces.parquet lists; the faces "
                             f"outputs are out of step: re-run `dvc repro faces`")
        yield have[1]


def run_shards(params: ShardsParams, clips_path: Path = CLIPS, faces_dir: Path = FACES, audio_path: Path = AUDIO,
               out_dir: Path = OUT, project_root: Path | None = None, map_fn: Callable | None = None,
               progress: bool = True) -> tuple[pd.DataFrame, Quarantine, dict]:
    """Cut every clip; returns (shards.parquet rows, quarantine, run facts). Clip files are written.

    Jobs are made as they are consumed, each from its clip's landmarks rows streamed out of
    landmarks.parquet (`clip_frames`): in one process (or a pool, a few jobs ahead) memory holds a
    few clips' arrays, not every clip's. A `map_fn` (Prefect shards) gets them all as a list.
    """
    root = Path(project_root or Path.cwd())
    clips = shard_inputs(root / clips_path, root / faces_dir, root / audio_path)
    clip_dir = out_dir / "clips"
    (root / clip_dir).mkdir(parents=True, exist_ok=True)
    source_size = faces_crop_size(root / clips.crop_path.iloc[0]) if len(clips) else CROP_SIZE
    regions = {"mouth": (params.mouth.height, params.mouth.width), "eyes": (params.eyes.height, params.eyes.width)}

    def jobs() -> Iterator[ShardJob]:
        for r, frames in zip(clips.itertuples(), _frames_of(clips.clip_id, root / faces_dir / "landmarks.parquet")):
            boxes, valid, lm, transforms = frame_arrays(frames)
            meta = {"speaker_id": r.speaker_id, "split": r.split, "fps": float(r.fps), "video_path": r.video_path,
                    "mel_path": r.mel_path, "faces_crop_size": source_size}
            yield ShardJob(r.clip_id, str(root / r.video_path), str(root / r.mel_path),
                           str(root / clip_dir / f"{r.clip_id}.npz"), boxes, valid, lm, transforms, source_size,
                           meta, regions, params.codec, params.level, params.temporal_delta)

    with Timer() as t:
        results = map_jobs(shard_clip, jobs(), params.workers, map_fn, desc="shards", progress=progress,
                           total=len(clips))
    quarantine = Quarantine(STAGE)
    rows = []
    by_id = clips.set_index("clip_id")
    sizes = view_sizes(params)
    for clip_id, facts, rejection, _ in results:
        c = by_id.loc[clip_id]
        if rejection is not None:
            quarantine.add(clip_id, *rejection, c.source_path)
            continue
        rows.append({"clip_id": clip_id, "path": (clip_dir / f"{clip_id}.npz").as_posix(),
                     "source_path": c.source_path, "speaker_id": c.speaker_id,
                     "split": c.split, "fps": c.fps, "video_path": c.video_path, "mel_path": c.mel_path,
                     "sizes": sizes, "codec": params.codec, **facts})
    keep = {r["clip_id"] for r in rows}
    for f in (root / clip_dir).iterdir():       # files of clips rejected now must not linger from a past run
        if f.name.removesuffix(".npz") not in keep:
            f.unlink()
    from headflow.manifest.schemas import schema_for

    shards = pd.DataFrame(rows, columns=schema_for("shards").names).sort_values("clip_id", ignore_index=True)
    check_accounting(list(clips.clip_id), list(shards.clip_id), [q["clip_id"] for q in quarantine.rows], STAGE)
    facts = {"seconds": t.seconds, "n_inputs": len(clips), "clip_seconds": sum(r[3] for r in results)}
    return shards, quarantine, facts


def compression_by_array(paths: list[Path]) -> dict[str, float]:
    """Raw .npy bytes / bytes on disk of each array name over the given shard files."""
    from headflow.shards.store import ShardFile

    disk: dict[str, int] = {}
    raw: dict[str, int] = {}
    for p in paths:
        with ShardFile(p) as f:
            for name, (d, r) in f.member_sizes().items():
                disk[name] = disk.get(name, 0) + d
                raw[name] = raw.get(name, 0) + r
    return {k: round(raw[k] / disk[k], 2) for k in sorted(disk) if disk[k]}


def shard_metrics(shards: pd.DataFrame, quarantine: Quarantine, facts: dict, root: Path) -> dict:
    """reports/metrics/shards.json: counts, disk (MB total and per clip, KB per frame), compression per
    array, and speed (clips/s and frames/s of the whole cut, wall time over all workers)."""
    n, mb = len(shards), float(shards.bytes.sum()) / 1e6 if len(shards) else 0.0
    frames = int(shards.n_frames.sum()) if n else 0
    return {
        "inputs": facts["n_inputs"], "clips": n, "quarantined": len(quarantine),
        "quarantine_reasons": dict(sorted(quarantine.reasons().items())), "frames": frames,
        "mb_total": round(mb, 2), "mb_per_clip": round(mb / n, 3) if n else None,
        "kb_per_frame": round(mb * 1e3 / frames, 2) if frames else None,
        "compression": compression_by_array([root / p for p in shards.path]),
        "seconds": round(facts["seconds"], 2),
        "clips_per_s": round(n / facts["seconds"], 3) if facts["seconds"] else None,
        "frames_per_s": round(frames / facts["seconds"], 1) if facts["seconds"] else None,
    }


def run_stage(params: ShardsParams, clips_path: Path = CLIPS, faces_dir: Path = FACES, audio_path: Path = AUDIO,
              out_dir: Path = OUT, metrics_path: Path = METRICS, project_root: Path | None = None,
              map_fn: Callable | None = None, progress: bool = True) -> dict:
    """Run the shards stage: clip files, shards.parquet, quarantine.parquet, metrics; returns the metrics."""
    root = Path(project_root or Path.cwd())
    shards, quarantine, facts = run_shards(params, clips_path, faces_dir, audio_path, out_dir, root, map_fn, progress)
    write_validated(shards, root / out_dir / "shards.parquet", "shards")
    metrics = shard_metrics(shards, quarantine, facts, root)
    write_metrics(root / metrics_path, metrics)
    log.info("shards: %d clips -> %d shards (%.1f MB, %.2f MB/clip), %d quarantined, %.2f clips/s",
             facts["n_inputs"], len(shards), metrics["mb_total"], metrics["mb_per_clip"] or 0, len(quarantine),
             metrics["clips_per_s"] or 0)
    finish_quarantine(quarantine, root / out_dir / "quarantine.parquet", facts["n_inputs"], params.max_reject_fraction)
    return metrics
