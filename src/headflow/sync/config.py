"""`TrainConfig`: everything that shapes a lip-sync expert training run (torch-free).

The `train_expert` params block *is* a `TrainConfig` plus the stage's own fields
(`headflow.sync.params.TrainExpertParams` subclasses it), so every default below is the value the
stage runs with, and params.yaml lists the same values (a test checks that they agree). The network
is `model` (`ExpertConfig`; `PUBLISHED_EXPERT` holds the Wav2Lip expert's settings), the shared loop
is `loop` (`headflow.training.LoopConfig`), the rest are the expert's pairs and augmentation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from headflow.config import require
from headflow.nn.expert_config import ExpertConfig
from headflow.training.config import LoopConfig


def expert_loop() -> LoopConfig:
    """The expert's loop settings (the `train_expert.loop` block of params.yaml)."""
    return LoopConfig(epochs=24, batch_size=64, lr=1e-3, warmup_steps=50, lr_schedule="cosine",
                      weight_decay=0.0, seed=0, num_workers=0, precision="32-true", stall_steps=200)


@dataclass
class TrainConfig:
    """The network, the loop, and how training pairs are drawn and augmented."""

    model: ExpertConfig = field(default_factory=ExpertConfig)
    """The network (`headflow.nn.expert.ExpertConfig`)."""
    loop: LoopConfig = field(default_factory=expert_loop)
    """The shared training loop: epochs (40 x 4096 pairs at width 0.5: ~15 min on 2 cores; held-out
    t1_2 0.830 after 24 epochs, 0.857 after 40), batch size (per GPU under torchrun), Adam learning
    rate 1e-3 with a 50-step linear warm-up (helps against the ln 2 plateau) and cosine decay to 5%
    (steadier last-epoch accuracy than constant), seed, DataLoader workers (samples are array
    slices; 0 is usually fastest on CPU), the ln 2 stall watch window."""
    samples_per_epoch: int = 4096
    """Pairs per epoch (half in sync, half not), drawn afresh each epoch."""
    val_samples: int = 1024
    """Fixed held-out pairs evaluated after each epoch."""
    min_shift: int = 5
    """Same-clip negatives are at least this many frames away from the positive (12: held-out bacc
    t1_2 0.738/0.699 (seeds 0/1) vs 0.735/0.701, t1_3 0.776 vs 0.782; the errors are not on near
    shifts, `bench/expert_negatives.py`)."""
    other_clip_fraction: float = 0.5
    """Share of negatives that take another clip's audio of the same speaker (0.25: t1_2 0.701;
    0.75: t1_2 0.729, t1_3 0.762 vs 0.735, 0.782)."""
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
    """Random frequency warp of training mel windows by a factor 1 +- this (VTLP: unseen voices;
    held-out t1_2 bacc 0.66-0.73 over seeds/threads: within noise of 0.66 without)."""
    augment_blur_sigma: float = 0.0
    """Real-footage transfer (issue 16; all four off by default): Gaussian blur of training windows,
    sigma uniform in [0, this] pixels of the 48x96 mouth crop (`headflow.sync.data.transfer_batch`)."""
    augment_jpeg_quality: float = 0.0
    """JPEG compression of training windows, quality uniform in [this, 95]; 0 = off, else in [1, 95]."""
    augment_gamma: float = 0.0
    """Random gamma x ** g of training windows, log g uniform in +- this."""
    augment_light_gradient: float = 0.0
    """Brightness ramp across the crop in a random direction, gain 1 +- a at the edges, a in [0, this]."""

    def validate(self) -> None:
        """Checks through `require` (the loader names the dotted key); nested configs validate themselves."""
        self.model.validate()
        self.loop.validate()
        for name in ("samples_per_epoch", "val_samples", "min_shift"):
            require(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
        require(0 <= self.other_clip_fraction <= 1, "other_clip_fraction", self.other_clip_fraction, "a fraction in [0, 1]")
        for name in ("augment_rotate_deg", "augment_shift"):
            require(getattr(self, name) >= 0, name, getattr(self, name), ">= 0")
        for name in ("augment_blur_sigma", "augment_gamma"):
            require(getattr(self, name) >= 0, name, getattr(self, name), ">= 0 (0 = off)")
        require(self.augment_jpeg_quality == 0 or 1 <= self.augment_jpeg_quality <= 95, "augment_jpeg_quality",
                self.augment_jpeg_quality, "0 (off) or a JPEG quality in [1, 95]")
        for name in ("augment_scale", "augment_mel_warp", "augment_light_gradient"):
            require(0 <= getattr(self, name) < 1, name, getattr(self, name),
                    "in [0, 1) (a zoom or warp factor 1 +- x must stay > 0)")