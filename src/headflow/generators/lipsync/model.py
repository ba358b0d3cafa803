"""The reference-attention lip-sync U-Net (coursework section 3.4, figure 3.2; Wav2Lip lineage).

Three encoders and one decoder:

* identity encoder: the target frame with its whole lower half masked (section 3.6), 10 residual
  Conv-BN-ReLU blocks with strided downsampling, 96x96 -> a 1x1 embedding (512-d at width 1), its
  intermediate features kept for skips. The stage layout is Wav2Lip's `face_encoder_blocks`
  (`models/wav2lip.py`), which has exactly the paper's 10 residual blocks (2 + 3 + 2 + 2 + 1).
* reference encoder: the same architecture, separate weights; each of the N references is encoded
  independently, and the N embeddings *and* the N feature maps at every scale are aggregated with one
  set of attention weights keyed by the audio embedding (eq. 5).
* audio encoder: the (80, 16) mel window plus two CoordConv channels (frequency and time coordinates in
  [-1, 1]), 7 residual blocks with strided downsampling (Wav2Lip's `audio_encoder` stage layout: 2 + 2
  + 2 + 1), -> 1x1 embedding.
* decoder: mirrors the encoders with bilinear upsampling + convolution; at each scale it concatenates
  the identity and aggregated reference features and the audio embedding projected to that scale; the
  last `skipless_levels` levels get no skips (section 3.4). Two heads: the image (sigmoid, [0, 1]) and
  the mouth blending mask (sigmoid).

Deviation: the residual block is Wav2Lip's one-convolution form relu(BN(conv(x)) + x); the paper says
"ResNet Conv-BN-ReLU blocks" without more detail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from headflow.config import to_dict
from headflow.generators.lipsync.params import IMAGE_SIZE, LipsyncParams, ModelParams
from headflow.nn.blocks import ConvNormAct
from headflow.training.checkpoint import load_export, save_export
from headflow.manifest.hashing import file_sha256  # noqa: F401  (re-exported: callers import it from here)

IMAGE_CHANNELS = (16, 32, 64, 128, 256, 512, 512)
"""Published widths of the image encoders at 96, 48, 24, 12, 6, 3 and 1 px (Wav2Lip's face encoder)."""
IMAGE_RESIDUALS = (0, 2, 3, 2, 2, 1, 0)
"""Residual blocks after each image-encoder stage: 10 in all (section 3.4)."""
AUDIO_CHANNELS = (32, 64, 128, 256, 512, 512)
"""Published widths of the audio encoder stages (Wav2Lip's audio encoder)."""
AUDIO_RESIDUALS = (2, 2, 2, 1, 0, 0)
"""Residual blocks after each audio-encoder stage: 7 in all (section 3.4)."""
DECODER_SIZES = (3, 6, 12, 24, 48, 96)
"""Output side of each decoder level (level i mirrors image-encoder stage 5 - i)."""
MEL_SHAPE = (80, 16)
"""(mel bands, mel frames) of one frame's audio window (docs/DESIGN.md: 0.2 s at 80 frames/s)."""


def scaled(channels: int, width: float) -> int:
    """round(width * channels), at least 4."""
    return max(4, int(round(channels * width)))


class ConvBlock(nn.Module):
    """Conv -> BatchNorm (-> + x when residual) -> ReLU: Wav2Lip's `Conv2d` block.

    Shapes: (B, C_in, H, W) -> (B, C_out, H', W'). A residual block needs C_in == C_out and stride 1.
    """

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int] = 3, stride: int | tuple[int, int] = 1,
                 padding: int | tuple[int, int] = 1, residual: bool = False):
        super().__init__()
        if residual and (cin != cout or stride not in (1, (1, 1))):
            raise ValueError(f"ConvBlock: a residual block needs cin == cout and stride 1, got {cin}, {cout}, {stride}")
        self.conv = ConvNormAct(cin, cout, kernel, stride, padding, norm="batch", act="none")  # type: ignore[arg-type]
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return F.relu(out + x if self.residual else out)


def _stage(cin: int, cout: int, kernel, stride, padding, n_res: int, residual: bool) -> nn.Sequential:
    """One downsampling conv followed by n_res blocks (with shortcuts when `residual`)."""
    return nn.Sequential(ConvBlock(cin, cout, kernel, stride, padding),
                         *[ConvBlock(cout, cout, 3, 1, 1, residual=residual) for _ in range(n_res)])


class ImageEncoder(nn.Module):
    """96x96 image -> features at 96, 48, 24, 12, 6, 3 and 1 px (the last is the embedding).

    Args:
        in_channels: input channels (3: an RGB crop in [0, 1]).
        width: channel multiplier (1.0 = `IMAGE_CHANNELS`).
        residual: shortcuts in the 10 residual blocks (False: plain Conv-BN-ReLU).

    Shapes: (B, in_channels, 96, 96) -> list of 7 tensors (B, C_l, S_l, S_l), S = 96, 48, 24, 12, 6, 3, 1.
    """

    def __init__(self, in_channels: int = 3, width: float = 1.0, residual: bool = True):
        super().__init__()
        c = [scaled(n, width) for n in IMAGE_CHANNELS]
        r = IMAGE_RESIDUALS
        self.channels = tuple(c)
        self.stages = nn.ModuleList([
            _stage(in_channels, c[0], 7, 1, 3, r[0], residual),     # 96
            _stage(c[0], c[1], 3, 2, 1, r[1], residual),            # 48
            _stage(c[1], c[2], 3, 2, 1, r[2], residual),            # 24
            _stage(c[2], c[3], 3, 2, 1, r[3], residual),            # 12
            _stage(c[3], c[4], 3, 2, 1, r[4], residual),            # 6
            _stage(c[4], c[5], 3, 2, 1, r[5], residual),            # 3
            nn.Sequential(ConvBlock(c[5], c[6], 3, 1, 0), ConvBlock(c[6], c[6], 1, 1, 0)),  # 1
        ])

    @property
    def embedding_size(self) -> int:
        return self.channels[-1]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.dim() != 4 or x.shape[-2:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"ImageEncoder: input must be (B, C, {IMAGE_SIZE}, {IMAGE_SIZE}), got {tuple(x.shape)}")
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


def coord_channels(batch: int, height: int, width: int, device=None, dtype=None) -> torch.Tensor:
    """CoordConv's two coordinate channels (Liu et al. 2018): (B, 2, H, W), row then column, each in [-1, 1].

    For the mel window (H = 80 bands, W = 16 frames) channel 0 is the frequency position (-1 at the
    lowest band) and channel 1 the time position (-1 at the first frame).
    """
    rows = torch.linspace(-1.0, 1.0, height, device=device, dtype=dtype).view(1, 1, height, 1).expand(batch, 1, height, width)
    cols = torch.linspace(-1.0, 1.0, width, device=device, dtype=dtype).view(1, 1, 1, width).expand(batch, 1, height, width)
    return torch.cat([rows, cols], dim=1)


class AudioEncoder(nn.Module):
    """Mel window + CoordConv channels -> 1x1 embedding of the image encoders' size.

    Shapes: mel (B, 1, 80, 16) (Wav2Lip's normalised mel, about [-4, 4]) -> (B, E, 1, 1), E = the image
    embedding size at this width (512 at width 1).
    """

    def __init__(self, width: float = 1.0, residual: bool = True, embedding_size: int | None = None):
        super().__init__()
        c = [scaled(n, width) for n in AUDIO_CHANNELS]
        if embedding_size is not None:
            c[4] = c[5] = embedding_size
        r = AUDIO_RESIDUALS
        self.net = nn.Sequential(
            _stage(3, c[0], 3, 1, 1, r[0], residual),                 # 80x16
            _stage(c[0], c[1], 3, (3, 1), 1, r[1], residual),         # 27x16
            _stage(c[1], c[2], 3, 3, 1, r[2], residual),              # 9x6
            _stage(c[2], c[3], 3, (3, 2), 1, r[3], residual),         # 3x3
            ConvBlock(c[3], c[4], 3, 1, 0),                           # 1x1
            ConvBlock(c[4], c[5], 1, 1, 0),
        )
        self.embedding_size = c[5]

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        if mel.dim() != 4 or mel.shape[1:] != (1, *MEL_SHAPE):
            raise ValueError(f"AudioEncoder: mel must be (B, 1, {MEL_SHAPE[0]}, {MEL_SHAPE[1]}), got {tuple(mel.shape)}")
        x = torch.cat([mel, coord_channels(mel.shape[0], *MEL_SHAPE, device=mel.device, dtype=mel.dtype)], dim=1)
        return self.net(x)


def attention_weights(audio: torch.Tensor, refs: torch.Tensor, kind: str = "paper") -> torch.Tensor:
    """Weights of the N reference encodings for each frame (eq. 5).

    Args:
        audio: (M, E) audio embeddings a, one per target frame.
        refs: (M, N, E) reference embeddings r_k of that frame's references.
        kind: "paper" = softmax_k(-sigmoid(a . r_k)) (eq. 5 as printed); "dot" = softmax_k(a . r_k /
            sqrt(E)); "mean" = 1 / N.

    Returns:
        (M, N), non-negative, each row summing to 1.

    Raises:
        ValueError: shapes that do not match, or an unknown kind.
    """
    if audio.dim() != 2 or refs.dim() != 3 or refs.shape[0] != audio.shape[0] or refs.shape[2] != audio.shape[1]:
        raise ValueError(f"attention_weights: audio must be (M, E) and refs (M, N, E), got {tuple(audio.shape)} "
                         f"and {tuple(refs.shape)}")
    if kind == "mean":
        return refs.new_full(refs.shape[:2], 1.0 / refs.shape[1])
    score = torch.einsum("me,mne->mn", audio, refs)
    if kind == "paper":
        return torch.softmax(-torch.sigmoid(score), dim=1)
    if kind == "dot":
        return torch.softmax(score / math.sqrt(audio.shape[1]), dim=1)
    raise ValueError(f"attention_weights: kind must be 'paper', 'dot' or 'mean', got {kind!r}")


class AudioToScale(nn.Module):
    """An auxiliary block of section 3.4: the audio embedding as a (C, S, S) feature map.

    A linear map to a 3x3 grid of C channels, bilinearly resized to S x S, then ReLU; so the audio skip
    can vary over the image instead of being a constant per channel.

    Shapes: (M, E) -> (M, C, S, S).
    """

    def __init__(self, embedding_size: int, channels: int, size: int):
        super().__init__()
        self.channels, self.size = channels, size
        self.grid = min(3, size)
        self.linear = nn.Linear(embedding_size, channels * self.grid * self.grid)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.linear(audio).view(-1, self.channels, self.grid, self.grid)
        if self.grid != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return F.relu(x)


class DecoderLevel(nn.Module):
    """Bilinear upsample to `size`, concatenate the skips, conv (-> Conv-BN-ReLU blocks)."""

    def __init__(self, cin: int, cout: int, size: int, n_res: int, residual: bool):
        super().__init__()
        self.size = size
        self.block = _stage(cin, cout, 3, 1, 1, n_res, residual)

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.block(torch.cat([x, *skips], dim=1) if skips else x)


@dataclass
class LipsyncOutput:
    """What the generator returns for M target frames."""

    image: torch.Tensor
    """(M, 3, 96, 96) in [0, 1]: the generated face crop."""
    mask: torch.Tensor | None
    """(M, 1, 96, 96) in [0, 1]: the predicted mouth blending mask (None without a mask head)."""
    attention: torch.Tensor
    """(M, N) reference weights of each frame, rows summing to 1."""


class LipsyncGenerator(nn.Module):
    """The lip-sync U-Net: (masked target, mel window, N references) -> face crop + blending mask.

    Args:
        params: `ModelParams` (width, residual, attention, audio_skips, mask_head, skipless_levels).

    Forward:
        masked: (M, 3, 96, 96) target frames in [0, 1] with the lower half zeroed (`data.mask_lower_half`).
        mel: (M, 1, 80, 16) each frame's mel window.
        references: (R, N, 3, 96, 96) in [0, 1]; M must be a multiple of R, and frames r*T .. r*T + T - 1
            (T = M / R) share references r (a 5-frame window uses one reference set, section 3.5). Each
            reference set is encoded once whatever T is.
        Returns `LipsyncOutput`.

    Raises:
        ValueError: inputs of the wrong shape or M not a multiple of R.
    """

    def __init__(self, params: ModelParams = ModelParams()):
        super().__init__()
        params.validate()
        self.params = params
        self.identity_encoder = ImageEncoder(3, params.width, params.residual)
        self.reference_encoder = ImageEncoder(3, params.width, params.residual)
        c = self.identity_encoder.channels
        e = self.identity_encoder.embedding_size
        self.audio_encoder = AudioEncoder(params.width, params.residual, embedding_size=e)
        self.bottleneck = ConvBlock(3 * e, c[6], 1, 1, 0)
        self.levels = nn.ModuleList()
        self.audio_skips = nn.ModuleList()
        cin = c[6]
        for i, size in enumerate(DECODER_SIZES):
            enc = 5 - i                           # encoder stage with this resolution
            skipped = i >= len(DECODER_SIZES) - params.skipless_levels
            extra = 0 if skipped else 2 * c[enc]
            if params.audio_skips and not skipped:
                self.audio_skips.append(AudioToScale(e, c[enc], size))
                extra += c[enc]
            else:
                self.audio_skips.append(nn.Identity())
            self.levels.append(DecoderLevel(cin + extra, c[enc], size, IMAGE_RESIDUALS[enc], params.residual))
            cin = c[enc]
        self.skipped = tuple(i >= len(DECODER_SIZES) - params.skipless_levels for i in range(len(DECODER_SIZES)))
        self.image_head = nn.Sequential(ConvBlock(cin, cin, 3, 1, 1), nn.Conv2d(cin, 3, 1), nn.Sigmoid())
        self.mask_head = (nn.Sequential(ConvBlock(cin, cin, 3, 1, 1), nn.Conv2d(cin, 1, 1), nn.Sigmoid())
                          if params.mask_head else None)

    def forward(self, masked: torch.Tensor, mel: torch.Tensor, references: torch.Tensor) -> LipsyncOutput:
        m = masked.shape[0]
        if references.dim() != 5 or references.shape[2:] != (3, IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"LipsyncGenerator: references must be (R, N, 3, {IMAGE_SIZE}, {IMAGE_SIZE}), got "
                             f"{tuple(references.shape)}")
        r, n = references.shape[:2]
        if m % r or mel.shape[0] != m:
            raise ValueError(f"LipsyncGenerator: {m} target frames, {mel.shape[0]} mel windows and {r} reference sets; "
                             "the frame count must equal the mel count and be a multiple of the reference sets")
        t = m // r
        identity = self.identity_encoder(masked)                              # 7 x (M, C, S, S)
        ref_feats = self.reference_encoder(references.flatten(0, 1))          # 7 x (R*N, C, S, S)
        audio = self.audio_encoder(mel).flatten(1)                            # (M, E)
        ref_emb = ref_feats[-1].flatten(1).view(r, 1, n, -1).expand(r, t, n, -1).reshape(m, n, -1)
        weights = attention_weights(audio, ref_emb, self.params.attention)   # (M, N)
        w = weights.view(r, t, n)

        def aggregate(feat: torch.Tensor) -> torch.Tensor:                   # (R*N, C, S, S) -> (M, C, S, S)
            return torch.einsum("rtn,rnchw->rtchw", w, feat.view(r, n, *feat.shape[1:])).flatten(0, 1)

        x = self.bottleneck(torch.cat([audio[:, :, None, None], identity[-1], aggregate(ref_feats[-1])], dim=1))
        for i, level in enumerate(self.levels):
            skips: list[torch.Tensor] = []
            if not self.skipped[i]:
                enc = 5 - i
                skips = [identity[enc], aggregate(ref_feats[enc])]
                if self.params.audio_skips:
                    skips.append(self.audio_skips[i](audio))
            x = level(x, skips)
        mask = self.mask_head(x) if self.mask_head is not None else None
        return LipsyncOutput(self.image_head(x), mask, weights)


def architecture(params: ModelParams) -> dict:
    """The settings a checkpoint must match to be loaded into `LipsyncGenerator(params)`."""
    return {"family": "lipsync", "width": params.width, "residual": params.residual, "attention": params.attention,
            "audio_skips": params.audio_skips, "mask_head": params.mask_head,
            "skipless_levels": params.skipless_levels}


def check_architecture(saved: dict, params: ModelParams, where: str = "checkpoint") -> None:
    """Raise ValueError naming both architectures when a checkpoint's does not match `params`."""
    wanted = architecture(params)
    if saved != wanted:
        diff = {k: (saved.get(k), wanted.get(k)) for k in sorted(set(saved) | set(wanted)) if saved.get(k) != wanted.get(k)}
        raise ValueError(f"{where} holds a lip-sync generator of another architecture: saved {saved}, asked for "
                         f"{wanted} (differences, saved vs asked: {diff}); use the params it was trained with "
                         "or train a new checkpoint")


# ------------------------------------------------------------------------------ the exported generator

GENERATOR_FORMAT = "headflow.lipsync/1"
"""Layout of the exported generator file (`generator.pt`)."""


def save_generator(generator: LipsyncGenerator, params: LipsyncParams, path: Path, extra: dict | None = None) -> str:
    """Write the exported generator (architecture, params, weights) atomically; returns its sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": GENERATOR_FORMAT, "architecture": architecture(params.model), "params": to_dict(params),
             "state_dict": {k: v.detach().cpu() for k, v in generator.state_dict().items()}, **(extra or {})}
    return save_export(state, path)



def load_generator(path: Path, model: ModelParams | None = None,
                   device: str | torch.device = "cpu") -> tuple[LipsyncGenerator, dict[str, Any]]:
    """Load an exported generator in eval mode.

    Args:
        path: a `generator.pt` written by `save_generator`.
        model: the architecture the caller expects (None: whatever the file holds).
        device: torch device.

    Returns:
        (generator, the file's saved params as a plain dict).

    Raises:
        FileNotFoundError: no file at `path` (the message says how to make one).
        ValueError: not a lip-sync generator file, or of another architecture or width than `model`
            (the message names both).
    """
    from headflow.config import from_dict

    state = load_export(path, GENERATOR_FORMAT, "lip-sync generator", "train one with `dvc repro train_lipsync` "
                        "(or `python -m stages.train_lipsync`) or pass --checkpoint PATH")
    saved = from_dict(LipsyncParams, state["params"], "generator.params")
    check_architecture(state["architecture"], saved.model, str(path))
    if model is not None:
        check_architecture(state["architecture"], model, str(path))
    generator = LipsyncGenerator(saved.model)
    generator.load_state_dict(state["state_dict"])
    return generator.to(device).eval(), state["params"]
