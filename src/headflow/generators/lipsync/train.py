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
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate

from headflow.config import to_dict
from headflow.generators.lipsync.data import LipsyncClip, LipsyncWindows, ReferenceError, index_clip, prepare_batch
from headflow.generators.lipsync.model import LipsyncGenerator, file_sha256, save_generator
from headflow.generators.lipsync.params import LipsyncParams



def index_clips(clips: list[LipsyncClip], params: LipsyncParams) -> tuple[list, list[dict]]:
    """Index every clip for sampling; clips that cannot train become quarantine rows, never a crash.

    Returns:
        (indexes of the usable clips, quarantine rows {clip_id, stage, reason_code, message}).
    """
    indexes, rejected = [], []
    for clip in clips:
        try:
            indexes.append(index_clip(clip, params.data, params.seed))
        except ReferenceError as err:
            rejected.append({"clip_id": clip.clip_id, "stage": "train_lipsync", "reason_code": err.reason_code,
                             "message": str(err)})
    return indexes, rejected


def validation_batch(indexes: list, params: LipsyncParams, device: str | torch.device = "cpu") -> dict | None:
    """`val_windows` fixed windows of the validation clips, prepared with a fixed seed (None: no clips)."""
    if not indexes:
        return None
    ds = LipsyncWindows(indexes, params.data, params.val_windows, seed=params.seed + 7919)
    raw = default_collate([ds[i] for i in range(len(ds))])
    batch = prepare_batch(raw, params.data, torch.Generator().manual_seed(params.seed + 7919))
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


# ------------------------------------------------------------------------------------------- the run

def load_loss_expert(path: Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The frozen lip-sync expert of the sync loss, from a `train_expert` checkpoint (eval mode, no grads).

    Reads the training harness's checkpoint layout (settings.family.model = the `ExpertConfig`,
    networks.generator = the weights), as `headflow.sync.train.load_expert` does (a family may not
    import `sync/`; a test checks that both load the same network).

    Raises:
        FileNotFoundError: no file at `path` (the message says how to train one).
        ValueError: a checkpoint of another layout.
    """
    from headflow.nn.expert import ExpertConfig, SyncExpert
    from headflow.training.checkpoint import CheckpointError, load_checkpoint

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"lip-sync expert checkpoint {path} not found; train it with `dvc repro train_expert` "
                                "or set train_lipsync.expert to another checkpoint (or 'none': no sync loss)")
    try:
        state = load_checkpoint(path, device)
        model = SyncExpert(ExpertConfig(**state["settings"]["family"]["model"]))
        model.load_state_dict(state["networks"]["generator"])
    except (CheckpointError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a lip-sync expert checkpoint this version can load ({err}); retrain it "
                         "with `dvc repro train_expert`") from err
    return model.to(device).requires_grad_(False).eval()


def training_settings(params: LipsyncParams, expert_sha: str | None, perceptual: str, stage: int,
                      init_sha: str | None = None) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the params (but the loop, which the harness adds, and
    the thread count), the expert's and the perceptual network's identity, the stage and (stage 2) the
    stage-1 weights it starts from."""
    family = to_dict(params)
    for key in ("loop", "threads", "stage2_epochs" if stage == 1 else ""):
        family.pop(key, None)
    return {"params": family, "expert_sha256": expert_sha, "perceptual": perceptual, "stage": stage,
            "init_sha256": init_sha}


def _resumed_sync_on(out_dir: Path, settings: dict, loop, fingerprint: str) -> bool:
    """Whether the run that `fit` will resume had already switched the sync term on (so a resumed run
    trains like an uninterrupted one)."""
    from dataclasses import asdict

    from headflow.training.checkpoint import CheckpointError, load_checkpoint, resume_refusal
    from headflow.training.loop import MAY_CHANGE

    path = Path(out_dir) / "last.pt"
    if not path.exists():
        return False
    try:
        state = load_checkpoint(path)
    except CheckpointError:
        return False
    if resume_refusal(state, {"loop": asdict(loop), "family": settings}, fingerprint, MAY_CHANGE) is not None:
        return False
    return any(row.get("sync_on") == 1.0 for row in state.get("history", []))


def _state_sha(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(np.ascontiguousarray(v.detach().cpu().numpy()).tobytes())
    return h.hexdigest()


def train_lipsync(train_clips: list[LipsyncClip], val_clips: list[LipsyncClip], params: LipsyncParams, out_dir: Path,
                  expert: torch.nn.Module | None = None, expert_sha: str | None = None,
                  perceptual: torch.nn.Module | None = None, accelerator: str = "auto",
                  progress: bool = True) -> dict[str, Any]:
    """Train both stages with the shared harness; export `out_dir/generator.pt`.

    Args:
        train_clips, val_clips: the clips' arrays (speaker-disjoint splits).
        params: the run's `LipsyncParams`.
        out_dir: `stage1/` and `stage2/` (the harness's last.pt, best.pt, history, samples, dvclive) and
            the exported `generator.pt` go here.
        expert: the frozen loss expert (`load_loss_expert`), or None (no sync term).
        expert_sha: its checkpoint's sha256 (part of the resume settings).
        perceptual: a `PerceptualLoss`, or None (no perceptual term).
        accelerator: "auto" | "cpu" | "cuda".
        progress: progress bars.

    Returns:
        {"history": {"stage1": [...], "stage2": [...]}, "quarantine": rows, "generator": path,
         "generator_sha256": sha, "perceptual": backend name, "n_train_clips", "n_val_clips"}.

    Raises:
        ValueError: no usable training clip.
    """
    from headflow.generators.lipsync.losses import LipsyncGanStep, LipsyncStep, build_discriminator
    from headflow.training.loop import fit
    from headflow.training.runtime import launch

    out_dir = Path(out_dir)
    torch.set_num_threads(params.threads)
    rt = launch(params.seed, params.loop.precision, accelerator)
    train_ix, rejected = index_clips(train_clips, params)
    val_ix, rejected_val = index_clips(val_clips, params)
    if not train_ix:
        raise ValueError(f"train_lipsync: none of {len(train_clips)} training clips can give a window with "
                         f"references (reasons: {sorted({r['reason_code'] for r in rejected})})")
    fingerprint = data_fingerprint([ix.clip for ix in train_ix] + [ix.clip for ix in val_ix])
    data = LipsyncWindows(train_ix, params.data, params.samples_per_epoch, seed=params.seed)
    val_batch = validation_batch(val_ix, params, rt.device)
    if expert is not None:
        expert = expert.to(rt.device)
    if perceptual is not None:
        perceptual = perceptual.to(rt.device)
    pname = getattr(perceptual, "name", "none")
    generator = LipsyncGenerator(params.model)
    histories: dict[str, list] = {}

    step = LipsyncStep(params, generator, perceptual, expert, None, stage=1, val_batch=val_batch)
    settings = training_settings(params, expert_sha, pname, 1)
    step.sync_on = step.sync_on or _resumed_sync_on(out_dir / "stage1", settings, params.loop, fingerprint)
    histories["stage1"] = fit(rt, step, data, params.loop, out_dir / "stage1", loss_weights=step.weights(),
                              settings=settings, fingerprint=fingerprint, name="lipsync stage 1",
                              select=("val_l1_masked", "min") if val_batch is not None else None, progress=progress)
    sync_on = step.sync_on
    if params.stage2_epochs > 0:
        import dataclasses

        loop2 = dataclasses.replace(params.loop, epochs=params.stage2_epochs)
        disc = build_discriminator(params.discriminator)
        step = LipsyncGanStep(params, generator, disc, perceptual, expert, val_batch=val_batch)
        step.sync_on = sync_on
        settings = training_settings(params, expert_sha, pname, 2, _state_sha(generator))
        step.sync_on = step.sync_on or _resumed_sync_on(out_dir / "stage2", settings, loop2, fingerprint)
        histories["stage2"] = fit(rt, step, data, loop2, out_dir / "stage2", loss_weights=step.weights(),
                                  settings=settings, fingerprint=fingerprint, name="lipsync stage 2", progress=progress)
    sha = None
    if rt.is_main:
        sha = save_generator(generator, params, out_dir / "generator.pt",
                             {"perceptual": pname, "expert_sha256": expert_sha, "data": fingerprint})
    return {"history": histories, "quarantine": rejected + rejected_val, "generator": out_dir / "generator.pt",
            "generator_sha256": sha, "perceptual": pname, "n_train_clips": len(train_ix), "n_val_clips": len(val_ix)}


# ------------------------------------------------------------------------------------------- the stage

STAGE = "train_lipsync"
PLOTTED = ("epoch", "train_loss", "l1_masked", "perceptual", "sync", "mask_bce", "val_l1_masked", "val_sync",
           "gan_g", "gan_d", "r1")
"""History fields copied to the stage's plot file (per epoch, both stages in sequence)."""


def clip_from_shard(shard, audio_centre: str = "none") -> LipsyncClip:
    """A `LipsyncClip` from a `headflow.shards.ClipShard` read with views ("face96", "mel").

    Frames whose landmarks are not all finite count as invalid (the shards store NaN there).
    """
    from headflow.generators.lipsync.data import expert_mel

    face = shard.face96
    finite = np.isfinite(face.landmarks).all(axis=(1, 2))
    valid = np.asarray(shard.valid, bool) & finite
    landmarks = np.where(valid[:, None, None], np.nan_to_num(face.landmarks), 0).astype(np.float32)
    mel = np.asarray(shard.mel, np.float32)
    return LipsyncClip(shard.clip_id, face.pixels, landmarks, valid, mel, expert_mel(mel, audio_centre),
                       float(shard.fps), shard.speaker)


def resolve_expert(setting: str, expert_dir: Path) -> Path | None:
    """`params.expert` -> the checkpoint path ("trained": `expert_dir/best.pt`), or None for "none"."""
    if setting == "none":
        return None
    return Path(expert_dir) / "best.pt" if setting == "trained" else Path(setting)


def run_stage(params: LipsyncParams, progress: bool = True, accelerator: str = "auto", *,
              shards_path: Path | None = None, decisions_path: Path | None = None, expert_dir: Path | None = None,
              out_dir: Path | None = None, model_dir: Path | None = None, metrics_path: Path | None = None,
              plot_path: Path | None = None) -> dict:
    """The `train_lipsync` stage: train on the accepted shards of the train split, validate on val.

    Paths default to the catalog's (relative to the current folder, as DVC runs stages). Writes
    `model_dir/{stage1,stage2}/` (harness checkpoints, history, samples, DVCLive), `model_dir/generator.pt`,
    `out_dir/quarantine.parquet`, the metrics and the plotted history.

    Raises:
        headflow.manifest.quarantine.TooManyRejected: more than `max_reject_fraction` of the clips unusable.
        FileNotFoundError: the expert checkpoint is missing.
    """
    from headflow.catalog import CATALOG
    from headflow.manifest import Quarantine, write_json
    from headflow.manifest.quarantine import check_accounting
    from headflow.perceptual_weights import perceptual_from_params
    from headflow.generators.lipsync.losses import PERCEPTUAL_LAYERS
    from headflow.shards import accepted_clips, read_clip
    from headflow.stage import Timer, finish_quarantine, write_metrics

    shards_path = Path(shards_path or CATALOG.manifest("shards", "shards"))
    decisions_path = Path(decisions_path or CATALOG.manifest("sync_check", "clips"))
    expert_dir = Path(expert_dir or CATALOG.model("train_expert", "expert"))
    out_dir = Path(out_dir or CATALOG.folder(STAGE))
    model_dir = Path(model_dir or CATALOG.model(STAGE, "generator"))
    metrics_path = Path(metrics_path or CATALOG.metrics(STAGE))
    plot_path = Path(plot_path or CATALOG.plot(STAGE, "history"))

    torch.set_num_threads(params.threads)
    rows = accepted_clips(decisions_path, shards_path)
    rows = rows[rows.split.isin(["train", "val"])]
    expert_path = resolve_expert(params.expert, expert_dir)
    expert = load_loss_expert(expert_path) if expert_path is not None else None
    audio_centre = getattr(expert, "audio_centre", "none")
    by_split: dict[str, list[LipsyncClip]] = {"train": [], "val": []}
    for r in rows.itertuples():
        shard = read_clip(r.clip_id, ("face96", "mel"), root=shards_path.parent, decisions=rows)
        by_split[r.split].append(clip_from_shard(shard, audio_centre))
    perceptual = perceptual_from_params(params.loss.perceptual_backend, layer_weights=PERCEPTUAL_LAYERS)
    with Timer() as timer:
        result = train_lipsync(by_split["train"], by_split["val"], params, model_dir, expert=expert,
                               expert_sha=file_sha256(expert_path) if expert_path is not None else None,
                               perceptual=perceptual, accelerator=accelerator, progress=progress)
    if result["generator_sha256"] is None:          # not rank 0 under torchrun: rank 0 writes
        return {}
    quarantine = Quarantine(STAGE)
    source = dict(zip(rows.clip_id, rows.source_path))
    for q in result["quarantine"]:
        quarantine.add(q["clip_id"], q["reason_code"], q["message"], source.get(q["clip_id"], ""))
    used = [c.clip_id for c in by_split["train"] + by_split["val"] if c.clip_id not in {q["clip_id"] for q in quarantine.rows}]
    check_accounting(list(rows.clip_id), used, [q["clip_id"] for q in quarantine.rows], STAGE)
    n1 = len(result["history"]["stage1"])
    history = [dict(h, stage=1) for h in result["history"]["stage1"]] + \
              [dict(h, stage=2, epoch=h["epoch"] + n1) for h in result["history"].get("stage2", [])]
    last = history[-1]
    metrics = {
        "n_train_clips": result["n_train_clips"], "n_val_clips": result["n_val_clips"],
        "perceptual_backend": result["perceptual"], "expert": str(expert_path) if expert_path else "none",
        "epochs_stage1": len(result["history"]["stage1"]), "epochs_stage2": len(result["history"].get("stage2", [])),
        "steps": int(last["step"]) + (int(result["history"]["stage1"][-1]["step"]) if last.get("stage") == 2 else 0),
        "val_l1_masked": last.get("val_l1_masked"), "val_sync": last.get("val_sync"),
        "sync_on": bool(last.get("sync_on", 0.0)),
        "train_samples_per_s": float(np.mean([h["samples_per_s"] for h in history])),
        "data_wait_fraction": float(np.mean([h["data_wait_fraction"] for h in history])),
        "train_seconds": round(timer.seconds, 1), "generator_sha256": result["generator_sha256"],
    }
    write_metrics(metrics_path, metrics)
    # every row has every key (null where a stage has no such term: stage 1 has no gan_g / gan_d / r1): DVC's
    # plot renderer drops the whole plot when rows' keys differ ("argument of type 'NoneType' is not iterable")
    write_json([{k: h.get(k) for k in (*PLOTTED, "stage")} for h in history], plot_path)
    finish_quarantine(quarantine, out_dir / "quarantine.parquet", len(rows), params.max_reject_fraction)
    return metrics
