"""The demo_corpus stage's edges: build the corpus, validate and write its index and metrics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from headflow.catalog import CATALOG
from headflow.demo.corpus import build_corpus
from headflow.demo.params import DemoCorpusParams
from headflow.stage import Timer, log, write_metrics, write_validated


def run_stage(params: DemoCorpusParams, out_dir: Path = CATALOG.folder("demo_corpus"),
              metrics_path: Path = CATALOG.metrics("demo_corpus"), map_fn: Callable | None = None,
              progress: bool = True) -> dict:
    """Render the demo corpus into `out_dir` (clips, ground truth, bad inputs, corpus.parquet); returns the metrics."""
    with Timer() as t:
        corpus = build_corpus(params, out_dir, progress=progress, map_fn=map_fn)
    write_validated(corpus, out_dir / "corpus.parquet", "corpus")
    good = corpus[corpus.kind == "good"]
    metrics = {
        "good_clips": len(good),
        "bad_inputs": int((corpus.kind == "bad").sum()),
        "identities": int(good.identity.nunique()),
        "styles": {k: int(v) for k, v in good["style"].value_counts().sort_index().items()},
        "seconds_of_video": round(float(good.duration_s.sum()), 2),
        "build_seconds": round(t.seconds, 2),
    }
    write_metrics(metrics_path, metrics)
    log.info("demo corpus: %d good clips (%d identities, %.0f s of video), %d bad inputs in %.1f s",
             len(good), good.identity.nunique(), good.duration_s.sum(), metrics["bad_inputs"], t.seconds)
    return metrics
