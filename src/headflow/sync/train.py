"""Train the lip-sync expert: seeded, resumable, CPU/CUDA, one script for torchrun (DDP) too.

    python -m stages.train_expert                                 # CPU or one GPU
    torchrun --nproc_per_node=4 -m stages.train_expert            # DDP; rank 0 logs and checkpoints

DDP is detected from the environment (WORLD_SIZE, RANK, LOCAL_RANK) as in nanoGPT. Each rank draws
the indices i with i % world_size == rank of a per-epoch permutation, so the union of all ranks'
batches is the same set of samples whatever the world size.

Wav2Lip users report the expert sitting at loss ln 2 = 0.693 for days: the embeddings collapse to
"always 0.5". The loop watches the running training loss and warns once it has stayed within
`stall_tolerance` of ln 2 for `stall_steps` steps after warm-up, with what usually helps.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from headflow.sync.data import Augment, ClipArrays, SyncPairs, augment_batch, prepare_clip, to_float, warp_mel
from headflow.nn.expert import GREY_INPUTS, ExpertConfig, SyncExpert, sync_loss, sync_probability

log = logging.getLogger("headflow.expert")
LN2 = math.log(2)
STALL_ADVICE = ("lower the learning rate (1e-4 or below) or lengthen the warm-up; keep batches balanced "
                "(half positives) with enough other-clip negatives; check that face and audio windows "
                "are aligned (a constant offset in the data makes sync unlearnable)")


@dataclass
class TrainConfig:
    model: ExpertConfig = field(default_factory=ExpertConfig)
    epochs: int = 10
    samples_per_epoch: int = 4096
    val_samples: int = 1024
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 50
    lr_schedule: str = "constant"
    min_shift: int = 5
    other_clip_fraction: float = 0.5
    augment: bool = True
    augment_rotate_deg: float = 15.0
    augment_scale: float = 0.15
    augment_shift: float = 0.1
    augment_mel_warp: float = 0.0
    num_workers: int = 0
    seed: int = 0
    stall_steps: int = 200
    stall_tolerance: float = 0.01


def config_from(params) -> "TrainConfig":
    """TrainConfig (and its ExpertConfig) from any object with same-named fields (the stage's params).

    Copies every field the two dataclasses share by name, so a new setting cannot be forgotten.
    """
    from dataclasses import fields

    def pick(cls):
        return {f.name: getattr(params, f.name) for f in fields(cls) if hasattr(params, f.name) and f.name != "model"}

    return TrainConfig(model=ExpertConfig(**pick(ExpertConfig)), **pick(TrainConfig))


class RankSampler(Sampler[int]):
    """A seeded per-epoch permutation, split across DDP ranks."""

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1):
        self.n, self.seed, self.rank, self.world, self.epoch = n, seed, rank, world, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        perm = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        return iter(perm[self.rank::self.world].tolist())

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world))


def distributed() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun's environment; (0, 0, 1) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    return int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world


def _lr(step: int, cfg: TrainConfig, total_steps: int) -> float:
    """Linear warm-up, then constant or cosine decay (to 5% of `lr` at the last step)."""
    warm = min(1.0, (step + 1) / max(cfg.warmup_steps, 1))
    if cfg.lr_schedule == "constant":
        return cfg.lr * warm
    if cfg.lr_schedule != "cosine":
        raise ValueError(f"unknown lr_schedule {cfg.lr_schedule!r} (constant or cosine)")
    t = min(1.0, max(0, step - cfg.warmup_steps) / max(total_steps - cfg.warmup_steps, 1))
    return cfg.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def _augment_generator(cfg: TrainConfig, step: int, rank: int) -> torch.Generator:
    """The augmentation draws of one step: a function of (seed, step, rank), so resuming repeats them."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([cfg.seed, step, rank]).generate_state(1)[0]))


@torch.no_grad()
def evaluate(model: SyncExpert, data: SyncPairs, batch_size: int, device: str) -> dict:
    """Loss and balanced accuracy (threshold 0.5) on a fixed set of pairs."""
    model.eval()
    probs, labels = [], []
    for face, mel, y in DataLoader(data, batch_size=batch_size):
        fe, ae = model(to_float(face.to(device)), mel.to(device))
        probs.append(sync_probability(fe, ae).cpu())
        labels.append(y)
    p, y = torch.cat(probs), torch.cat(labels)
    loss = torch.nn.functional.binary_cross_entropy(p, y.float()).item()
    pred = p > 0.5
    tpr = (pred & (y > 0.5)).sum().item() / max((y > 0.5).sum().item(), 1)
    tnr = (~pred & (y < 0.5)).sum().item() / max((y < 0.5).sum().item(), 1)
    return {"loss": loss, "balanced_accuracy": 0.5 * (tpr + tnr), "tpr": tpr, "tnr": tnr}


def train_expert(train_clips: list[ClipArrays], val_clips: list[ClipArrays], cfg: TrainConfig, out_dir: Path,
                 device: str | None = None, progress: bool = True) -> list[dict]:
    """Train (or resume from `out_dir/last.pt`) and return the per-epoch history.

    Writes (rank 0): `last.pt` every epoch, `best.pt` at the best validation balanced accuracy,
    `history.json` (per-epoch train/val loss and accuracy, data-wait fraction, samples/s).
    """
    rank, local_rank, world = distributed()
    device = device or (f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(cfg.seed)
    model = SyncExpert(cfg.model).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    out_dir.mkdir(parents=True, exist_ok=True)
    history: list[dict] = []
    start_epoch, step = 0, 0
    ckpt = out_dir / "last.pt"
    state = torch.load(ckpt, map_location=device, weights_only=False) if ckpt.exists() else None
    data_id = data_fingerprint(train_clips, val_clips)
    if state is not None and not _same_run(state["config"], asdict(cfg)):
        log.warning("%s was trained with other settings; starting afresh (delete it to silence this)", ckpt)
        state = None
    if state is not None and state.get("data") != data_id:
        # DVC keeps the checkpoint folder (persist: true) so that an interrupted run resumes; a new
        # corpus must not continue a model trained on the old one.
        log.warning("%s was trained on other clips or crops; starting afresh", ckpt)
        state = None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_epoch, step, history = state["epoch"] + 1, state["step"], state["history"]
        torch.set_rng_state(state["torch_rng"])
        log.info("resumed from %s at epoch %d (step %d)", ckpt, start_epoch, step)
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    train_clips = [prepare_clip(model, c) for c in train_clips]   # whole-clip centring, as the scorer does
    val_clips = [prepare_clip(model, c) for c in val_clips]
    train_data = SyncPairs(train_clips, cfg.samples_per_epoch, cfg.seed, cfg.min_shift, cfg.other_clip_fraction)
    val_data = SyncPairs(val_clips, cfg.val_samples, cfg.seed + 1, cfg.min_shift, cfg.other_clip_fraction)
    sampler = RankSampler(len(train_data), cfg.seed, rank, world)
    loader = DataLoader(train_data, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
                        drop_last=True, persistent_workers=cfg.num_workers > 0)
    total_steps = cfg.epochs * len(loader)   # the cosine schedule spans `epochs` (a resume with more epochs stretches it)
    aug = Augment(rotate_deg=cfg.augment_rotate_deg, scale=cfg.augment_scale, shift=cfg.augment_shift)
    recent: list[float] = []
    stall_warned = False
    best = max((h["val_balanced_accuracy"] for h in history), default=-1.0)
    for epoch in range(start_epoch, cfg.epochs):
        train_data.set_epoch(epoch)
        sampler.set_epoch(epoch)
        net.train()
        losses, wait, aug_s, t_epoch = [], 0.0, 0.0, time.perf_counter()
        t_ready = time.perf_counter()
        bar = tqdm(loader, desc=f"expert epoch {epoch + 1}/{cfg.epochs}", disable=not progress or rank != 0,
                   leave=False)
        for face, mel, y in bar:
            wait += time.perf_counter() - t_ready
            for g in opt.param_groups:
                g["lr"] = _lr(step, cfg, total_steps)
            t_aug = time.perf_counter()
            face = to_float(face.to(device))
            if cfg.augment:
                gen = _augment_generator(cfg, step, rank)
                face = augment_batch(face, gen, aug, colour=cfg.model.face_input not in GREY_INPUTS)
                mel = warp_mel(mel, gen, cfg.augment_mel_warp)
            aug_s += time.perf_counter() - t_aug
            fe, ae = net(face, mel.to(device))
            loss = sync_loss(fe, ae, y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            losses.append(loss.item())
            recent = (recent + [losses[-1]])[-cfg.stall_steps:]
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
            if (not stall_warned and step > cfg.warmup_steps and len(recent) == cfg.stall_steps
                    and abs(np.mean(recent) - LN2) < cfg.stall_tolerance):
                log.warning("expert training looks stalled: mean loss %.4f ~ ln 2 over the last %d steps "
                            "(the embeddings predict 0.5 for everything). %s", np.mean(recent), cfg.stall_steps,
                            STALL_ADVICE)
                stall_warned = True
            t_ready = time.perf_counter()
        elapsed = time.perf_counter() - t_epoch
        val = evaluate(model, val_data, cfg.batch_size, device) if rank == 0 else {}
        n_seen = len(losses) * cfg.batch_size * world
        row = {"epoch": epoch + 1, "step": step, "train_loss": float(np.mean(losses)) if losses else float("nan"),
               "val_loss": val.get("loss"), "val_balanced_accuracy": val.get("balanced_accuracy"),
               "val_tpr": val.get("tpr"), "val_tnr": val.get("tnr"),
               "samples_per_s": n_seen / elapsed, "data_wait_fraction": wait / elapsed,
               "augment_fraction": aug_s / elapsed, "stalled": stall_warned}
        history.append(row)
        if rank == 0:
            log.info("epoch %d: train loss %.4f, val loss %.4f, val balanced acc %.3f, %.0f samples/s, data wait %.1f%%",
                     epoch + 1, row["train_loss"], row["val_loss"], row["val_balanced_accuracy"],
                     row["samples_per_s"], 100 * row["data_wait_fraction"])
            state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch, "step": step,
                     "history": history, "torch_rng": torch.get_rng_state(), "config": asdict(cfg),
                     "data": data_id}
            _atomic_save(state, ckpt)
            if row["val_balanced_accuracy"] > best:
                best = row["val_balanced_accuracy"]
                _atomic_save(state, out_dir / "best.pt")
            tmp = out_dir / ".history.json.tmp"
            tmp.write_text(json.dumps(history, indent=2))
            os.replace(tmp, out_dir / "history.json")
    return history


def data_fingerprint(train_clips: list[ClipArrays], val_clips: list[ClipArrays]) -> str:
    """Hash of the training and validation clips (ids, speakers, crops, mels, valid masks) in order.

    Stored in each checkpoint: a run resumes only on the data it was trained on.
    """
    h = hashlib.blake2b(digest_size=16)
    for part, clips in (("train", train_clips), ("val", val_clips)):
        h.update(part.encode())
        for c in clips:
            h.update(f"{c.clip_id}|{c.speaker}|{c.fps}|{c.mouths.shape}|{c.mel.shape}".encode())
            for arr in (c.mouths, c.mel, c.valid):
                if arr is not None:
                    h.update(np.ascontiguousarray(arr).data)
    return h.hexdigest()


def _same_run(saved: dict, current: dict) -> bool:
    """A checkpoint resumes a run when every setting but the number of epochs matches."""
    ignore = {"epochs", "num_workers"}
    return {k: v for k, v in saved.items() if k not in ignore} == {k: v for k, v in current.items() if k not in ignore}


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_expert(path: Path, device: str = "cpu") -> SyncExpert:
    """A trained expert from a checkpoint written by `train_expert`."""
    if not Path(path).exists():
        raise FileNotFoundError(f"expert checkpoint {path} not found; train it with `dvc repro train_expert`")
    state = torch.load(path, map_location=device, weights_only=False)
    cfg = state["config"]["model"]
    model = SyncExpert(ExpertConfig(**cfg)).to(device)
    model.load_state_dict(state["model"])
    return model.eval()
