"""The training loop every model family shares: explicit, on Lightning Fabric (no LightningModule).

The step contract (DESIGN.md, "Generators"): a family hands `fit` a small object (`TrainStep`)
with its networks and methods that return *named, unweighted* loss terms; the harness weights them
by name, sums, steps the optimisers and does everything else:

    step.generator                      the network `g_losses` trains (a non-adversarial family's only one)
    step.g_losses(batch) -> {name: scalar tensor}
    step.discriminator   (optional)     the network `d_losses` trains
    step.d_losses(batch) -> {name: scalar tensor}     make fakes under `torch.no_grad()` (DDP)
    step.d_real_logits(batch) -> (real, logits)       for R1: `real` made to require grad before D saw it
    step.prepare(batch, generator) -> batch           per-step work on the device batch (augmentation),
                                                      drawing only from `generator`: (seed, step, rank)
    step.evaluate(network) -> {name: float}           after each epoch, rank 0, on the EMA copy if any
    step.samples(batch, network) -> images (n, c, h, w) in [0, 1]   a PNG grid per epoch
    step.stall: StallRule                             the loss value that means "learned nothing"
    step.forward_methods: tuple[str, ...]             methods of `generator` the step calls in place of
                                                      its forward (e.g. an encoder and a decoder); the
                                                      harness marks them (Fabric `mark_forward_method`)
                                                      so that under DDP they run through DDP's forward:
                                                      a bare method call skips the gradient all-reduce

Each optimiser step: `prepare`, then (with a discriminator) one D update on the weighted sum of
`d_losses`, every `r1_every` steps one more D update on R1 (lazy regularisation), then one G
update on the weighted sum of `g_losses`, then the EMA update. `loss_weights` must name exactly the
terms the family returns (plus "r1" when R1 is on): a missing or extra name is an error naming
both sets. Every term is logged under its own name (per-epoch means), with `train_loss` (G's
weighted sum) and `d_loss` (D's).

Each epoch: evaluate, checkpoint (`last.pt`; `best.pt` at the best value of the selection metric),
the JSON history, DVCLive, the sample grid. A run resumes from `last.pt` only when settings and
data fingerprint match (`headflow.training.checkpoint`); resumed and uninterrupted runs give the
same weights (see `headflow.training.runtime` for the seeding that makes this hold).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from time import perf_counter
from typing import Any, Literal, Protocol

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from headflow.training.checkpoint import save_checkpoint, try_resume
from headflow.training.ema import EMA
from headflow.training.logging import RunLog, progress_bar, write_history
from headflow.training.config import LoopConfig
from headflow.training.runtime import Runtime
from headflow.training.sampler import RankSampler
from headflow.training.samples import save_grid
from headflow.training.schedule import lr_factor
from headflow.training.stall import StallRule, StallWatch
from headflow.training.terms import check_all_weighted, r1_penalty, weighted_sum

log = logging.getLogger("headflow.training")

__all__ = ["LoopConfig", "TrainStep", "fit", "r1_penalty", "ROW_KEYS", "MAY_CHANGE"]

ROW_KEYS = ("epoch", "step", "train_loss", "d_loss", "lr", "samples_per_s", "data_wait_fraction",
            "prepare_fraction", "seconds", "stalled")
"""History fields the harness writes itself; loss terms and evaluation metrics may not reuse them."""

MAY_CHANGE = ("loop.epochs", "loop.num_workers", "loop.max_minutes", "loop.stop_epoch", "loop.sync_batchnorm")
"""Settings a resumed run may change: train longer, load data with more or fewer workers, another time budget,
and SyncBatchNorm under multi-GPU DDP (which also lets checkpoints from before that setting resume)."""


class TrainStep(Protocol):
    """What a family gives `fit` (the required part; see the module docstring for the optional one)."""

    generator: nn.Module

    def g_losses(self, batch: Any) -> dict[str, torch.Tensor]: ...


def _optimizer(params, cfg: LoopConfig, lr: float) -> torch.optim.Optimizer:
    cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


def sync_batchnorm_applies(cfg: LoopConfig, world_size: int, device_type: str) -> bool:
    """Whether `fit` converts BatchNorm to SyncBatchNorm: `cfg.sync_batchnorm`, more than one process, and
    CUDA (PyTorch's SyncBatchNorm has no CPU kernel)."""
    return bool(cfg.sync_batchnorm) and world_size > 1 and device_type == "cuda"


class _Trainer:
    """The networks and optimisers of one `fit` call (set up with Fabric) and one optimiser step."""

    def __init__(self, rt: Runtime, step: Any, cfg: LoopConfig, weights: dict[str, float], name: str):
        self.rt, self.step, self.cfg, self.weights = rt, step, cfg, weights
        self.G: nn.Module = step.generator
        self.D: nn.Module | None = getattr(step, "discriminator", None)
        self.d_losses: Callable | None = getattr(step, "d_losses", None)
        if (self.D is None) != (self.d_losses is None):
            raise ValueError(f"{name}: a step object needs both `discriminator` and `d_losses`, or neither")
        self.use_r1 = "r1" in weights
        if self.use_r1 and (self.D is None or not hasattr(step, "d_real_logits")):
            raise ValueError(f"{name}: loss_weights has 'r1' but the step has no discriminator or no d_real_logits")
        self.prepare = getattr(step, "prepare", None)
        if sync_batchnorm_applies(cfg, rt.world_size, rt.device.type):
            for net in (self.G, self.D):
                if net is not None and not isinstance(net, nn.modules.batchnorm._BatchNorm):
                    nn.SyncBatchNorm.convert_sync_batchnorm(net)    # replaces the BN children in place
        self.G_run, self.g_opt = rt.fabric.setup(self.G, _optimizer(self.G.parameters(), cfg, cfg.lr))
        for method in getattr(step, "forward_methods", ()):
            self.G_run.mark_forward_method(method)      # through DDP's forward (module docstring)
        if self.D is not None:
            self.D_run, self.d_opt = rt.fabric.setup(self.D, _optimizer(self.D.parameters(), cfg, cfg.d_lr or cfg.lr))
        self.ema = EMA(self.G, cfg.ema_decay) if cfg.ema_decay > 0 else None
        rule: StallRule | None = getattr(step, "stall", None)
        self.stall = StallWatch(rule, cfg.stall_steps, cfg.stall_tolerance, cfg.warmup_steps, name) if rule else None
        self.names_checked = False

    def _pairs(self) -> list[tuple[str, nn.Module, torch.optim.Optimizer]]:
        return [("generator", self.G, self.g_opt)] + ([("discriminator", self.D, self.d_opt)] if self.D is not None else [])

    def state_dict(self) -> dict[str, Any]:
        """Networks (the original modules, not the wrappers), optimisers, EMA, stall watch."""
        return {"networks": {k: net.state_dict() for k, net, _ in self._pairs()},
                "optimizers": {k: opt.state_dict() for k, _, opt in self._pairs()},
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "stall": self.stall.state_dict() if self.stall is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, net, opt in self._pairs():
            net.load_state_dict(state["networks"][key])
            opt.load_state_dict(state["optimizers"][key])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        if self.stall is not None and state.get("stall"):
            self.stall.load_state_dict(state["stall"])

    def train_mode(self) -> None:
        """Wrapped networks in training mode, and on the step object while the loop runs."""
        self.G_run.train()
        self.step.generator = self.G_run
        if self.D is not None:
            self.D_run.train()
            self.step.discriminator = self.D_run

    def restore(self) -> None:
        """Give the step object its original networks back."""
        self.step.generator = self.G
        if self.D is not None:
            self.step.discriminator = self.D

    def optimise(self, batch: Any, steps: int, lr_scale: float, sums: dict, counts: dict) -> torch.Tensor:
        """One D update (+ R1 every `r1_every` steps) and one G update on `batch`; returns G's total."""
        cfg, fabric = self.cfg, self.rt.fabric
        seen: set[str] = set()
        if self.D is not None:
            for group in self.d_opt.param_groups:
                group["lr"] = (cfg.d_lr or cfg.lr) * lr_scale
            terms = self.d_losses(batch)
            d_total = weighted_sum("d_losses", terms, self.weights)
            self.d_opt.zero_grad(set_to_none=True)
            fabric.backward(d_total)
            self.d_opt.step()
            _record(sums, counts, terms, "d_loss", d_total)
            seen |= set(terms)
            if self.use_r1 and steps % cfg.r1_every == 0:
                real, logits = self.step.d_real_logits(batch)
                r1 = r1_penalty(real, logits)
                self.d_opt.zero_grad(set_to_none=True)
                # + 0 x logits: D's last bias does not change dD/dx, yet DDP needs every parameter in the
                # graph (rosinality's stylegan2-pytorch `train.py` does the same).
                fabric.backward(self.weights["r1"] * cfg.r1_every * r1 + 0.0 * logits.sum())
                self.d_opt.step()
                _record(sums, counts, {"r1": r1}, None, None)
        for group in self.g_opt.param_groups:
            group["lr"] = cfg.lr * lr_scale
        terms = self.step.g_losses(batch)
        g_total = weighted_sum("g_losses", terms, self.weights)
        self.g_opt.zero_grad(set_to_none=True)
        fabric.backward(g_total)
        self.g_opt.step()
        if self.ema is not None:
            self.ema.update(self.G)
        _record(sums, counts, terms, "train_loss", g_total)
        if not self.names_checked:
            check_all_weighted(seen | set(terms) | ({"r1"} if self.use_r1 else set()), self.weights, ROW_KEYS)
            self.names_checked = True
        return g_total


def fit(rt: Runtime, step: TrainStep, train_data: Dataset, cfg: LoopConfig, out_dir: Path, *,
        loss_weights: dict[str, float], settings: dict[str, Any], fingerprint: str,
        may_change: tuple[str, ...] = MAY_CHANGE, select: tuple[str, Literal["max", "min"]] | None = None,
        live_dir: Path | None | Literal["default"] = "default", name: str = "training",
        progress: bool = True) -> list[dict[str, Any]]:
    """Train `step`'s networks for `cfg.epochs` epochs (resuming from `out_dir/last.pt` if allowed).

    Args:
        rt: the launched runtime (`headflow.training.runtime.launch`, called before the networks
            were built, so that their initial weights are seeded).
        step: the family's step object (see the module docstring).
        train_data: map-style dataset; batches are collated by the default collate and moved to
            the device. Its `set_epoch(epoch)` is called before each epoch when it has one.
        cfg: the loop settings.
        out_dir: where `last.pt`, `best.pt`, `history.json`, `samples/` and `dvclive/` go (rank 0).
        loss_weights: weight of every loss term by name ("r1" turns lazy R1 on).
        settings: the family's settings as plain data (model sizes, data options...). The checkpoint
            stores {"loop": asdict(cfg), "family": settings}; a checkpoint resumes only if both
            match, except the dotted names in `may_change`.
        fingerprint: digest of the training data (`checkpoint.Fingerprint`).
        may_change: settings that may differ on resume (default: MAY_CHANGE).
        select: (metric, "max" | "min"): write `best.pt` when `evaluate`'s metric improves.
        live_dir: DVCLive folder; "default" = `out_dir/dvclive`; None = no DVCLive.
        name: what is training, in progress bars and log lines ("expert").
        progress: show a tqdm bar per epoch (rank 0).

    Returns:
        The history: one dict per epoch completed in this run *and* the runs it resumed, with the
        fields of `ROW_KEYS`, one mean per loss term and `evaluate`'s metrics.

    Raises:
        ValueError: inconsistent step object, loss names that do not match `loss_weights`, a
            dataset too small for one batch, settings out of range.
    """
    cfg.validate()
    out_dir = Path(out_dir)
    evaluate = getattr(step, "evaluate", None)
    make_samples = getattr(step, "samples", None)
    if select is not None and (evaluate is None or select[1] not in ("max", "min")):
        raise ValueError(f"{name}: select={select!r} needs a step with `evaluate` and a mode 'max' or 'min'")
    run = _Trainer(rt, step, cfg, {str(k): float(v) for k, v in loss_weights.items()}, name)

    full_settings = {"loop": asdict(cfg), "family": settings}
    state = try_resume(out_dir / "last.pt", full_settings, fingerprint, may_change, map_location=rt.device,
                       quiet=not rt.is_main)
    start_epoch, steps, history, best = 0, 0, [], None
    if state is not None:
        run.load_state_dict(state)
        start_epoch, steps, history, best = state["epoch"], state["step"], list(state["history"]), state["best"]
        if rt.is_main:
            log.info("%s: resumed from %s after epoch %d (step %d)", name, out_dir / "last.pt", start_epoch, steps)

    sampler = RankSampler(len(train_data), cfg.seed, rt.rank, rt.world_size)
    loader = DataLoader(train_data, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
                        drop_last=True)   # no persistent workers: each epoch's workers see set_epoch
    per_epoch = len(loader)
    if per_epoch == 0:
        raise ValueError(f"{name}: {len(train_data)} training samples over {rt.world_size} process(es) give no "
                         f"full batch of {cfg.batch_size}; lower loop.batch_size or add data")
    total_steps = cfg.epochs * per_epoch
    set_epoch = getattr(train_data, "set_epoch", None)
    sample_batch = None
    if make_samples is not None and rt.is_main:
        sampler.set_epoch(0)
        if set_epoch:
            set_epoch(0)
        sample_batch = rt.fabric.to_device(next(iter(loader)))   # the same batch every epoch and on resume

    if rt.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    runlog = RunLog.open(out_dir / "dvclive" if live_dir == "default" else live_dir, resume=state is not None,
                         settings=full_settings) if rt.is_main else RunLog(None)
    t_fit = perf_counter()
    try:
        for epoch in range(start_epoch, cfg.epochs):
            rt.seed_epoch(epoch)
            sampler.set_epoch(epoch)
            if set_epoch:
                set_epoch(epoch)
            run.train_mode()
            sums: dict[str, float] = defaultdict(float)
            counts: dict[str, int] = defaultdict(int)
            wait = prep = 0.0
            lr = cfg.lr
            t_epoch = t_ready = perf_counter()
            bar = progress_bar(loader, f"{name} epoch {epoch + 1}/{cfg.epochs}", progress and rt.is_main)
            for batch in bar:
                wait += perf_counter() - t_ready
                scale = lr_factor(steps, cfg.warmup_steps, total_steps, cfg.lr_schedule, cfg.min_lr_fraction,
                                  cfg.anneal_fraction)
                lr = cfg.lr * scale
                t_prep = perf_counter()
                batch = rt.fabric.to_device(batch)
                if run.prepare is not None:
                    batch = run.prepare(batch, rt.step_generator(steps))
                prep += perf_counter() - t_prep
                g_total = run.optimise(batch, steps, scale, sums, counts)
                steps += 1
                if run.stall is not None:
                    run.stall.update(steps, float(g_total.detach()))
                bar.set_postfix(loss=f"{sums['train_loss'] / counts['train_loss']:.3f}")
                t_ready = perf_counter()
            elapsed = perf_counter() - t_epoch
            row = _epoch_row(rt, epoch, steps, sums, counts, lr, elapsed, wait, prep, cfg, per_epoch, run.stall)
            network = run.ema.module if run.ema is not None else run.G
            if evaluate is not None and rt.is_main:
                metrics = {k: float(v) for k, v in evaluate(network).items()}
                clash = set(metrics) & set(row)
                if clash:
                    raise ValueError(f"evaluate returned {sorted(clash)}, which clash with history fields; rename them")
                row.update(metrics)
            row = rt.broadcast(row)
            history.append(row)
            improved = False
            if select is not None:
                value = row.get(select[0])
                if value is None:
                    raise ValueError(f"{name}: select metric {select[0]!r} is not in the history row {sorted(row)}")
                improved = best is None or (value > best if select[1] == "max" else value < best)
                best = value if improved else best
            if rt.is_main:
                state = {"settings": full_settings, "data": fingerprint, "epoch": epoch + 1, "step": steps,
                         **run.state_dict(), "history": history, "best": best}
                save_checkpoint(state, out_dir / "last.pt")
                if improved:
                    save_checkpoint(state, out_dir / "best.pt")
                write_history(history, out_dir / "history.json")
                _log_epoch(name, cfg, row)
                runlog.epoch(epoch, row)
                if sample_batch is not None:
                    with torch.no_grad():
                        images = make_samples(sample_batch, network)
                    picture = save_grid(images, out_dir / "samples" / f"epoch_{epoch + 1:03d}.png")
                    runlog.image(f"samples/epoch_{epoch + 1:03d}.png", picture)
            rt.barrier()
            if cfg.stop_epoch is not None and cfg.stop_epoch <= epoch + 1 < cfg.epochs:
                if rt.is_main:
                    log.info("%s: loop.stop_epoch=%d reached (the schedule spans %d epochs); stopping here",
                             name, cfg.stop_epoch, cfg.epochs)
                break
            if cfg.max_minutes is not None and epoch + 1 < cfg.epochs and \
                    rt.broadcast(perf_counter() - t_fit) > 60.0 * cfg.max_minutes:   # rank 0's clock decides
                if rt.is_main:
                    log.warning("%s: loop.max_minutes=%g reached after epoch %d of %d (step %d); stopping here",
                                name, cfg.max_minutes, epoch + 1, cfg.epochs, steps)
                break
    finally:
        run.restore()
        runlog.close()
    return history


def _record(sums: dict, counts: dict, terms: dict[str, torch.Tensor], total_name: str | None,
            total: torch.Tensor | None) -> None:
    for key, value in terms.items():
        sums[key] += float(value.detach())
        counts[key] += 1
    if total_name is not None:
        sums[total_name] += float(total.detach())
        counts[total_name] += 1


def _epoch_row(rt: Runtime, epoch: int, steps: int, sums: dict, counts: dict, lr: float, elapsed: float,
               wait: float, prep: float, cfg: LoopConfig, per_epoch: int, stall: StallWatch | None) -> dict:
    """The epoch's history row; loss means over all ranks' steps (an all-reduce under DDP)."""
    names = sorted(sums)
    if rt.world_size > 1:
        packed = torch.tensor([[sums[k], counts[k]] for k in names], dtype=torch.float64, device=rt.device)
        packed = rt.fabric.all_reduce(packed, reduce_op="sum")
        sums = {k: float(packed[i, 0]) for i, k in enumerate(names)}
        counts = {k: float(packed[i, 1]) for i, k in enumerate(names)}
    mean = {k: sums[k] / counts[k] if counts[k] else math.nan for k in names}
    row = {"epoch": epoch + 1, "step": steps, "train_loss": mean.pop("train_loss", math.nan)}
    if "d_loss" in mean:
        row["d_loss"] = mean.pop("d_loss")
    row.update(mean)
    row.update({"lr": lr, "samples_per_s": per_epoch * cfg.batch_size * rt.world_size / elapsed,
                "data_wait_fraction": wait / elapsed, "prepare_fraction": prep / elapsed, "seconds": elapsed,
                "stalled": bool(stall.fired) if stall is not None else False})
    return row


def _log_epoch(name: str, cfg: LoopConfig, row: dict) -> None:
    skip = set(ROW_KEYS)
    extra = ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k not in skip and isinstance(v, float))
    log.info("%s epoch %d/%d: train loss %.4f%s%s, %.0f samples/s, data wait %.1f%%", name, row["epoch"],
             cfg.epochs, row["train_loss"], f", d loss {row['d_loss']:.4f}" if "d_loss" in row else "",
             f", {extra}" if extra else "", row["samples_per_s"], 100 * row["data_wait_fraction"])
