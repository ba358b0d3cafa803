"""Params of the `styletalk` family: phonemes + a style clip -> 3DMM expression sequences (StyleTalk).

The method is StyleTalk (Ma et al., AAAI 2023; `papers/styletalk.txt`; summary in docs/MODELS.md).
The released code (github.com/FuxiVirtualHuman/styletalk, inference only) fixes what the paper leaves
open; where it and the paper differ, the field says which one is followed and why.

Three params blocks: `train_styletalk_disc` (`DiscParams`: D_sync and D_style, pretrained, then frozen),
`train_styletalk` (`StyleTalkParams`: E_a, E_s, E_d and D_tem trained jointly) and `generate_styletalk`
(`GenerateStyleTalkParams`). Sizes (docs/DESIGN.md "Generators"): `tiny_params()` (tests),
`demo_params()` (<= 90 s of training on one core), `quality_params()` (hours on 2 cores) and
`published_params()` (the paper's / released sizes: d_model 256, 3+3+3 layers, 8 heads, K = 8, L = 64;
a GPU).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from headflow.config import require
from headflow.training.config import LoopConfig

EdgeRule = Literal["silence", "inside"]
StyleRule = Literal["style", "speaker"]
StyleSource = Literal["same_style", "self"]
Protocol = Literal["reconstruction", "dubbing"]
Baseline = Literal["replay", "neutral"]

N_PHONEMES = 41
"""StyleTalk's phoneme vocabulary (phindex.json: 41 symbols; `headflow.align.phones`' mapping)."""
SILENCE = 31
"""StyleTalk's index of silence (phindex.json; the released `get_audio_window` pads with it)."""


@dataclass
class ModelParams:
    """E_a, E_s and E_d (paper "Method"; the released `configs/default.py` for what the paper omits)."""

    d_model: int = 256
    """Width of every transformer (audio features a'_t in R^256; released D_MODEL 256)."""
    nhead: int = 8
    """Attention heads (released: 8)."""
    encoder_layers: int = 3
    """Layers of the audio (content) encoder and of the style encoder (released: 3 each)."""
    decoder_layers: int = 3
    """Layers of each of the two dynamic decoders (released: 3)."""
    ff_mult: int = 4
    """Feed-forward width = ff_mult x d_model (released: 4 x 256 = 1024)."""
    dropout: float = 0.1
    """Dropout in every transformer layer (released: 0.1)."""
    window: int = 5
    """w: the audio window is 2w + 1 = 11 phoneme frames centred on the predicted frame (paper: w = 5)."""
    phoneme_embed_dim: int = 128
    """Phoneme embedding size before the linear lift to d_model (released ph_embed_dim 128)."""
    style_max_len: int = 256
    """Longest style clip in frames (the style encoder's positional table; released pos_embed_len 256)."""
    dynamic_ffn: bool = True
    """The style-aware adaptive FFN (paper eq. 2-3). False: a plain FFN (Table 1 ablation "w/o DyFFN")."""
    dynamic_k: int = 8
    """K weight sets of the adaptive FFN (paper: K = 8; Table 1 ablation K = 4, 16)."""
    dynamic_ratio: int = 4
    """pi(s) = softmax(FC2(ReLU(FC1(s))) / temperature) with FC1: d_model -> d_model / ratio (released:
    ratio 4, both FCs without bias). The paper says FC-ReLU-FC without sizes."""
    dynamic_temperature: float = 30.0
    """Softmax temperature of pi(s) (released code: 30; the paper writes a plain softmax, i.e. 1). Kept at
    the released value so that a released checkpoint computes what it was trained to."""
    pooling: Literal["attention", "average"] = "attention"
    """Style-code aggregation: additive self-attention pooling (paper, Safari et al. 2020; released
    W = Linear-Mish-Linear where the paper writes one row vector W_s) or the mean of the tokens."""

    def validate(self) -> None:
        require(self.d_model >= 8 and self.d_model % self.nhead == 0, "d_model", self.d_model,
                f">= 8 and divisible by nhead ({self.nhead})")
        require(self.d_model // self.dynamic_ratio >= 1, "dynamic_ratio", self.dynamic_ratio,
                f"at most d_model ({self.d_model})")
        for name in ("nhead", "encoder_layers", "decoder_layers", "ff_mult", "window", "phoneme_embed_dim",
                     "style_max_len", "dynamic_k", "dynamic_ratio"):
            require(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
        require(0 <= self.dropout < 1, "dropout", self.dropout, "in [0, 1)")
        require(self.dynamic_temperature > 0, "dynamic_temperature", self.dynamic_temperature, "> 0")

    @property
    def window_size(self) -> int:
        """2w + 1."""
        return 2 * self.window + 1


@dataclass
class SyncDiscParams:
    """D_sync: mouth vertices of the mesh -> PointNet embedding e_m; phoneme window -> e_a; P = cosine
    (paper eq. 4). The paper gives no sizes; these are ours."""

    n_points: int = 256
    """Mouth vertices fed to the PointNet (the mesh's vertices nearest the 20 mouth landmarks, chosen by
    `geometry.mouth_vertices`)."""
    frames: int = 5
    """Consecutive frames of mouth vertices per sample, centred on the phoneme window's frame (Wav2Lip's
    SyncNet uses 5)."""
    width: int = 128
    """Width of the PointNet's shared MLP (64-128-width), the embeddings and the phoneme encoder."""
    embed_dim: int = 128
    """Size of e_m and e_a."""

    def validate(self) -> None:
        for name in ("n_points", "width", "embed_dim"):
            require(getattr(self, name) >= 4, name, getattr(self, name), ">= 4")
        require(self.frames >= 1 and self.frames % 2 == 1, "frames", self.frames, "an odd number >= 1")


@dataclass
class SeqDiscParams:
    """A 1-D PatchGAN over expression sequences (D_style, D_tem; paper: "follows the structure of PatchGAN")."""

    channels: int = 128
    """Channels of the first conv layer (doubled per strided layer up to 4x)."""
    n_layers: int = 3
    """Stride-2 conv layers (kernel 4) before the per-patch head: 64 frames -> 8 patches."""

    def validate(self) -> None:
        require(self.channels >= 4, "channels", self.channels, ">= 4")
        require(1 <= self.n_layers <= 5, "n_layers", self.n_layers, "1..5")


@dataclass
class DataParams:
    """Clips, windows, styles (paper "Objective Function Design", "Datasets")."""

    clip_len: int = 64
    """L: frames generated at once (paper: L = 64, batched sequential training)."""
    style_len: int = 256
    """Frames of each style clip (released inference: up to 256, shorter ones masked, never padded with
    frames); cut at random from the clip during training."""
    edge: EdgeRule = "silence"
    """Phoneme-window positions outside the utterance: "silence" = StyleTalk's index 31 (the released
    `get_audio_window`: before and after the utterance nobody speaks), "inside" = only frames whose whole
    window lies inside the clip are generated (training windows then start at w)."""
    style_rule: StyleRule = "style"
    """What makes two clips the same style: "style" = the manifest's `style` column (the demo corpus;
    MEAD: emotion + intensity), "speaker" = the speaker (HDTF)."""

    def validate(self) -> None:
        require(self.clip_len >= 8, "clip_len", self.clip_len, ">= 8 frames")
        require(self.style_len >= 1, "style_len", self.style_len, ">= 1 frame")


@dataclass
class LossParams:
    """Loss weights by term name (paper eq. 9: 88 / 1 / 1 / 1 / 1) and the terms' settings.

    Names: rec, trip, sync, style, tem (the generator's step); tem_d (D_tem's step).
    """

    rec: float = 88.0
    """lambda_rec."""
    trip: float = 1.0
    """lambda_trip."""
    sync: float = 1.0
    """lambda_sync (0: no D_sync, Table 1 "w/o D_sync")."""
    style: float = 1.0
    """lambda_style (0: no D_style)."""
    tem: float = 1.0
    """lambda_tem (0: no D_tem)."""
    tem_d: float = 1.0
    """Weight of D_tem's own hinge loss."""
    mu: float = 0.1
    """L_rec = mu L1 + (1 - mu) L_ssim (eq. 8: mu = 0.1)."""
    ssim_window: int = 11
    """Temporal window of L_ssim (1-D Gaussian, sigma 1.5, over each coefficient's sequence: the paper does not
    say how SSIM applies to a sequence; this is the image SSIM's window along time)."""
    margin: float = 5.0
    """gamma of the triplet loss (eq. 7: 5)."""
    sync_frames: int = 8
    """Frames per clip at which L_sync is evaluated (eq. 5 averages over all L; a subset keeps CPU runs fast;
    0 = every frame whose vertex window fits in the clip)."""
    eps: float = 1e-4
    """P is clipped to [eps, 1] before -log (P_sync = cosine can be 0)."""

    def validate(self) -> None:
        for name in ("rec", "trip", "sync", "style", "tem", "tem_d", "margin", "sync_frames"):
            require(getattr(self, name) >= 0, name, getattr(self, name), ">= 0")
        require(0 <= self.mu <= 1, "mu", self.mu, "in [0, 1]")
        require(self.ssim_window >= 3 and self.ssim_window % 2 == 1, "ssim_window", self.ssim_window, "odd, >= 3")
        require(0 < self.eps < 0.5, "eps", self.eps, "in (0, 0.5)")


def styletalk_loop() -> LoopConfig:
    """Adam 1e-4 (paper "Implementation Details"), betas (0.9, 0.999) (not given; Adam's defaults)."""
    return LoopConfig(epochs=100, batch_size=16, lr=1e-4, betas=(0.9, 0.999), lr_schedule="constant", seed=0,
                      num_workers=0, precision="32-true")


def disc_loop() -> LoopConfig:
    """Adam 1e-4 for D_sync and D_style (paper: "learning rate of 0.0001")."""
    return LoopConfig(epochs=50, batch_size=32, lr=1e-4, seed=0, num_workers=0, precision="32-true")


@dataclass
class RecognizerParams:
    """The frame-level phone recogniser (`recognizer.py`) the `train_styletalk_disc` stage trains beside the
    discriminators, for driving clips without a transcript (issue 18, "Inference without a transcript").
    Sizes and options are ours; bench/styletalk_recognizer.py measures them on held-out speakers and on
    real speech."""

    steps: int = 100
    """Adam steps (0: no recogniser is trained; generate_styletalk then needs recognizer: off or a path). Chosen
    on real speech (bench/styletalk_recognizer.py, cold_corpus, 3 seeds, with CMVN): 100 steps 0.370 frame
    accuracy, 200: 0.355, 400: 0.275, 800: 0.197 (longer training fits espeak's voices; on the demo's held-out
    speakers 800 steps reach 0.69, 100 steps 0.40)."""
    batch: int = 64
    """Frames per step."""
    lr: float = 1e-3
    """Adam learning rate."""
    width: int = 64
    """Channels of the three conv layers."""
    cmvn: bool = True
    """Per-utterance CMVN of the mel (`recognizer.cmvn_mel`) before the windows (chosen on real speech,
    bench/styletalk_recognizer.py: cold_corpus frame accuracy 0.197 with it, 0.035 without, 800 steps)."""
    freq_mask: int = 0
    """SpecAugment: at most this many mel bands masked per training window (0: off)."""
    time_mask: int = 0
    """SpecAugment: at most this many mel frames masked per training window (0: off)."""
    noise_copies: int = 0
    """Noisy copies of each training clip (`recognizer.add_noise_floor`, floor ~ U[-3, -1.5]; 0: off; it did not
    help on cold_corpus with CMVN: 0.224 vs 0.197 at 800 steps, speech frames 0.137 vs 0.169)."""
    seed: int = 0
    """Initialisation and batch draws."""

    def validate(self) -> None:
        require(self.steps >= 0, "steps", self.steps, ">= 0 (0: no recogniser)")
        for name in ("batch", "width"):
            require(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
        require(self.lr > 0, "lr", self.lr, "> 0")
        require(0 <= self.freq_mask <= 80, "freq_mask", self.freq_mask, "in [0, 80] mel bands")
        require(0 <= self.time_mask <= 16, "time_mask", self.time_mask, "in [0, 16] mel frames")
        require(self.noise_copies >= 0, "noise_copies", self.noise_copies, ">= 0")


@dataclass
class DiscParams:
    """The `train_styletalk_disc` block: D_sync and D_style, trained on real sequences, then frozen."""

    window: int = 5
    """w of D_sync's phoneme window (2w + 1 frames; the same w as the generator's)."""
    clip_len: int = 64
    """Sequence length D_style sees (L = 64: it judges the generator's clips)."""
    sync: SyncDiscParams = field(default_factory=SyncDiscParams)
    style: SeqDiscParams = field(default_factory=SeqDiscParams)
    min_shift: int = 5
    """Negative pairs take the phoneme window of a frame at least this many frames away (Wav2Lip's
    SyncNet: a random other window; too-near windows overlap the true one)."""
    edge: EdgeRule = "silence"
    """As `train_styletalk.data.edge`."""
    style_rule: StyleRule = "style"
    """As `train_styletalk.data.style_rule`."""
    loop: LoopConfig = field(default_factory=disc_loop)
    morphable_model: str = "builtin"
    """The `fit3dmm.model` spec the expressions were fitted with (`headflow.morphable.registry`): its mode
    names give the lower/upper split and its mesh the mouth vertices; clips of another model are rejected."""
    samples_per_epoch: int = 2048
    """Samples per epoch (each: one sync pair and one style sequence)."""
    threads: int = 1
    """torch CPU threads."""
    max_reject_fraction: float = 0.5
    """Fail when more than this fraction of the train and val clips is unusable."""
    recognizer: RecognizerParams = field(default_factory=RecognizerParams)
    """The phone recogniser for clips without a transcript (`recognizer.pt` beside `discriminators.pt`)."""

    def validate(self) -> None:
        for part in (self.sync, self.style, self.loop, self.recognizer):
            part.validate()
        for name in ("window", "clip_len", "min_shift", "samples_per_epoch", "threads"):
            require(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
        require(0 <= self.max_reject_fraction <= 1, "max_reject_fraction", self.max_reject_fraction, "in [0, 1]")

    @property
    def seed(self) -> int:
        return self.loop.seed


@dataclass
class StyleTalkParams:
    """The `train_styletalk` block: E_a, E_s, E_d and D_tem, with D_sync and D_style frozen."""

    model: ModelParams = field(default_factory=ModelParams)
    data: DataParams = field(default_factory=DataParams)
    loss: LossParams = field(default_factory=LossParams)
    tem: SeqDiscParams = field(default_factory=SeqDiscParams)
    """D_tem's architecture."""
    loop: LoopConfig = field(default_factory=styletalk_loop)
    morphable_model: str = "builtin"
    """The `fit3dmm.model` spec the expressions were fitted with (`headflow.morphable.registry`): its mode
    names give the lower/upper split and its mesh the mouth vertices; clips of another model are rejected."""
    samples_per_epoch: int = 1024
    """Training clips (L frames + a style clip + a positive and a negative style clip) per epoch."""
    val_clips: int = 16
    """Fixed validation clips evaluated after each epoch (val L1)."""
    threads: int = 1
    """torch CPU threads (1: see train_lipsync.threads)."""
    discriminators: str = "trained"
    """"trained" = the train_styletalk_disc stage's discriminators.pt, or another path; "none" = no sync and
    style terms (their weights must then be 0)."""
    max_reject_fraction: float = 0.5
    """Fail when more than this fraction of the train and val clips is unusable."""

    def validate(self) -> None:
        for part in (self.model, self.data, self.loss, self.tem, self.loop):
            part.validate()
        for name in ("samples_per_epoch", "val_clips", "threads"):
            require(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
        require(self.samples_per_epoch >= self.loop.batch_size, "samples_per_epoch", self.samples_per_epoch,
                f">= loop.batch_size ({self.loop.batch_size})")
        require(self.data.style_len <= self.model.style_max_len, "data.style_len", self.data.style_len,
                f"<= model.style_max_len ({self.model.style_max_len})")
        require(self.discriminators != "none" or (self.loss.sync == 0 and self.loss.style == 0), "discriminators",
                self.discriminators, "a checkpoint when loss.sync or loss.style is > 0")
        require(0 <= self.max_reject_fraction <= 1, "max_reject_fraction", self.max_reject_fraction, "in [0, 1]")

    @property
    def seed(self) -> int:
        return self.loop.seed


def _with(params, loop: dict | None = None, **parts):
    nested = {k: dataclasses.replace(getattr(params, k), **v) for k, v in parts.items() if isinstance(v, dict)}
    top = {k: v for k, v in parts.items() if not isinstance(v, dict)}
    out = dataclasses.replace(params, **nested, **top)
    if loop:
        out.loop = dataclasses.replace(out.loop, **loop)
    out.validate()
    return out


def published_params() -> StyleTalkParams:
    """The paper's / released sizes (d 256, 3 layers each, K = 8, L = 64, style clips of 256); for a GPU.

    The paper trains 4 h on 2 RTX 3090 and gives no step count; the epochs are a placeholder of that order."""
    return _with(StyleTalkParams(), loop={"epochs": 200, "batch_size": 16}, samples_per_epoch=8192, val_clips=64)


def quality_params() -> StyleTalkParams:
    """Sized for 2 CPU cores (hours): d 128, 2 layers, K = 8, L = 64, style clips of 64."""
    return _with(StyleTalkParams(), model={"d_model": 128, "encoder_layers": 2, "decoder_layers": 2, "nhead": 4,
                                           "style_max_len": 64},
                 data={"style_len": 64}, tem={"channels": 64}, loop={"epochs": 60, "batch_size": 8},
                 samples_per_epoch=512, val_clips=16)


def demo_params() -> StyleTalkParams:
    """<= 90 s of training on one core: shows the pipeline, not the quality."""
    return _with(StyleTalkParams(), model={"d_model": 32, "nhead": 4, "encoder_layers": 1, "decoder_layers": 1,
                                           "ff_mult": 2, "phoneme_embed_dim": 16, "style_max_len": 64,
                                           "dropout": 0.0},
                 data={"style_len": 64}, loss={"sync_frames": 4}, tem={"channels": 16, "n_layers": 2},
                 loop={"epochs": 6, "batch_size": 4, "lr": 1e-3}, samples_per_epoch=96, val_clips=8)


def tiny_params() -> StyleTalkParams:
    """A few seconds on a CPU: the smallest network that exercises every term."""
    return _with(StyleTalkParams(), model={"d_model": 16, "nhead": 2, "encoder_layers": 1, "decoder_layers": 1,
                                           "ff_mult": 2, "window": 2, "phoneme_embed_dim": 8, "style_max_len": 16,
                                           "dynamic_k": 3, "dynamic_ratio": 2},
                 data={"clip_len": 16, "style_len": 16}, loss={"sync_frames": 2},
                 tem={"channels": 8, "n_layers": 2}, loop={"epochs": 1, "batch_size": 2},
                 samples_per_epoch=4, val_clips=2)


def demo_disc_params() -> DiscParams:
    """D_sync and D_style at demo size (a fraction of the 90 s budget)."""
    return _with(DiscParams(), sync={"n_points": 64, "width": 32, "embed_dim": 32}, style={"channels": 16, "n_layers": 2},
                 loop={"epochs": 4, "batch_size": 16, "lr": 1e-3}, samples_per_epoch=256)


def tiny_disc_params() -> DiscParams:
    """Discriminators for tests."""
    return _with(DiscParams(), window=2, clip_len=16, sync={"n_points": 16, "frames": 3, "width": 8, "embed_dim": 8},
                 style={"channels": 8, "n_layers": 2}, loop={"epochs": 1, "batch_size": 2}, samples_per_epoch=4,
                 recognizer={"steps": 2, "batch": 8, "width": 8})


@dataclass
class GenerateStyleTalkParams:
    """The `generate_styletalk` block: expression sequences for the evaluation clips, their NMFC and a
    shaded render (Head2HeadFS, which would render NMFC to video, does not exist yet)."""

    split: Literal["test", "val"] = "test"
    """The evaluation split (keep equal to evaluate.split)."""
    max_clips: int | None = None
    """First N clips in clip_id order (null: all); keep equal to evaluate.max_clips."""
    protocols: list[Protocol] = field(default_factory=lambda: ["reconstruction", "dubbing"])
    """reconstruction = the clip's own phonemes; dubbing = the phonemes of the next clip in id order
    (`headflow.manifest.generated.dubbing_pairs`). Identity and head pose are the target clip's."""
    style_source: StyleSource = "same_style"
    """Style clip: "same_style" = the next clip of the same speaker and style (id order), else the clip
    itself (the manifest's style_clip says which); "self" = the clip's own expressions (StyleTalk's
    self-driven reconstruction)."""
    morphable_model: str = "builtin"
    """The `fit3dmm.model` spec (as train_styletalk.morphable_model): meshes with the target's identity."""
    checkpoint: str = "trained"
    """"trained" = train_styletalk's styletalk.pt, or the path of another exported model."""
    variant: str = "default"
    """Name of this params variant in generated.parquet (ablations: "no_dyffn", "k4", "no_sync", ...)."""
    baselines: list[Baseline] = field(default_factory=lambda: ["replay", "neutral"])
    """Same-run baselines written beside the outputs as variants "<variant>+<baseline>" (issue 18; `generate`
    module docstring): "replay" = the style clip's expressions replayed, "neutral" = the decoder with the mean
    style code of the training clips. [] writes none."""
    baseline_protocols: list[Protocol] = field(default_factory=lambda: ["reconstruction"])
    """Protocols that get the baselines: reconstruction (where `m_lmd_3d` has a ground truth) by default;
    each baseline costs as much rendering as the system (NMFC, shaded render, encode)."""
    seed: int = 0
    """Recorded in generated.parquet (inference is deterministic: no sampling)."""
    batch_frames: int = 256
    """Frames per network call."""
    crf: int = 18
    """x264 quality of the render videos (lower = better, larger)."""
    threads: int = 1
    """torch CPU threads."""
    max_reject_fraction: float = 0.5
    """Fail when more than this fraction of the outputs cannot be generated."""
    recognizer: Literal["auto", "off"] = "auto"
    """A clip without phone labels (no transcript, so `align` made none): "auto" = its frames are labelled by the
    phone recogniser (`recognizer.py`) and outputs it drives get the variant "<variant>_recognised_phones";
    "off" = it is quarantined (no_phones). Clips with the forced aligner's labels always use those."""
    recognizer_checkpoint: str = "trained"
    """"trained" = train_styletalk_disc's recognizer.pt, or the path of another exported recogniser (read only
    when a clip needs it)."""

    def validate(self) -> None:
        require(self.recognizer in ("auto", "off"), "recognizer", self.recognizer, "auto or off")
        require(self.max_clips is None or self.max_clips >= 1, "max_clips", self.max_clips, ">= 1, or null")
        require(len(self.protocols) >= 1 and len(set(self.protocols)) == len(self.protocols), "protocols",
                self.protocols, "one or both of reconstruction, dubbing, each once")
        require(len(set(self.baselines)) == len(self.baselines), "baselines", self.baselines,
                "replay and/or neutral, each once")
        require(set(self.baseline_protocols) <= set(self.protocols), "baseline_protocols", self.baseline_protocols,
                f"a subset of protocols {self.protocols}")
        for name in ("batch_frames", "threads"):
            require(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
        require(0 <= self.crf <= 51, "crf", self.crf, "0..51")
        require(0 <= self.max_reject_fraction <= 1, "max_reject_fraction", self.max_reject_fraction, "in [0, 1]")
