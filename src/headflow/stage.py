"""What every stage does at its edges: validate and write manifests, metrics, the quarantine check.

Stage entry points (`stages/*.py`) and Prefect tasks (`pipelines/*.py`) both finish through here,
so the two ways of running a stage write the same files.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa

from headflow.manifest import Quarantine, write_json, write_manifest
from headflow.validation import validate_manifest

log = logging.getLogger("headflow")


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)


def write_validated(df: pd.DataFrame | pa.Table, path: str | Path, kind: str) -> None:
    """Validate `df` with the suite of manifest `kind`, then write it atomically.

    A manifest that fails its suite is never written, so DVC never caches it as a good output.
    A pyarrow Table is validated as pandas and written as is (keeps fixed-size list columns exact).
    """
    report = validate_manifest(df.to_pandas() if isinstance(df, pa.Table) else df, kind)
    write_manifest(df, path, kind=kind)
    log.info("wrote %s: %d rows, %d expectations passed", path, report.n_rows, report.n_expectations)


def finish_quarantine(quarantine: Quarantine, path: str | Path, n_in: int, max_reject_fraction: float) -> None:
    """Write (and validate) quarantine.parquet, then fail if too much was rejected."""
    write_validated(quarantine.frame(), path, "quarantine")
    for reason, n in sorted(quarantine.reasons().items()):
        log.info("quarantined %d input(s): %s", n, reason)
    quarantine.enforce(n_in, max_reject_fraction)


def write_metrics(path: str | Path, metrics: dict) -> None:
    """A DVC metrics file (flat-ish JSON with sorted keys)."""
    write_json(metrics, path)


class Timer:
    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
