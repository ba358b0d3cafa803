"""GAN discriminators: PatchGAN, multi-scale, temporal (stacked frames) and region (cropped boxes).

Every discriminator returns raw logits (no sigmoid; `headflow.losses.gan` applies the loss) and the
intermediate activations used by feature matching (pix2pixHD, Wang et al. 2018, section 3.2).

References: pix2pix `models/networks.py::NLayerDiscriminator` (Isola et al. 2017, 70x70 PatchGAN:
C64-C128-C256-C512, 4x4 convolutions, LeakyReLU 0.2, no norm on the first layer); pix2pixHD
`models/networks.py::MultiscaleDiscriminator` (average-pool 3, stride 2, between scales); vid2vid /
Head2Head temporal discriminators (K consecutive frames stacked on channels, frame rates subsampled by
2 per temporal scale); Head2HeadFS's mouth discriminator D^M (a PatchGAN on mouth crops).
"""

from __future__ import annotations

from typing import Literal

import torch
from kornia.geometry.transform import crop_and_resize
from torch import nn
from torch.nn import functional as F

DNorm = Literal["batch", "instance", "none"]


def _norm(kind: DNorm, channels: int) -> nn.Module:
    return {"batch": lambda: nn.BatchNorm2d(channels), "instance": lambda: nn.InstanceNorm2d(channels),
            "none": nn.Identity}[kind]()


class PatchDiscriminator(nn.Module):
    """pix2pix PatchGAN: a map of real/fake logits, one per overlapping receptive field.

    With the defaults (n_layers=3, 4x4 kernels, padding 1) each output logit sees 70x70 input pixels;
    a 256x256 input gives a 30x30 map, a 96x96 input 10x10. Widths: base, 2 base, 4 base, 8 base
    (capped at `max_channels`).

    Args:
        in_channels: input channels (image plus any condition concatenated on channels, e.g. NMFC).
        base_channels: channels of the first layer (pix2pix: 64).
        n_layers: hidden layers after the first: n_layers - 1 at stride 2, then one at stride 1
            (pix2pix: 3; the input is downsampled by 2^n_layers before the two stride-1 layers).
        norm: "batch" (pix2pix) | "instance" (pix2pixHD) | "none"; never on the first and last layer.
        spectral_norm: wrap every convolution in spectral normalisation (Miyato et al. 2018).
        max_channels: width cap.

    Shapes: x (B, in_channels, H, W), any value range -> (logits (B, 1, H', W'), features list of the
        n_layers + 1 activations before the last conv, each (B, C_l, H_l, W_l)).
    """

    def __init__(self, in_channels: int, base_channels: int = 64, n_layers: int = 3, norm: DNorm = "instance",
                 spectral_norm: bool = False, max_channels: int = 512):
        super().__init__()
        if norm not in DNorm.__args__:
            raise ValueError(f"PatchDiscriminator: norm must be one of {DNorm.__args__}, got {norm!r}")
        sn = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda m: m)
        blocks = [nn.Sequential(sn(nn.Conv2d(in_channels, base_channels, 4, 2, 1)), nn.LeakyReLU(0.2))]
        cin = base_channels
        for n in range(1, n_layers + 1):
            cout = min(base_channels * 2 ** n, max_channels)
            stride = 2 if n < n_layers else 1  # pix2pix: the last hidden layer keeps the resolution
            blocks.append(nn.Sequential(sn(nn.Conv2d(cin, cout, 4, stride, 1, bias=norm == "none")),
                                        _norm(norm, cout), nn.LeakyReLU(0.2)))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.head = sn(nn.Conv2d(cin, 1, 4, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return self.head(x), feats


class MultiScaleDiscriminator(nn.Module):
    """pix2pixHD: `num_scales` PatchGANs on the input and its 2x, 4x, ... average-pooled copies.

    Args:
        in_channels: input channels.
        num_scales: number of discriminators (pix2pixHD: 2 or 3).
        **patch_kwargs: passed to every `PatchDiscriminator` (base_channels, n_layers, norm, ...).

    Shapes: x (B, in_channels, H, W) -> (list of num_scales logits maps, finest first; list of
        num_scales feature lists). Each scale needs its input to stay >= ~16 px for 3 layers.
    """

    def __init__(self, in_channels: int, num_scales: int = 3, **patch_kwargs):
        super().__init__()
        if num_scales < 1:
            raise ValueError(f"MultiScaleDiscriminator: num_scales must be >= 1, got {num_scales}")
        self.scales = nn.ModuleList(PatchDiscriminator(in_channels, **patch_kwargs) for _ in range(num_scales))

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        logits, feats = [], []
        for i, disc in enumerate(self.scales):
            if i:
                x = F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)
            lg, ft = disc(x)
            logits.append(lg)
            feats.append(ft)
        return logits, feats


class TemporalDiscriminator(nn.Module):
    """Temporal (dynamics) discriminator: K consecutive frames stacked on channels, at S frame rates.

    Temporal scale s looks at K frames spaced 2^s apart, ending at the last frame of the input
    (vid2vid / Head2HeadFS D^V: 3 scales, subsampling by 2), each with its own PatchGAN over K * C
    channels. Per-frame extras (optical flow, NMFC) are extra frame channels C.

    Args:
        frame_channels: C, channels of one frame.
        window: K, frames per window (>= 2).
        time_scales: S (>= 1); the input needs T = (K - 1) * 2^(S - 1) + 1 frames.
        **patch_kwargs: passed to every `PatchDiscriminator`.

    Shapes: frames (B, T, C, H, W) -> (list of S logits maps, finest rate first; list of S feature lists).

    Raises:
        ValueError: frames of the wrong rank, channel count or length.
    """

    def __init__(self, frame_channels: int, window: int = 3, time_scales: int = 1, **patch_kwargs):
        super().__init__()
        if window < 2 or time_scales < 1:
            raise ValueError(f"TemporalDiscriminator: need window >= 2 and time_scales >= 1, got {window}, "
                             f"{time_scales}")
        self.frame_channels, self.window, self.time_scales = frame_channels, window, time_scales
        self.scales = nn.ModuleList(PatchDiscriminator(frame_channels * window, **patch_kwargs)
                                    for _ in range(time_scales))

    @property
    def frames_needed(self) -> int:
        """T = (K - 1) * 2^(S - 1) + 1."""
        return (self.window - 1) * 2 ** (self.time_scales - 1) + 1

    def forward(self, frames: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        if frames.dim() != 5 or frames.shape[2] != self.frame_channels or frames.shape[1] != self.frames_needed:
            raise ValueError(f"TemporalDiscriminator: frames must be (B, T={self.frames_needed}, "
                             f"C={self.frame_channels}, H, W), got {tuple(frames.shape)}")
        b, _, c, h, w = frames.shape
        logits, feats = [], []
        for s, disc in enumerate(self.scales):
            step = 2 ** s
            clip = frames[:, frames.shape[1] - 1 - (self.window - 1) * step::step]  # (B, K, C, H, W)
            lg, ft = disc(clip.reshape(b, self.window * c, h, w))
            logits.append(lg)
            feats.append(ft)
        return logits, feats


class RegionDiscriminator(nn.Module):
    """PatchGAN on a per-sample region (e.g. the mouth), cropped and resized by kornia's `crop_and_resize`.

    Args:
        in_channels: input channels.
        crop_size: (h, w) every region is resized to (bilinear).
        **patch_kwargs: passed to the `PatchDiscriminator` (use n_layers=2 for crops below ~48 px).

    Shapes: images (B, C, H, W); boxes (B, 4) as (x_min, y_min, x_max, y_max) in pixel coordinates of
        `images`, inclusive (kornia's convention: the box (1, 1, 2, 2) is a 2x2 block), floats allowed ->
        (logits (B, 1, h', w'), features list).

    Raises:
        ValueError: boxes not (B, 4).
    """

    def __init__(self, in_channels: int, crop_size: tuple[int, int] = (64, 64), **patch_kwargs):
        super().__init__()
        self.crop_size = tuple(crop_size)
        self.disc = PatchDiscriminator(in_channels, **patch_kwargs)

    def crop(self, images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """The regions, (B, C, h, w)."""
        if boxes.shape != (images.shape[0], 4):
            raise ValueError(f"RegionDiscriminator: boxes must be (B={images.shape[0]}, 4) as "
                             f"(x_min, y_min, x_max, y_max), got {tuple(boxes.shape)}")
        x0, y0, x1, y1 = boxes.to(images.dtype).unbind(1)
        corners = torch.stack([torch.stack([x0, y0], 1), torch.stack([x1, y0], 1),
                               torch.stack([x1, y1], 1), torch.stack([x0, y1], 1)], dim=1)  # (B, 4, 2)
        return crop_and_resize(images, corners, self.crop_size, mode="bilinear", align_corners=True)

    def forward(self, images: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.disc(self.crop(images, boxes))
