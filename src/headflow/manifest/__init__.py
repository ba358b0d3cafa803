"""Parquet manifests: schemas, atomic writes, content hashing and the quarantine table."""

from headflow.manifest.hashing import clip_id_for, file_sha256
from headflow.manifest.io import (
    ManifestWriter,
    atomic_output,
    manifest_table,
    manifest_writer,
    read_manifest,
    write_json,
    write_manifest,
)
from headflow.manifest.quarantine import (
    AccountingError,
    Quarantine,
    Rejected,
    TooManyRejected,
    check_accounting,
)
from headflow.manifest.schemas import SCHEMAS, schema_for

__all__ = [
    "AccountingError",
    "ManifestWriter",
    "Quarantine",
    "Rejected",
    "SCHEMAS",
    "TooManyRejected",
    "atomic_output",
    "check_accounting",
    "clip_id_for",
    "file_sha256",
    "manifest_table",
    "manifest_writer",
    "read_manifest",
    "schema_for",
    "write_json",
    "write_manifest",
]
