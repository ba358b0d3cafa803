"""The align stage's edges (DVC and Prefect share this)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from headflow.align.evaluate import boundary_errors, summarize
from headflow.align.params import AlignParams
from headflow.align.run import run_align
from headflow.catalog import CATALOG
from headflow.manifest import read_manifest
from headflow.stage import Timer, finish_quarantine, log, write_metrics, write_validated



def source_word_errors(clips: pd.DataFrame, words: pd.DataFrame) -> np.ndarray:
    """Word-boundary errors against the alignments some sources ship (GRID .align, in clips.words)."""
    if "words" not in clips or not len(words):
        return np.zeros(0)
    ours = {cid: [(r.start, r.end, r.word) for r in g.itertuples()] for cid, g in words.groupby("clip_id")}
    errs = [boundary_errors([(w["start"], w["end"], str(w["word"]).lower()) for w in ref], ours[cid], words=True)
            for cid, ref in zip(clips.clip_id, clips.words) if ref is not None and len(ref) and cid in ours]
    return np.concatenate(errs) if errs else np.zeros(0)


def run_stage(params: AlignParams, clips_path: Path = CATALOG.manifest("ingest", "clips"),
              out_dir: Path = CATALOG.folder("align"), metrics_path: Path = CATALOG.metrics("align"),
              map_fn: Callable | None = None, progress: bool = True) -> dict:
    """Align every clip of `clips_path` into `out_dir` (alignments, words, phones, frame_labels, textgrids/)."""
    clips = read_manifest(clips_path, "clips")
    with Timer() as t:
        result = run_align(clips, params, out_dir, map_fn=map_fn, progress=progress)
    for name, df in (("alignments", result.alignments), ("words", result.words), ("phones", result.phones),
                     ("frame_labels", result.frame_labels)):
        write_validated(df, out_dir / f"{name}.parquet", name)
    al = result.alignments
    vs_source = summarize(source_word_errors(clips, result.words))
    metrics = {
        "backend": params.backend, "clips": len(al), "quarantined": len(result.quarantine),
        "quarantine_reasons": dict(sorted(result.quarantine.reasons().items())),
        "words": len(result.words), "phones": int((result.phones.phone != "SIL").sum()) if len(al) else 0,
        "clips_with_unpronounceable": int(al.unpronounceable.map(len).gt(0).sum()) if len(al) else 0,
        "median_log_likelihood": round(float(al.log_likelihood.median()), 3) if len(al) else None,
        "audio_seconds": round(result.audio_seconds, 2), "seconds": round(t.seconds, 2),
        "x_real_time": round(result.audio_seconds / t.seconds, 1) if t.seconds > 0 else None,
        "source_word_boundaries": vs_source.n,
        "source_word_median_error_ms": None if vs_source.n == 0 else round(vs_source.median_ms, 1),
        "source_word_within_40ms": None if vs_source.n == 0 else round(vs_source.within_40ms, 3),
    }
    write_metrics(metrics_path, metrics)
    log.info("align (%s): %d clips, %d quarantined, %.1f s of audio in %.1f s", params.backend, len(al),
             len(result.quarantine), result.audio_seconds, t.seconds)
    finish_quarantine(result.quarantine, out_dir / "quarantine.parquet", result.n_inputs, params.max_reject_fraction)
    return metrics
