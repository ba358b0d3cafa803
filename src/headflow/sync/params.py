"""Params of the lip-sync expert's stages: `train_expert` and `sync_check` (blocks of the same names in params.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from headflow.config import require


@dataclass
class TrainExpertParams:
    """The Wav2Lip-style lip-sync expert, trained on the pipeline's own crops and mels."""

    width: float = 0.5
    """Channel multiplier of the encoders (1.0 = the published expert; 0.5: ~190 training pairs/s on 2
    CPU cores, 0.25: ~400; held-out t1_2 after 24 epochs 0.833 at 0.25, 0.830-0.848 at 0.5)."""
    depth: int = 1
    """Residual blocks after each strided stage (published: 1-2)."""
    face_input: str = "gray_motion_norm"
    """Fixed face preprocessing inside the model (`ExpertConfig.face_input`). With `face_centre: clip`,
    "gray_motion_norm" (per frame: the window's grey and its motion, scaled by the window's contrast)
    sees the mouth's shape relative to its clip average and its motion; "motion" (grey minus the
    window's mean frame) sees the motion only and was the best input without centring; "rgb" = the
    published expert's raw input (held-out offset recovery 50%)."""
    audio_input: str = "raw"
    """Fixed mel preprocessing inside the model (`ExpertConfig.audio_input`): "raw" = as given (after
    `audio_centre`); "norm" removes each band's mean and the scale per window (loudness relative to
    the clip is lost with it)."""
    embed_dropout: float = 0.0
    """Dropout on the embeddings before normalisation (0 = none)."""
    face_centre: str = "clip"
    """Whole-clip face step (`ExpertConfig.face_centre`): "clip" = each mouth crop minus the clip's
    mean mouth image (appearance cancels, the opening relative to the clip's average stays); "none" =
    as cropped (published). Held-out t1_2 0.801 -> 0.833 at width 0.25 (`bench/expert.py`)."""
    audio_centre: str = "clip"
    """Whole-clip mel step (`ExpertConfig.audio_centre`): "clip" = per-utterance CMVN; "none"."""
    epochs: int = 40
    """Passes over `samples_per_epoch` freshly drawn pairs (40 x 4096 pairs at width 0.5: ~15 min on 2
    cores; held-out t1_2 0.830 after 24 epochs, 0.857 after 40)."""
    samples_per_epoch: int = 4096
    """Pairs per epoch (half in sync, half not)."""
    val_samples: int = 1024
    """Fixed held-out pairs evaluated after each epoch."""
    batch_size: int = 64
    """Pairs per optimiser step (per GPU under torchrun)."""
    lr: float = 1e-3
    """Adam learning rate after warm-up."""
    warmup_steps: int = 50
    """Linear learning-rate warm-up (helps against the ln 2 plateau)."""
    lr_schedule: str = "cosine"
    """After warm-up: "constant", or "cosine" decay to 5% of `lr` at the last step."""
    weight_decay: float = 0.0
    """Adam weight decay (L2)."""
    min_shift: int = 5
    """Same-clip negatives are at least this many frames away from the positive."""
    other_clip_fraction: float = 0.5
    """Share of negatives that take another clip's audio of the same speaker."""
    augment: bool = True
    """Random rotation, zoom, shift, mirror, colour and contrast of training face windows (one draw per
    window, batched in torch inside the training step: identity and pose invariance)."""
    augment_rotate_deg: float = 15.0
    """Rotation range +- degrees (tilted heads: the crops of a tilted face are rotated)."""
    augment_scale: float = 0.15
    """Zoom range 1 +- this (face size and crop-box jitter)."""
    augment_shift: float = 0.1
    """Translation range +- this fraction of the crop's width and height."""
    augment_mel_warp: float = 0.15
    """Random frequency warp of training mel windows by a factor 1 +- this (VTLP: unseen voices)."""
    num_workers: int = 0
    """DataLoader workers (samples are array slices; 0 is usually fastest on CPU)."""
    threads: int = 2
    """torch CPU threads."""
    seed: int = 0
    """Seed of initialisation and sampling."""
    stall_steps: int = 200
    """Warn when the running loss stays at ln 2 this many steps after warm-up."""
    eval_shifts: list[int] = field(default_factory=lambda: [-10, -5, 5, 10])
    """Audio shifts (frames) applied to held-out clips to test offset recovery."""
    max_offset: int = 15
    """Offsets scanned by the sync scorer (+- frames)."""
    workers: int = 2
    """Processes cutting mouth crops into shards."""
    max_reject_fraction: float = 0.5
    """Fail when more than this fraction of clips cannot give a training window."""


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
        require(self.threads >= 1, "threads", self.threads, ">= 1")
        require(0 <= self.max_reject_fraction <= 1, "max_reject_fraction", self.max_reject_fraction, "a fraction in [0, 1]")
        require(self.workers >= 1, "workers", self.workers, ">= 1")
