"""Params of the `audio_features` stage (block `audio_features` in params.yaml)."""

from __future__ import annotations

from dataclasses import dataclass

from headflow.config import require


@dataclass
class AudioFeaturesParams:
    """Per-clip Wav2Lip mel spectrograms, computed once and cached."""

    silence_dbfs: float = -50.0
    """Clips whose overall RMS level is below this (dBFS) are quarantined as silent_audio."""
    clip_level: float = 0.999
    """|sample| at or above this counts as clipped (reported, not rejected)."""
    max_reject_fraction: float = 0.5
    """Fail the stage when more than this fraction of clips is quarantined."""
    workers: int = 2
    """Processes computing spectrograms in parallel."""

    def validate(self) -> None:
        require(0 < self.clip_level <= 1, "clip_level", self.clip_level, "a level in (0, 1] of full scale")
        require(0 <= self.max_reject_fraction <= 1, "max_reject_fraction", self.max_reject_fraction, "a fraction in [0, 1]")
        require(self.workers >= 1, "workers", self.workers, ">= 1")
