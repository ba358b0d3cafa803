"""Learning-rate schedule: linear warm-up, then constant, cosine decay to a floor, or constant with a linear
anneal over the last part of the run (the lip-sync paper's "linear LR annealing at the end")."""

from __future__ import annotations

import math
from headflow.training.config import Schedule


def lr_factor(step: int, warmup_steps: int, total_steps: int, schedule: Schedule = "constant",
              min_fraction: float = 0.05, anneal_fraction: float = 0.2) -> float:
    """Multiplier of the base learning rate for optimiser step `step` (0-based).

    Warm-up: `min(1, (step + 1) / warmup_steps)` (the first step already uses 1/warmup of the rate,
    the step `warmup_steps - 1` the full rate). "cosine" then decays from 1 to `min_fraction` along
    half a cosine between step `warmup_steps` and `total_steps`, and stays at `min_fraction` after
    (a resumed run with more steps stretches the curve: `total_steps` is recomputed). The warm-up
    factor multiplies the cosine one, as in the lip-sync expert's schedule before the harness.
    "linear_tail" keeps the full rate until the last `anneal_fraction` of the steps after warm-up, then
    decreases it linearly to `min_fraction` at `total_steps` (lipsync_coursework.txt section 3.7: the
    learning rate is annealed linearly at the end of training).

    Args:
        step: optimiser steps taken so far (>= 0).
        warmup_steps: length of the linear warm-up (0 or 1 = none).
        total_steps: steps of the whole run (`epochs * batches per epoch`).
        schedule: "constant", "cosine" or "linear_tail".
        min_fraction: the floor of "cosine" and "linear_tail", a fraction of the base rate in [0, 1].
        anneal_fraction: "linear_tail" only: the fraction of the post-warm-up steps annealed, in (0, 1].

    Returns:
        The factor in (0, 1].

    Raises:
        ValueError: for an unknown `schedule`.
    """
    warm = min(1.0, (step + 1) / max(warmup_steps, 1))
    if schedule == "constant":
        return warm
    if schedule not in ("cosine", "linear_tail"):
        raise ValueError(f"lr_schedule must be 'constant', 'cosine' or 'linear_tail', got {schedule!r}")
    t = min(1.0, max(0, step - warmup_steps) / max(total_steps - warmup_steps, 1))
    if schedule == "linear_tail":
        if not 0 < anneal_fraction <= 1:
            raise ValueError(f"anneal_fraction must be in (0, 1], got {anneal_fraction!r}")
        tail = min(1.0, max(0.0, (t - (1 - anneal_fraction)) / anneal_fraction))
        return warm * (1 - (1 - min_fraction) * tail)
    return warm * (min_fraction + (1 - min_fraction) * 0.5 * (1 + math.cos(math.pi * t)))
