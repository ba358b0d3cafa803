"""Types shared by the aligners (builtin HMM, MFA) and their callers: one utterance in, one alignment out."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from headflow.align.lexicon import Pronunciation


@dataclass
class UtteranceInput:
    clip_id: str
    wav: np.ndarray                      # float32 mono at 16 kHz
    words: list[str]
    prons: list[Pronunciation | None]    # one per word; None: no pronunciation (GARBAGE)
    transcript: str = ""
    variants: list[list[Pronunciation]] | None = None  # per word, all its pronunciations (first = prons[w])


@dataclass
class Alignment:
    clip_id: str
    duration: float
    phones: list[tuple[float, float, str, int]] = field(default_factory=list)  # start, end, phone, word (-1 = none)
    words: list[tuple[float, float, str]] = field(default_factory=list)
    log_likelihood: float = float("nan")                                    # per frame
    failed: str | None = None
