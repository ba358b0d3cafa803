"""Params of the evaluation stages: `evaluate` and `train_judge` (blocks of the same names in params.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from headflow.sync.params import TrainExpertParams

BaselineProtocol = Literal["reconstruction", "dubbing"]


@dataclass
class EvaluateParams:
    """Ground truth, baselines and every generated output, scored on the same test clips and frames."""

    protocols: list[BaselineProtocol] = field(default_factory=lambda: ["reconstruction", "dubbing"])
    """Protocols scored on every test clip with ground-truth and baseline rows. reconstruction: the clip
    with its own audio (baselines `static_frame`, `reference_fill`); dubbing: the clip with another test
    clip's audio (`unedited`, `reference_fill`). Generated outputs of other protocols (reenactment,
    transfer) are scored too, without baselines (not implemented yet; the report says so)."""
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
    judge: str = "data/models/judge/last.pt"
    """The sync judge (`train_judge`'s checkpoint, trained with another seed and face input than the
    expert the generators train against): gives `lse_d`, `lse_c`, `offset`. Missing: those are null."""
    loss_expert: str = "data/models/expert/last.pt"
    """The expert generators train against (`train_expert`): gives `lse_c_loss_expert` only, kept apart
    from the judge's figures because a generator can learn to fool it."""
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
    generated: list[str] = field(default_factory=lambda: ["data/interim/*/generated.parquet"])
    """Glob patterns (relative to the project root) of generated manifests to score; every match is read."""
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
        """Raises ValueError naming the field when a value is out of range."""
        if not self.protocols:
            raise ValueError("protocols must name at least one of reconstruction, dubbing")
        if len(set(self.protocols)) != len(self.protocols):
            raise ValueError(f"protocols has duplicates: {self.protocols}")
        if self.max_clips is not None and self.max_clips < 1:
            raise ValueError(f"max_clips must be >= 1 or null, got {self.max_clips}")
        if self.frame_start < 1:
            raise ValueError(f"frame_start must be >= 1 (frame 0 is the reference the baselines copy), "
                             f"got {self.frame_start}")
        if self.sample_frames < 1:
            raise ValueError(f"sample_frames must be >= 1, got {self.sample_frames}")
        if self.max_offset < 1 or self.min_pairs < 1:
            raise ValueError(f"max_offset and min_pairs must be >= 1, got {self.max_offset}, {self.min_pairs}")
        if self.n_boot < 1:
            raise ValueError(f"n_boot must be >= 1, got {self.n_boot}")
        if not 0 < self.ci < 1:
            raise ValueError(f"ci must lie in (0, 1), e.g. 0.95, got {self.ci}")
        if not 0 <= self.min_face_fraction <= 1:
            raise ValueError(f"min_face_fraction must lie in [0, 1], got {self.min_face_fraction}")
        if self.fps_tolerance < 0 or self.report_clips < 0 or self.workers < 1 or self.threads < 1:
            raise ValueError("fps_tolerance and report_clips must be >= 0, workers and threads >= 1")


@dataclass
class TrainJudgeParams(TrainExpertParams):
    """The sync judge: an expert trained by `train_expert`'s code with its own seed, face input and size.

    No generator trains against it, so it cannot have been fooled by one (DESIGN, "Evaluation
    contract"). Every field means what it means in `train_expert`; only the defaults differ.
    """

    width: float = 0.25
    """Channel multiplier (the expert uses 0.5; 0.25 trains ~2x faster)."""
    face_input: str = "gray_norm"
    """Another input variant than the expert's gray_motion_norm: grey mouth shape per frame, the window's
    mean grey level removed and divided by its std (no explicit motion channel)."""
    epochs: int = 16
    """Passes over `samples_per_epoch` pairs (16 at width 0.25: a few minutes on 2 cores)."""
    seed: int = 1
    """Another seed than the expert's 0."""
