"""Atomic, schema-checked writes and reads of Parquet manifests and JSON side files (`headflow.atomic`)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from headflow.atomic import atomic_output, remove_stale_temporaries  # noqa: F401 (atomic_output re-exported)
from headflow.manifest.schemas import schema_for


def _to_table(rows: pd.DataFrame | list[dict[str, Any]] | pa.Table, schema: pa.Schema) -> pa.Table:
    if isinstance(rows, pa.Table):
        table = rows
    elif isinstance(rows, pd.DataFrame):
        if rows.empty and not len(rows.columns):
            return schema.empty_table()
        table = pa.Table.from_pandas(rows, preserve_index=False)
    else:
        table = pa.Table.from_pylist(list(rows), schema=schema)
    if table.schema.metadata:
        table = table.replace_schema_metadata(None)   # pandas metadata would tie bytes to versions
    missing = [n for n in schema.names if n not in table.column_names]
    extra = [n for n in table.column_names if n not in schema.names]
    if missing or extra:
        raise ValueError(f"manifest columns do not match its schema: missing {missing}, unexpected {extra}")
    return table.select(schema.names).cast(schema)


def manifest_table(rows: pd.DataFrame | list[dict[str, Any]] | pa.Table, kind: str) -> pa.Table:
    """`rows` as the Arrow table `write_manifest` writes for manifest `kind`: its schema's columns in its
    order and types, no pandas metadata (e.g. one clip's rows, to append through `manifest_writer`).

    Raises:
        ValueError: `rows` lack a column of the schema or carry one it does not have.
    """
    return _to_table(rows, schema_for(kind))


def write_manifest(rows: pd.DataFrame | list[dict[str, Any]] | pa.Table, path: str | Path,
                   kind: str | None = None) -> pa.Table:
    """Cast rows to the manifest schema `kind` (default: the file's stem) and write atomically.

    Written without timestamps or pandas metadata so the same rows give the same bytes.
    """
    kind = kind or Path(path).stem
    table = _to_table(rows, schema_for(kind))
    with atomic_output(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)
    return table


class ManifestWriter:
    """Appends row groups to one Parquet manifest that `manifest_writer` opened (see there)."""

    def __init__(self, writer: pq.ParquetWriter, schema: pa.Schema, path: Path) -> None:
        self._writer = writer
        self.schema = schema
        self.path = path
        self.rows = 0
        """Rows written so far."""
        self.row_groups = 0
        """Row groups written so far (one per non-empty `write`)."""

    def write(self, rows: pd.DataFrame | list[dict[str, Any]] | pa.Table) -> pa.Table:
        """Cast `rows` to the manifest schema (as `write_manifest` does) and append them as one row group.

        Returns:
            The table as written (empty tables are not written: a row group needs a row).

        Raises:
            ValueError: `rows` lack a column of the schema or carry one it does not have.
        """
        table = _to_table(rows, self.schema)
        if table.num_rows:
            self._writer.write_table(table, row_group_size=table.num_rows)
            self.rows += table.num_rows
            self.row_groups += 1
        return table


@contextlib.contextmanager
def manifest_writer(path: str | Path, kind: str | None = None) -> Iterator[ManifestWriter]:
    """Write a manifest piece by piece: each `write` appends a row group, so memory holds one piece.

    The file is the one `write_manifest` would write from all pieces concatenated, up to row-group
    boundaries: same schema, compression (zstd) and statistics, and `pq.read_table` returns equal
    tables. It appears at `path` atomically when the block ends without error (`headflow.atomic`);
    on an error nothing is left and an older `path` stays as it was. No row at all: a valid file with
    the schema and no row groups.

    Args:
        path: the manifest to write.
        kind: its schema in `headflow.manifest.schemas` (default: the file's stem).

    Yields:
        A `ManifestWriter`; call `write(rows)` for each piece.
    """
    path = Path(path)
    schema = schema_for(kind or path.stem)
    # The temporary file stays open while the stage runs: one left by a killed run is removed first.
    remove_stale_temporaries(path)
    with atomic_output(path) as tmp:
        writer = pq.ParquetWriter(tmp, schema, compression="zstd", write_statistics=True)
        try:
            yield ManifestWriter(writer, schema, path)
        finally:
            writer.close()


def read_manifest(path: str | Path, kind: str | None = None) -> pd.DataFrame:
    """Read a manifest and check it carries the columns of its schema."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: manifest not found (has the stage that writes it run? try `dvc repro`)")
    kind = kind or path.stem
    table = pq.read_table(path)
    missing = [n for n in schema_for(kind).names if n not in table.column_names]
    if missing:
        raise ValueError(f"{path}: not a '{kind}' manifest; missing columns {missing}")
    return table.to_pandas()


def write_json(obj: Any, path: str | Path) -> None:
    """Write JSON atomically with sorted keys (stable bytes)."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return o.as_posix()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
