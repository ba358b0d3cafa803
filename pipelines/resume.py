"""Resuming an interrupted flow run: finished shard tasks are not run again.

A Prefect flow run of a stage maps its clips over shard tasks (`pipelines.preprocess.sharded_map`); the
rows each shard returns are only assembled into the stage's manifests when every shard is done. When the
run dies half way (a killed flow process, a lost cluster, Ctrl-C), the finished shards' side effects
(per-clip media, mels, crops, shard folders) are on disk but their rows are lost, and a plain rerun does
every shard again. `ShardCache` keeps each finished shard's rows on the project's shared storage
(`data/.flow_cache/<stage>/<context>/<key>.pkl`, written atomically by the flow process as each shard
returns), so the restarted run submits only the shards that did not finish.

When a cached row may be trusted:
- `context` is the sha256 of what the stage's result depends on besides its jobs: its params block as
  loaded (`repr` of the typed dataclass) and the size and modification time of every file under the
  stage's `deps` in dvc.yaml (code and upstream outputs, the same list DVC hashes). An entry is used
  only under the same context; entering a stage with another context deletes the others, so the
  entries on disk always describe the outputs on disk (a run under other params rewrote them).
- `key` adds the shard itself: the mapped function (module and name) and the pickled jobs (clip ids,
  paths, per-clip params). A shard whose jobs cannot be pickled deterministically is simply never cached.
- The stage's cache folder is deleted when the stage completes: the cache exists only between an
  interruption and the run that finishes the stage, never as a second cache beside DVC's.
- Only stages that keep the per-clip files of finished shards until they finish are resumable
  (`RESUMABLE`): `demo_corpus` clears its folder when it starts, and the training stages map data
  loading (arrays, not rows), so theirs are not cached.

This is ours: Prefect's own task caching (`cache_policy=INPUTS`, persisted results) keys on the task's
inputs only, so a changed upstream file under the same path would hit a stale entry.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from headflow.atomic import atomic_output

log = logging.getLogger("headflow.flow")

CACHE_ROOT = Path("data/.flow_cache")
RESUMABLE = frozenset({"ingest", "audio_features", "align", "faces", "shards", "sync_check", "fit3dmm",
                       "expressions", "shard_labels", "evaluate"})


def _walk_stats(path: Path) -> list[tuple[str, int, int]]:
    """(path, size, mtime_ns) of `path` or of every file under it (sorted); a missing path gives one row of -1s."""
    if path.is_file():
        st = path.stat()
        return [(path.as_posix(), st.st_size, st.st_mtime_ns)]
    if not path.is_dir():
        return [(path.as_posix(), -1, -1)]
    out = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            p = Path(dirpath) / name
            st = p.stat()
            out.append((p.as_posix(), st.st_size, st.st_mtime_ns))
    return out


def stage_context(stage: str, params: Any, dvc_yaml: Path = Path("dvc.yaml")) -> str:
    """The sha256 (hex) of `stage`'s params (their repr) and the stats of every file of its dvc.yaml deps.

    Raises:
        KeyError: `stage` is not a stage of `dvc_yaml`.
    """
    spec = yaml.safe_load(dvc_yaml.read_text())["stages"][stage]
    h = hashlib.sha256(repr(params).encode())
    for dep in sorted(spec.get("deps", [])):
        for row in _walk_stats(Path(dep)):
            h.update(repr(row).encode())
    return h.hexdigest()


class ShardCache:
    """Rows of finished shard tasks of one stage under one context (see the module docstring).

    Args:
        stage: the dvc.yaml stage name.
        context: `stage_context(stage, params)`.
        root: the cache folder (default `data/.flow_cache`, relative to the project root).
    """

    def __init__(self, stage: str, context: str, root: Path = CACHE_ROOT) -> None:
        self.stage_dir = Path(root) / stage
        self.folder = self.stage_dir / context[:24]
        self.enabled = stage in RESUMABLE
        self.hits = 0
        self.misses = 0
        if not self.enabled:
            return
        if self.stage_dir.is_dir():                 # entries of another context describe other outputs
            for other in self.stage_dir.iterdir():
                if other != self.folder:
                    shutil.rmtree(other, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)

    def key(self, fn: Callable, jobs: list) -> str | None:
        """The shard's key (hex), or None when the jobs do not pickle (never cached then)."""
        if not self.enabled:
            return None
        try:
            blob = pickle.dumps((getattr(fn, "__module__", ""), getattr(fn, "__qualname__", repr(fn)), jobs),
                                protocol=4)
        except Exception:  # noqa: BLE001 - anything unpicklable just is not cached
            return None
        return hashlib.sha256(blob).hexdigest()

    def get(self, key: str | None) -> list | None:
        """The rows stored under `key`, or None (no key, no entry, or an unreadable entry)."""
        if key is None:
            return None
        path = self.folder / f"{key}.pkl"
        if not path.is_file():
            self.misses += 1
            return None
        try:
            rows = pickle.loads(path.read_bytes())
        except Exception:  # noqa: BLE001 - a torn or foreign file is a miss, rerun the shard
            self.misses += 1
            return None
        self.hits += 1
        return rows

    def put(self, key: str | None, rows: list) -> None:
        """Store a finished shard's rows (atomically: a run killed while writing leaves no partial entry)."""
        if key is None:
            return
        try:
            blob = pickle.dumps(rows, protocol=4)
        except Exception:  # noqa: BLE001
            return
        with atomic_output(self.folder / f"{key}.pkl") as tmp:
            tmp.write_bytes(blob)

    def clear(self) -> None:
        """Delete the stage's cache (the stage completed: its outputs are written)."""
        shutil.rmtree(self.stage_dir, ignore_errors=True)
