"""Types shared by the aligners (builtin HMM, MFA) and their callers: one utterance in, one alignment out."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from headflow.align.lexicon import Pronunciation


@dataclass
class AudioFrames:
    """What the builtin aligner uses of one utterance's audio, at its frame shift (`builtin.audio_frames`):
    computed once where the audio is read, so the samples need not be kept for the whole corpus."""

    features: np.ndarray                 # (T, 39) float32 MFCC + deltas (features.mfcc_features)
    pause: np.ndarray | None             # (T,) pause weights (features.pause_frames); None without the penalty
    loud: np.ndarray | None              # (T,) loud frames (features.loud_frames); None without the penalty or onset snap
    quiet: list[tuple[int, int]]         # [first, last) frames of the real pauses (builtin.quiet_spans)
    region: tuple[int, int]              # [first, last) frames of speech (features.speech_region)
    n_samples: int                       # of the audio at 16 kHz

    @property
    def duration(self) -> float:
        """Seconds (samples / 16000)."""
        return self.n_samples / 16000


@dataclass
class UtteranceInput:
    clip_id: str
    wav: np.ndarray                      # float32 mono at 16 kHz (may be empty when `frames` is given)
    words: list[str]
    prons: list[Pronunciation | None]    # one per word; None: no pronunciation (GARBAGE)
    transcript: str = ""
    variants: list[list[Pronunciation]] | None = None  # per word, all its pronunciations (first = prons[w])
    frames: AudioFrames | None = None    # the builtin aligner's view of `wav`, when computed beforehand


@dataclass
class Alignment:
    clip_id: str
    duration: float
    phones: list[tuple[float, float, str, int]] = field(default_factory=list)  # start, end, phone, word (-1 = none)
    words: list[tuple[float, float, str]] = field(default_factory=list)
    log_likelihood: float = float("nan")                                    # per frame
    failed: str | None = None
