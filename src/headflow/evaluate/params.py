"""Params of the `evaluate` stage (the block of that name in params.yaml).

The judge's block, `train_judge`, is a `headflow.sync.params.TrainExpertParams` (the expert's own
dataclass with other values); every path the evaluation reads comes from `headflow.catalog`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from headflow.config import require

BaselineProtocol = Literal["reconstruction", "dubbing"]


@dataclass
class EvaluateParams:
    """Ground truth, baselines and every generated output, scored on the same test clips and frames.

    The sync judge (`train_judge`'s `last.pt`) gives `lse_d`, `lse_c`, `offset`; the expert generators
    train against (`train_expert`'s) gives `lse_c_loss_expert` only, kept apart because a generator
    can learn to fool it. Either checkpoint missing: its columns are null with the reason.
    """

    protocols: list[BaselineProtocol] = field(default_factory=lambda: ["reconstruction", "dubbing"])
    """Protocols scored on every test clip with ground-truth and baseline rows. reconstruction: the clip
    with its own audio (baselines `static_frame`, `reference_fill`); dubbing: the clip with another test
    clip's audio (`unedited`, `reference_fill`). Generated outputs of other protocols (reenactment,
    transfer) are scored too, without reference baselines; a family's in-run baselines (variants
    `<v>+<name>`, e.g. head2headfs's `+retrieval`, `+random_init`) are paired with `<v>` (`aggregate.compare`, `same_run_baselines`)."""
    split: Literal["test", "val"] = "test"
    """Which speaker-disjoint split of ingest's clips is the evaluation set."""
    max_clips: int | None = None
    """Evaluate only the first N clips of the split in clip_id order (null: all)."""
    frame_start: int = 1
    """First scored frame. Frame 0 is the reference every system may be given (the static baseline
    repeats it, the reference fill copies its lower face), so no system is scored on it."""
    sample_frames: int = 8
    """k of `headflow.metrics.frame_sample`: the costly per-frame metrics (CPBD, landmarks, face
    descriptors) look at k evenly spaced frames of the scored range (segment midpoints)."""
    syncnet: Literal["auto", "off"] = "auto"
    """auto: `lse_c_syncnet` from syncnet_python's `syncnet_v2.model` when the weights registry has it
    (`headflow models list`), else null with the reason; off: always null."""
    max_offset: int = 15
    """Audio-video offsets scanned by the sync scores (+- frames, syncnet_python's 15)."""
    min_pairs: int = 5
    """Fewest window pairs an offset may be averaged over; a shorter clip's sync metrics are null."""
    n_boot: int = 1000
    """Bootstrap resamples of the clips for every interval."""
    ci: float = 0.95
    """Confidence level of the intervals (a win is claimed only when the paired interval excludes 0)."""
    seed: int = 0
    """Seed of the bootstrap."""
    min_face_fraction: float = 0.5
    """A generated output in which dlib's HOG detector finds a face on fewer than this fraction of the
    sampled frames is quarantined (`no_face`)."""
    fps_tolerance: float = 0.01
    """Largest |fps - 25| of a generated video (container and manifest) before it is quarantined (`wrong_fps`)."""
    report_clips: int = 3
    """Clips shown side by side (ground truth | baselines | families) in the report."""
    workers: int = 2
    """Processes scoring clips (each loads the sync networks once)."""
    threads: int = 1
    """torch threads per worker."""

    def validate(self) -> None:
        """Checks through `require` (the params loader names the dotted key, the value and what is allowed)."""
        require(len(self.protocols) >= 1, "protocols", self.protocols, "at least one of reconstruction, dubbing")
        require(len(set(self.protocols)) == len(self.protocols), "protocols", self.protocols, "no protocol twice")
        require(self.max_clips is None or self.max_clips >= 1, "max_clips", self.max_clips, ">= 1, or null (all)")
        require(self.frame_start >= 1, "frame_start", self.frame_start,
                ">= 1 (frame 0 is the reference the baselines copy)")
        for name in ("sample_frames", "max_offset", "min_pairs", "n_boot", "workers", "threads"):
            require(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
        require(0 < self.ci < 1, "ci", self.ci, "a level in (0, 1), e.g. 0.95")
        require(0 <= self.min_face_fraction <= 1, "min_face_fraction", self.min_face_fraction, "a fraction in [0, 1]")
        require(self.fps_tolerance >= 0, "fps_tolerance", self.fps_tolerance, ">= 0")
        require(self.report_clips >= 0, "report_clips", self.report_clips, ">= 0")
