"""What every stage does at its edges: validate and write manifests, metrics, the quarantine check.

Stage entry points (`stages/*.py`) and Prefect tasks (`pipelines/*.py`) both finish through here,
so the two ways of running a stage write the same files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from headflow.manifest import ManifestWriter, Quarantine, manifest_writer, write_json, write_manifest
from headflow.validation import validate_manifest

log = logging.getLogger("headflow")


def setup_logging(usage: str | None = None) -> None:
    """Send INFO log lines to stderr, each with its time and logger name.

    Args:
        usage: a stage entry point's module docstring (`stages/<name>.py` passes its `__doc__`). Given, the
            command line is checked first with `check_stage_arguments`, so `python -m stages.<name> --help`
            explains instead of running the stage.

    Raises:
        SystemExit: from `check_stage_arguments` (0 after `--help`, 2 for any other argument).
    """
    if usage is not None:
        check_stage_arguments(usage, sys.argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)


def check_stage_arguments(usage: str, argv: list[str]) -> None:
    """A stage entry point takes no command-line arguments: its settings are its params.yaml block.

    Without this, `python -m stages.<name> --help` (or `--epochs 3`) ran the whole stage with the argument
    silently ignored, and for `demo_corpus` that rebuilds `data/raw/demo`.

    Args:
        usage: the entry point's docstring, printed by `-h` / `--help`.
        argv: `sys.argv`; `argv[0]` is the entry point's file (`stages/<name>.py`), which names the stage.

    Raises:
        SystemExit: code 0 after printing `usage` and where the settings are, for `-h` / `--help`; code 2
            with a message on stderr for any other argument. Returns normally when there are none.
    """
    if len(argv) <= 1:
        return
    name = Path(argv[0]).stem
    settings = (f"Its settings are the `{name}` block of params.yaml (`headflow params {name}` lists them with "
                f"their docs): edit params.yaml, or run `dvc exp run -S {name}.<key>=<value>`; "
                f"`dvc repro {name}` also runs the stages it depends on.")
    if argv[1] in ("-h", "--help"):
        print(f"{usage.strip()}\n\nA stage takes no command-line arguments. {settings}")
        raise SystemExit(0)
    print(f"error: python -m stages.{name} takes no arguments, got {' '.join(argv[1:])!r}. {settings}",
          file=sys.stderr)
    raise SystemExit(2)


def write_validated(df: pd.DataFrame | pa.Table, path: str | Path, kind: str) -> None:
    """Validate `df` with the suite of manifest `kind`, then write it atomically.

    A manifest that fails its suite is never written, so DVC never caches it as a good output.
    A pyarrow Table is validated as pandas and written as is (keeps fixed-size list columns exact).
    """
    report = validate_manifest(df.to_pandas() if isinstance(df, pa.Table) else df, kind)
    write_manifest(df, path, kind=kind)
    log.info("wrote %s: %d rows, %d expectations passed", path, report.n_rows, report.n_expectations)


ROWS_PER_BATCH = 8192
"""Rows `validated_writer` gathers before it validates and writes them (one row group). The suite costs
~0.2 s a call plus ~0.07 ms a row (landmarks), so ~80 demo clips of ~100 frames per call keep the fixed
part under 1 % of the faces stage; a batch of landmarks is ~11 MB as Arrow, ~3x that as pandas."""


class ValidatedWriter:
    """Gathers groups of rows (e.g. one clip's frames), validates and appends them in batches; see
    `validated_writer`."""

    def __init__(self, out: ManifestWriter, kind: str, rows_per_batch: int, sorted_by: str | None) -> None:
        self._out = out
        self.kind = kind
        self.rows_per_batch = rows_per_batch
        self.sorted_by = sorted_by
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._last_key = None
        self.n_expectations = 0

    def add(self, group: pa.Table) -> None:
        """Queue `group` (rows that stay in one batch); a full batch is validated and written."""
        self._pending.append(group)
        self._pending_rows += group.num_rows
        if self._pending_rows >= self.rows_per_batch:
            self.flush()

    def flush(self) -> None:
        """Validate the queued rows with the manifest's suite and append them as one row group.

        Raises:
            ValidationFailed: the batch broke the suite (the file is then discarded by the writer).
            ValueError: with `sorted_by`, a key lower than one before it or a key already written
                in an earlier batch (a group added twice, or groups not in key order).
        """
        if not self._pending:
            return
        batch = self._out.write(self._checked(pa.concat_tables(self._pending)))
        self._pending, self._pending_rows = [], 0
        if self.sorted_by and batch.num_rows:
            self._last_key = batch.column(self.sorted_by)[-1].as_py()

    @property
    def rows(self) -> int:
        """Rows written so far."""
        return self._out.rows

    def _checked(self, batch: pa.Table) -> pa.Table:
        """`batch` after the order check and the suite. The suite sees one batch: its row-wise
        expectations hold for the file when they hold for every batch, and the order check keeps a
        key in one batch, so a compound key led by `sorted_by` that is unique per batch is unique in
        the file."""
        if self.sorted_by and batch.num_rows:
            keys = batch.column(self.sorted_by)
            first = keys[0].as_py()
            ordered = batch.num_rows < 2 or pc.all(pc.less_equal(keys.slice(0, len(keys) - 1), keys.slice(1))).as_py()
            if not ordered or (self._last_key is not None and first <= self._last_key):
                raise ValueError(f"{self._out.path}: rows must arrive in increasing '{self.sorted_by}' order, each "
                                 f"value in one batch; got {first!r} after {self._last_key!r} or a decrease inside "
                                 f"a batch. A bug in the stage writing '{self.kind}': sort its groups before adding")
        self.n_expectations = validate_manifest(batch.to_pandas(), self.kind).n_expectations
        return batch


@contextlib.contextmanager
def validated_writer(path: str | Path, kind: str, rows_per_batch: int = ROWS_PER_BATCH,
                     sorted_by: str | None = None) -> Iterator[ValidatedWriter]:
    """`write_validated` for a manifest too large to hold: rows arrive in groups, each batch of about
    `rows_per_batch` rows is validated with the suite of `kind` and appended as one row group.

    The file appears atomically when the block ends without error, as with `write_validated`; a
    batch that fails its suite raises inside the block and leaves no file (an older one stays).
    Reading the file gives the table `write_validated` would have written from the groups
    concatenated (`manifest_writer`). A manifest without rows is validated empty and written.

    Args:
        path: the manifest file.
        kind: its schema and suite name (`headflow.manifest.schemas`, `headflow.validation.suites`).
        rows_per_batch: rows gathered per validation and row group (a group is never split).
        sorted_by: a column the groups must arrive sorted by, each value in one batch only (e.g.
            'clip_id' for per-frame manifests, with the groups one clip each).

    Yields:
        A `ValidatedWriter`; call `add(group)` per group of rows (a pyarrow Table).
    """
    if rows_per_batch < 1:
        raise ValueError(f"rows_per_batch must be >= 1, got {rows_per_batch}")
    with manifest_writer(path, kind) as out:
        w = ValidatedWriter(out, kind, rows_per_batch, sorted_by)
        yield w
        w.flush()
        if not out.rows:
            w.n_expectations = validate_manifest(out.schema.empty_table().to_pandas(), kind).n_expectations
    log.info("wrote %s: %d rows in %d row group(s), %d expectations passed per batch", path, out.rows,
             out.row_groups, w.n_expectations)


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
