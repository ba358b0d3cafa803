"""The initialisation stage `train_head2headfs`: G + E_id against D^I, D^M, D^V on every training identity
(section 3.3), one call of the shared harness.

    python -m stages.train_head2headfs                              # CPU or one GPU
    torchrun --nproc_per_node=4 -m stages.train_head2headfs         # DDP; rank 0 logs and checkpoints

The family's own parts: clips from the shards with weight-free foreground masks (`load_clip`), the
windows (`data.Head2HeadWindows`), the step (`losses.InitialisationStep`), the data fingerprint and the
exported file `init.pt` (params, identities in W's row order, G + E_id and the three discriminators),
which `finetune_head2headfs` starts from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from headflow.config import to_dict
from headflow.generators.head2headfs.data import ClipError, Head2HeadClip, Head2HeadWindows, resize_clip
from headflow.generators.head2headfs.masks import clip_masks
from headflow.generators.head2headfs.model import Discriminators, Renderer, file_sha256, state_sha256
from headflow.generators.head2headfs.params import Head2HeadFSParams, MaskParams
from headflow.training.checkpoint import load_export

STAGE = "train_head2headfs"
INIT_FORMAT = "head2headfs.init/1"
PLOTTED = ("epoch", "train_loss", "d_loss", "adv_image", "adv_mouth", "adv_video", "vgg", "feat", "mask", "match",
           "d_image", "d_mouth", "d_video")


def load_clip(clip_id: str, size: int, masks: MaskParams, shards_root: Path, labels_root: Path,
              decisions=None, end: int | None = None) -> Head2HeadClip:
    """One clip from the shards (crop256 + the NMFC sidecar) with its foreground masks and (when the shard has
    it) crop256's validity mask, at `size`.

    Args:
        end: only the first `end` frames (fine-tuning); None = all.

    Raises:
        ClipError: "no_fit" (no NMFC for the clip, or no frame with a fit), "frame_count_mismatch" (NMFC and
            crop frame counts differ).
    """
    from headflow.shards import read_clip

    try:
        shard = read_clip(clip_id, ("crop256", "nmfc"), root=shards_root, labels_root=labels_root, decisions=decisions)
    except ValueError as err:
        raise ClipError("no_fit", f"{clip_id}: {err}") from err
    crop, nmfc = shard.crop256, shard.nmfc
    if len(nmfc.pixels) != len(crop.pixels):
        raise ClipError("frame_count_mismatch", f"{clip_id}: {len(crop.pixels)} crop frames but {len(nmfc.pixels)} "
                        "NMFC frames; re-run fit3dmm and shard_labels")
    sl = slice(0, end)
    head = nmfc.mask[sl]
    if head.shape[1:] != crop.pixels.shape[1:3]:
        import cv2
        h, w = crop.pixels.shape[1:3]
        head = np.stack([cv2.resize(m.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) for m in head]).astype(bool)
        nmfc_px = np.stack([cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST) for m in nmfc.pixels[sl]])
    else:
        nmfc_px = nmfc.pixels[sl]
    valid = np.asarray(shard.valid[sl], bool) & np.isfinite(crop.landmarks[sl]).all(axis=(1, 2)) & head.reshape(len(head), -1).any(1)
    if not valid.any():
        raise ClipError("no_fit", f"{clip_id}: no frame has a 3DMM fit and landmarks")
    fg = clip_masks(crop.pixels[sl], head, crop.landmarks[sl], valid, masks)
    return resize_clip(clip_id, shard.speaker, crop.pixels[sl], nmfc_px, head, fg, crop.landmarks[sl], valid, size,
                       None if crop.mask is None else crop.mask[sl])


def data_fingerprint(clips: list[Head2HeadClip]) -> str:
    """blake2b-128 of the clips' ids, speakers and arrays (`inside` only when it has a False pixel: clips
    without one, or with an all-True one, which trains identically, hash as before the mask existed), in
    order."""
    from headflow.training.checkpoint import Fingerprint

    fp = Fingerprint()
    for c in clips:
        fp.update(c.clip_id).update(c.speaker)
        extra = () if c.inside is None or c.inside.all() else (c.inside,)
        for a in (c.frames, c.nmfc, c.masks, c.landmarks, c.valid, *extra):
            fp.update(np.ascontiguousarray(a))
    return fp.hexdigest()


def save_init(path: Path, params: Head2HeadFSParams, speakers: list[str], renderer: Renderer,
              discriminators: Discriminators, info: dict) -> str:
    """Write `init.pt` atomically; returns its sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"format": INIT_FORMAT, "params": to_dict(params), "speakers": list(speakers),
                "renderer": renderer.state_dict(), "discriminators": discriminators.state_dict(), "info": info}, tmp)
    os.replace(tmp, path)
    return file_sha256(path)


def load_init(path: Path, params: Head2HeadFSParams | None = None) -> tuple[Head2HeadFSParams, list[str], Renderer,
                                                                         Discriminators]:
    """The initialisation stage's networks from `init.pt`.

    Args:
        params: when given, the checkpoint's model must have its resolution and width (else ValueError naming both).

    Raises:
        FileNotFoundError: no file (run `dvc repro train_head2headfs`).
        ValueError: another layout, or another resolution / width than `params`.
    """
    from headflow.config import from_dict
    from headflow.generators.head2headfs.model import check_same_size

    state = load_export(path, INIT_FORMAT, "Head2HeadFS initialisation checkpoint", "run `dvc repro train_head2headfs`")
    saved = from_dict(Head2HeadFSParams, state["params"], "train_head2headfs")
    if params is not None:
        check_same_size(saved.model, params.model, str(path), "the train_head2headfs params")
    renderer = Renderer(saved.model)
    renderer.load_state_dict(state["renderer"])
    discs = Discriminators(saved, len(state["speakers"]))
    discs.load_state_dict(state["discriminators"])
    return saved, list(state["speakers"]), renderer, discs


def train_head2headfs(clips: list[Head2HeadClip], params: Head2HeadFSParams, out_dir: Path,
                      perceptual: torch.nn.Module, accelerator: str = "auto", progress: bool = True) -> dict[str, Any]:
    """Train the initialisation stage with the shared harness; export `out_dir/init.pt`.

    Args:
        clips: the training clips (identities = their speakers).
        params: the run's params.
        out_dir: `init/` (the harness's last.pt, history, samples, DVCLive) and `init.pt` go here.
        perceptual: a `PerceptualLoss` built for images in [-1, 1].

    Returns:
        {"history", "init", "init_sha256" (the file's; None off rank 0), "weights_sha256" (of the networks'
        tensors: equal for equal weights, unlike torch.save's bytes), "parameters_sha256" (parameters only, no
        buffers: equal on every DDP rank), "speakers", "perceptual"}.

    Raises:
        ClipError: no clip has a training window.
    """
    from headflow.generators.head2headfs.losses import InitialisationStep, loss_weights
    from headflow.training.loop import fit
    from headflow.training.runtime import launch

    out_dir = Path(out_dir)
    torch.set_num_threads(params.threads)
    rt = launch(params.seed, params.loop.precision, accelerator)
    speakers = sorted({c.speaker for c in clips})
    data = Head2HeadWindows(clips, speakers, params.discriminator, params.data.identity_frames,
                            params.data.samples_per_epoch, params.seed)
    renderer, discs = Renderer(params.model), Discriminators(params, len(speakers))
    step = InitialisationStep(params, renderer, discs, perceptual.to(rt.device))
    pname = getattr(perceptual, "name", "none")
    settings = {"params": {k: v for k, v in to_dict(params).items() if k not in ("loop", "threads")},
                "speakers": speakers, "perceptual": pname}
    fingerprint = data_fingerprint(clips)
    history = fit(rt, step, data, params.loop, out_dir / "init", loss_weights=loss_weights(params), settings=settings,
                  fingerprint=fingerprint, name="head2headfs init", progress=progress)
    sha = save_init(out_dir / "init.pt", params, speakers, renderer, discs,
                    {"perceptual": pname, "data": fingerprint}) if rt.is_main else None
    weights = state_sha256(renderer) + state_sha256(discs)
    # parameters alone: DDP keeps them equal on every rank; BatchNorm running statistics (buffers) follow each
    # rank's own last batches and rank 0's are the ones saved
    params_sha = state_sha256(torch.nn.ParameterList([*renderer.parameters(), *discs.parameters()]))
    return {"history": history, "init": out_dir / "init.pt", "init_sha256": sha, "speakers": speakers,
            "perceptual": pname, "weights_sha256": weights, "parameters_sha256": params_sha}


def run_stage(params: Head2HeadFSParams, progress: bool = True, accelerator: str = "auto", *,
              shards_path: Path | None = None, decisions_path: Path | None = None, labels_path: Path | None = None,
              out_dir: Path | None = None, model_dir: Path | None = None, metrics_path: Path | None = None,
              plot_path: Path | None = None) -> dict:
    """The `train_head2headfs` stage: every accepted training-split clip with an NMFC; clips that cannot train
    (no fit, frame counts that disagree, too short) are quarantine rows.

    Raises:
        headflow.manifest.quarantine.TooManyRejected: more than `data.max_reject_fraction` of the clips unusable.
    """
    from headflow.catalog import CATALOG
    from headflow.manifest import Quarantine, write_json
    from headflow.manifest.quarantine import check_accounting
    from headflow.perceptual_weights import perceptual_from_params
    from headflow.shards import accepted_clips
    from headflow.stage import Timer, finish_quarantine, write_metrics
    from headflow.generators.head2headfs.data import usable_starts

    shards_path = Path(shards_path or CATALOG.manifest("shards", "shards"))
    decisions_path = Path(decisions_path or CATALOG.manifest("sync_check", "clips"))
    labels_path = Path(labels_path or CATALOG.manifest("shard_labels", "shard_labels"))
    out_dir = Path(out_dir or CATALOG.folder(STAGE))
    model_dir = Path(model_dir or CATALOG.model(STAGE, "generator"))
    metrics_path = Path(metrics_path or CATALOG.metrics(STAGE))
    plot_path = Path(plot_path or CATALOG.plot(STAGE, "history"))

    torch.set_num_threads(params.threads)
    rows = accepted_clips(decisions_path, shards_path)
    rows = rows[rows.split == "train"]
    quarantine = Quarantine(STAGE)
    clips: list[Head2HeadClip] = []
    with Timer() as load_timer:
        for r in rows.itertuples():
            try:
                clip = load_clip(r.clip_id, params.model.image_size, params.masks, shards_path.parent,
                                 labels_path.parent, decisions=rows)
                if len(usable_starts(clip, params.discriminator.frames_needed)) == 0:
                    raise ClipError("too_short", f"{r.clip_id}: no {params.discriminator.frames_needed + 2} consecutive "
                                    "frames with a fit")
                clips.append(clip)
            except ClipError as err:
                quarantine.add(r.clip_id, err.reason_code, str(err), r.source_path)
    check_accounting(list(rows.clip_id), [c.clip_id for c in clips], [q["clip_id"] for q in quarantine.rows], STAGE)
    if not clips:
        finish_quarantine(quarantine, out_dir / "quarantine.parquet", len(rows), params.data.max_reject_fraction)
        raise ValueError(f"{STAGE}: none of {len(rows)} training clips can train")
    perceptual = perceptual_from_params(params.loss.perceptual_backend, input_range="[-1,1]")
    with Timer() as timer:
        result = train_head2headfs(clips, params, model_dir, perceptual, accelerator, progress)
    if result["init_sha256"] is None:
        return {}
    history = result["history"]
    metrics = {"n_clips": len(clips), "n_identities": len(result["speakers"]), "perceptual_backend": result["perceptual"],
               "epochs": len(history), "steps": int(history[-1]["step"]),
               "train_samples_per_s": float(np.mean([h["samples_per_s"] for h in history])),
               "data_wait_fraction": float(np.mean([h["data_wait_fraction"] for h in history])),
               "load_seconds": round(load_timer.seconds, 1), "train_seconds": round(timer.seconds, 1),
               "load_ms_per_frame": round(1000 * load_timer.seconds / max(1, sum(len(c.valid) for c in clips)), 2),
               "init_sha256": result["init_sha256"]}
    write_metrics(metrics_path, metrics)
    write_json([{k: h.get(k) for k in PLOTTED if k in h} for h in history], plot_path)
    finish_quarantine(quarantine, out_dir / "quarantine.parquet", len(rows), params.data.max_reject_fraction)
    return metrics
