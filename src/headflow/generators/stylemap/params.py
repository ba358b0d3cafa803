"""Params of the `stylemap` family: the Style Mapping module of "Style Transfer for 2D Talking Head
Generation" (papers/styletransfer2d_supplement.txt, tables 1-4), face-vid2vid's design (Wang et al.
2021: 3D keypoints, first-order warps of a 3D feature volume).

Every size is a field; the defaults are the published sizes (tables 1-4: 256x256 images, keypoint
extractor at 64x64, 15 keypoints, 32x16x64x64 feature volumes, 66-bin pose heads), i.e. the GPU
configuration (`published_params`). CPU sizes:

* `tiny_params()`: seconds, for tests (the shared per-family test trains it two steps).
* `demo_params()`: trains in <= 90 s on one core; shows the pipeline, not the quality.
* `quality_params()`: the configuration that has to beat the baselines (hours on 2 cores; docs/families/stylemap.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from headflow.config import require
from headflow.training.config import LoopConfig

Composition = Literal["volumes", "flows"]
PerceptualBackend = Literal["auto", "vgg19", "weight_free"]
CROP_SIZE = 256
"""Side of the shards' aligned crop (`crop256`) the family reads and its outputs are written at."""
NUM_BINS = 66
"""Head-pose bins per angle (supplement, "Pose Expression Network"; Hopenet: 3-degree bins from -99)."""


@dataclass
class ModelParams:
    """The networks' sizes (supplement tables 1-4); defaults are the published sizes."""

    image_size: int = 256
    """Side of the images the networks see (table 2/4 input: 256). Smaller sizes are the 256x256 crops
    resized (area) for CPU runs; outputs are resized back to 256 for the generation contract."""
    num_kp: int = 15
    """K keypoints (table 1: 15 heatmaps)."""
    width: float = 1.0
    """Channel multiplier for every network (1.0 = the published widths: keypoint extractor 64..1024,
    pose trunk 64/256/512/1024/2048, appearance 64/128/256, volume 32 channels, hourglass 32..1024,
    generator 256/128/64). Channel counts are round(width * published), at least 4."""
    kp_input_size: int = 64
    """Side the keypoint extractor downsamples its input to (table 1: AntiAliasInterpolation2d 256 -> 64)."""
    kp_blocks: int = 5
    """DownBlock2d / UpBlock3d pairs of the keypoint extractor (table 1: 5; 64 -> 2 -> 64)."""
    kp_depth: int = 16
    """Depth of the keypoint extractor's 3D volume (table 1: the 1x1 conv's 16384 = 1024 x 16 channels)."""
    kp_temperature: float = 0.1
    """Softmax temperature of the heatmaps before the soft-argmax (face-vid2vid's 0.1)."""
    volume_channels: int = 32
    """Channels of the appearance feature volume F_s (table 4: [32, 16, 64, 64]; scaled by width)."""
    volume_depth: int = 16
    """Depth of F_s (table 4: 16)."""
    res3d_blocks: int = 6
    """ResBlock3d on F_s (table 4: 6)."""
    compress_channels: int = 4
    """Channels the warping network compresses F_s to before warping it per keypoint (table 3: 32 -> 4)."""
    hourglass_blocks: int = 5
    """Down/up blocks of the warping network's 3D hourglass (face-vid2vid: 5)."""
    hourglass_channels: int = 32
    """Block expansion of the hourglass (table 3: its output has 80 + 32 = 112 channels)."""
    mask_kernel: int = 7
    """Kernel of the warping network's mask Conv3d and occlusion Conv2d (table 3: 7). The k7 Conv3d is
    most of a CPU forward pass at small widths (84 x 16 x 343 weights per voxel); CPU sizes use 3."""
    res2d_blocks: int = 6
    """ResBlock2d of the intermediate generator (supplement: 6)."""
    pose_blocks: tuple[int, int, int, int] = (3, 3, 3, 3)
    """Bottleneck blocks per stage of the pose-expression trunk after its first (table 2: 3, -, 1 + 3, 1 + 3;
    the 512 stage's count is not printed: 3, as face-vid2vid's). The first block of stages 2-4 strides 2."""
    composition: Composition = "volumes"
    """"volumes" = w(F_s) = sum_k m_k w_k(F_s), the supplement's text (after eq. 2); "flows" = F_s sampled
    once at sum_k m_k w_k(p), face-vid2vid's public implementations (one warp of F_s instead of K + 1)."""

    def validate(self) -> None:
        require(0 < self.width <= 4, "width", self.width, "a multiplier in (0, 4]")
        require(self.image_size >= 16 and self.image_size % 4 == 0, "image_size", self.image_size,
                "a multiple of 4, >= 16 (the appearance encoder halves it twice)")
        require(self.num_kp >= 1, "num_kp", self.num_kp, ">= 1")
        require(1 <= self.kp_blocks <= 7 and self.kp_input_size % 2 ** self.kp_blocks == 0
                and self.kp_input_size // 2 ** self.kp_blocks >= 1, "kp_input_size", self.kp_input_size,
                f"a multiple of 2**kp_blocks ({2 ** self.kp_blocks})")
        require(self.kp_input_size <= self.image_size, "kp_input_size", self.kp_input_size,
                f"<= image_size ({self.image_size})")
        volume = self.image_size // 4
        require(1 <= self.hourglass_blocks and volume % 2 ** self.hourglass_blocks == 0, "hourglass_blocks",
                self.hourglass_blocks, f"such that the volume side {volume} is divisible by 2**hourglass_blocks")
        for name in ("kp_depth", "volume_depth"):
            require(getattr(self, name) >= 2, name, getattr(self, name), ">= 2 (a volume needs depth)")
        for name in ("volume_channels", "compress_channels", "hourglass_channels"):
            require(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
        require(self.res3d_blocks >= 0 and self.res2d_blocks >= 0, "res3d_blocks/res2d_blocks",
                (self.res3d_blocks, self.res2d_blocks), ">= 0")
        require(len(self.pose_blocks) == 4 and all(b >= 1 for b in self.pose_blocks), "pose_blocks",
                self.pose_blocks, "4 stage depths, each >= 1")
        require(self.mask_kernel >= 1 and self.mask_kernel % 2 == 1, "mask_kernel", self.mask_kernel, "odd, >= 1")
        require(self.kp_temperature > 0, "kp_temperature", self.kp_temperature, "> 0")
        require(self.composition in ("volumes", "flows"), "composition", self.composition, "'volumes' or 'flows'")


@dataclass
class LossParams:
    """Loss weights by term name (supplement, "Intermediate Generator"; weights face-vid2vid's, section 4).

    Names (what `StylemapStep.g_losses` / `d_losses` return): l1, perceptual, gan_g, equivariance,
    keypoint_prior, head_pose, expression (G step); gan_d (D step).
    """

    l1: float = 1.0
    """Pixel L1 (the supplement's "pixel-wise level"; face-vid2vid has none: 1, our choice)."""
    perceptual: float = 10.0
    """Perceptual distance (face-vid2vid: 10)."""
    gan: float = 1.0
    """LS-GAN G term (face-vid2vid: 1; Mao et al. 2017)."""
    equivariance: float = 20.0
    """Keypoint equivariance under a known random affine + TPS (face-vid2vid: 20)."""
    keypoint_prior: float = 10.0
    """Keypoint prior: spread (D_t = 0.1) and mean depth (z_t = 0.33) (face-vid2vid: 10)."""
    head_pose: float = 20.0
    """L1 of the decoded yaw/pitch/roll to fit3dmm's fitted angles, in radians (face-vid2vid: 20, against a
    pretrained estimator's angles)."""
    expression: float = 5.0
    """L1 size of the expression deformations delta (face-vid2vid's deformation prior: 5)."""
    prior_distance: float = 0.1
    """D_t of the keypoint prior: pairs of keypoints closer than sqrt(D_t) (squared distance < D_t) are pushed apart."""
    prior_depth: float = 0.33
    """z_t of the keypoint prior: target mean depth of the keypoints (normalised units)."""
    sigma_affine: float = 0.05
    """Std of the random affine of the equivariance transform (FOMM's `transform_params`: 0.05)."""
    sigma_tps: float = 0.005
    """Std of the TPS control-point weights (FOMM: 0.005)."""
    tps_points: int = 5
    """TPS control points per side (FOMM: 5 -> 25 points)."""
    d_scales: int = 2
    """Scales of the multi-scale PatchGAN discriminator (face-vid2vid: 1 at 256; pix2pixHD: 2-3)."""
    d_channels: int = 64
    """First-layer channels of each PatchGAN."""
    d_layers: int = 3
    """Layers of each PatchGAN (pix2pix: 3)."""
    perceptual_backend: PerceptualBackend = "auto"
    """"vgg19" (its file must be present), "weight_free" ((1 - MS-SSIM) + gradient L1) or "auto" (VGG19 when
    present). face-vid2vid uses a VGG19 image pyramid; the project's perceptual loss is one scale."""

    def validate(self) -> None:
        for name in ("l1", "perceptual", "gan", "equivariance", "keypoint_prior", "head_pose", "expression",
                     "prior_distance", "sigma_affine", "sigma_tps"):
            require(getattr(self, name) >= 0, name, getattr(self, name), ">= 0")
        require(self.tps_points >= 2, "tps_points", self.tps_points, ">= 2")
        require(self.d_scales >= 1 and self.d_channels >= 1 and 1 <= self.d_layers <= 5, "d_scales/d_channels/d_layers",
                (self.d_scales, self.d_channels, self.d_layers), "scales >= 1, channels >= 1, layers 1..5")


def stylemap_loop() -> LoopConfig:
    """face-vid2vid's optimiser: Adam 2e-4, betas (0.5, 0.999), for G and D; batch 4 (theirs is 32 on 8 GPUs)."""
    return LoopConfig(epochs=100, batch_size=4, lr=2e-4, betas=(0.5, 0.999), lr_schedule="constant", seed=0,
                      num_workers=0, precision="32-true")


@dataclass
class StylemapParams:
    """The `train_stylemap` params block: everything that defines a Style Mapping training run."""

    model: ModelParams = field(default_factory=ModelParams)
    """The networks' sizes."""
    loss: LossParams = field(default_factory=LossParams)
    """Loss weights by term name and their settings."""
    loop: LoopConfig = field(default_factory=stylemap_loop)
    """The shared training loop (`headflow.training.LoopConfig`)."""
    samples_per_epoch: int = 1000
    """(source, driving) frame pairs drawn per epoch, uniformly over the training clips' valid frames."""
    val_pairs: int = 16
    """Fixed validation pairs evaluated after each epoch (val_l1, val_pose_err_deg)."""
    threads: int = 1
    """torch CPU threads (1: see train_lipsync.threads)."""
    max_reject_fraction: float = 0.5
    """Fail when more than this fraction of the train and val clips cannot give a pair with a fitted pose."""

    def validate(self) -> None:
        for part in (self.model, self.loss, self.loop):
            part.validate()
        for name in ("samples_per_epoch", "val_pairs", "threads"):
            require(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
        require(0 <= self.max_reject_fraction <= 1, "max_reject_fraction", self.max_reject_fraction, "in [0, 1]")
        require(self.samples_per_epoch >= self.loop.batch_size, "samples_per_epoch", self.samples_per_epoch,
                f">= loop.batch_size ({self.loop.batch_size})")

    @property
    def seed(self) -> int:
        return self.loop.seed


def _with(params: StylemapParams, loop: dict | None = None, **parts) -> StylemapParams:
    nested = {k: dataclasses.replace(getattr(params, k), **v) for k, v in parts.items() if isinstance(v, dict)}
    top = {k: v for k, v in parts.items() if not isinstance(v, dict)}
    out = dataclasses.replace(params, **nested, **top)
    if loop:
        out.loop = dataclasses.replace(out.loop, **loop)
    out.validate()
    return out


def published_params() -> StylemapParams:
    """Tables 1-4 at full size, face-vid2vid's loss weights; for a GPU (bf16 mixed precision)."""
    return _with(StylemapParams(), loop={"epochs": 100, "precision": "bf16-mixed"}, samples_per_epoch=20000,
                 val_pairs=64)


def quality_params() -> StylemapParams:
    """The configuration that must beat the baselines on held-out data, sized for 2 CPU cores (hours)."""
    return _with(StylemapParams(), model={"image_size": 128, "width": 0.25, "kp_input_size": 64, "kp_blocks": 5,
                                          "kp_depth": 8, "volume_depth": 8, "hourglass_blocks": 4, "mask_kernel": 5,
                                          "pose_blocks": (2, 2, 2, 2)},
                 loss={"d_channels": 32, "d_scales": 2}, loop={"epochs": 40, "batch_size": 4},
                 samples_per_epoch=800, val_pairs=16)


def demo_params() -> StylemapParams:
    """Trains in <= 90 s on one core: shows the pipeline, not the quality (10 keypoints, 4-deep volumes at
    16x16, 3x3x3 mask kernels: the published 15 keypoints and k7 cost ~2x the generation time)."""
    return _with(StylemapParams(), model={"image_size": 64, "num_kp": 10, "width": 0.0625, "kp_input_size": 32,
                                          "kp_blocks": 4,
                                          "kp_depth": 4, "volume_depth": 4, "res3d_blocks": 1, "hourglass_blocks": 3,
                                          "mask_kernel": 3, "res2d_blocks": 2, "pose_blocks": (1, 1, 1, 1)},
                 loss={"d_channels": 8, "d_scales": 2, "d_layers": 2, "perceptual_backend": "weight_free"},
                 loop={"epochs": 4, "batch_size": 2}, samples_per_epoch=48, val_pairs=4)


def tiny_params() -> StylemapParams:
    """A few seconds on a CPU: the smallest networks and the fewest steps that exercise every term."""
    return _with(StylemapParams(), model={"image_size": 32, "num_kp": 4, "width": 0.0625, "kp_input_size": 16,
                                          "kp_blocks": 2, "kp_depth": 2, "volume_depth": 2, "res3d_blocks": 1,
                                          "compress_channels": 2, "hourglass_blocks": 2, "hourglass_channels": 4,
                                          "mask_kernel": 3,
                                          "res2d_blocks": 1, "pose_blocks": (1, 1, 1, 1)},
                 loss={"d_channels": 4, "d_scales": 2, "d_layers": 1, "perceptual_backend": "weight_free"},
                 loop={"epochs": 1, "batch_size": 2}, samples_per_epoch=4, val_pairs=2)


@dataclass
class GenerateStylemapParams:
    """The `generate_stylemap` params block: which outputs are made, and how they are written.

    The clips are the evaluation set's (`evaluate.split`, first `max_clips` in clip_id order).
    """

    split: Literal["test", "val"] = "test"
    """The speaker-disjoint split to generate for (the evaluation set's)."""
    max_clips: int | None = None
    """Only the first N clips of the split in clip_id order (null: all); keep equal to evaluate.max_clips."""
    protocols: list[Literal["reconstruction", "transfer"]] = field(
        default_factory=lambda: ["reconstruction", "transfer"])
    """reconstruction = same clip: source = its first valid frame, driver = every frame (ground truth exists);
    transfer = the first valid frame of each clip (the neutral identity) driven by a clip of another
    speaker/style (the style reference, every frame; `style_pairs`)."""
    checkpoint: str = "trained"
    """"trained" = the train_stylemap stage's generator.pt, or the path of another exported generator."""
    variant: str = "default"
    """Name of this params variant in generated.parquet."""
    seed: int = 0
    """Recorded in generated.parquet (generation itself draws nothing)."""
    frames_per_batch: int = 8
    """Driving frames per network call."""
    crf: int = 18
    """x264 quality of the output videos."""
    threads: int = 1
    """torch CPU threads."""
    max_reject_fraction: float = 0.5
    """Fail when more than this fraction of the outputs cannot be generated."""
    landmark_baseline: Literal["similarity", "affine", "none"] = "similarity"
    """Beside every reconstruction output, the issue's baseline "the source warped by a single global affine
    from landmarks" (`affine.warp_source`), written as variant "<variant>+landmark_<kind>" so the evaluate
    stage scores and compares it; "none": not written."""
    identity_frames: int = 8
    """Transfer outputs: frames sampled per output (`metrics.sampling.frame_sample`) for CSIM of I_o with the
    neutral source image vs with the style reference's frame (`transfer_identity`); 0: not measured."""
    n_boot: int = 1000
    """Bootstrap resamples of the pose and identity intervals (95 %, `metrics.stats`)."""

    def validate(self) -> None:
        require(self.max_clips is None or self.max_clips >= 1, "max_clips", self.max_clips, ">= 1, or null (all)")
        require(self.identity_frames >= 0, "identity_frames", self.identity_frames, ">= 0 (0: not measured)")
        require(self.n_boot >= 1, "n_boot", self.n_boot, ">= 1")
        require(len(self.protocols) >= 1 and len(set(self.protocols)) == len(self.protocols), "protocols",
                self.protocols, "one or both of reconstruction, transfer, each once")
        for name in ("frames_per_batch", "threads"):
            require(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
        require(0 <= self.crf <= 51, "crf", self.crf, "0..51")
        require(0 <= self.max_reject_fraction <= 1, "max_reject_fraction", self.max_reject_fraction, "in [0, 1]")
