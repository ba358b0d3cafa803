"""Exponential moving average of a network's weights (the "EMA generator" of GAN training)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """A frozen copy of `module` whose parameters and buffers follow it with decay `decay`.

    After each optimiser step, `update` sets every floating-point parameter and buffer to
    `decay * ema + (1 - decay) * current` and copies integer buffers (BatchNorm's step counters).
    Averaging buffers too (BatchNorm running statistics) follows timm's `ModelEmaV2`; StyleGAN2-ADA
    (`training/training_loop.py`) copies them instead, which differs only for normalisation layers.
    The copy stays in eval mode with `requires_grad=False`; evaluate and sample with it.

    Args:
        module: the network being trained (not a DDP / Fabric wrapper: pass the original module).
        decay: in [0, 1); 0.999 is StyleGAN's order of magnitude (half-life ~700 steps).
    """

    def __init__(self, module: nn.Module, decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """One EMA step towards `module`'s current weights (same architecture as the copy)."""
        for e, p in zip(self.module.parameters(), module.parameters(), strict=True):
            e.lerp_(p.detach(), 1.0 - self.decay)
        for e, b in zip(self.module.buffers(), module.buffers(), strict=True):
            if e.is_floating_point():
                e.lerp_(b, 1.0 - self.decay)
            else:
                e.copy_(b)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
