"""Atomic file output: write to a fresh temporary name in the destination folder, then `os.replace`.

The one implementation every writer uses (manifests, media, fits, NMFC files, model caches, weight
downloads). Standard library only, so light modules (`headflow.models`, `headflow.media`) use it
without importing the manifest code and its pandas / pyarrow.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; `os.replace` it onto `path` when the block succeeds.

    The temporary file is in the same folder, so the rename is atomic on POSIX and a reader sees
    either the old file or the whole new one. On any exception it is removed, so a crashed writer
    leaves no half-written output behind (a killed process can leave `.<name>.<hex>.tmp<suffix>`).

    The temporary path does not exist yet: the writer creates it (ffmpeg, numpy, pyarrow, `open`), so
    the file gets the usual mode from the umask (0644 under umask 022). `tempfile.mkstemp` would
    create it 0600, and that mode would survive the rename.

    Args:
        path: the final file; its folder is created if missing.
        suffix: ending of the temporary name (default: `path`'s suffix); tools that pick a format
            or append an extension by name need it (`np.savez` appends ".npz" otherwise).

    Yields:
        The temporary `Path` to write.

    Raises:
        FileNotFoundError: the block ended without creating the temporary file (a writer that
            silently wrote nothing); `path` is left as it was.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.{uuid.uuid4().hex[:12]}.tmp{suffix or final.suffix}"
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{final}: the writer created no file at {tmp}; {final} was left as it was")
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def remove_stale_temporaries(path: str | os.PathLike[str], suffix: str | None = None) -> list[Path]:
    """Delete the temporary files `atomic_output` left beside `path` in runs that were killed.

    For a writer that keeps its temporary open for a whole stage (a streamed manifest): a stage killed
    mid-way (kill -9, a lost machine) cannot remove it, and a rerun would leave the orphan beside the
    output. Call it before opening such a writer; every output has one writer (its stage), so an
    existing `.<name>.<hex>.tmp<suffix>` of the same `path` belongs to a dead run.

    Returns:
        The paths removed.
    """
    final = Path(path)
    if not final.parent.is_dir():
        return []
    removed = []
    for tmp in final.parent.glob(f".{final.name}.*.tmp{suffix or final.suffix}"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
            removed.append(tmp)
    return removed


__all__ = ["atomic_output", "remove_stale_temporaries"]
