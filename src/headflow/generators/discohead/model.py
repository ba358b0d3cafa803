"""The DisCoHead generator (papers/discohead.txt, figure 1, sections 2.2-2.3 and 3.2).

    motion = HeadMotionPredictor(S, D)                      section 2.1 (`motion.py`)
    S_T    = warp(S, O_T)                                   the source in the driver's head pose
    F, C, (M) = Enc(S, S_T)                                 eq. 6: 3 downsample blocks + 1x1 convs
    DM: O_P = (1 - M) O_I + M O_T, F_A = warp(F, O_P)       eq. 7-8
    NM: F_A = F                                             eq. 9
    E = C * F_A                                             eq. 10
    f_exp = [AudioEnc(mel window), EyeEnc(eye-masked D)]    section 2.3
    out = Dec(E; f_exp): 6 modulated residual blocks (eq. 11, `headflow.nn.modconv`), 3 bilinear-upsample
          conv blocks, output conv k = 7, sigmoid

Interpretations where the paper is silent (also in docs/families/discohead.md): the encoder's "three convolution layers
with a kernel size of 1" are its three heads (F, C, M); the NM variant has no M head, so two. C and M
are sigmoids (one channel each). A modulated residual block is x + ModConv(LeakyReLU(ModConv(x, s)), s),
both demodulated (StyleGAN2's layer without noise). Downsample blocks are conv3-BN-ReLU-avgpool
(FOMM's `DownBlock2d`, `headflow.nn.blocks.DownBlock`); upsample blocks bilinear x2 -> conv3-BN-ReLU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from headflow.config import to_dict
from headflow.generators.discohead.motion import HeadMotionPredictor
from headflow.generators.discohead.params import AUDIO_WINDOW_MEL, DisCoHeadParams, ModelParams
from headflow.nn.blocks import ConvNormAct, DownBlock
from headflow.nn.modconv import ModulatedConv2d
from headflow.nn.warp import make_coordinate_grid
from headflow.training.checkpoint import load_export, save_export
from headflow.manifest.hashing import file_sha256  # noqa: F401  (re-exported: callers import it from here)

ENCODER_DOWNSAMPLES = 3
"""Downsample blocks of the motion-aware encoder (section 3.2); the decoder upsamples as many times."""


class MotionAwareEncoder(nn.Module):
    """Enc(S, S_T) -> F, C, (M) and E = C * F_A (section 2.2, eq. 6-10).

    Shapes: source, transformed (B, 3, S, S); coarse grid O_T (B, S/8, S/8, 2) ->
    {"encoded": E (B, C_f, S/8, S/8), "feature": F, "confidence": C (B, 1, ., .), "motion_mask": M or None,
    "flow": O_P (B, S/8, S/8, 2) or None}.
    """

    def __init__(self, p: ModelParams):
        super().__init__()
        chans = [6] + [p.channels(p.encoder_channels * 2 ** i) for i in range(ENCODER_DOWNSAMPLES)]
        self.down = nn.Sequential(*(DownBlock(chans[i], chans[i + 1]) for i in range(ENCODER_DOWNSAMPLES)))
        self.out_channels = chans[-1]
        self.feature = nn.Conv2d(chans[-1], chans[-1], 1)
        self.confidence = nn.Conv2d(chans[-1], 1, 1)
        self.dense_motion = p.encoder == "dense_motion"
        self.motion_mask = nn.Conv2d(chans[-1], 1, 1) if self.dense_motion else None

    def forward(self, source: torch.Tensor, transformed: torch.Tensor, coarse: torch.Tensor) -> dict:
        h = self.down(torch.cat([source, transformed], dim=1))
        feature = self.feature(h)
        confidence = torch.sigmoid(self.confidence(h))
        mask = flow = None
        if self.motion_mask is not None:
            mask = torch.sigmoid(self.motion_mask(h))                                   # (B, 1, h, w)
            identity = make_coordinate_grid(tuple(h.shape[2:]), like=h)[None]            # O_I
            m = mask.permute(0, 2, 3, 1)
            flow = (1 - m) * identity + m * coarse                                      # eq. 7
            aligned = F.grid_sample(feature, flow, mode="bilinear", padding_mode="zeros", align_corners=True)
        else:
            aligned = feature                                                           # eq. 9
        return {"encoded": confidence * aligned, "feature": feature, "confidence": confidence,
                "motion_mask": mask, "flow": flow}


class AudioEncoder(nn.Module):
    """4 Conv1d (k 3; strides 1, 2, 1, 2; BN, ReLU) over the (80, 32) mel window, an LSTM, 2 FC (section 3.2).

    Shapes: mel (B, 32, 80) (time, mel bins) -> (B, audio_dim).
    """

    def __init__(self, p: ModelParams):
        super().__init__()
        c = p.channels(p.audio_channels)
        layers, cin = [], 80
        for stride in (1, 2, 1, 2):
            layers += [nn.Conv1d(cin, c, 3, stride=stride, padding=1, bias=False), nn.BatchNorm1d(c), nn.ReLU()]
            cin = c
        self.convs = nn.Sequential(*layers)
        self.lstm = nn.LSTM(c, c, batch_first=True)
        self.fc = nn.Sequential(nn.Linear(c, c), nn.ReLU(), nn.Linear(c, p.audio_dim))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        if mel.dim() != 3 or mel.shape[1:] != (AUDIO_WINDOW_MEL, 80):
            raise ValueError(f"AudioEncoder: mel must be (B, {AUDIO_WINDOW_MEL}, 80) (400 ms of the Wav2Lip mel), "
                             f"got {tuple(mel.shape)}")
        h = self.convs(mel.transpose(1, 2)).transpose(1, 2)                            # (B, T', C)
        _, (last, _) = self.lstm(h)
        return self.fc(last[-1])


class EyeEncoder(nn.Module):
    """5 downsample blocks, global average pooling, 2 FC (section 3.2). (B, 3, S, S) -> (B, eye_dim)."""

    def __init__(self, p: ModelParams):
        super().__init__()
        chans = [3] + [min(p.channels(256), p.channels(p.eye_channels * 2 ** i)) for i in range(5)]
        self.down = nn.Sequential(*(DownBlock(chans[i], chans[i + 1]) for i in range(5)))
        self.fc = nn.Sequential(nn.Linear(chans[-1], chans[-1]), nn.ReLU(), nn.Linear(chans[-1], p.eye_dim))

    def forward(self, eyes: torch.Tensor) -> torch.Tensor:
        return self.fc(self.down(eyes).mean(dim=(2, 3)))


class ModulatedResBlock(nn.Module):
    """x + ModConv(LeakyReLU(ModConv(x, s)), s), both 3x3 and demodulated (eq. 11). Keeps (B, C, H, W)."""

    def __init__(self, channels: int, style_dim: int):
        super().__init__()
        self.conv1 = ModulatedConv2d(channels, channels, 3, style_dim)
        self.conv2 = ModulatedConv2d(channels, channels, 3, style_dim)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x, style), 0.2), style)


class ExpressionControlDecoder(nn.Module):
    """Section 2.3: modulated residual blocks on E, then bilinear-upsample conv blocks and a k = 7 output conv.

    Shapes: encoded (B, C, S/8, S/8), style f_exp (B, audio_dim + eye_dim) -> image (B, 3, S, S) in (0, 1).
    """

    def __init__(self, p: ModelParams, in_channels: int):
        super().__init__()
        style_dim = p.audio_dim + p.eye_dim
        self.blocks = nn.ModuleList(ModulatedResBlock(in_channels, style_dim) for _ in range(p.mod_blocks))
        chans = [in_channels] + [max(4, in_channels // 2 ** (i + 1)) for i in range(ENCODER_DOWNSAMPLES)]
        self.up = nn.ModuleList(ConvNormAct(chans[i], chans[i + 1], 3) for i in range(ENCODER_DOWNSAMPLES))
        self.out = nn.Conv2d(chans[-1], 3, 7, padding=3)

    def forward(self, encoded: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        x = encoded
        for block in self.blocks:
            x = block(x, style)
        for block in self.up:
            x = block(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))
        return torch.sigmoid(self.out(x))


@dataclass
class DisCoHeadOutput:
    """One forward pass."""

    image: torch.Tensor
    """(B, 3, S, S) in (0, 1): the generated frame."""
    transformed: torch.Tensor
    """(B, 3, S, S): S_T, the source warped by the transformation alone (the source-warp baseline)."""
    motion: dict[str, torch.Tensor]
    """The predictor's outputs (theta / heatmaps or keypoints)."""
    encoder: dict[str, torch.Tensor | None]
    """The encoder's outputs (encoded, feature, confidence, motion_mask, flow)."""


class DisCoHeadGenerator(nn.Module):
    """Figure 1 end to end: (source, head driver, eye driver, mel window) -> frame.

    Args:
        params: the architecture (`ModelParams`).

    Shapes: source, driver, eyes (B, 3, S, S) in [0, 1] (S = params.image_size; eyes = the eye-masked eye
    driver, `data.mask_eyes`); mel (B, 32, 80) -> `DisCoHeadOutput`.

    Raises:
        ValueError: inputs of another size than params.image_size (message names both).
    """

    def __init__(self, params: ModelParams):
        super().__init__()
        params.validate()
        self.params = params
        self.head_motion = HeadMotionPredictor(params)
        self.encoder = MotionAwareEncoder(params)
        self.audio_encoder = AudioEncoder(params)
        self.eye_encoder = EyeEncoder(params)
        self.decoder = ExpressionControlDecoder(params, self.encoder.out_channels)

    def _check(self, name: str, x: torch.Tensor) -> None:
        s = self.params.image_size
        if x.dim() != 4 or x.shape[1:] != (3, s, s):
            raise ValueError(f"DisCoHeadGenerator: {name} must be (B, 3, {s}, {s}) (model.image_size {s}), "
                             f"got {tuple(x.shape)}")

    def transform(self, source: torch.Tensor, driver: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """S_T (the source in the driver's head pose) and the predictor's outputs."""
        motion = self.head_motion(source, driver)
        grid = self.head_motion.coarse_grid(motion, tuple(source.shape[2:]))
        return F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=True), motion

    def forward(self, source: torch.Tensor, driver: torch.Tensor, eyes: torch.Tensor,
                mel: torch.Tensor) -> DisCoHeadOutput:
        for name, x in (("source", source), ("driver", driver), ("eyes", eyes)):
            self._check(name, x)
        if driver.shape[0] != source.shape[0] or eyes.shape[0] != source.shape[0] or mel.shape[0] != source.shape[0]:
            raise ValueError(f"DisCoHeadGenerator: batch sizes differ: source {source.shape[0]}, driver "
                             f"{driver.shape[0]}, eyes {eyes.shape[0]}, mel {mel.shape[0]}")
        transformed, motion = self.transform(source, driver)
        feat = self.params.image_size // 2 ** ENCODER_DOWNSAMPLES
        coarse = self.head_motion.coarse_grid(motion, (feat, feat)) if self.encoder.dense_motion else None
        enc = self.encoder(source, transformed, coarse)
        style = torch.cat([self.audio_encoder(mel), self.eye_encoder(eyes)], dim=1)     # f_exp
        return DisCoHeadOutput(self.decoder(enc["encoded"], style), transformed, motion, enc)


# ------------------------------------------------------------------------------ the exported generator

GENERATOR_FORMAT = "headflow.discohead/1"
"""Layout of the exported generator file (`generator.pt`)."""


def architecture(params: ModelParams) -> dict:
    """The settings a checkpoint must match to load into `DisCoHeadGenerator(params)`."""
    return {"family": "discohead", **to_dict(params)}


def check_architecture(saved: dict, params: ModelParams, where: str = "checkpoint") -> None:
    """Raise ValueError naming both architectures when a checkpoint's does not match `params`."""
    wanted = architecture(params)
    if saved != wanted:
        diff = {k: (saved.get(k), wanted.get(k)) for k in sorted(set(saved) | set(wanted)) if saved.get(k) != wanted.get(k)}
        raise ValueError(f"{where} holds a DisCoHead generator of another architecture (differences, saved vs asked: "
                         f"{diff}); use the params it was trained with or train a new checkpoint")


def save_generator(generator: DisCoHeadGenerator, params: DisCoHeadParams, path: Path, extra: dict | None = None) -> str:
    """Write the exported generator (format, architecture, params, weights) atomically; returns its sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": GENERATOR_FORMAT, "architecture": architecture(params.model), "params": to_dict(params),
             "state_dict": {k: v.detach().cpu() for k, v in generator.state_dict().items()}, **(extra or {})}
    return save_export(state, path)



def load_generator(path: Path, model: ModelParams | None = None,
                   device: str | torch.device = "cpu") -> tuple[DisCoHeadGenerator, dict[str, Any]]:
    """Load an exported generator in eval mode.

    Args:
        path: a `generator.pt` written by `save_generator`.
        model: the architecture the caller expects (None: whatever the file holds).

    Returns:
        (generator, the file's saved params as a plain dict).

    Raises:
        FileNotFoundError: no file (the message says how to make one).
        ValueError: not a DisCoHead generator file, or another architecture/width than `model` (names both).
    """
    from headflow.config import from_dict

    state = load_export(path, GENERATOR_FORMAT, "DisCoHead generator", "train one with `dvc repro train_discohead` "
                        "(or `python -m stages.train_discohead`) or set generate_discohead.checkpoint")
    saved = from_dict(DisCoHeadParams, state["params"], "generator.params")
    check_architecture(state["architecture"], saved.model, str(path))
    if model is not None:
        check_architecture(state["architecture"], model, str(path))
    generator = DisCoHeadGenerator(saved.model)
    generator.load_state_dict(state["state_dict"])
    return generator.to(device).eval(), state["params"]
