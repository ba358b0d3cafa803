"""Params of the `sync_check` stage (block `sync_check` in params.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


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
    """"trained" = the `train_expert` checkpoint (data/models/expert/last.pt), or the path of another
    checkpoint written by `train_expert` (relative to the project root)."""
    max_abs_offset: int = 2
    """k: largest |offset| (video frames, 40 ms each at 25 fps) accepted as in sync."""
    min_confidence: float = 0.0
    """c: smallest LSE-C (median minus minimum of the per-offset mean distances) accepted; an offset
    found with less confidence is not trusted (dropped in drop/shift mode, never shifted)."""
    max_offset: int = 15
    """Offsets scanned (+- frames; syncnet_python uses 15)."""
    min_pairs: int = 5
    """Fewest video/audio window pairs an offset may be averaged over (else the clip is too short)."""
    drop_unscorable: bool = True
    """In drop/shift mode, quarantine clips that cannot be scored (too short for the scan)."""
    threads: int = 2
    """torch CPU threads when scoring in this process (workers = 1); 1 per worker otherwise."""
    workers: int = 1
    """Processes that crop and score clips (each loads the expert once)."""
    max_reject_fraction: float = 0.5
    """Fail when more than this fraction of clips is dropped."""

    def __post_init__(self) -> None:
        from headflow.config import ConfigError

        if self.max_abs_offset < 0 or self.max_abs_offset > self.max_offset:
            raise ConfigError(f"sync_check.max_abs_offset must lie in [0, max_offset={self.max_offset}]; "
                              f"got {self.max_abs_offset}")
