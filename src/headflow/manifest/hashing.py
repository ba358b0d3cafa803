"""Content hashes and stable, filesystem-safe clip ids."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """sha256 hex digest of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _slug(text: str, max_len: int = 48) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return slug[-max_len:].strip("_") or "clip"


def clip_id_for(source_relpath: str, content_hash: str) -> str:
    """Stable id from the source-relative path and the content hash.

    Readable prefix (the slugged path without extension) plus 10 hex digits of
    sha256(relpath + content hash): the same file at the same place always gets the same id, a
    re-encoded file or a moved file gets a new one, and two files with the same name in different
    folders do not collide.

    >>> clip_id_for("s1/bbaf2n.mpg", "0" * 64)[:10]
    's1_bbaf2n-'
    """
    rel = Path(source_relpath).as_posix()
    stem = rel.rsplit(".", 1)[0] if "." in Path(rel).name else rel
    digest = hashlib.sha256(f"{rel}\0{content_hash}".encode()).hexdigest()[:10]
    return f"{_slug(stem)}-{digest}"
