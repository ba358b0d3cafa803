"""Stall watch: warn once when the training loss sits at a known "learned nothing" value.

The lip-sync expert's users know the case (Wav2Lip issues: the expert's BCE at ln 2 = 0.693 for
days: the embeddings collapse and predict 0.5 for everything). Any family can name such a value
(chance-level cross-entropy, a GAN's equilibrium loss) with its advice.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

log = logging.getLogger("headflow.training")


@dataclass(frozen=True)
class StallRule:
    """What a family declares: the loss value that means "stalled", what it means and what helps."""

    value: float
    """The loss at which training has learned nothing (e.g. ln 2 for a balanced binary cross-entropy)."""
    meaning: str
    """What the value means, for the warning ("the embeddings predict 0.5 for everything")."""
    advice: str
    """What usually helps, for the warning."""


class StallWatch:
    """Fires once when the mean of the last `steps` losses lies within `tolerance` of `rule.value`.

    Checked only after `after_step` steps (the warm-up, when the loss has not moved yet) and once
    `steps` losses have been seen. The window and the fired flag are part of the checkpoint
    (`state_dict`), so a resumed run fires exactly when an uninterrupted one would.

    Args:
        rule: the family's stall value, meaning and advice.
        steps: window length n (steps).
        tolerance: |mean - value| below which the window counts as stalled.
        after_step: no warning before this many steps have been taken.
        name: what is training (for the warning).
    """

    def __init__(self, rule: StallRule, steps: int, tolerance: float, after_step: int = 0, name: str = "training"):
        if steps < 1:
            raise ValueError(f"stall_steps must be >= 1, got {steps}")
        self.rule, self.steps, self.tolerance, self.after_step, self.name = rule, steps, tolerance, after_step, name
        self.recent: deque[float] = deque(maxlen=steps)
        self.fired = False

    def update(self, steps_done: int, loss: float) -> bool:
        """Record the loss of the step that brought the count to `steps_done`; True when the warning fires."""
        self.recent.append(float(loss))
        if self.fired or steps_done <= self.after_step or len(self.recent) < self.steps:
            return False
        mean = sum(self.recent) / len(self.recent)
        if abs(mean - self.rule.value) >= self.tolerance:
            return False
        self.fired = True
        log.warning("%s looks stalled: mean loss %.4f ~ %.4f over the last %d steps (%s). %s", self.name, mean,
                    self.rule.value, self.steps, self.rule.meaning, self.rule.advice)
        return True

    def state_dict(self) -> dict:
        return {"recent": list(self.recent), "fired": self.fired}

    def load_state_dict(self, state: dict) -> None:
        self.recent = deque(state["recent"], maxlen=self.steps)
        self.fired = bool(state["fired"])
