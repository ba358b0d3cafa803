"""Params of the `lipsync` family: the reference-attention lip-sync U-Net (Wav2Lip lineage).

The method is the coursework's (`papers/lipsync_coursework.txt`, chapters 3-4; summary in
docs/MODELS.md). One dataclass per concern, nested in `LipsyncParams` (the `train_lipsync` block of
params.yaml); every field names the paper section it follows, or says where and why it deviates.

Three sizes (docs/DESIGN.md "Generators"):

* `tiny_params()`: a few seconds on a CPU, for tests (the shared per-family test trains it two steps).
* `demo_params()`: trains in at most ~3 minutes on 2 CPU cores; it shows the pipeline end to end, not
  the quality.
* `quality_params()`: the configuration that has to beat the baselines on held-out speakers (hours on
  2 cores; see docs/families/lipsync.md).

The published configuration (width 1.0: 16-32-64-128-256-512 channels, 512-d embeddings, batch 4
windows, ~3 days of stage 1 + 18-24 h of stage 2 on one RTX 2080) is `published_params()`; it is
meant for a GPU.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from headflow.config import require
from headflow.training.config import LoopConfig

AttentionKind = Literal["paper", "dot", "mean"]
ReferenceSampling = Literal["kmeans", "random", "neighbourhood"]
ReferenceRegion = Literal["face", "lower_half"]
PerceptualBackend = Literal["auto", "vgg19", "weight_free"]

IMAGE_SIZE = 96
"""Side of the Wav2Lip face crop the generator works on (section 3.1: 96x96 crops)."""
WINDOW = 5
"""Consecutive frames per training sample (section 3.7: T_v = 5, the expert's window)."""


@dataclass
class ModelParams:
    """The generator's architecture (section 3.4, figure 3.2) and its ablation switches (table 4.1)."""

    width: float = 1.0
    """Channel multiplier. 1.0 = the published size (image encoders 16-32-64-128-256-512-512 channels,
    audio encoder 32-64-128-256-512-512, 512-d embeddings, the widths of Wav2Lip's encoders that the
    coursework's 10- and 7-block encoders match); CPU runs use 0.125-0.5. Channel counts are
    round(width * published), at least 4."""
    residual: bool = True
    """Identity shortcuts in the encoder and decoder blocks (table 4.1 "ResNet"; False = plain
    Conv-BN-ReLU blocks)."""
    attention: AttentionKind = "paper"
    """How the N reference encodings are aggregated (eq. 5, table 4.1 "Attn."): "paper" =
    w_k = exp(-sigmoid(a . r_k)) / sum_i exp(-sigmoid(a . r_i)), exactly as eq. 5 is printed (its
    weights stay within a factor e of each other); "dot" = softmax(a . r_k / sqrt(d)), the usual
    scaled dot product (not in the paper); "mean" = plain average (the paper's rows without attention,
    section 4.2)."""
    audio_skips: bool = True
    """Project the audio embedding to every decoder scale and concatenate it there (table 4.1 "Audio
    skips")."""
    mask_head: bool = True
    """Predict the blending mask (table 4.1 "Mask"). False: no mask head; the whole 96x96 output is
    the result (Wav2Lip pastes the whole crop), L1 covers the whole crop and no mask BCE is computed."""
    skipless_levels: int = 1
    """Highest-resolution decoder levels that get no encoder skips (section 3.4: "we do not use
    skip-connections for final layers because model learns to copy reference features"). 1 = only the
    96x96 level; the paper does not say how many; at most 6."""

    def validate(self) -> None:
        require(0 < self.width <= 4, "width", self.width, "a multiplier in (0, 4]")
        require(0 <= self.skipless_levels <= 6, "skipless_levels", self.skipless_levels,
                "0..6 (the decoder has 6 upsampling levels)")


@dataclass
class DataParams:
    """Inputs: target windows, reference frames and masks (sections 3.2, 3.5, 3.6)."""

    n_references: int = 10
    """N reference frames per target window (section 3.5: K = 10 KMeans clusters, one frame each)."""
    reference_sampling: ReferenceSampling = "kmeans"
    """"kmeans" = KMeans (K = n_references, scikit-learn) on the lip and chin landmarks of the clip,
    one frame per cluster (the frame nearest its centroid outside the target window), so the same
    frames serve every target frame (section 3.5); "random" = n_references frames drawn uniformly from
    the clip outside the target window (table 4.1 "Random 1" with n_references 1, LipGAN/Wav2Lip);
    "neighbourhood" = drawn within +-`neighbourhood` frames of the target window (table 4.1 "Random 1 in
    neigh. of 30")."""
    neighbourhood: int = 30
    """Half-width in frames of the "neighbourhood" sampling range (table 4.1: 30)."""
    reference_augment: bool = True
    """Fill clusters that have no frame outside the target window with affine-augmented copies of the
    chosen frames (section 3.5). False: repeat the chosen frames unchanged (table 4.1 "KMeans" without
    "+ Aug")."""
    augment_rotation_deg: float = 5.0
    """Affine augmentation of filled reference slots: rotation range +- degrees (the paper does not
    give its ranges)."""
    augment_scale: float = 0.05
    """... zoom range 1 +- this."""
    augment_shift: float = 0.05
    """... shift range +- this fraction of the side."""
    reference_blur_sigma: float = 1.0
    """Gaussian blur of every reference frame, sigma in pixels of the 96x96 crop (section 3.6: "use
    Gaussian blur of reference images"; the paper gives no sigma). 0 = no blur."""
    reference_region: ReferenceRegion = "face"
    """"face" = the whole reference crop; "lower_half" = only the mouth half of each reference (upper
    half zeroed; section 3.6: "get only mouth region as reference frames ... improves convergence").
    The half is kept in place, not resized, so reference features stay aligned with the target's."""
    hull_dilation: int = 11
    """Side of the square dilation kernel applied to the landmark hull mask that trains the mask head
    (section 3.5: chin bottom + nose tip, convex hull, dilation with kernel size 11)."""

    def validate(self) -> None:
        require(self.n_references >= 1, "n_references", self.n_references, ">= 1")
        require(self.neighbourhood >= 1, "neighbourhood", self.neighbourhood, ">= 1 frame")
        require(self.reference_blur_sigma >= 0, "reference_blur_sigma", self.reference_blur_sigma, ">= 0 pixels")
        require(self.hull_dilation >= 1 and self.hull_dilation % 2 == 1, "hull_dilation", self.hull_dilation,
                "an odd kernel size >= 1")
        for name in ("augment_rotation_deg", "augment_scale", "augment_shift"):
            require(getattr(self, name) >= 0, name, getattr(self, name), ">= 0")


@dataclass
class LossParams:
    """Loss weights by term name (section 3.7, eq. 15) and the terms' settings.

    The names are the keys `g_losses` / `d_losses` return: l1_masked, perceptual, sync, mask_bce,
    gan_g (G step); gan_d, r1 (D step).
    """

    l1_masked: float = 1.0
    """alpha_L1 (stage 1 and 2: 1)."""
    perceptual: float = 0.5
    """alpha_perceptual (stage 1 and 2: 0.5)."""
    sync: float = 0.01
    """alpha_expert in stage 1 (0.01), applied only once `sync_start_l1` is reached."""
    sync_stage2: float = 0.1
    """alpha_expert in stage 2 (0.1: "adversarial loss contradicts the expert in some way")."""
    mask_bce: float = 1.0
    """alpha_mask (1)."""
    gan: float = 0.01
    """alpha_adv in stage 2 (0.01); stage 1 has no GAN."""
    r1_gamma: float = 10.0
    """gamma of the R1 penalty on real windows (eq. 14: gamma = 10 in all experiments)."""
    sync_start_l1: float = 0.06
    """The expert's term switches on once the validation masked L1 (mean |x - y| over masked pixels,
    images in [0, 1]) falls to this. The paper waits for "L1 = 1.1, perceptual = 27 on their scale"
    (section 3.7), a scale it does not define; 0 = never switch on, negative = on from the first step."""
    sync_eps: float = 1e-3
    """The expert's probability is clipped to [sync_eps, 1 - sync_eps] before -log (section 3.7: [1e-3, 1])."""
    perceptual_backend: PerceptualBackend = "auto"
    """"vgg19" (the file must be present), "weight_free" ((1 - MS-SSIM) + gradient L1) or "auto" (VGG19
    when its file is on disk). Deviation: the paper uses VGG16 mid-to-high layers; the project ships
    VGG19 (docs/DESIGN.md), used with relu3_1..relu5_1."""
    d_augment: str = "affine,erosion"
    """DiffAugment ops applied to every window the discriminator sees (section 3.7: "random affine and
    erosion"); comma-separated from affine, erosion (this family's) and color, translation, cutout
    (`headflow.augment.diffaugment`); "" = none."""

    def validate(self) -> None:
        for name in ("l1_masked", "perceptual", "sync", "sync_stage2", "mask_bce", "gan", "r1_gamma"):
            require(getattr(self, name) >= 0, name, getattr(self, name), ">= 0")
        require(0 < self.sync_eps < 0.5, "sync_eps", self.sync_eps, "in (0, 0.5)")
        known = ("affine", "erosion", "color", "translation", "cutout")
        ops = [p.strip() for p in self.d_augment.split(",") if p.strip()]
        require(all(p in known for p in ops), "d_augment", self.d_augment,
                f"comma-separated ops from {', '.join(known)} (or empty)")


@dataclass
class DiscriminatorParams:
    """The stage-2 multi-frame discriminator (section 3.7, figure 3.3)."""

    base_channels: int = 64
    """Channels of its first layer (the paper does not give widths; pix2pix's 64)."""
    n_layers: int = 3
    """Strided layers of the PatchGAN (3: a 48x96 lower-half window gives a 4x10 logit map)."""
    spectral_norm: bool = True
    """Spectral normalisation on every layer (section 3.7)."""

    def validate(self) -> None:
        require(self.base_channels >= 1, "base_channels", self.base_channels, ">= 1")
        require(1 <= self.n_layers <= 4, "n_layers", self.n_layers, "1..4 (a 48x96 window allows at most 4)")


def lipsync_loop() -> LoopConfig:
    """Stage 1's loop (section 3.7): Adam 2e-4 (G and D), betas (0.5, 0.999) (Wav2Lip's; the paper gives
    none), batch 4 windows, learning rate annealed to 0 over the stage (cosine: the harness has no
    linear end-annealing schedule; the paper anneals linearly at the end), lazy R1 every 4 steps."""
    return LoopConfig(epochs=20, batch_size=4, lr=2e-4, betas=(0.5, 0.999), lr_schedule="cosine",
                      min_lr_fraction=0.0, r1_every=4, seed=0, num_workers=0, precision="32-true")


@dataclass
class LipsyncParams:
    """The `train_lipsync` params block: everything that defines a lip-sync generator run."""

    model: ModelParams = field(default_factory=ModelParams)
    """The generator's architecture and ablation switches."""
    data: DataParams = field(default_factory=DataParams)
    """References and masks."""
    loss: LossParams = field(default_factory=LossParams)
    """Loss weights by term name and the terms' settings."""
    discriminator: DiscriminatorParams = field(default_factory=DiscriminatorParams)
    """Stage 2's multi-frame discriminator."""
    loop: LoopConfig = field(default_factory=lipsync_loop)
    """The shared training loop (`headflow.training.LoopConfig`) of stage 1: `epochs` is stage 1's
    length; stage 2 runs the same loop for `stage2_epochs`."""
    stage2_epochs: int = 0
    """Epochs of stage 2 (adds the GAN; 0 = stage 1 only)."""
    samples_per_epoch: int = 512
    """Windows drawn per epoch (uniformly over all usable windows of the training clips)."""
    val_windows: int = 32
    """Fixed validation windows evaluated after each epoch (they decide when the sync term switches on)."""
    threads: int = 1
    """torch CPU threads. 1 by default: on 2 cores shared with other work, 2 threads ran the demo 13x
    slower (915 s vs 70 s, threads spin-waiting for a busy core); use 2 on an idle machine."""
    expert: str = "trained"
    """The frozen lip-sync expert of the sync loss: "trained" = the `train_expert` stage's best.pt, or the
    path of another checkpoint it wrote (relative to the project root); "none" = no sync term."""
    max_reject_fraction: float = 0.5
    """Fail when more than this fraction of the train and val clips cannot give a window with references."""

    def validate(self) -> None:
        # nested blocks validate themselves when loaded; presets built in code are checked here too
        for part in (self.model, self.data, self.loss, self.discriminator, self.loop):
            part.validate()
        require(self.stage2_epochs >= 0, "stage2_epochs", self.stage2_epochs, ">= 0")
        for name in ("samples_per_epoch", "val_windows", "threads"):
            require(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
        require(0 <= self.max_reject_fraction <= 1, "max_reject_fraction", self.max_reject_fraction,
                "a fraction in [0, 1]")
        require(self.samples_per_epoch >= self.loop.batch_size, "samples_per_epoch", self.samples_per_epoch,
                f">= loop.batch_size ({self.loop.batch_size})")

    @property
    def seed(self) -> int:
        return self.loop.seed


def _with(params: LipsyncParams, loop: dict | None = None, **parts) -> LipsyncParams:
    """A copy with some nested fields replaced ({"model": {...}}) and top-level ones (stage2_epochs=...)."""
    nested = {k: dataclasses.replace(getattr(params, k), **v) for k, v in parts.items() if isinstance(v, dict)}
    top = {k: v for k, v in parts.items() if not isinstance(v, dict)}
    out = dataclasses.replace(params, **nested, **top)
    if loop:
        out.loop = dataclasses.replace(out.loop, **loop)
    out.validate()
    return out


def published_params() -> LipsyncParams:
    """The paper's configuration (section 3.7): width 1, batch 4, both stages; for a GPU.

    The epoch counts are placeholders of the right order: the paper trains ~3 days (stage 1) and
    18-24 h (stage 2) on one RTX 2080 and does not give its step counts. The rate is annealed linearly
    over the last 20% of each stage ("linear_tail"); the smaller configurations use a cosine decay.
    """
    return _with(LipsyncParams(), loop={"epochs": 300, "precision": "32-true", "lr_schedule": "linear_tail"},
                 stage2_epochs=100,
                 samples_per_epoch=4000, val_windows=256)


def quality_params() -> LipsyncParams:
    """The configuration that must beat the baselines on held-out data, sized for 2 CPU cores (hours)."""
    return _with(LipsyncParams(), model={"width": 0.25}, data={"n_references": 5}, loop={"epochs": 24},
                 stage2_epochs=8, samples_per_epoch=1000, val_windows=32)


def demo_params() -> LipsyncParams:
    """Trains in at most ~3 minutes on 2 CPU cores: shows the pipeline, not the quality."""
    return _with(LipsyncParams(), model={"width": 0.125}, data={"n_references": 3},
                 discriminator={"base_channels": 16, "n_layers": 2}, loop={"epochs": 6, "batch_size": 2},
                 stage2_epochs=1, samples_per_epoch=96, val_windows=8)


def tiny_params() -> LipsyncParams:
    """A few seconds on a CPU: the smallest network and the fewest steps that exercise every term."""
    return _with(LipsyncParams(), model={"width": 0.0625}, data={"n_references": 2},
                 loss={"sync_start_l1": -1.0}, discriminator={"base_channels": 8, "n_layers": 2},
                 loop={"epochs": 1, "batch_size": 2, "r1_every": 1}, stage2_epochs=1, samples_per_epoch=2,
                 val_windows=2)


@dataclass
class GenerateLipsyncParams:
    """The `generate_lipsync` params block: which clips get dubbed, and how the videos are written.

    The clips are the evaluation set's (`evaluate.split`, `evaluate.max_clips`: the faces x audio_features
    join of that split in clip_id order), so every task the evaluate stage scores has an output.
    """

    split: Literal["test", "val"] = "test"
    """The speaker-disjoint split to generate for (the evaluation set's)."""
    max_clips: int | None = None
    """Only the first N clips of the split in clip_id order (null: all); keep equal to evaluate.max_clips."""
    protocols: list[Literal["reconstruction", "dubbing"]] = field(
        default_factory=lambda: ["reconstruction", "dubbing"])
    """reconstruction = each clip with its own audio (ground truth exists); dubbing = with the audio of the
    next clip in id order (`headflow.manifest.generated.dubbing_pairs`, Wav2Lip's protocol of mismatched
    audio and video sources)."""
    checkpoint: str = "trained"
    """"trained" = the train_lipsync stage's generator.pt, or the path of another exported generator."""
    variant: str = "default"
    """Name of this params variant in generated.parquet (ablations: "no_mask", "random_refs", ...)."""
    seed: int = 0
    """Seed of the reference augmentation at generation."""
    chunks_per_batch: int = 8
    """Chunks of up to 5 frames per network call."""
    crf: int = 18
    """x264 quality of the output videos (lower = better, larger)."""
    threads: int = 1
    """torch CPU threads (see train_lipsync.threads)."""
    max_reject_fraction: float = 0.5
    """Fail when more than this fraction of the outputs cannot be generated."""

    def validate(self) -> None:
        require(self.max_clips is None or self.max_clips >= 1, "max_clips", self.max_clips, ">= 1, or null (all)")
        require(len(self.protocols) >= 1 and len(set(self.protocols)) == len(self.protocols), "protocols",
                self.protocols, "one or both of reconstruction, dubbing, each once")
        for name in ("chunks_per_batch", "threads"):
            require(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
        require(0 <= self.crf <= 51, "crf", self.crf, "0..51")
        require(0 <= self.max_reject_fraction <= 1, "max_reject_fraction", self.max_reject_fraction,
                "a fraction in [0, 1]")

