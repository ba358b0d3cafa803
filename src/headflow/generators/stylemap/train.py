"""Train the Style Mapping module: the family's side of the training harness.

    python -m stages.train_stylemap                                # CPU or one GPU
    torchrun --nproc_per_node=4 -m stages.train_stylemap           # DDP; rank 0 logs and checkpoints

One stage (face-vid2vid trains everything jointly): G terms l1, perceptual, gan_g, equivariance,
keypoint_prior, head_pose, expression; D term gan_d (LS-GAN, multi-scale PatchGAN). The family's own
parts: the pairs (`data.PairDataset`), the step object (`losses.StylemapStep`), the data fingerprint
and the exported `generator.pt` (architecture, params, weights, the training set's mean fitted pose for
the constant-pose baseline).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate

from headflow.config import to_dict
from headflow.generators.stylemap.data import (PairDataset, PairError, StylemapClip, check_clip, crop_angles,
                                               data_fingerprint, fixed_pairs, resize_frames)
from headflow.generators.stylemap.model import StylemapGenerator, file_sha256, save_generator
from headflow.generators.stylemap.params import StylemapParams

STAGE = "train_stylemap"
PLOTTED = ("epoch", "train_loss", "d_loss", "l1", "perceptual", "gan_g", "gan_d", "equivariance", "keypoint_prior",
           "head_pose", "expression", "val_l1", "val_pose_err_deg")
"""History fields copied to the stage's plot file."""


def usable_clips(clips: list[StylemapClip], stage: str = STAGE) -> tuple[list[StylemapClip], list[dict]]:
    """(clips that can give a pair, quarantine rows {clip_id, stage, reason_code, message} of the others)."""
    ok, rejected = [], []
    for clip in clips:
        try:
            ok.append(check_clip(clip))
        except PairError as err:
            rejected.append({"clip_id": clip.clip_id, "stage": stage, "reason_code": err.reason_code,
                              "message": str(err)})
    return ok, rejected


def validation_batch(clips: list[StylemapClip], params: StylemapParams,
                     device: str | torch.device = "cpu") -> dict | None:
    """`val_pairs` fixed pairs of the validation clips, prepared with a fixed seed (None: no clips)."""
    from headflow.generators.stylemap.data import prepare_batch

    pairs = fixed_pairs(clips, params.val_pairs, params.seed + 7919)
    if not pairs:
        return None
    lp = params.loss
    batch = prepare_batch(default_collate(pairs), lp.sigma_affine, lp.sigma_tps, lp.tps_points,
                          torch.Generator().manual_seed(params.seed + 7919))
    return {k: v.to(device) for k, v in batch.items()}


def training_settings(params: StylemapParams, perceptual: str) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the params (but the loop, which the harness adds, and
    the thread count) and the perceptual backend."""
    family = to_dict(params)
    for key in ("loop", "threads"):
        family.pop(key, None)
    return {"params": family, "perceptual": perceptual}


def mean_pose(clips: list[StylemapClip]) -> list[float]:
    """Mean fitted (yaw, pitch, roll) in degrees over the clips' usable frames (the constant-pose baseline)."""
    angles = np.concatenate([c.angles[c.valid] for c in clips]) if clips else np.zeros((1, 3))
    return [float(a) for a in angles.mean(0)]


def train_stylemap(train_clips: list[StylemapClip], val_clips: list[StylemapClip], params: StylemapParams,
                   out_dir: Path, perceptual: torch.nn.Module | None = None, accelerator: str = "auto",
                   progress: bool = True) -> dict[str, Any]:
    """Train with the shared harness; export `out_dir/generator.pt`.

    Args:
        train_clips, val_clips: the clips at the model's image size (speaker-disjoint splits).
        params: the run's `StylemapParams`.
        out_dir: the harness's last.pt, best.pt, history, samples, dvclive and generator.pt go here.
        perceptual: a `PerceptualLoss`, or None (no perceptual term).
        accelerator: "auto" | "cpu" | "cuda".
        progress: progress bars.

    Returns:
        {"history", "quarantine" (rows), "generator" (path), "generator_sha256" (None off rank 0), "perceptual",
         "n_train_clips", "n_val_clips", "mean_pose"}.

    Raises:
        ValueError: no usable training clip, or clips of another image size than the model's.
    """
    from headflow.generators.stylemap.losses import StylemapStep, build_discriminator
    from headflow.training.loop import fit
    from headflow.training.runtime import launch

    out_dir = Path(out_dir)
    torch.set_num_threads(params.threads)
    size = params.model.image_size
    for clip in train_clips + val_clips:
        if clip.frames.shape[1:3] != (size, size):
            raise ValueError(f"train_stylemap: clip {clip.clip_id} has {clip.frames.shape[2]}x{clip.frames.shape[1]} "
                             f"frames, the model takes {size}x{size}; resize with data.resize_frames first")
    rt = launch(params.seed, params.loop.precision, accelerator)
    train, rejected = usable_clips(train_clips)
    val, rejected_val = usable_clips(val_clips)
    if not train:
        raise ValueError(f"train_stylemap: none of {len(train_clips)} training clips has a frame with a fitted pose "
                         f"(reasons: {sorted({r['reason_code'] for r in rejected})})")
    fingerprint = data_fingerprint(train + val)
    data = PairDataset(train, params.samples_per_epoch, seed=params.seed)
    val_batch = validation_batch(val, params, rt.device)
    if perceptual is not None:
        perceptual = perceptual.to(rt.device)
    pname = getattr(perceptual, "name", "none")
    generator = StylemapGenerator(params.model)
    step = StylemapStep(params, generator, build_discriminator(params.loss), perceptual, val_batch)
    history = fit(rt, step, data, params.loop, out_dir, loss_weights=step.weights(),
                  settings=training_settings(params, pname), fingerprint=fingerprint, name="stylemap",
                  select=("val_l1", "min") if val_batch is not None else None, progress=progress)
    sha = None
    pose = mean_pose(train)
    if rt.is_main:
        sha = save_generator(generator, params, out_dir / "generator.pt",
                             {"perceptual": pname, "data": fingerprint, "mean_pose": pose})
    return {"history": history, "quarantine": rejected + rejected_val, "generator": out_dir / "generator.pt",
            "generator_sha256": sha, "perceptual": pname, "n_train_clips": len(train), "n_val_clips": len(val),
            "mean_pose": pose}


# ------------------------------------------------------------------------------------------- the stage

def clip_from_shard(shard, image_size: int) -> StylemapClip:
    """A `StylemapClip` from a `headflow.shards.ClipShard` read with views ("crop256", "expressions").

    Valid frames: a face in the crop (finite landmarks and transform) and a fitted pose (expressions.valid).
    crop256's validity mask, when the shard has one, comes resized by `headflow.shards.geometry.resize_inside`
    (area + threshold).
    """
    from headflow.shards.geometry import resize_inside

    crop = shard.crop256
    expr = shard.expressions
    n = min(len(crop.pixels), len(expr.angles))
    finite = np.isfinite(crop.landmarks[:n]).all(axis=(1, 2)) & np.isfinite(crop.transform[:n]).all(axis=(1, 2))
    valid = np.asarray(shard.valid[:n], bool) & finite & np.asarray(expr.valid[:n], bool) \
        & np.isfinite(expr.angles[:n]).all(1)
    transforms = np.where(valid[:, None, None], np.nan_to_num(crop.transform[:n]), np.eye(2, 3))
    angles = crop_angles(np.where(valid[:, None], np.nan_to_num(expr.angles[:n]), 0.0), transforms)
    angles[~valid] = 0.0
    inside = resize_inside(None if crop.mask is None else crop.mask[:n], image_size)
    return StylemapClip(shard.clip_id, resize_frames(crop.pixels[:n], image_size), angles, valid, shard.speaker,
                        inside)


def run_stage(params: StylemapParams, progress: bool = True, accelerator: str = "auto", *,
              shards_path: Path | None = None, decisions_path: Path | None = None, out_dir: Path | None = None,
              model_dir: Path | None = None, metrics_path: Path | None = None, plot_path: Path | None = None) -> dict:
    """The `train_stylemap` stage: train on the accepted shards of the train split, validate on val.

    Reads the shards' crop256 view and shard_labels' fitted poses. Writes `model_dir/` (harness checkpoints,
    history, samples, DVCLive, generator.pt), `out_dir/quarantine.parquet` (clips without a fitted pose:
    reason no_fitted_pose; clips without labels: no_labels), the metrics and the plotted history.

    Raises:
        headflow.manifest.quarantine.TooManyRejected: more than `max_reject_fraction` of the clips unusable.
    """
    from headflow.catalog import CATALOG
    from headflow.manifest import Quarantine, write_json
    from headflow.manifest.quarantine import check_accounting
    from headflow.perceptual_weights import perceptual_from_params
    from headflow.shards import accepted_clips, read_clip
    from headflow.stage import Timer, finish_quarantine, write_metrics

    shards_path = Path(shards_path or CATALOG.manifest("shards", "shards"))
    decisions_path = Path(decisions_path or CATALOG.manifest("sync_check", "clips"))
    out_dir = Path(out_dir or CATALOG.folder(STAGE))
    model_dir = Path(model_dir or CATALOG.model(STAGE, "generator"))
    metrics_path = Path(metrics_path or CATALOG.metrics(STAGE))
    plot_path = Path(plot_path or CATALOG.plot(STAGE, "history"))

    torch.set_num_threads(params.threads)
    rows = accepted_clips(decisions_path, shards_path)
    rows = rows[rows.split.isin(["train", "val"])]
    quarantine = Quarantine(STAGE)
    source = dict(zip(rows.clip_id, rows.source_path))
    by_split: dict[str, list[StylemapClip]] = {"train": [], "val": []}
    for r in rows.itertuples():
        try:
            shard = read_clip(r.clip_id, ("crop256", "expressions"), root=shards_path.parent, decisions=rows)
        except (FileNotFoundError, ValueError) as err:          # no shard_labels sidecar / no expressions in it
            quarantine.add(r.clip_id, "no_fitted_pose", f"clip {r.clip_id}: no fitted poses ({err})", source[r.clip_id])
            continue
        by_split[r.split].append(clip_from_shard(shard, params.model.image_size))
    perceptual = perceptual_from_params(params.loss.perceptual_backend)
    with Timer() as timer:
        result = train_stylemap(by_split["train"], by_split["val"], params, model_dir, perceptual=perceptual,
                                accelerator=accelerator, progress=progress)
    if result["generator_sha256"] is None:          # not rank 0 under torchrun
        return {}
    for q in result["quarantine"]:
        quarantine.add(q["clip_id"], q["reason_code"], q["message"], source.get(q["clip_id"], ""))
    bad = {q["clip_id"] for q in quarantine.rows}
    used = [c.clip_id for c in by_split["train"] + by_split["val"] if c.clip_id not in bad]
    check_accounting(list(rows.clip_id), used, [q["clip_id"] for q in quarantine.rows], STAGE)
    history = result["history"]
    last = history[-1]
    metrics = {
        "n_train_clips": result["n_train_clips"], "n_val_clips": result["n_val_clips"],
        "perceptual_backend": result["perceptual"], "epochs": len(history), "steps": int(last["step"]),
        "val_l1": last.get("val_l1"), "val_pose_err_deg": last.get("val_pose_err_deg"),
        "train_samples_per_s": float(np.mean([h["samples_per_s"] for h in history])),
        "data_wait_fraction": float(np.mean([h["data_wait_fraction"] for h in history])),
        "train_seconds": round(timer.seconds, 1), "generator_sha256": result["generator_sha256"],
        "mean_pose_deg": result["mean_pose"],
    }
    write_metrics(metrics_path, metrics)
    write_json([{k: h.get(k) for k in PLOTTED if k in h} for h in history], plot_path)
    finish_quarantine(quarantine, out_dir / "quarantine.parquet", len(rows), params.max_reject_fraction)
    return metrics


__all__ = ["PLOTTED", "STAGE", "clip_from_shard", "file_sha256", "mean_pose", "run_stage", "train_stylemap",
           "training_settings", "usable_clips", "validation_batch"]
