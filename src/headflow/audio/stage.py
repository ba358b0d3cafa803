"""The audio_features stage's edges (DVC and Prefect share this)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from headflow.audio.features import run_audio_features
from headflow.audio.params import AudioFeaturesParams
from headflow.catalog import CATALOG
from headflow.manifest import read_manifest
from headflow.stage import Timer, finish_quarantine, log, write_metrics, write_validated


def run_stage(params: AudioFeaturesParams, clips_path: Path = CATALOG.manifest("ingest", "clips"),
              out_dir: Path = CATALOG.folder("audio_features"), metrics_path: Path = CATALOG.metrics("audio_features"),
              map_fn: Callable | None = None, progress: bool = True) -> dict:
    """Mel spectrograms of every clip of `clips_path` into `out_dir` (audio_features.parquet, mel/); returns the metrics."""
    clips = read_manifest(clips_path, "clips")
    with Timer() as t:
        result = run_audio_features(clips, params, out_dir, map_fn=map_fn, progress=progress)
    feats = result.features
    write_validated(feats, out_dir / "audio_features.parquet", "audio_features")
    metrics = {
        "clips": len(feats), "quarantined": len(result.quarantine),
        "quarantine_reasons": dict(sorted(result.quarantine.reasons().items())),
        "median_rms_dbfs": round(float(feats.rms_dbfs.median()), 2) if len(feats) else None,
        "clipped_clips": int((feats.clipped_fraction > 0.001).sum()) if len(feats) else 0,
        "seconds": round(t.seconds, 2),
    }
    write_metrics(metrics_path, metrics)
    log.info("audio_features: %d clips, %d quarantined (%.1f s)", len(feats), len(result.quarantine), t.seconds)
    finish_quarantine(result.quarantine, out_dir / "quarantine.parquet", result.n_inputs, params.max_reject_fraction)
    return metrics
