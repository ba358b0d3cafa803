"""Params of the `demo_corpus` stage (block `demo_corpus` in params.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field

from headflow.config import require
from headflow.demo.portraits import PORTRAITS


@dataclass
class HeadMotionParams:
    """Peak amplitudes of the random head motion."""

    yaw_deg: float = 4.0
    """Peak yaw (turning left/right), degrees."""
    pitch_deg: float = 3.0
    """Peak pitch (nodding), degrees."""
    roll_deg: float = 2.0
    """Peak in-plane roll, degrees."""
    shift_frac: float = 0.015
    """Peak translation as a fraction of the frame side."""
    scale_frac: float = 0.02
    """Peak relative change of scale (moving toward/away from the camera)."""


@dataclass
class DemoCorpusParams:
    """A talking-face corpus with exact ground truth, rendered offline from portraits and espeak-ng."""

    seed: int = 0
    """Seed of every random choice; the same seed gives the same bytes."""
    n_clips: int = 24
    """Number of good clips (identities are used round-robin; the demo's params.yaml uses 72 so the expert
    has ~10 clips per speaker and its held-out speaker is measured on ~10 clips)."""
    identities: list[str] = field(default_factory=lambda: [
        "astronaut", "grace_hopper", "tom_hanks", "t1_1", "t1_2", "t1_3", "t1_6"])
    """Portraits to animate (see headflow.demo.portraits.PORTRAITS); one speaker each."""
    voices: list[str] = field(default_factory=lambda: [
        "en-us", "en-gb", "en-us+f3", "en-gb+m3", "en-us+f4", "en-us+m2", "en-gb+f2"])
    """espeak-ng voices; identity i speaks with voices[i % len(voices)]."""
    rates_wpm: list[int] = field(default_factory=lambda: [140, 155, 170])
    """Speaking rates (words per minute) drawn per clip."""
    frame_size: int = 384
    """Side of the square video frame, pixels."""
    fps: int = 25
    """Video frame rate."""
    sample_rate: int = 16000
    """Audio sample rate."""
    min_duration_s: float = 3.0
    """Clips are padded with silence to at least this long."""
    max_duration_s: float = 6.0
    """Sentences that would be longer than this are not used."""
    crf: int = 18
    """x264 quality of the rendered clips (lower is better)."""
    head_motion: HeadMotionParams = field(default_factory=HeadMotionParams)
    """Amplitudes of the random head motion."""
    bad_inputs: bool = True
    """Also write deliberately bad inputs (no face, two faces, no audio, truncated, ...)."""
    workers: int = 2
    """Processes rendering clips in parallel."""

    def validate(self) -> None:
        unknown = [n for n in self.identities if n not in PORTRAITS]
        require(not unknown, "identities", unknown, f"portraits among {', '.join(PORTRAITS)}")
        require(self.n_clips >= 1, "n_clips", self.n_clips, ">= 1")
        require(len(self.voices) > 0, "voices", self.voices, "a non-empty list of espeak-ng voices")
        require(len(self.rates_wpm) > 0, "rates_wpm", self.rates_wpm, "a non-empty list of words per minute")
        require(0 < self.min_duration_s <= self.max_duration_s, "min_duration_s", self.min_duration_s,
                f"> 0 and <= max_duration_s ({self.max_duration_s})")
        require(self.frame_size >= 128 and self.frame_size % 2 == 0, "frame_size", self.frame_size,
                "an even number of pixels >= 128")
        require(self.workers >= 1, "workers", self.workers, ">= 1")
