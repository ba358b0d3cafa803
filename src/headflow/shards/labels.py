"""The `shard_labels` stage: per-clip annotation sidecars of the shards (phones, expressions, NMFC).

A separate stage so that the expert (`train_expert` reads `shards` only) never waits for align,
fit3dmm or expressions. Reads `data/interim/shards/shards.parquet`, `data/interim/align/frame_labels.parquet`,
`data/interim/fit3dmm/fits.parquet` and `data/interim/expressions/expressions.parquet`; writes under
`data/interim/shard_labels/`:
    clips/<clip_id>.npz    one sidecar per shard (`headflow.shards.store` format), arrays of length T:
        phone_index (T,) int16 (headflow.align.phones.PHONE_INDEX), styletalk_index (T,) int16
        (StyleTalk phindex), phone_valid (T,) bool; exp (T, K) float32, angles (T, 3) float32 degrees,
        translation (T, 2) float32 source px, scale (T,) float32, expression_valid (T,) bool;
        meta: which sources are there, the expression model, the NMFC file's path, size and sha256
    shard_labels.parquet   one row per shard: has_phones / has_expressions / has_nmfc, paths, hashes
    quarantine.parquet     frame_count_mismatch | unreadable
and `reports/metrics/shard_labels.json`.

A clip without some source (align or fit3dmm quarantined it) keeps its row with `has_* = false`: each
trainer picks the clips that carry what it reads. The NMFC frames are not copied: fit3dmm's
`.nmfc.zip` is already one compressed, frame-addressable file per clip in the crop's pixels (~22 KB a
frame), and a copy would add as much again to the shards' disk (and DVC's cache); the sidecar pins
the file by sha256 and `read_clip(views=("nmfc",))` decodes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from headflow.manifest import Quarantine, Rejected, check_accounting, read_manifest
from headflow.parallel import map_jobs
from headflow.shards.params import ShardLabelsParams
from headflow.stage import Timer, finish_quarantine, log, write_metrics, write_validated

STAGE = "shard_labels"
REASON_CODES = ("frame_count_mismatch", "unreadable")
# Paths this stage reads and writes (relative to the project root), for the catalog.
SHARDS = Path("data/interim/shards/shards.parquet")
FRAME_LABELS = Path("data/interim/align/frame_labels.parquet")
FITS = Path("data/interim/fit3dmm/fits.parquet")
EXPRESSIONS = Path("data/interim/expressions/expressions.parquet")
OUT = Path("data/interim/shard_labels")
METRICS = Path("reports/metrics/shard_labels.json")


@dataclass(frozen=True)
class LabelJob:
    clip_id: str
    n_frames: int
    out: str                                  # absolute path of the sidecar
    phones: pd.DataFrame | None               # the clip's frame_labels rows
    expressions: dict | None                  # exp, angles, translation, scale, valid arrays; model
    nmfc_path: str | None                     # relative to the project root
    project_root: str
    max_mismatch: int
    codec: str
    level: int


def phone_arrays(rows: pd.DataFrame, n_frames: int, max_mismatch: int) -> dict[str, np.ndarray]:
    """Per-frame phone labels of one clip, `n_frames` long.

    Frames the labels do not reach are `phone_valid = False` (index 0, never a repeated label); labels
    past the video's end are dropped.

    Raises:
        Rejected: `frame_count_mismatch` when the labels' frame count differs from `n_frames` by more
            than `max_mismatch`, or their frames are not 0..L-1.
    """
    rows = rows.sort_values("frame")
    frames = rows["frame"].to_numpy()
    L = len(rows)
    if not np.array_equal(frames, np.arange(L)):
        raise Rejected("frame_count_mismatch",
                       f"phone labels cover frames {frames[:3]}...{frames[-3:]}, expected 0..{L - 1}")
    if abs(L - n_frames) > max_mismatch:
        raise Rejected("frame_count_mismatch", f"phone labels cover {L} frames, the video has {n_frames} "
                       f"(shard_labels.max_label_frame_mismatch {max_mismatch})")
    n = min(L, n_frames)
    out = {"phone_index": np.zeros(n_frames, np.int16), "styletalk_index": np.zeros(n_frames, np.int16),
           "phone_valid": np.zeros(n_frames, bool)}
    out["phone_index"][:n] = rows["phone_index"].to_numpy(np.int16)[:n]
    out["styletalk_index"][:n] = rows["styletalk_index"].to_numpy(np.int16)[:n]
    out["phone_valid"][:n] = True
    return out


def expression_arrays(expr: dict, n_frames: int) -> dict[str, np.ndarray]:
    """The clip's expression and pose arrays; they must cover exactly the shard's frames.

    Raises:
        Rejected: `frame_count_mismatch` otherwise.
    """
    if len(expr["valid"]) != n_frames:
        raise Rejected("frame_count_mismatch",
                       f"expressions cover {len(expr['valid'])} frames, the video has {n_frames}")
    return {"exp": expr["exp"], "angles": expr["angles"], "translation": expr["translation"], "scale": expr["scale"],
            "expression_valid": expr["valid"]}


def label_clip(job: LabelJob) -> tuple[str, dict | None, tuple[str, str] | None]:
    """Build and write one clip's sidecar; returns (clip_id, manifest row, rejection)."""
    from headflow.manifest.hashing import file_sha256
    from headflow.nmfc.io import nmfc_meta
    from headflow.shards.store import write_shard

    arrays: dict[str, np.ndarray] = {}
    meta: dict = {"clip_id": job.clip_id, "n_frames": job.n_frames, "has_phones": job.phones is not None,
                  "has_expressions": job.expressions is not None, "has_nmfc": job.nmfc_path is not None,
                  "expression_model": None, "nmfc_path": None, "nmfc_sha256": None, "nmfc_size": None}
    try:
        if job.phones is not None:
            arrays.update(phone_arrays(job.phones, job.n_frames, job.max_mismatch))
        if job.expressions is not None:
            arrays.update(expression_arrays(job.expressions, job.n_frames))
            meta["expression_model"] = job.expressions["model"]
        if job.nmfc_path is not None:
            path = Path(job.project_root) / job.nmfc_path
            try:
                head = nmfc_meta(path)
            except (OSError, ValueError) as e:
                raise Rejected("unreadable", f"{job.nmfc_path}: {e}") from None
            if int(head["frames"]) != job.n_frames:
                raise Rejected("frame_count_mismatch", f"{job.nmfc_path}: {head['frames']} NMFC frames, the video has "
                               f"{job.n_frames}")
            meta.update(nmfc_path=job.nmfc_path, nmfc_sha256=file_sha256(path),
                        nmfc_size=[int(head["height"]), int(head["width"])])
    except Rejected as rej:
        return job.clip_id, None, (rej.reason_code, f"{job.clip_id}: {rej.message}")
    size = write_shard(job.out, arrays, meta, job.codec, job.level)
    row = {"clip_id": job.clip_id, "n_frames": job.n_frames, "has_phones": meta["has_phones"],
           "n_labelled": int(arrays["phone_valid"].sum()) if meta["has_phones"] else 0,
           "has_expressions": meta["has_expressions"], "expression_model": meta["expression_model"],
           "n_exp": int(arrays["exp"].shape[1]) if meta["has_expressions"] else None,
           "has_nmfc": meta["has_nmfc"], "nmfc_path": meta["nmfc_path"], "nmfc_sha256": meta["nmfc_sha256"],
           "bytes": int(size), "sha256": file_sha256(job.out)}
    return job.clip_id, row, None


def expressions_by_clip(path: Path) -> dict[str, dict]:
    """expressions.parquet as clip_id -> {exp (T, K), angles (T, 3), translation (T, 2), scale (T,),
    valid (T,), model}."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    model = (table.schema.metadata or {}).get(b"model", b"").decode() or None
    df = read_manifest(path, "expressions").sort_values(["clip_id", "frame"])
    out = {}
    for clip_id, g in df.groupby("clip_id"):
        out[clip_id] = {"exp": np.stack(g["exp"].to_numpy()).astype(np.float32),
                        "angles": np.stack(g["angles"].to_numpy()).astype(np.float32),
                        "translation": np.stack(g["translation"].to_numpy()).astype(np.float32),
                        "scale": g["scale"].to_numpy(np.float32), "valid": g["valid"].to_numpy(bool), "model": model}
    return out


def run_stage(params: ShardLabelsParams, shards_path: Path = SHARDS, frame_labels_path: Path = FRAME_LABELS,
              fits_path: Path = FITS, expressions_path: Path = EXPRESSIONS, out_dir: Path = OUT,
              metrics_path: Path = METRICS, project_root: Path | None = None, map_fn: Callable | None = None,
              progress: bool = True) -> dict:
    """Write every shard's sidecar, shard_labels.parquet, quarantine.parquet and metrics; returns the metrics."""
    from headflow.manifest.schemas import schema_for

    root = Path(project_root or Path.cwd())
    with Timer() as t:
        shards = read_manifest(root / shards_path, "shards")
        phones = dict(tuple(read_manifest(root / frame_labels_path, "frame_labels").groupby("clip_id")))
        fits = read_manifest(root / fits_path, "fits")
        nmfc = dict(zip(fits.clip_id, fits.nmfc_path))
        expressions = expressions_by_clip(root / expressions_path)
        clip_dir = out_dir / "clips"
        (root / clip_dir).mkdir(parents=True, exist_ok=True)
        jobs = [LabelJob(r.clip_id, int(r.n_frames), str(root / clip_dir / f"{r.clip_id}.npz"), phones.get(r.clip_id),
                         expressions.get(r.clip_id), nmfc.get(r.clip_id), str(root), params.max_label_frame_mismatch,
                         params.codec, params.level) for r in shards.itertuples()]
        results = map_jobs(label_clip, jobs, 1, map_fn, desc="shard labels", progress=progress)
    quarantine = Quarantine(STAGE)
    source = dict(zip(shards.clip_id, shards.source_path))
    rows = []
    for clip_id, row, rejection in results:
        if rejection is not None:
            quarantine.add(clip_id, *rejection, source[clip_id])
        else:
            rows.append({**row, "path": (clip_dir / f"{clip_id}.npz").as_posix()})
    keep = {r["clip_id"] for r in rows}
    for f in (root / clip_dir).iterdir():       # sidecars of clips rejected now must not linger
        if f.name.removesuffix(".npz") not in keep:
            f.unlink()
    table = pd.DataFrame(rows, columns=schema_for("shard_labels").names).sort_values("clip_id", ignore_index=True)
    check_accounting(list(shards.clip_id), list(table.clip_id), [q["clip_id"] for q in quarantine.rows], STAGE)
    write_validated(table, root / out_dir / "shard_labels.parquet", "shard_labels")
    n = len(table)
    metrics = {"inputs": len(shards), "clips": n, "quarantined": len(quarantine),
               "quarantine_reasons": dict(sorted(quarantine.reasons().items())),
               "with_phones": int(table.has_phones.sum()), "with_expressions": int(table.has_expressions.sum()),
               "with_nmfc": int(table.has_nmfc.sum()), "mb_total": round(float(table.bytes.sum()) / 1e6, 3),
               "seconds": round(t.seconds, 2)}
    write_metrics(root / metrics_path, metrics)
    log.info("shard_labels: %d shards -> %d sidecars (phones %d, expressions %d, nmfc %d), %d quarantined",
             len(shards), n, metrics["with_phones"], metrics["with_expressions"], metrics["with_nmfc"], len(quarantine))
    finish_quarantine(quarantine, root / out_dir / "quarantine.parquet", len(shards), params.max_reject_fraction)
    return metrics
