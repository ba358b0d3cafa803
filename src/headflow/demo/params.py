"""Params of the `demo_corpus` stage (block `demo_corpus` in params.yaml)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise ValueError(f"style name {self.name!r} must be lower case letters, digits and _")
        if not 0 < self.articulation <= 3:
            raise ValueError(f"style {self.name}: articulation must be in (0, 3], got {self.articulation}")
        if not -1 <= self.lip_spread <= 1:
            raise ValueError(f"style {self.name}: lip_spread must be in [-1, 1], got {self.lip_spread}")
        if not -0.15 <= self.lip_raise <= 0.15:
            raise ValueError(f"style {self.name}: lip_raise must be in [-0.15, 0.15] IOD, got {self.lip_raise}")
        if not 0 <= self.head_motion <= 4:
            raise ValueError(f"style {self.name}: head_motion must be in [0, 4], got {self.head_motion}")
        if self.weight < 1:
            raise ValueError(f"style {self.name}: weight must be at least 1, got {self.weight}")


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
        if unknown:
            raise ValueError(f"identities: unknown portrait(s) {unknown}; available: {', '.join(PORTRAITS)}")
        if self.n_clips < 1:
            raise ValueError("n_clips must be at least 1")
        if not self.voices or not self.rates_wpm:
            raise ValueError("voices and rates_wpm must not be empty")
        if not 0 < self.min_duration_s <= self.max_duration_s:
            raise ValueError("need 0 < min_duration_s <= max_duration_s")
        if self.frame_size < 128 or self.frame_size % 2:
            raise ValueError("frame_size must be even and at least 128")
        if not self.styles:
            raise ValueError("styles must list at least one style (e.g. {name: neutral})")
        names = [s.name for s in self.styles]
        if len(set(names)) != len(names):
            raise ValueError(f"styles: names must be unique, got {names}")
        for style in self.styles:
            style.validate()
