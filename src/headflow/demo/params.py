"""Params of the `demo_corpus` stage (block `demo_corpus` in params.yaml)."""

from __future__ import annotations

import re
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
class StyleParams:
    """One speaking style of the demo corpus: how articulation, lip posture and head motion differ.

    Styles are what StyleTalk-like generators condition on (Ma et al. 2023, "StyleTalk", introduction:
    speaking styles are "personalized dynamic facial motion patterns"; its MEAD classes are emotion x
    intensity). Here each style is a controlled change of the same viseme model
    (headflow.demo.animation), so every clip's style, and its effect on the landmarks, is known
    exactly. The identity style (articulation 1, no spread or raise, head motion 1) renders the
    animation of before styles existed bit for bit.
    """

    name: str = "neutral"
    """Style label written to truth.json, corpus.parquet and clips.parquet (lower case, [a-z0-9_])."""
    articulation: float = 1.0
    """Multiplies the viseme track (open, spread and round; open and round clipped to 0..1): >1 opens
    the jaw and lips wider (exaggerated), <1 less (restrained)."""
    lip_spread: float = 0.0
    """Added to the `spread` channel on every frame (units of the viseme table, where IY is 0.6;
    the lip corners move 0.09 IOD outward per unit): > 0 is a smile's spread."""
    lip_raise: float = 0.0
    """Lip corners raised by this much on every frame, in inter-ocular distances (IOD): 0.05 IOD is
    about 4 px on the default 384 px frame; the smile's upturn."""
    head_motion: float = 1.0
    """Multiplies every head-motion amplitude (demo_corpus.head_motion) of clips in this style."""
    weight: int = 1
    """Clips of this style per cycle of the per-identity rotation (see plan_clips): with weights
    3, 1, 1, 1 half the clips of every identity are in the first style."""

    def validate(self) -> None:
        require(re.fullmatch(r"[a-z][a-z0-9_]*", self.name) is not None, "name", self.name,
                "lower case letters, digits and _")
        require(0 < self.articulation <= 3, "articulation", self.articulation, "in (0, 3]")
        require(-1 <= self.lip_spread <= 1, "lip_spread", self.lip_spread, "in [-1, 1]")
        require(-0.15 <= self.lip_raise <= 0.15, "lip_raise", self.lip_raise, "in [-0.15, 0.15] IOD")
        require(0 <= self.head_motion <= 4, "head_motion", self.head_motion, "in [0, 4]")
        require(self.weight >= 1, "weight", self.weight, ">= 1")


def default_styles() -> list[StyleParams]:
    """neutral (half the clips), exaggerated, restrained and smiling: see README "The demo corpus"."""
    return [
        StyleParams("neutral", articulation=1.0, lip_spread=0.0, lip_raise=0.0, head_motion=1.0, weight=3),
        StyleParams("exaggerated", articulation=1.4, lip_spread=0.0, lip_raise=0.0, head_motion=1.5, weight=1),
        StyleParams("restrained", articulation=0.6, lip_spread=0.0, lip_raise=0.0, head_motion=0.5, weight=1),
        StyleParams("smiling", articulation=1.0, lip_spread=0.35, lip_raise=0.05, head_motion=1.0, weight=1),
    ]


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
    """Amplitudes of the random head motion (of the neutral style; each style scales them)."""
    styles: list[StyleParams] = field(default_factory=default_styles)
    """Speaking styles; every identity cycles through them (see headflow.demo.corpus.style_cycle).
    A single `neutral` entry gives the corpus of before styles existed."""
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
        require(len(self.styles) > 0, "styles", self.styles, "at least one style (e.g. {name: neutral})")
        names = [s.name for s in self.styles]
        require(len(set(names)) == len(names), "styles", names, "unique style names")
        for style in self.styles:
            style.validate()
