"""Learning-rate schedule: linear warm-up, then constant or cosine decay to a floor."""

from __future__ import annotations

import math
from headflow.training.config import Schedule


def lr_factor(step: int, warmup_steps: int, total_steps: int, schedule: Schedule = "constant",
              min_fraction: float = 0.05) -> float:
    """Multiplier of the base learning rate for optimiser step `step` (0-based).

    Warm-up: `min(1, (step + 1) / warmup_steps)` (the first step already uses 1/warmup of the rate,
    the step `warmup_steps - 1` the full rate). "cosine" then decays from 1 to `min_fraction` along
    half a cosine between step `warmup_steps` and `total_steps`, and stays at `min_fraction` after
    (a resumed run with more steps stretches the curve: `total_steps` is recomputed). The warm-up
    factor multiplies the cosine one, as in the lip-sync expert's schedule before the harness.

    Args:
        step: optimiser steps taken so far (>= 0).
        warmup_steps: length of the linear warm-up (0 or 1 = none).
        total_steps: steps of the whole run (`epochs * batches per epoch`).
        schedule: "constant" or "cosine".
        min_fraction: the cosine's floor, a fraction of the base rate in [0, 1].

    Returns:
        The factor in (0, 1].

    Raises:
        ValueError: for an unknown `schedule`.
    """
    warm = min(1.0, (step + 1) / max(warmup_steps, 1))
    if schedule == "constant":
        return warm
    if schedule != "cosine":
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {schedule!r}")
    t = min(1.0, max(0, step - warmup_steps) / max(total_steps - warmup_steps, 1))
    return warm * (min_fraction + (1 - min_fraction) * 0.5 * (1 + math.cos(math.pi * t)))
