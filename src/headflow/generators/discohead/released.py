"""DisCoHead's released checkpoint (deepbrainai-research/discohead, affine variant): the network it fits.

The authors' inference code is not the architecture of `model.py` (see docs/families/discohead.md): a 7x7 stem
and 5x5 encoder heads at 512 channels, BN-ReLU inside each modulated conv, a 2-way softmax motion mask,
an 8-d eye code from a half-resolution eye image, a 256-d audio code from a 192-bin spectrogram
(22.05 kHz, their own front end), and in the GRID config A = [U, t] without S^(1/2). This module
rebuilds that layout under the released parameter names (files `model.py`, `modules/generator.py`,
`modules/head_predictor.py`, `modules/hourglass.py`, `modules/blocks.py`, `modules/layers.py`,
`modules/eyes_encoder.py`, `modules/audio_encoder.py`, `config_grid.py`), so a user's checkpoint loads
strictly and runs. It is written here, not copied; nothing is downloaded (the file is the user's).

    net = load_released("grid.pt")          # strict: every released name and shape, nothing else
    frame = net(src, head_driver, masked_eye_driver, spectrogram)   # (n, 3, 256, 256) in (0, 1)

Inputs: images (n, 3, 256, 256) in [0, 1]; the eye driver masked outside the eyes as the authors do;
spectrogram (n, 192, L), their feature (not the project's Wav2Lip mel, so `generate_discohead` does not
drive this network).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

RELEASED_SIZE = 256
AUDIO_BINS = 192


def _grid(h: int, w: int) -> torch.Tensor:
    """(h, w, 2) identity grid with align_corners=False (the released `make_coordinate_grid`)."""
    return F.affine_grid(torch.eye(2, 3)[None], [1, 1, h, w], align_corners=False)[0]


class _Wrap(nn.Module):
    """A layer kept under the attribute name the released wrappers use (`.conv`, `.linear`, `.lstm`)."""

    def __init__(self, name: str, layer: nn.Module):
        super().__init__()
        self.name = name
        self.add_module(name, layer)

    def forward(self, x):
        return getattr(self, self.name)(x)


def _conv(cin: int, cout: int, k: int, p: int) -> _Wrap:
    return _Wrap("conv", nn.Conv2d(cin, cout, k, 1, p))


def _linear(cin: int, cout: int) -> _Wrap:
    return _Wrap("linear", nn.Linear(cin, cout))


class _ConvBnRelu(nn.Module):
    def __init__(self, cin: int, cout: int, k: int = 3, p: int = 1):
        super().__init__()
        self.conv, self.bn, self.act = _conv(cin, cout, k, p), nn.BatchNorm2d(cout), nn.ReLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class _Down(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = _ConvBnRelu(cin, cout)

    def forward(self, x):
        return F.avg_pool2d(self.conv(x), 2)


class _Up(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = _ConvBnRelu(cin, cout)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2))          # nearest, as released


class _AntiAlias(nn.Module):
    """Gaussian blur (sigma = (1/scale - 1) / 2, kernel 2 round(4 sigma) + 1), then every 1/scale-th pixel
    (FOMM's `AntiAliasInterpolation2d`; the kernel is a buffer of the checkpoint)."""

    def __init__(self, channels: int, scale: float):
        super().__init__()
        sigma = (1 / scale - 1) / 2
        size = 2 * round(sigma * 4) + 1
        ax = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
        g = torch.exp(-ax ** 2 / (2 * sigma ** 2))
        k = g[:, None] * g[None, :]
        self.register_buffer("weight", (k / k.sum()).expand(channels, 1, size, size).clone())
        self.pad, self.step, self.groups = size // 2, int(1 / scale), channels

    def forward(self, x):
        x = F.conv2d(F.pad(x, (self.pad,) * 4), self.weight, groups=self.groups)
        return x[:, :, ::self.step, ::self.step]


class _Hourglass(nn.Module):
    def __init__(self, base: int = 32, cin: int = 3, levels: int = 5, cap: int = 1024):
        super().__init__()
        ch = lambda i: min(cap, base * 2 ** i)                      # noqa: E731
        self.encoder = nn.Module()
        self.encoder.down_blocks = nn.ModuleList(_Down(cin if i == 0 else ch(i), ch(i + 1)) for i in range(levels))
        self.decoder = nn.Module()
        self.decoder.up_blocks = nn.ModuleList(
            _Up(ch(i + 1) * (1 if i == levels - 1 else 2), ch(i)) for i in reversed(range(levels)))
        self.out_filters = base + cin

    def forward(self, x):
        outs = [x]
        for block in self.encoder.down_blocks:
            outs.append(block(outs[-1]))
        out = outs.pop()
        for block in self.decoder.up_blocks:
            out = torch.cat([block(out), outs.pop()], dim=1)
        return out


class _HeadPredictor(nn.Module):
    """Heatmap (plain softmax) -> [U (S^1/2 when using_scale), mean] as a homogeneous 3x3 per frame."""

    def __init__(self, using_scale: bool = False):
        super().__init__()
        self.using_scale = using_scale
        self.extractor = _Hourglass()
        self.predictor = _conv(self.extractor.out_filters, 1, 7, 3)
        self.register_buffer("grid", _grid(64, 64))
        self.register_buffer("identity", torch.eye(3))

    def forward(self, x):
        logits = self.predictor(self.extractor(x))[:, 0]
        n, h, w = logits.shape
        heat = F.softmax(logits.reshape(n, -1), -1).reshape(n, h, w)
        mean = torch.einsum("nhw,hwc->nc", heat, self.grid)
        dev = self.grid[None] - mean[:, None, None]
        cov = torch.einsum("nhw,nhwi,nhwj->nij", heat, dev, dev)
        u, s, _ = torch.linalg.svd(cov)
        lin = u * s.sqrt()[:, None, :] if self.using_scale else u
        out = self.identity.expand(n, 3, 3).clone()
        out[:, :2] = torch.cat([lin, mean[:, :, None]], dim=-1)
        return out


class _ModConv(nn.Module):
    """BN -> ReLU -> 3x3 modulated, demodulated conv without bias (scales = Linear(code), bias init 1)."""

    def __init__(self, channels: int, code: int):
        super().__init__()
        self.mod = _linear(code, channels)
        self.bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.weight = nn.Parameter(torch.empty(1, channels, channels, 3, 3))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, x, code):
        x = self.relu(self.bn(x))
        n, i, h, w = x.shape
        wgt = self.weight * self.mod(code).view(n, 1, i, 1, 1)
        wgt = wgt * torch.rsqrt(wgt.pow(2).sum((2, 3, 4), keepdim=True) + 1e-8)
        y = F.conv2d(x.reshape(1, n * i, h, w), wgt.reshape(-1, i, 3, 3), padding=1, groups=n)
        return y.view(n, -1, h, w)


class _ResModBlock(nn.Module):
    def __init__(self, channels: int, code: int):
        super().__init__()
        self.block = nn.ModuleList([_ModConv(channels, code), _ModConv(channels, code)])

    def forward(self, x, code):
        r = x
        for conv in self.block:
            r = conv(r, code)
        return x + r


class _Generator(nn.Module):
    def __init__(self, mod_blocks: int = 6):
        super().__init__()
        self.encoder = nn.Sequential(_ConvBnRelu(6, 64, 7, 3), _Down(64, 128), _Down(128, 256), _Down(256, 512))
        self.mask_predictor = _conv(512, 2, 5, 2)
        self.feature_predictor = _conv(512, 512, 5, 2)
        self.occlusion_predictor = _conv(512, 1, 5, 2)
        self.bottleneck = nn.ModuleList(_ResModBlock(512, 8 + 256) for _ in range(mod_blocks))
        self.decoder = nn.Sequential(_Up(512, 256), _Up(256, 128), _Up(128, 64), _conv(64, 3, 7, 3))
        full, small = _grid(RELEASED_SIZE, RELEASED_SIZE), _grid(32, 32)
        self.register_buffer("homo_full_grid", torch.cat([full, torch.ones(*full.shape[:2], 1)], -1))
        self.register_buffer("grid", small)
        self.register_buffer("homo_grid", torch.cat([small, torch.ones(32, 32, 1)], -1))

    def forward(self, src, a_src, a_drv, eyes, audio):
        affine = a_src @ torch.linalg.inv(a_drv)
        affine = affine * torch.sign(affine[:, 0:1, 0:1])             # the released sign fix
        full = torch.einsum("nij,hwj->nhwi", affine, self.homo_full_grid)[..., :2]
        transformed = F.grid_sample(src, full, align_corners=False)
        x = self.encoder(torch.cat([src, transformed], dim=1))
        mask = F.softmax(self.mask_predictor(x), dim=1)                # (n, 2, 32, 32): affine, identity
        coarse = torch.einsum("nij,hwj->nhwi", affine, self.homo_grid)[..., :2]
        flows = torch.stack([coarse, self.grid.expand_as(coarse)], dim=1)
        flow = (mask[..., None] * flows).sum(dim=1)
        feature = F.grid_sample(self.feature_predictor(x), flow, align_corners=False)
        feature = torch.sigmoid(self.occlusion_predictor(x)) * feature
        code = torch.cat([eyes, audio], dim=1)
        for block in self.bottleneck:
            feature = block(feature, code)
        return torch.sigmoid(self.decoder(feature))


class _EyesEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.down = _AntiAlias(3, 0.5)
        self.encoder = nn.Sequential(_Down(3, 32), _Down(32, 64), _Down(64, 64), _Down(64, 64), _Down(64, 64),
                                     nn.AvgPool2d(4))
        self.predictor = nn.Sequential(_linear(64, 32), nn.ReLU(), _linear(32, 8))

    def forward(self, x):
        return self.predictor(self.encoder(self.down(x))[..., 0, 0])


class _AudioEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        layers = []
        for cin in (AUDIO_BINS, 512, 512, 512):
            layers += [_Wrap("conv", nn.Conv1d(cin, 512, 3, 1, 1)), nn.ReLU()]
        self.encoder = nn.Sequential(*layers)
        self.rnn = _Wrap("lstm", nn.LSTM(512, 512, batch_first=True))
        self.decoder = nn.Sequential(_linear(512, 256), nn.ReLU(), _linear(256, 256))

    def forward(self, spec):
        h, _ = self.rnn(self.encoder(spec).permute(0, 2, 1))
        return self.decoder(h[:, -1])


class ReleasedDisCoHead(nn.Module):
    """The released affine model (`config_grid.py`: one affine, no scale, 6 modulated blocks, no Gaussian input).

    Shapes: src, drv, eye (n, 3, 256, 256) in [0, 1]; spec (n, 192, L) -> (n, 3, 256, 256) in (0, 1).
    """

    def __init__(self, using_scale: bool = False, mod_blocks: int = 6):
        super().__init__()
        self.down_sampler = _AntiAlias(3, 0.25)
        self.head_predictor = _HeadPredictor(using_scale)
        self.eyes_encoder = _EyesEncoder()
        self.audio_encoder = _AudioEncoder()
        self.generator = _Generator(mod_blocks)

    def forward(self, src, drv, eye, spec):
        if src.shape[1:] != (3, RELEASED_SIZE, RELEASED_SIZE) or drv.shape != src.shape or eye.shape != src.shape:
            raise ValueError(f"ReleasedDisCoHead: src, drv and eye must be (n, 3, 256, 256), got {tuple(src.shape)}, "
                             f"{tuple(drv.shape)}, {tuple(eye.shape)}")
        if spec.dim() != 3 or spec.shape[1] != AUDIO_BINS:
            raise ValueError(f"ReleasedDisCoHead: spec must be (n, {AUDIO_BINS}, L), the authors' spectrogram; got "
                             f"{tuple(spec.shape)}")
        a_src = self.head_predictor(self.down_sampler(src))
        a_drv = self.head_predictor(self.down_sampler(drv))
        return self.generator(src, a_src, a_drv, self.eyes_encoder(eye), self.audio_encoder(spec))


def load_released(path: str | Path, device: str | torch.device = "cpu") -> ReleasedDisCoHead:
    """Load a user's released DisCoHead checkpoint strictly (eval mode).

    Accepts a bare state dict or one under "model" / "state_dict".

    Raises:
        FileNotFoundError: no file (nothing is downloaded: the message says where the authors publish it).
        ValueError: names or shapes that are not the released affine model's (lists the first differences).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"released DisCoHead checkpoint {path} not found; nothing is downloaded at run time: "
                                "get the authors' weights (github.com/deepbrainai-research/discohead, e.g. grid.pt) "
                                "and pass their path")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict):
        for key in ("model", "state_dict"):
            if isinstance(state.get(key), dict):
                state = state[key]
    net = ReleasedDisCoHead()
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or extra or shapes:
        raise ValueError(f"{path} is not the released DisCoHead affine model: missing {missing[:5]} "
                         f"({len(missing)}), unexpected {extra[:5]} ({len(extra)}), other shapes {shapes[:5]}")
    net.load_state_dict(state, strict=True)
    return net.to(device).eval()
