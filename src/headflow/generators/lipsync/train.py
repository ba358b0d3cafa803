"""Train the lip-sync U-Net: the family's side of the training harness (coursework section 3.7).

    python -m stages.train_lipsync                                # CPU or one GPU
    torchrun --nproc_per_node=4 -m stages.train_lipsync           # DDP; rank 0 logs and checkpoints

Two stages, each one call of the harness:

1. lip synchronisation: masked L1 1, perceptual 0.5, sync 0.01 (detached until the validation masked
   L1 reaches `loss.sync_start_l1`), mask BCE 1;
2. visual quality: adds the non-saturating GAN (weight 0.01) with lazy R1 (gamma 10) on the multi-frame
   spectral-norm discriminator, DiffAugment on everything D sees; sync weight 0.1.

Adam 2e-4 for G and D. What is the family's own here: the windows (`data.LipsyncWindows`), the step
object (`losses.LipsyncStep`), the fixed validation windows, the data fingerprint and the exported
generator file (`generator.pt`: architecture, params and weights, loaded by `load_generator`).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate

from headflow.config import to_dict
from headflow.generators.lipsync.data import LipsyncClip, LipsyncWindows, ReferenceError, index_clip, prepare_batch
from headflow.generators.lipsync.model import LipsyncGenerator, architecture, check_architecture
from headflow.generators.lipsync.params import LipsyncParams, ModelParams

GENERATOR_FORMAT = "headflow.lipsync/1"
"""Layout of the exported generator file."""


def index_clips(clips: list[LipsyncClip], params: LipsyncParams) -> tuple[list, list[dict]]:
    """Index every clip for sampling; clips that cannot train become quarantine rows, never a crash.

    Returns:
        (indexes of the usable clips, quarantine rows {clip_id, stage, reason_code, message}).
    """
    indexes, rejected = [], []
    for clip in clips:
        try:
            indexes.append(index_clip(clip, params.data, params.optim.seed))
        except ReferenceError as err:
            rejected.append({"clip_id": clip.clip_id, "stage": "train_lipsync", "reason_code": err.reason_code,
                             "message": str(err)})
    return indexes, rejected


def validation_batch(indexes: list, params: LipsyncParams, device: str | torch.device = "cpu") -> dict | None:
    """`optim.val_windows` fixed windows of the validation clips, prepared with a fixed seed (None: no clips)."""
    if not indexes:
        return None
    ds = LipsyncWindows(indexes, params.data, params.optim.val_windows, seed=params.optim.seed + 7919)
    raw = default_collate([ds[i] for i in range(len(ds))])
    batch = prepare_batch(raw, params.data, torch.Generator().manual_seed(params.optim.seed + 7919))
    return {k: v.to(device) for k, v in batch.items()}


def data_fingerprint(clips: list[LipsyncClip]) -> str:
    """blake2b-128 of the clips' ids, frames, landmarks, valid masks and mels, in order."""
    h = hashlib.blake2b(digest_size=16)
    for clip in clips:
        h.update(clip.clip_id.encode())
        for arr in (clip.faces, clip.landmarks, clip.valid, clip.mel,
                    clip.expert_mel if clip.expert_mel is not None else np.zeros(0)):
            arr = np.ascontiguousarray(arr)
            h.update(f"{arr.dtype}|{arr.shape}".encode())
            h.update(arr.data)
    return h.hexdigest()


def save_generator(generator: LipsyncGenerator, params: LipsyncParams, path: Path, extra: dict | None = None) -> str:
    """Write the exported generator (architecture, params, weights) atomically; returns its sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": GENERATOR_FORMAT, "architecture": architecture(params.model), "params": to_dict(params),
             "state_dict": {k: v.detach().cpu() for k, v in generator.state_dict().items()}, **(extra or {})}
    buf = io.BytesIO()
    torch.save(state, buf)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)
    return hashlib.sha256(buf.getvalue()).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_generator(path: Path, model: ModelParams | None = None,
                   device: str | torch.device = "cpu") -> tuple[LipsyncGenerator, dict[str, Any]]:
    """Load an exported generator in eval mode.

    Args:
        path: a `generator.pt` written by `save_generator`.
        model: the architecture the caller expects (None: whatever the file holds).
        device: torch device.

    Returns:
        (generator, the file's saved params as a plain dict).

    Raises:
        FileNotFoundError: no file at `path` (the message says how to make one).
        ValueError: not a lip-sync generator file, or of another architecture or width than `model`
            (the message names both).
    """
    from headflow.config import from_dict

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"lip-sync generator {path} not found; train one with `dvc repro train_lipsync` "
                                "(or `python -m stages.train_lipsync`) or pass --checkpoint PATH")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != GENERATOR_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{path} is not a lip-sync generator file (format {found!r}, expected {GENERATOR_FORMAT!r})")
    saved = from_dict(LipsyncParams, state["params"], "generator.params")
    check_architecture(state["architecture"], saved.model, str(path))
    if model is not None:
        check_architecture(state["architecture"], model, str(path))
    generator = LipsyncGenerator(saved.model)
    generator.load_state_dict(state["state_dict"])
    return generator.to(device).eval(), state["params"]
