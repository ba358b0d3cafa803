"""Params of the `head2headfs` family: the NMFC-conditioned video renderer with few-shot fine-tuning.

The method is Head2HeadFS (Doukas, Koujan, Sharmanska, Zafeiriou; `papers/head2headfs.txt`, sections
3.3-4; summary in docs/MODELS.md). One dataclass per concern, nested in `Head2HeadFSParams` (the
`train_head2headfs` block); `FinetuneHead2HeadFSParams` and `GenerateHead2HeadFSParams` are the two
other stages' blocks. Every field names the paper section it follows or says where it deviates.

Sizes (docs/DESIGN.md "Generators"):

* `tiny_params()`: seconds on a CPU, for tests.
* `demo_params()`: initialisation + fine-tuning in about 2 minutes on one core (64x64, narrow).
* `quality_params()`: 96x96, wider, longer (an estimated ~10 h on one core; see docs/families/head2headfs.md).
* `published_params()`: the paper's (256x256, vid2vid widths, n_f 512, 20 + 15 epochs), for a GPU.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from headflow.config import require
from headflow.training.config import LoopConfig

PerceptualBackend = Literal["auto", "vgg19", "weight_free"]
FlowMethod = Literal["dis", "farneback"]
MaskBackend = Literal["grabcut", "nmfc"]
FinetuneBaseline = Literal["random_init"]
GenerateBaseline = Literal["retrieval", "random_init"]


@dataclass
class ModelParams:
    """G and E_id (section 3.3, section 4 "Implementation details")."""

    image_size: int = 256
    """Side of the square frames G renders (section 4: 256x256). The shards' 256x256 crops and NMFC are
    resized to it (area interpolation for frames, nearest for NMFC)."""
    ngf: int = 64
    """Channels of G's first layer (vid2vid's ngf 64); level k has min(ngf * 2^k, max_channels)."""
    max_channels: int = 512
    """Width cap of G's levels."""
    n_downsample: int = 3
    """Stride-2 levels of each encoder (vid2vid's `n_downsample_G` = 3); the decoder mirrors them."""
    n_blocks: int = 4
    """Residual blocks after the encoders' sum (vid2vid uses 9 at 1024 px; the paper gives none)."""
    n_f: int = 512
    """Length of the identity feature vector h (section 4: n_f = 512)."""
    embedder_width: int = 32
    """Channels of E_id's stem. E_id is a FaceNet-style Inception-ResNet (conv stem, Inception-ResNet
    blocks with scaled residuals, a reduction, global average pool, linear to n_f, BatchNorm, L2
    normalisation, as facenet-pytorch's InceptionResnetV1); this is a much narrower and shallower
    version of it trained from scratch here (the paper cites the architecture, not weights)."""
    embedder_blocks: int = 2
    """Inception-ResNet blocks per resolution of E_id (InceptionResnetV1: 5, 10, 5)."""

    def validate(self) -> None:
        require(self.image_size >= 16 and self.image_size % (2 ** self.n_downsample) == 0, "image_size",
                self.image_size, f">= 16 and divisible by 2^n_downsample = {2 ** self.n_downsample}")
        for name in ("ngf", "max_channels", "n_f", "embedder_width"):
            require(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
        require(1 <= self.n_downsample <= 6, "n_downsample", self.n_downsample, "1..6")
        require(self.n_blocks >= 0 and self.embedder_blocks >= 1, "n_blocks", (self.n_blocks, self.embedder_blocks),
                "n_blocks >= 0 and embedder_blocks >= 1")


@dataclass
class DiscriminatorParams:
    """D^I, D^M, D^V (section 3.3 "Spatial discriminators", "Temporal discriminator"; section 4)."""

    ndf: int = 64
    """Channels of every PatchGAN's first layer (pix2pix / vid2vid: 64)."""
    n_layers: int = 3
    """Strided layers of D^I and D^V (pix2pix: 3)."""
    mouth: bool = True
    """Use D^M (table 3 ablation "w/o D^M": False)."""
    dynamics: bool = True
    """Use D^V (table 3 ablation "w/o D^V": False)."""
    window: int = 3
    """K, consecutive frames D^V sees per temporal scale (vid2vid's `n_frames_D` = 3)."""
    time_scales: int = 3
    """Temporal scales of D^V; scale s sees K frames 2^s apart (section 4: three scales, subsampling by 2)."""
    mouth_size: int = 32
    """Side the mouth crops are resized to for D^M (the paper gives none); D^M has 2 strided layers."""
    mouth_scale: float = 1.6
    """Mouth box side = this x the mouth width (landmarks 48-54), centred on landmarks 48-67."""
    flow: FlowMethod = "dis"
    """Optical flow of the real frames for D^V: OpenCV's DIS (ultrafast preset) or Farneback. The paper
    uses FlowNet2 fine-tuned on 4DFAB, whose weights are not available offline."""

    def validate(self) -> None:
        require(self.ndf >= 1 and 1 <= self.n_layers <= 4, "ndf/n_layers", (self.ndf, self.n_layers),
                "ndf >= 1, n_layers 1..4")
        require(self.window >= 2 and 1 <= self.time_scales <= 4, "window/time_scales", (self.window, self.time_scales),
                "window >= 2, time_scales 1..4")
        require(self.mouth_size >= 16 and self.mouth_scale > 0, "mouth_size/mouth_scale",
                (self.mouth_size, self.mouth_scale), "mouth_size >= 16, mouth_scale > 0")

    @property
    def frames_needed(self) -> int:
        """Frames one training window spans: (K - 1) * 2^(S - 1) + 1 (D^V's coarsest scale); 1 without D^V."""
        return (self.window - 1) * 2 ** (self.time_scales - 1) + 1 if self.dynamics else 1


@dataclass
class LossParams:
    """Loss weights by term name (section 3.3 "Objective functions"; section 4: all lambdas 10).

    G step terms: adv_image, adv_mouth, adv_video (hinge, weight 1 each), vgg, feat, mask, match.
    D step terms: d_image, d_mouth, d_video (hinge).
    """

    adv: float = 1.0
    """Weight of each adversarial term (L_adv = sum of the three, unweighted in the paper)."""
    vgg: float = 10.0
    """lambda_vgg."""
    feat: float = 10.0
    """lambda_feat (feature matching on D^I and D^V features, L1)."""
    mask: float = 10.0
    """lambda_mask (L1 between predicted and extracted foreground masks)."""
    match: float = 10.0
    """lambda_mch (E_id's embedding matching 1 - cos(h_i, w_i), eq. 8; w_i detached: W is D^I's)."""
    perceptual_backend: PerceptualBackend = "auto"
    """"vgg19" (the file must be present), "weight_free" ((1 - MS-SSIM) + gradient L1) or "auto"."""

    def validate(self) -> None:
        for name in ("adv", "vgg", "feat", "mask", "match"):
            require(getattr(self, name) >= 0, name, getattr(self, name), ">= 0")


@dataclass
class MaskParams:
    """Foreground masks without downloaded weights (section 4 uses a face-parsing network instead)."""

    backend: MaskBackend = "grabcut"
    """"grabcut": OpenCV GrabCut seeded from the head render (NMFC coverage) and the landmarks, once per
    clip on one frame, propagated to the others by the landmark similarity transform and united with each
    frame's head render; "nmfc": the head render alone (no hair, no neck)."""
    grabcut_size: int = 128
    """Side GrabCut runs at (the 256 crop is downscaled; the mask upscaled back)."""
    grabcut_iterations: int = 3
    """GrabCut iterations on the seed frame."""
    hair_extent: float = 0.6
    """The probable-foreground box reaches this x the landmark box's height above the brows (hair)."""

    def validate(self) -> None:
        require(self.grabcut_size >= 32 and self.grabcut_iterations >= 1 and self.hair_extent >= 0,
                "grabcut_size/grabcut_iterations/hair_extent",
                (self.grabcut_size, self.grabcut_iterations, self.hair_extent), ">= 32, >= 1, >= 0")


@dataclass
class DataParams:
    """Training windows (section 3.3)."""

    identity_frames: int = 8
    """M, random frames of the target person passed to E_id per sample (eq. 4; the paper gives no M)."""
    samples_per_epoch: int = 1000
    """Windows drawn per epoch (uniformly over all start frames of the training clips). The paper's epoch
    is a pass over all frames."""
    max_reject_fraction: float = 0.5
    """Fail when more than this fraction of the clips cannot train (too short, no NMFC, counts differ)."""

    def validate(self) -> None:
        require(self.identity_frames >= 1 and self.samples_per_epoch >= 1, "identity_frames/samples_per_epoch",
                (self.identity_frames, self.samples_per_epoch), ">= 1")
        require(0 <= self.max_reject_fraction <= 1, "max_reject_fraction", self.max_reject_fraction, "in [0, 1]")


def head2headfs_loop() -> LoopConfig:
    """Adam 2e-4, betas (0.5, 0.999) (vid2vid's; the paper says only "Adam"), batch 1 window, constant lr."""
    return LoopConfig(epochs=20, batch_size=1, lr=2e-4, betas=(0.5, 0.999), seed=0)


@dataclass
class Head2HeadFSParams:
    """The `train_head2headfs` block: the multi-person initialisation stage (section 3.3)."""

    model: ModelParams = field(default_factory=ModelParams)
    discriminator: DiscriminatorParams = field(default_factory=DiscriminatorParams)
    loss: LossParams = field(default_factory=LossParams)
    masks: MaskParams = field(default_factory=MaskParams)
    data: DataParams = field(default_factory=DataParams)
    loop: LoopConfig = field(default_factory=head2headfs_loop)
    """The shared loop; section 4: 20 epochs."""
    threads: int = 1
    """torch CPU threads (1: the machine is shared; see train_lipsync.threads)."""

    def validate(self) -> None:
        for part in (self.model, self.discriminator, self.loss, self.masks, self.data, self.loop):
            part.validate()
        require(self.threads >= 1, "threads", self.threads, ">= 1")
        require(self.data.samples_per_epoch >= self.loop.batch_size, "data.samples_per_epoch",
                self.data.samples_per_epoch, f">= loop.batch_size ({self.loop.batch_size})")

    @property
    def seed(self) -> int:
        return self.loop.seed


def finetune_loop() -> LoopConfig:
    """Section 3.4 / 4: 15 epochs, Adam as the initialisation stage."""
    return LoopConfig(epochs=15, batch_size=1, lr=2e-4, betas=(0.5, 0.999), seed=0)


@dataclass
class FinetuneHead2HeadFSParams:
    """The `finetune_head2headfs` block: one person-specific generator per target identity (section 3.4)."""

    split: Literal["test", "val"] = "test"
    """Targets are the identities (speakers) of this split: never seen by the initialisation stage."""
    targets: list[str] | None = None
    """Speaker ids to fine-tune (null: every speaker of `split`). Each uses its first clip in id order."""
    frames: int = 50
    """T', the first frames of the target's first clip it is fine-tuned on (section 4: 50-500)."""
    min_frames: int = 50
    """A target with fewer usable frames is a quarantine row (`too_few_frames`), never a truncated run."""
    samples_per_epoch: int = 0
    """Windows per epoch; 0 = one per frame of the T' (the paper's epoch)."""
    loop: LoopConfig = field(default_factory=finetune_loop)
    """The shared loop of every target's run (section 4: 15 epochs)."""
    threads: int = 1
    """torch CPU threads."""
    max_reject_fraction: float = 0.5
    """Fail when more than this fraction of the targets cannot be fine-tuned."""
    baselines: list[FinetuneBaseline] = field(default_factory=list)
    """Baseline fine-tunings run beside each target's (the issue's reenactment baselines). "random_init": the
    same fine-tuning (same frames, loop, losses) started from randomly initialised G, E_id and discriminators
    of the same architecture instead of the initialisation stage's (table 2's ablation), written to
    `<speaker>/random_init/generator.pt`; `generate_head2headfs` renders it as variant `<variant>+random_init`."""
    random_init_seed: int = 1
    """Seed of the random initialisation of the "random_init" baseline (torch's default initialisers)."""

    def validate(self) -> None:
        self.loop.validate()
        require(len(set(self.baselines)) == len(self.baselines) and set(self.baselines) <= {"random_init"},
                "baselines", self.baselines, "a list of distinct names among: random_init")
        require(self.min_frames >= 1 and self.frames >= self.min_frames, "frames/min_frames",
                (self.frames, self.min_frames), "frames >= min_frames >= 1")
        require(self.samples_per_epoch >= 0 and self.threads >= 1, "samples_per_epoch/threads",
                (self.samples_per_epoch, self.threads), ">= 0 / >= 1")
        require(0 <= self.max_reject_fraction <= 1, "max_reject_fraction", self.max_reject_fraction, "in [0, 1]")


@dataclass
class GenerateHead2HeadFSParams:
    """The `generate_head2headfs` block: reenactment with the person-specific generators (section 3.4 "Synthesis")."""

    protocols: list[Literal["self", "cross"]] = field(default_factory=lambda: ["self", "cross"])
    """self = self-reenactment of the target's held-out clips (its other clips of the split; ground truth
    exists; protocol "reenactment", driver = source); cross = source-to-target: each held-out clip of
    another speaker of the split drives the target (expression and pose of the driver, identity
    coefficients of the target -> NMFC -> G). With one speaker in the split, "cross" takes the target's
    own other clips as drivers through the same re-rendering path."""
    max_clips: int | None = None
    """At most this many driver clips per target and protocol (clip_id order; null: all)."""
    variant: str = "default"
    """Name of this params variant in generated.parquet (ablations: "no_dm", "no_dv", ...)."""
    morphable_model: str = "builtin"
    """The morphable model spec the fits were made with (keep equal to fit3dmm.model): "cross" re-renders
    NMFC with it."""
    crf: int = 18
    """x264 quality of the output videos."""
    threads: int = 1
    """torch CPU threads."""
    max_reject_fraction: float = 0.5
    """Fail when more than this fraction of the outputs cannot be generated."""
    baselines: list[GenerateBaseline] = field(default_factory=lambda: ["retrieval", "random_init"])
    """Reenactment baselines written in the same run as rows of variant `<variant>+<name>` (the issue's
    "Measured and reported"): "retrieval" = for each self-reenactment frame, the target's fine-tuning frame
    nearest by NMFC distance (`generate.retrieve_nearest`), composited like the system's; "random_init" =
    the `finetune_head2headfs.baselines` random-initialisation generator rendered exactly as the system
    (self and cross; needs `random_init` in finetune_head2headfs.baselines)."""

    def validate(self) -> None:
        require(len(set(self.baselines)) == len(self.baselines) and set(self.baselines) <= {"retrieval", "random_init"},
                "baselines", self.baselines, "a list of distinct names among: retrieval, random_init")
        require(len(self.protocols) >= 1 and set(self.protocols) <= {"self", "cross"}, "protocols", self.protocols,
                "one or both of self, cross")
        require(self.max_clips is None or self.max_clips >= 1, "max_clips", self.max_clips, ">= 1 or null")
        require(0 <= self.crf <= 51 and self.threads >= 1, "crf/threads", (self.crf, self.threads), "0..51 / >= 1")
        require(0 <= self.max_reject_fraction <= 1, "max_reject_fraction", self.max_reject_fraction, "in [0, 1]")


def _with(params, loop: dict | None = None, **parts):
    """A copy with nested fields replaced ({"model": {...}}) and top-level ones."""
    nested = {k: dataclasses.replace(getattr(params, k), **v) for k, v in parts.items() if isinstance(v, dict)}
    top = {k: v for k, v in parts.items() if not isinstance(v, dict)}
    out = dataclasses.replace(params, **nested, **top)
    if loop:
        out.loop = dataclasses.replace(out.loop, **loop)
    out.validate()
    return out


def published_params() -> Head2HeadFSParams:
    """Section 4: 256x256, vid2vid widths, n_f 512, 20 epochs (for a GPU; ~1000 frames x 480 identities)."""
    return _with(Head2HeadFSParams(), model={"n_blocks": 9}, data={"samples_per_epoch": 480_000})


def quality_params() -> Head2HeadFSParams:
    """96x96, ngf 16, n_f 128, D^V K=3 x 2 scales, 10 epochs x 1000 windows: sized for 2 CPU cores (an
    estimated ~10 h of initialisation on one core, extrapolated from the demo's CPU time; not run)."""
    return _with(Head2HeadFSParams(), model={"image_size": 96, "ngf": 16, "max_channels": 128, "n_f": 128,
                                             "embedder_width": 16, "embedder_blocks": 1, "n_blocks": 2},
                 discriminator={"ndf": 16, "time_scales": 2}, data={"samples_per_epoch": 1000, "identity_frames": 4},
                 loop={"epochs": 10})


def demo_params() -> Head2HeadFSParams:
    """64x64, ngf 8: the initialisation stage in about a minute on one core (shows the pipeline, not quality)."""
    return _with(Head2HeadFSParams(), model={"image_size": 64, "ngf": 8, "max_channels": 64, "n_downsample": 2,
                                             "n_blocks": 1, "n_f": 32, "embedder_width": 8, "embedder_blocks": 1},
                 discriminator={"ndf": 8, "n_layers": 2, "window": 2, "time_scales": 2, "mouth_size": 16},
                 data={"samples_per_epoch": 48, "identity_frames": 2}, loop={"epochs": 2})


def tiny_params() -> Head2HeadFSParams:
    """Seconds on a CPU: the smallest networks that exercise every term (two steps with batch 1)."""
    return _with(Head2HeadFSParams(), model={"image_size": 32, "ngf": 4, "max_channels": 16, "n_downsample": 2,
                                             "n_blocks": 1, "n_f": 8, "embedder_width": 4, "embedder_blocks": 1},
                 discriminator={"ndf": 4, "n_layers": 2, "window": 2, "time_scales": 2, "mouth_size": 16},
                 loss={"perceptual_backend": "weight_free"},
                 data={"samples_per_epoch": 2, "identity_frames": 2}, loop={"epochs": 1})


def demo_finetune_params() -> FinetuneHead2HeadFSParams:
    """50 frames, 2 epochs of 25 windows (the paper: 15 epochs of every frame), with the random-init baseline."""
    p = FinetuneHead2HeadFSParams(samples_per_epoch=25, loop=dataclasses.replace(finetune_loop(), epochs=2),
                                  baselines=["random_init"])
    p.validate()
    return p
