"""The align stage's edges (DVC and Prefect share this)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from headflow.align.evaluate import summarize
from headflow.align.params import AlignParams
from headflow.align.run import PER_CLIP_MANIFESTS, run_align
from headflow.catalog import CATALOG
from headflow.manifest import read_manifest
from headflow.stage import Timer, finish_quarantine, log, validated_writer, write_metrics, write_validated


def run_stage(params: AlignParams, clips_path: Path = CATALOG.manifest("ingest", "clips"),
              out_dir: Path = CATALOG.folder("align"), metrics_path: Path = CATALOG.metrics("align"),
              map_fn: Callable | None = None, progress: bool = True) -> dict:
    """Align every clip of `clips_path` into `out_dir` (alignments, words, phones, frame_labels, textgrids/).

    words, phones and frame_labels (several rows a clip) are validated and appended in batches of
    `headflow.stage.ROWS_PER_BATCH` rows as the clips' rows are made, in clip_id order
    (`validated_writer`), so memory does not hold them for the whole corpus; alignments.parquet (a row
    a clip) is written whole. Each file appears atomically at the end; a failure keeps the older ones.
    """
    clips = read_manifest(clips_path, "clips")
    out_dir.mkdir(parents=True, exist_ok=True)
    with Timer() as t, contextlib.ExitStack() as stack:
        sinks = {name: stack.enter_context(validated_writer(out_dir / f"{name}.parquet", name, sorted_by="clip_id"))
                 for name in PER_CLIP_MANIFESTS}
        result = run_align(clips, params, out_dir, map_fn=map_fn, progress=progress, sinks=sinks)
    write_validated(result.alignments, out_dir / "alignments.parquet", "alignments")
    al = result.alignments
    vs_source = summarize(result.source_errors)
    metrics = {
        "backend": params.backend, "clips": len(al), "quarantined": len(result.quarantine),
        "quarantine_reasons": dict(sorted(result.quarantine.reasons().items())),
        "words": result.n_words, "phones": result.n_phones if len(al) else 0,
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
