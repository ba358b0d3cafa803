"""Params of the `discohead` family: DisCoHead (papers/discohead.txt; summary in docs/MODELS.md).

Head pose from a driver video through one geometric transformation (affine or TPS, section 2.1), a
motion-aware encoder (dense motion DM or neural mix NM, section 2.2) and an expression-control decoder
modulated by audio and eye features (section 2.3). One dataclass per concern, nested in
`DisCoHeadParams` (the `train_discohead` block of params.yaml). The four variants of table 1 are
`model.head_motion` x `model.encoder`.

Sizes (docs/DESIGN.md "Generators"): `tiny_params()` (tests), `demo_params()` (one variant, <= 90 s of
training on one core, 64x64 crops: shows the pipeline, not the quality), `quality_params()` (hours on
2 cores) and `published_params()` (section 3.2: 256x256, batch 16, Adam 1e-4; for a GPU).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from headflow.config import require
from headflow.training.config import LoopConfig

HeadMotion = Literal["affine", "tps"]
EncoderKind = Literal["dense_motion", "neural_mix"]
PerceptualBackend = Literal["auto", "vgg19", "weight_free"]
Protocol = Literal["reconstruction", "transfer"]

AUDIO_WINDOW_MEL = 32
"""Mel frames of the 400 ms audio window (section 3.1: "400 ms long and centered on each video frame";
the Wav2Lip mel has 80 frames per second, so 400 ms = 32 frames)."""
MEL_PER_SECOND = 80.0
"""Wav2Lip mel frames per second (hop 200 samples at 16 kHz)."""


@dataclass
class ModelParams:
    """The architecture (section 3.2, figure 1) and the two variant switches (table 1)."""

    head_motion: HeadMotion = "affine"
    """Head-motion predictor (section 2.1): "affine" = one heatmap from an hourglass, its mean and
    principal axes (eq. 1-3); "tps" = N keypoints from a ResNet-18 and the thin-plate spline between the
    driver's and the source's (eq. 4-5)."""
    encoder: EncoderKind = "dense_motion"
    """Motion-aware encoder (section 2.2): "dense_motion" (DM: a motion mask mixes the identity flow and
    the transformation's coarse flow, eq. 7-8) or "neural_mix" (NM: F_A = F, eq. 9)."""
    image_size: int = 256
    """Side of the square crop the network works on (section 3.1: 256). Smaller sizes resize the
    shards' 256x256 aligned crop; generation resizes the output back to 256 (the aligned-crop geometry
    the evaluate stage scores)."""
    width: float = 1.0
    """Channel multiplier of every network (1.0 = the channel counts below; the paper gives none)."""
    hourglass_channels: int = 32
    """Affine predictor: the hourglass's block_expansion (FOMM/MRAA: 32, doubling per level, capped at
    1024)."""
    hourglass_levels: int = 5
    """Affine predictor: down/up levels of the hourglass (FOMM/MRAA: 5)."""
    predictor_scale: float = 0.25
    """Affine predictor: the image is resized by this before the hourglass (MRAA: 0.25, i.e. 64x64)."""
    heatmap_temperature: float = 0.1
    """Affine predictor: softmax temperature of the heatmap (MRAA: 0.1)."""
    tps_keypoints: int = 10
    """TPS predictor: N keypoints per frame (the paper does not give N; TPSMM uses 5 per TPS)."""
    resnet_channels: int = 64
    """TPS predictor: first-stage channels of the ResNet-18 (64-128-256-512 as He et al.)."""
    encoder_channels: int = 64
    """Motion-aware encoder: channels of its first downsample block (doubling: 64-128-256)."""
    audio_channels: int = 256
    """Audio encoder: channels of its 4 Conv1d layers and the LSTM's hidden size."""
    audio_dim: int = 128
    """Length of f_audio."""
    eye_channels: int = 32
    """Eye encoder: channels of its first downsample block (doubling, capped at 256)."""
    eye_dim: int = 128
    """Length of f_eye; f_exp = concat(f_audio, f_eye) has audio_dim + eye_dim."""
    mod_blocks: int = 6
    """Modulated residual conv blocks of the decoder (section 3.2: 6)."""

    def channels(self, base: int) -> int:
        """round(width * base), at least 4."""
        return max(4, int(round(self.width * base)))

    def validate(self) -> None:
        require(self.head_motion in ("affine", "tps"), "head_motion", self.head_motion, "affine or tps")
        require(self.encoder in ("dense_motion", "neural_mix"), "encoder", self.encoder,
                "dense_motion (DM) or neural_mix (NM)")
        require(self.image_size >= 32 and self.image_size % 32 == 0, "image_size", self.image_size,
                "a multiple of 32 >= 32 (the eye encoder halves it 5 times)")
        require(0 < self.width <= 4, "width", self.width, "a multiplier in (0, 4]")
        require(0 < self.predictor_scale <= 1, "predictor_scale", self.predictor_scale, "in (0, 1]")
        size = int(self.image_size * self.predictor_scale)
        require(size % (2 ** self.hourglass_levels) == 0 and self.hourglass_levels >= 1, "hourglass_levels",
                self.hourglass_levels, f">= 1 and 2**levels dividing the predictor's input side {size}")
        require(self.heatmap_temperature > 0, "heatmap_temperature", self.heatmap_temperature, "> 0")
        require(self.tps_keypoints >= 3, "tps_keypoints", self.tps_keypoints, ">= 3 (a TPS needs 3 points)")
        for name in ("hourglass_channels", "resnet_channels", "encoder_channels", "audio_channels", "audio_dim",
                     "eye_channels", "eye_dim", "mod_blocks"):
            require(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")


@dataclass
class DataParams:
    """What a training sample is (sections 2, 3.1)."""

    eye_margin: float = 0.3
    """The eye-driver mask keeps, per side, the box around the brow and eye landmarks (17-21 + 36-41,
    22-26 + 42-47) grown by this fraction of its size on every side; everything else is zeroed. The
    paper masks "everything outside the eye region" without saying how it is drawn."""
    source: Literal["random", "first"] = "random"
    """Training source frame: "random" = any valid frame of the driver's clip (FOMM/MRAA training: two
    frames of one video); "first" = the clip's first valid frame (the test protocol)."""

    def validate(self) -> None:
        require(0 <= self.eye_margin <= 2, "eye_margin", self.eye_margin, "a fraction in [0, 2]")
        require(self.source in ("random", "first"), "source", self.source, "random or first")


@dataclass
class LossParams:
    """L_total = L1 + lambda * L_perceptual (eq. 12); weights by term name (the keys `g_losses` returns)."""

    l1: float = 1.0
    """Weight of the L1 term (eq. 12: 1)."""
    perceptual: float = 10.0
    """lambda of eq. 12 (the paper does not give it; FOMM/MRAA weight their VGG pyramid by 10)."""
    perceptual_backend: PerceptualBackend = "auto"
    """"vgg19" (section 3.2: VGG-19; the file must be present), "weight_free" ((1 - MS-SSIM) + gradient L1,
    the offline substitute) or "auto" (VGG19 when its file is on disk)."""

    def validate(self) -> None:
        for name in ("l1", "perceptual"):
            require(getattr(self, name) >= 0, name, getattr(self, name), ">= 0")


def discohead_loop() -> LoopConfig:
    """Section 3.2: Adam, learning rate 1e-4, batch 16 (Adam's betas are not given: torch's defaults)."""
    return LoopConfig(epochs=100, batch_size=16, lr=1e-4, seed=0, num_workers=0, precision="32-true")


@dataclass
class DisCoHeadParams:
    """The `train_discohead` params block: everything that defines a DisCoHead training run."""

    model: ModelParams = field(default_factory=ModelParams)
    """Architecture and variant."""
    data: DataParams = field(default_factory=DataParams)
    """Samples."""
    loss: LossParams = field(default_factory=LossParams)
    """Loss weights."""
    loop: LoopConfig = field(default_factory=discohead_loop)
    """The shared training loop (`headflow.training.LoopConfig`)."""
    samples_per_epoch: int = 2000
    """Frames drawn per epoch (uniformly over the usable frames of the training clips)."""
    val_frames: int = 32
    """Fixed validation frames (val split) scored after each epoch (val L1 selects best.pt)."""
    variant: str = ""
    """Name of the run in generated.parquet; "" = "<head_motion>-<DM|NM>" (e.g. "affine-DM")."""
    threads: int = 1
    """torch CPU threads (2 threads on 2 busy cores ran other families' demos much slower)."""
    max_reject_fraction: float = 0.5
    """Fail when more than this fraction of the train and val clips has no usable frame."""

    def validate(self) -> None:
        for part in (self.model, self.data, self.loss, self.loop):
            part.validate()
        for name in ("samples_per_epoch", "val_frames", "threads"):
            require(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
        require(self.samples_per_epoch >= self.loop.batch_size, "samples_per_epoch", self.samples_per_epoch,
                f">= loop.batch_size ({self.loop.batch_size})")
        require(0 <= self.max_reject_fraction <= 1, "max_reject_fraction", self.max_reject_fraction,
                "a fraction in [0, 1]")

    @property
    def seed(self) -> int:
        return self.loop.seed

    @property
    def variant_name(self) -> str:
        """`variant`, or "<head_motion>-<DM|NM>"."""
        kind = "DM" if self.model.encoder == "dense_motion" else "NM"
        return self.variant or f"{self.model.head_motion}-{kind}"


def _with(params: DisCoHeadParams, loop: dict | None = None, **parts) -> DisCoHeadParams:
    """A copy with nested fields replaced ({"model": {...}}) and top-level ones."""
    nested = {k: dataclasses.replace(getattr(params, k), **v) for k, v in parts.items() if isinstance(v, dict)}
    top = {k: v for k, v in parts.items() if not isinstance(v, dict)}
    out = dataclasses.replace(params, **nested, **top)
    if loop:
        out.loop = dataclasses.replace(out.loop, **loop)
    out.validate()
    return out


def published_params() -> DisCoHeadParams:
    """Section 3.2: 256x256, width 1, Adam 1e-4, batch 16, VGG-19 perceptual loss; for a GPU. The paper gives
    no step count; 100 epochs of 2000 frames is a placeholder of the right order for GRID-sized data."""
    return _with(DisCoHeadParams(), loss={"perceptual_backend": "vgg19"},
                 loop={"epochs": 100, "precision": "bf16-mixed"})


def quality_params() -> DisCoHeadParams:
    """The configuration meant to beat the baselines on held-out clips, sized for 2 CPU cores (hours)."""
    return _with(DisCoHeadParams(), model={"image_size": 128, "width": 0.25, "predictor_scale": 0.5,
                                           "hourglass_levels": 4},
                 loop={"epochs": 40, "batch_size": 8, "lr": 2e-4}, samples_per_epoch=800, val_frames=32)


def demo_params() -> DisCoHeadParams:
    """One variant (affine-DM) in <= 90 s of training on one core: 64x64 crops, width 1/8."""
    return _with(DisCoHeadParams(), model={"image_size": 64, "width": 0.125, "predictor_scale": 0.5,
                                           "hourglass_levels": 3, "audio_dim": 32, "eye_dim": 32,
                                           "tps_keypoints": 8},
                 loop={"epochs": 4, "batch_size": 8, "lr": 5e-4}, samples_per_epoch=320, val_frames=16)


def tiny_params() -> DisCoHeadParams:
    """A few seconds on a CPU: the smallest network (32x32 crops) and two steps."""
    return _with(DisCoHeadParams(), model={"image_size": 32, "width": 0.0625, "predictor_scale": 1.0,
                                           "hourglass_levels": 2, "audio_channels": 16, "audio_dim": 8,
                                           "eye_dim": 8, "mod_blocks": 2, "tps_keypoints": 5},
                 loss={"perceptual_backend": "weight_free"}, loop={"epochs": 1, "batch_size": 2},
                 samples_per_epoch=4, val_frames=2)


@dataclass
class GenerateDisCoHeadParams:
    """The `generate_discohead` params block: which outputs are made from the evaluation clips.

    Clips are the evaluation set's (`split`, `max_clips`: faces x audio_features of that split, clip_id
    order), so every reconstruction task the evaluate stage scores has an output.
    """

    split: Literal["test", "val"] = "test"
    """The speaker-disjoint split to generate for (the evaluation set's)."""
    max_clips: int | None = None
    """Only the first N clips of the split in clip_id order (null: all); keep equal to evaluate.max_clips."""
    protocols: list[Protocol] = field(default_factory=lambda: ["reconstruction", "transfer"])
    """reconstruction = table 1's protocol: source = the clip's first frame, head driver, eye driver and
    audio = the clip itself; transfer = disentangled control (figure 2): identity and source frame of
    clip i, head pose from clip i+1, audio from clip i+2, eyes from clip i+3 (clip_id order, cyclic)."""
    checkpoint: str = "trained"
    """"trained" = the train_discohead stage's generator.pt, or the path of another exported generator."""
    seed: int = 0
    """Recorded in generated.parquet (generation is deterministic)."""
    batch_frames: int = 16
    """Frames per network call."""
    crf: int = 18
    """x264 quality of the output videos."""
    threads: int = 1
    """torch CPU threads."""
    max_reject_fraction: float = 0.5
    """Fail when more than this fraction of the outputs cannot be generated."""

    def validate(self) -> None:
        require(self.max_clips is None or self.max_clips >= 1, "max_clips", self.max_clips, ">= 1, or null (all)")
        require(len(self.protocols) >= 1 and len(set(self.protocols)) == len(self.protocols)
                and all(p in ("reconstruction", "transfer") for p in self.protocols), "protocols", self.protocols,
                "one or both of reconstruction, transfer, each once")
        for name in ("batch_frames", "threads"):
            require(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
        require(0 <= self.crf <= 51, "crf", self.crf, "0..51")
        require(0 <= self.max_reject_fraction <= 1, "max_reject_fraction", self.max_reject_fraction,
                "a fraction in [0, 1]")
