"""Params of the lip-sync expert's stages: `train_expert` and `sync_check` (blocks of the same names in params.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

from headflow.config import require
from headflow.sync.config import TrainConfig



MIN_LENGTH_S = 2.6
"""Default `sync_check.min_length_s`: the shortest cut length from which the demo expert's offsets on
in-sync real GRID clips were right (|offset| <= 2 frames) in at least 90% of cuts at that length and
every longer one (bench/sync_length.py: 0.93 at 2.6 s, 0.87 at 2.4 s, 0.43 at 1.2 s; docs/results/sync.md)."""

@dataclass
class TrainExpertParams(TrainConfig):
    """The Wav2Lip-style lip-sync expert, trained on the pipeline's own crops and mels.

    A `TrainConfig` (network `model`, shared `loop`, pairs and augmentation: the same fields and
    defaults, nothing copied) plus the stage's own settings below.
    """

    threads: int = 2
    """torch CPU threads."""
    eval_shifts: list[int] = field(default_factory=lambda: [-10, -5, 5, 10])
    """Audio shifts (frames) applied to held-out clips to test offset recovery."""
    max_offset: int = 15
    """Offsets scanned by the sync scorer (+- frames)."""
    max_reject_fraction: float = 0.5
    """Fail when more than this fraction of clips cannot give a training window."""

    def validate(self) -> None:
        """Checks through `require` (the loader names the dotted key); the `TrainConfig` part first."""
        TrainConfig.validate(self)
        for name in ("threads", "max_offset"):
            require(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
        require(all(abs(s) <= self.max_offset for s in self.eval_shifts), "eval_shifts", self.eval_shifts,
                f"shifts within +-max_offset ({self.max_offset}): a shift the scorer does not scan cannot be recovered")
        require(0 <= self.max_reject_fraction <= 1, "max_reject_fraction", self.max_reject_fraction, "a fraction in [0, 1]")

    def train_config(self) -> TrainConfig:
        """The `TrainConfig` part (what shapes the training run; the stage's fields left out)."""
        return TrainConfig(**{f.name: getattr(self, f.name) for f in fields(TrainConfig)})


@dataclass
class SyncCheckParams:
    """Audio-visual sync of every accepted clip, scored with the lip-sync expert; optional filter or fix."""

    enabled: bool = True
    """False: score nothing, keep every clip (rows say `reason: disabled`)."""
    mode: Literal["report", "drop", "shift"] = "report"
    """report = score and record only (every clip kept; `reason` says what drop/shift would do);
    drop = quarantine clips off by more than `max_abs_offset` frames or less confident than
    `min_confidence`; shift = like drop for low confidence, but clips with a confident offset beyond
    `max_abs_offset` are kept with their mel shifted back into sync (`mel_path`)."""
    expert: str = "trained"
    """"trained" = the `train_expert` checkpoint (`last.pt` in its model folder, data/models/expert), or
    the path of another checkpoint written by `train_expert` (relative to the project root)."""
    max_abs_offset: int = 2
    """k: largest |offset| (video frames, 40 ms each at 25 fps) accepted as in sync."""
    min_confidence: float = 0.0
    """c: smallest LSE-C (median minus minimum of the per-offset mean distances) accepted; an offset
    found with less confidence is not trusted (dropped in drop/shift mode, never shifted)."""
    max_offset: int = 15
    """Offsets scanned (+- frames; syncnet_python uses 15)."""
    min_pairs: int = 5
    """Fewest video/audio window pairs an offset may be averaged over (else the clip is too short)."""
    min_length_s: float = MIN_LENGTH_S
    """Clips shorter than this (seconds) are scored and flagged (`sync_offset_short`) but never shifted or
    dropped on their offset alone: on short clips the expert's offset is unreliable (bench/sync_length.py
    measures it against length on real GRID clips; the default comes from that measurement, README
    "Sync check on short clips", docs/results/sync.md). 0 trusts every offset."""
    drop_unscorable: bool = True
    """In drop/shift mode, quarantine clips that cannot be scored (too short for the scan)."""
    threads: int = 2
    """torch CPU threads when scoring in this process (workers = 1); 1 per worker otherwise."""
    workers: int = 1
    """Processes that crop and score clips (each loads the expert once)."""
    max_reject_fraction: float = 0.5
    """Fail when more than this fraction of clips is dropped."""

    def validate(self) -> None:
        require(0 <= self.max_abs_offset <= self.max_offset, "max_abs_offset", self.max_abs_offset,
                f"an offset in [0, max_offset ({self.max_offset})]")
        require(self.min_pairs >= 1, "min_pairs", self.min_pairs, ">= 1")
        require(self.min_length_s >= 0, "min_length_s", self.min_length_s, ">= 0 seconds")
        require(self.threads >= 1, "threads", self.threads, ">= 1")
        require(0 <= self.max_reject_fraction <= 1, "max_reject_fraction", self.max_reject_fraction, "a fraction in [0, 1]")
        require(self.workers >= 1, "workers", self.workers, ">= 1")
