"""Atomic, schema-checked writes and reads of Parquet manifests and JSON side files (`headflow.atomic`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from headflow.atomic import atomic_output  # re-exported: `from headflow.manifest import atomic_output`
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
