"""Atomic training checkpoints and the rule that decides whether one is resumed.

A checkpoint (`torch.save` of a dict, read back with `weights_only=True`) holds:

    format        CHECKPOINT_FORMAT; anything else (an older layout) is never resumed or loaded
    settings      the run's settings as plain data (the family's params, `dataclasses.asdict`)
    data          a fingerprint of the training data (`Fingerprint`)
    epoch, step   epochs completed and optimiser steps taken
    networks      {"generator": state_dict, "discriminator": state_dict (GANs)}
    optimizers    the same keys, optimiser state dicts
    ema           the EMA generator's state_dict, or None
    stall         the stall watch's window and flag
    history       one row per epoch completed (what `fit` returns)
    best          the best value so far of the selection metric, or None

RNG: the harness re-seeds every generator from (seed, epoch, rank) at the start of each epoch
and draws per-step augmentation from (seed, step, rank), so the seed in `settings` *is* the
RNG state at every checkpoint boundary, for any number of ranks. No generator state is stored.

Resume rule: `last.pt` is resumed only when its format is current, its settings equal the run's
(except keys listed as safe to change, such as the number of epochs), and its data fingerprint
equals the run's. Otherwise the run starts afresh with a logged reason; the file is overwritten
at the end of the first epoch. DVC keeps model folders between runs (`persist: true`), so a
checkpoint of another corpus or other settings is the normal case, not an error.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger("headflow.training")

CHECKPOINT_FORMAT = "headflow.training/2"
"""Layout version. 1 was the lip-sync expert's own layout before the harness (no `format` key)."""


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write `state` to `path` atomically (a temporary file in the same folder, then `os.replace`).

    A reader never sees a half-written file, and a crash mid-write leaves the previous checkpoint.
    Call on one rank only (rank 0).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp)
    os.replace(tmp, path)


def save_export(state: dict[str, Any], path: Path) -> str:
    """Write an exported model file (`torch.save` of `state`: a family's generator.pt) atomically and
    return the sha256 of its bytes (what `generated.parquet` records), without reading it back.

    Raises:
        OSError: the folder cannot be created or written.
    """
    import io

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(state, buf)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
    return hashlib.sha256(buf.getvalue()).hexdigest()


def load_export(path: Path, fmt: str, what: str, missing: str) -> dict[str, Any]:
    """Read an exported model file (`save_export`'s) and check its layout tag.

    Args:
        path: the file.
        fmt: the `state["format"]` it must carry (e.g. "headflow.lipsync.generator/1").
        what: what the file is, for messages ("lip-sync generator").
        missing: how to make one, appended to the not-found message ("train one with `dvc repro train_lipsync`").

    Returns:
        The saved dict (tensors on the CPU; `torch.load(weights_only=True)`).

    Raises:
        FileNotFoundError: no file (the message names it and says `missing`).
        ValueError: not a dict with `format == fmt` (the message names the format found and the one expected).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} not found; {missing}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != fmt:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{path} is not a {what} file (format {found!r}, expected {fmt!r})")
    return state


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, or written in another layout."""


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` (tensors and plain data only: `weights_only`).

    Raises:
        FileNotFoundError: no file at `path`.
        CheckpointError: unreadable, or of another format (the message names both formats).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means "not ours"
        raise CheckpointError(f"{path} cannot be read as a training checkpoint ({type(err).__name__}: "
                              f"{str(err).splitlines()[0] if str(err) else ''})") from err
    found = state.get("format", "1 (before headflow.training)") if isinstance(state, dict) else "not a dict"
    if found != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is a checkpoint of format {found}; this version reads {CHECKPOINT_FORMAT}")
    return state


def flatten(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; tuples become lists (YAML and pickling round trips agree)."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def resume_refusal(state: dict[str, Any], settings: dict[str, Any], fingerprint: str,
                   may_change: tuple[str, ...] = ()) -> str | None:
    """Why checkpoint `state` must not continue a run with these settings and data; None if it may.

    Args:
        state: a loaded checkpoint.
        settings: the run's settings (nested dicts of plain values).
        fingerprint: the run's data fingerprint.
        may_change: dotted setting names that may differ (e.g. "loop.epochs": train longer).

    Returns:
        None, or a sentence naming the first differing settings (old -> new) or the data change.
    """
    old, new = flatten(state.get("settings", {})), flatten(settings)
    differ = sorted(k for k in old.keys() | new.keys() if k not in may_change and old.get(k, "<absent>") != new.get(k, "<absent>"))
    if differ:
        shown = ", ".join(f"{k}: {old.get(k, '<absent>')!r} -> {new.get(k, '<absent>')!r}" for k in differ[:4])
        more = f" and {len(differ) - 4} more" if len(differ) > 4 else ""
        return f"it was trained with other settings ({shown}{more})"
    if state.get("data") != fingerprint:
        return "it was trained on other data (the data fingerprint differs: other clips, crops or features)"
    return None


def try_resume(path: Path, settings: dict[str, Any], fingerprint: str, may_change: tuple[str, ...] = (),
               map_location: str | torch.device = "cpu", quiet: bool = False) -> dict[str, Any] | None:
    """The checkpoint at `path` if the run may continue it, else None with the reason logged (a warning).

    Never raises for a checkpoint of an older format, other settings or other data: those runs
    start afresh (the message says why and that deleting the file silences it). `quiet`: log
    nothing (the other ranks under DDP, which take the same decision).
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = load_checkpoint(path, map_location)
    except CheckpointError as err:
        if not quiet:
            log.warning("not resuming: %s; starting afresh (delete it to silence this)", err)
        return None
    reason = resume_refusal(state, settings, fingerprint, may_change)
    if reason:
        if not quiet:
            log.warning("not resuming from %s: %s; starting afresh (delete it to silence this)", path, reason)
        return None
    return state


class Fingerprint:
    """A blake2b-128 digest of the training data, fed in order with labels, strings and arrays.

    Feed what determines the samples (ids, shapes, the array bytes); equal digests mean the same
    data in the same order. Arrays are hashed as C-contiguous bytes with their dtype and shape.
    """

    def __init__(self) -> None:
        self._h = hashlib.blake2b(digest_size=16)

    def update(self, item: str | bytes | np.ndarray | None) -> "Fingerprint":
        if item is None:
            self._h.update(b"\x00none")
        elif isinstance(item, np.ndarray):
            self._h.update(f"{item.dtype}|{item.shape}".encode())
            self._h.update(np.ascontiguousarray(item).data)
        elif isinstance(item, bytes):
            self._h.update(item)
        else:
            self._h.update(str(item).encode())
        return self

    def hexdigest(self) -> str:
        return self._h.hexdigest()
