"""The ingest stage's edges: run it and write its manifests, media and metrics (DVC and Prefect share this)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from headflow.catalog import CATALOG
from headflow.ingest.ingest import dubbing_pair_table, run_ingest
from headflow.ingest.params import IngestParams
from headflow.stage import Timer, finish_quarantine, log, write_metrics, write_validated


def run_stage(params: IngestParams, out_dir: Path = CATALOG.folder("ingest"),
              metrics_path: Path = CATALOG.metrics("ingest"), map_fn: Callable | None = None,
              progress: bool = True) -> dict:
    """Ingest `params.root` into `out_dir` (clips.parquet, quarantine.parquet, media/); returns the metrics."""
    with Timer() as t:
        result = run_ingest(params, Path(params.root), out_dir, map_fn=map_fn, progress=progress)
    clips = result.clips
    write_validated(clips, out_dir / "clips.parquet", "clips")
    # Always written (empty unless ingest.source is wav2lip_pairs), so the stage's outputs do not depend on the layout.
    pairs = result.dubbing_pairs if result.dubbing_pairs is not None else dubbing_pair_table([], {})
    write_validated(pairs, out_dir / "dubbing_pairs.parquet", "dubbing_pairs")
    metrics = {
        "inputs": result.n_inputs,
        "other_files": result.other_files,
        "accepted": len(clips),
        "quarantined": len(result.quarantine),
        "quarantine_reasons": dict(sorted(result.quarantine.reasons().items())),
        "hours": round(float(clips["duration_s"].sum()) / 3600, 4) if len(clips) else 0.0,
        "speakers": int(clips["speaker_id"].nunique()) if len(clips) else 0,
        "speakers_per_split": ({k: int(v) for k, v in clips.groupby("split").speaker_id.nunique().items()}
                               if len(clips) else {}),
        "audio_downmix": result.downmix or {},
        "transcript_encodings": result.transcript_encodings or {},
        "segmentation": result.segmentation or {},
        "dubbing_pairs": len(result.dubbing_pairs) if result.dubbing_pairs is not None else 0,
        "seconds": round(t.seconds, 2),
    }
    write_metrics(metrics_path, metrics)
    log.info("ingest: %d inputs -> %d clips, %d quarantined (%.1f s)", result.n_inputs, len(clips),
             len(result.quarantine), t.seconds)
    finish_quarantine(result.quarantine, out_dir / "quarantine.parquet", result.n_inputs, params.max_reject_fraction)
    return metrics
