"""`LoopConfig`: the settings of the shared training loop (torch-free: params loading imports it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from headflow.checks import require

Precision = Literal["32-true", "16-mixed", "bf16-mixed", "bf16-true"]
Schedule = Literal["constant", "cosine", "linear_tail"]


@dataclass
class LoopConfig:
    """Settings of the shared loop, embedded in a family's params block (e.g. `train_expert.loop`)."""

    epochs: int
    """Passes over the training set. A resume may raise it (the cosine schedule then stretches)."""
    batch_size: int
    """Samples per optimiser step, per process (under torchrun the global batch is this x ranks)."""
    lr: float
    """Peak learning rate (after warm-up) of the generator's optimiser (the only one without a D)."""
    warmup_steps: int = 0
    """Linear learning-rate warm-up, in optimiser steps (0 = none)."""
    lr_schedule: Schedule = "constant"
    """After warm-up: "constant"; "cosine" decay to `min_lr_fraction` of `lr` at the last step; or
    "linear_tail": constant, then linear to `min_lr_fraction` over the last `anneal_fraction` of the steps."""
    min_lr_fraction: float = 0.05
    """Floor of the cosine and linear_tail schedules, a fraction of `lr`."""
    anneal_fraction: float = 0.2
    """linear_tail only: the fraction of the run (after warm-up) over which the rate falls linearly."""
    optimizer: Literal["adam", "adamw"] = "adam"
    """Adam (weight decay as L2 in the gradient) or AdamW (decoupled weight decay)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Adam's (beta1, beta2); GANs commonly use (0.5, 0.999) or (0.0, 0.99)."""
    weight_decay: float = 0.0
    """Weight decay of both optimisers."""
    d_lr: float | None = None
    """Discriminator learning rate (None = `lr`); same schedule."""
    ema_decay: float = 0.0
    """Decay of the generator's EMA copy (0 = no EMA; 0.999 is typical for GANs)."""
    r1_every: int = 16
    """Lazy R1: one extra D update on the R1 penalty every this many steps, weighted by
    `loss_weights["r1"] * r1_every` (StyleGAN2, Karras et al. 2020, Appendix B). Used only when
    `loss_weights` has an "r1" entry."""
    seed: int = 0
    """Seed of initial weights, sampling order and augmentation."""
    num_workers: int = 0
    """DataLoader worker processes (0 = load in the training process)."""
    precision: Precision = "32-true"
    """Fabric precision: "32-true" (CPU), "bf16-mixed" or "16-mixed" on GPUs."""
    sync_batchnorm: bool = True
    """Under DDP on CUDA, convert every BatchNorm layer to `torch.nn.SyncBatchNorm` before Fabric wraps the
    networks, so batch statistics are over the global batch as in one process (Style Mapping's
    supplement trains with SynchronizedBatchNorm; Lightning's `Trainer(sync_batchnorm=True)`). PyTorch has
    no CPU kernel for it, so on CPU (gloo) each rank keeps normalising its own share."""
    stall_steps: int = 200
    """Window (steps) of the stall watch (only for families that declare a stall value)."""
    stall_tolerance: float = 0.01
    """The watch fires when the window's mean loss is within this of the stall value."""
    max_minutes: float | None = None
    """Wall-clock budget of one `fit` call, in minutes (None = no limit): after the epoch during which
    it runs out, training stops as if `epochs` had been reached (checkpoint, history and export as usual;
    the log says so). Like Lightning's `Trainer(max_time=...)`; for fixed-length runs on shared or leased
    machines. The learning-rate schedule still spans `epochs`, so a run it stops is never annealed."""
    stop_epoch: int | None = None
    """Stop after this many epochs (None = `epochs`) while the schedule still spans `epochs`: the
    deterministic form of a run that `max_minutes` stopped (e.g. 12 of a 24-epoch cosine schedule)."""

    def validate(self) -> None:
        """Checks through `headflow.checks.require` (the params loader names the dotted key)."""
        for name, low in (("epochs", 0), ("batch_size", 1), ("warmup_steps", 0), ("r1_every", 1),
                          ("num_workers", 0), ("stall_steps", 1)):
            require(getattr(self, name) >= low, name, getattr(self, name), f">= {low}")
        for name, choices in (("lr_schedule", get_args(Schedule)), ("optimizer", ("adam", "adamw")),
                              ("precision", get_args(Precision))):
            require(getattr(self, name) in choices, name, getattr(self, name), f"one of {list(choices)}")
        require(self.lr > 0, "lr", self.lr, "> 0")
        require(self.d_lr is None or self.d_lr > 0, "d_lr", self.d_lr, "> 0 or null (= lr)")
        require(0 < self.anneal_fraction <= 1, "anneal_fraction", self.anneal_fraction, "a fraction in (0, 1]")
        require(0 <= self.min_lr_fraction <= 1, "min_lr_fraction", self.min_lr_fraction, "a fraction in [0, 1]")
        require(0 <= self.ema_decay < 1, "ema_decay", self.ema_decay, "in [0, 1)")
        require(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas", list(self.betas),
                "two numbers in [0, 1)")
        require(self.weight_decay >= 0, "weight_decay", self.weight_decay, ">= 0")
        require(self.stall_tolerance > 0, "stall_tolerance", self.stall_tolerance, "> 0")
        require(self.max_minutes is None or self.max_minutes > 0, "max_minutes", self.max_minutes, "> 0 or null")
        require(self.stop_epoch is None or 1 <= self.stop_epoch <= self.epochs, "stop_epoch", self.stop_epoch,
                f"in [1, epochs = {self.epochs}] or null")