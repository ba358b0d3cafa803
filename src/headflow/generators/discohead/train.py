"""Train DisCoHead: the family's side of the training harness (papers/discohead.txt, section 3.2).

    python -m stages.train_discohead                              # CPU or one GPU
    torchrun --nproc_per_node=4 -m stages.train_discohead         # DDP; rank 0 logs and checkpoints
    dvc exp run -S train_discohead.model.head_motion=tps -S train_discohead.model.encoder=neural_mix

One harness call: L1 + lambda perceptual, Adam (lr 1e-4, batch 16 in the paper). The split is the
ingest stage's speaker-disjoint train / val / test (the paper uses a random 80/20 split of each
corpus' clips, so its test speakers are seen in training; ours are not). The family's own parts: the
frame samples (`data.DisCoHeadFrames`), the step object (`losses.DisCoHeadStep`), the fixed validation
frames, the data fingerprint and the exported generator (`generator.pt`, loaded by `model.load_generator`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate

from headflow.config import to_dict
from headflow.generators.discohead.data import DataError, DisCoHeadClip, DisCoHeadFrames, prepare_batch, usable_frames
from headflow.generators.discohead.model import DisCoHeadGenerator, save_generator
from headflow.generators.discohead.params import DisCoHeadParams

STAGE = "train_discohead"
PLOTTED = ("epoch", "train_loss", "l1", "perceptual", "val_l1", "val_l1_source_warp")
"""History fields copied to the stage's plot file."""


def split_usable(clips: list[DisCoHeadClip], stage: str = STAGE) -> tuple[list[DisCoHeadClip], list[dict]]:
    """Clips with at least one usable frame, and quarantine rows for the others (never a silent skip)."""
    keep, rejected = [], []
    for clip in clips:
        if len(usable_frames(clip)):
            keep.append(clip)
        else:
            rejected.append({"clip_id": clip.clip_id, "stage": stage, "reason_code": "no_usable_frames",
                             "message": f"clip {clip.clip_id}: no frame has a face, eye landmarks and a full 400 ms "
                                        f"audio window ({clip.n_frames} frames, {len(clip.mel)} mel frames)"})
    return keep, rejected


def validation_batch(clips: list[DisCoHeadClip], params: DisCoHeadParams,
                     device: str | torch.device = "cpu") -> dict | None:
    """`val_frames` fixed frames of the validation clips with the test protocol's source (the clip's first
    valid frame); None without clips."""
    import dataclasses

    if not clips:
        return None
    ds = DisCoHeadFrames(clips, dataclasses.replace(params.data, source="first"), params.val_frames,
                         seed=params.seed + 7919)
    batch = prepare_batch(default_collate([ds[i] for i in range(len(ds))]))
    return {k: v.to(device) for k, v in batch.items()}


def data_fingerprint(clips: list[DisCoHeadClip]) -> str:
    """blake2b-128 of the clips' ids, frames, landmarks, valid masks, mels and (when a clip has one) its
    pixel validity mask `inside`, in order (clips without one, or with an all-True one, which trains
    identically, hash as before the mask existed)."""
    h = hashlib.blake2b(digest_size=16)
    for clip in clips:
        h.update(clip.clip_id.encode())
        extra = () if clip.inside is None or clip.inside.all() else (clip.inside,)
        for arr in (clip.frames, clip.landmarks, clip.valid, clip.mel, *extra):
            arr = np.ascontiguousarray(arr)
            h.update(f"{arr.dtype}|{arr.shape}".encode())
            h.update(arr.data)
    return h.hexdigest()


def training_settings(params: DisCoHeadParams, perceptual: str) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the params (but the loop, which the harness adds, the
    thread count and the variant's display name) and the perceptual backend."""
    family = to_dict(params)
    for key in ("loop", "threads", "variant", "max_reject_fraction"):
        family.pop(key, None)
    return {"params": family, "perceptual": perceptual}


def train_discohead(train_clips: list[DisCoHeadClip], val_clips: list[DisCoHeadClip], params: DisCoHeadParams,
                    out_dir: Path, perceptual: torch.nn.Module | None = None, accelerator: str = "auto",
                    progress: bool = True) -> dict[str, Any]:
    """Train with the shared harness; export `out_dir/generator.pt`.

    Args:
        train_clips, val_clips: the clips' arrays (speaker-disjoint splits).
        params: the run's `DisCoHeadParams`.
        out_dir: the harness's last.pt, best.pt, history, samples, dvclive and `generator.pt` go here.
        perceptual: a `PerceptualLoss`, or None (L1 only).
        accelerator: "auto" | "cpu" | "cuda".
        progress: progress bars.

    Returns:
        {"history", "quarantine" (rows), "generator" (path), "generator_sha256" (None off rank 0),
         "perceptual", "n_train_clips", "n_val_clips"}.

    Raises:
        DataError("no_usable_frames"): no training clip has a usable frame.
    """
    from headflow.generators.discohead.losses import DisCoHeadStep
    from headflow.training.loop import fit
    from headflow.training.runtime import launch

    out_dir = Path(out_dir)
    torch.set_num_threads(params.threads)
    rt = launch(params.seed, params.loop.precision, accelerator)
    train, rejected = split_usable(train_clips)
    val, rejected_val = split_usable(val_clips)
    if not train:
        raise DataError("no_usable_frames", f"train_discohead: none of {len(train_clips)} training clips has a usable "
                        "frame (a face, eye landmarks and a full 400 ms audio window)")
    fingerprint = data_fingerprint(train + val)
    data = DisCoHeadFrames(train, params.data, params.samples_per_epoch, seed=params.seed)
    val_batch = validation_batch(val, params, rt.device)
    if perceptual is not None:
        perceptual = perceptual.to(rt.device)
    pname = getattr(perceptual, "name", "none")
    generator = DisCoHeadGenerator(params.model)
    step = DisCoHeadStep(params, generator, perceptual, val_batch)
    history = fit(rt, step, data, params.loop, out_dir, loss_weights=step.weights(),
                  settings=training_settings(params, pname), fingerprint=fingerprint,
                  name=f"discohead {params.variant_name}",
                  select=("val_l1", "min") if val_batch is not None else None, progress=progress)
    sha = None
    if rt.is_main:
        sha = save_generator(generator, params, out_dir / "generator.pt", {"perceptual": pname, "data": fingerprint})
    return {"history": history, "quarantine": rejected + rejected_val, "generator": out_dir / "generator.pt",
            "generator_sha256": sha, "perceptual": pname, "n_train_clips": len(train), "n_val_clips": len(val)}


def run_stage(params: DisCoHeadParams, progress: bool = True, accelerator: str = "auto", *,
              shards_path: Path | None = None, decisions_path: Path | None = None, out_dir: Path | None = None,
              model_dir: Path | None = None, metrics_path: Path | None = None, plot_path: Path | None = None) -> dict:
    """The `train_discohead` stage: train on the accepted shards (crop256, mel) of the train split, validate on val.

    Paths default to the catalog's. Writes `model_dir/` (harness checkpoints, history, samples, DVCLive,
    `generator.pt`), `out_dir/quarantine.parquet`, the metrics and the plotted history.

    Raises:
        headflow.manifest.quarantine.TooManyRejected: more than `max_reject_fraction` of the clips unusable.
    """
    import time

    from headflow.catalog import CATALOG
    from headflow.manifest import Quarantine, write_json
    from headflow.manifest.quarantine import check_accounting
    from headflow.perceptual_weights import perceptual_from_params
    from headflow.generators.discohead.data import clip_from_shard
    from headflow.shards import accepted_clips, read_clip
    from headflow.stage import finish_quarantine, write_metrics

    shards_path = Path(shards_path or CATALOG.manifest("shards", "shards"))
    decisions_path = Path(decisions_path or CATALOG.manifest("sync_check", "clips"))
    out_dir = Path(out_dir or CATALOG.folder(STAGE))
    model_dir = Path(model_dir or CATALOG.model(STAGE, "generator"))
    metrics_path = Path(metrics_path or CATALOG.metrics(STAGE))
    plot_path = Path(plot_path or CATALOG.plot(STAGE, "history"))

    torch.set_num_threads(params.threads)
    rows = accepted_clips(decisions_path, shards_path)
    rows = rows[rows.split.isin(["train", "val"])]
    by_split: dict[str, list[DisCoHeadClip]] = {"train": [], "val": []}
    for r in rows.itertuples():
        shard = read_clip(r.clip_id, ("crop256", "mel"), root=shards_path.parent, decisions=rows)
        by_split[r.split].append(clip_from_shard(shard, params.model.image_size))
    perceptual = perceptual_from_params(params.loss.perceptual_backend) if params.loss.perceptual > 0 else None
    t0 = time.perf_counter()
    result = train_discohead(by_split["train"], by_split["val"], params, model_dir, perceptual=perceptual,
                             accelerator=accelerator, progress=progress)
    seconds = time.perf_counter() - t0
    if result["generator_sha256"] is None:          # not rank 0 under torchrun: rank 0 writes
        return {}
    quarantine = Quarantine(STAGE)
    source = dict(zip(rows.clip_id, rows.source_path))
    for q in result["quarantine"]:
        quarantine.add(q["clip_id"], q["reason_code"], q["message"], source.get(q["clip_id"], ""))
    bad = {q["clip_id"] for q in quarantine.rows}
    used = [c.clip_id for c in by_split["train"] + by_split["val"] if c.clip_id not in bad]
    check_accounting(list(rows.clip_id), used, sorted(bad), STAGE)
    history = result["history"]
    last = history[-1]
    metrics = {
        "variant": params.variant_name, "head_motion": params.model.head_motion, "encoder": params.model.encoder,
        "image_size": params.model.image_size, "n_train_clips": result["n_train_clips"],
        "n_val_clips": result["n_val_clips"], "perceptual_backend": result["perceptual"], "epochs": len(history),
        "steps": int(last["step"]), "val_l1": last.get("val_l1"), "val_l1_source_warp": last.get("val_l1_source_warp"),
        "train_samples_per_s": float(np.mean([h["samples_per_s"] for h in history])),
        "data_wait_fraction": float(np.mean([h["data_wait_fraction"] for h in history])),
        "train_seconds": round(seconds, 1), "generator_sha256": result["generator_sha256"],
    }
    write_metrics(metrics_path, metrics)
    write_json([{k: h.get(k) for k in PLOTTED if k in h} for h in history], plot_path)
    finish_quarantine(quarantine, out_dir / "quarantine.parquet", len(rows), params.max_reject_fraction)
    return metrics
