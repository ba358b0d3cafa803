"""Convolution building blocks shared by the generator families: conv + norm + activation, AdaIN, residual.

One block type, `ConvNormAct`, covers 2D and 3D (`dims`), batch / instance / AdaIN normalisation and
same / down / up sampling; face-vid2vid's small blocks are presets of it:

* `SameBlock` = conv k3 -> BatchNorm -> ReLU            (face-vid2vid `SameBlock2d`)
* `DownBlock` = conv k3 -> BatchNorm -> ReLU -> avg-pool 2  (`DownBlock2d`/`DownBlock3d`)
* `UpBlock`   = nearest x2 -> conv k3 -> BatchNorm -> ReLU  (`UpBlock2d`/`UpBlock3d`)

Reference files: face-vid2vid (Wang et al. 2021, CVPR; the code follows FOMM's `modules/util.py`),
pix2pixHD `models/networks.py` (`ResnetBlock`), Huang & Belongie 2017 (AdaIN, eq. 8) as used by
Head2HeadFS (Doukas et al. 2021, section 3.3: N(x, h) = (P_gamma h)(x - mu)/sigma + P_beta h).

3D sampling is spatial only, as in face-vid2vid: "down" pools with (1, 2, 2) and "up" interpolates with
scale (1, 2, 2), so the depth axis D of a (B, C, D, H, W) volume is kept.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

Norm = Literal["batch", "instance", "adain", "none"]
Act = Literal["relu", "leaky_relu", "none"]
Sample = Literal["none", "down", "up"]
Dims = Literal[2, 3]


def _check_dims(dims: int) -> None:
    if dims not in (2, 3):
        raise ValueError(f"dims must be 2 (B,C,H,W) or 3 (B,C,D,H,W), got {dims!r}")


class AdaIN(nn.Module):
    """Adaptive instance normalisation: instance-normalised features, scaled and shifted by a style code.

    out = gamma(s) * (x - mu(x)) / sigma(x) + beta(s), with gamma(s) = P_gamma s + b_gamma and
    beta(s) = P_beta s + b_beta learned affine maps of the style vector s (Huang & Belongie 2017, eq. 8,
    with the target statistics predicted from s as in StyleGAN / Head2HeadFS section 3.3, eq. 6). mu, sigma
    are per sample and channel over the spatial axes (eps 1e-5). Head2HeadFS writes pure projections
    P h; the biases here (b_gamma starts at 1, b_beta at 0) let a new layer start close to plain
    instance normalisation, and they can learn to stay 0.

    Args:
        num_features: channels C of x.
        style_dim: length of the style vector s.
        dims: 2 for x of shape (B, C, H, W), 3 for (B, C, D, H, W).

    Shapes: x (B, C, *spatial) any real values; style (B, style_dim) -> same shape as x.

    Raises:
        ValueError: style is not (B, style_dim) with x's batch size.
    """

    def __init__(self, num_features: int, style_dim: int, dims: Dims = 2):
        super().__init__()
        _check_dims(dims)
        self.num_features, self.style_dim, self.dims = num_features, style_dim, dims
        self.norm = (nn.InstanceNorm2d if dims == 2 else nn.InstanceNorm3d)(num_features, affine=False)
        self.to_gamma = nn.Linear(style_dim, num_features)
        self.to_beta = nn.Linear(style_dim, num_features)
        nn.init.ones_(self.to_gamma.bias)
        nn.init.zeros_(self.to_beta.bias)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        if style.dim() != 2 or style.shape != (x.shape[0], self.style_dim):
            raise ValueError(f"AdaIN: style must be (B={x.shape[0]}, style_dim={self.style_dim}), "
                             f"got {tuple(style.shape)}")
        view = (x.shape[0], self.num_features) + (1,) * self.dims
        return self.to_gamma(style).view(view) * self.norm(x) + self.to_beta(style).view(view)

    @torch.no_grad()
    def to_instance_norm(self, style: torch.Tensor) -> nn.Module:
        """An affine InstanceNorm whose gamma, beta are this layer's output for one fixed style vector.

        Head2HeadFS fine-tuning (section 3.4) replaces AdaIN by instance norm initialised with
        gamma = P_gamma h_new, beta = P_beta h_new, then trains gamma, beta directly.

        Args:
            style: (style_dim,) or (1, style_dim), e.g. the new person's identity embedding.
        """
        s = style.reshape(1, self.style_dim)
        layer = (nn.InstanceNorm2d if self.dims == 2 else nn.InstanceNorm3d)(self.num_features, affine=True)
        layer.weight.copy_(self.to_gamma(s)[0])
        layer.bias.copy_(self.to_beta(s)[0])
        return layer.to(style.device)


class ConvNormAct(nn.Module):
    """Convolution -> normalisation -> activation, with optional 2x down- or up-sampling.

    Order: ("up": nearest x2 first) conv -> norm -> act ("down": average-pool 2 last), as face-vid2vid's
    `UpBlock`/`DownBlock` (FOMM `modules/util.py`). The conv has no bias when a norm follows.

    Args:
        in_channels, out_channels: channel counts.
        kernel_size, stride: of the convolution.
        padding: None = kernel_size // 2 ("same" output size for odd kernels at stride 1).
        norm: "batch" | "instance" (affine) | "adain" (needs `style_dim`; forward takes the style) | "none".
        act: "relu" | "leaky_relu" (slope 0.2) | "none".
        sample: "none" | "down" (avg-pool by 2 after the activation) | "up" (nearest x2 before the conv);
            for dims=3 only H and W are resampled.
        dims: 2 -> input (B, C, H, W); 3 -> input (B, C, D, H, W).
        style_dim: style vector length, required for norm="adain".

    Raises:
        ValueError: an unknown norm/act/sample/dims; norm="adain" without style_dim; at forward, a style
            given to a non-AdaIN block or missing for an AdaIN block.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int | None = None, norm: Norm = "batch", act: Act = "relu", sample: Sample = "none",
                 dims: Dims = 2, style_dim: int | None = None):
        super().__init__()
        _check_dims(dims)
        for name, value, allowed in (("norm", norm, Norm), ("act", act, Act), ("sample", sample, Sample)):
            if value not in allowed.__args__:
                raise ValueError(f"ConvNormAct: {name} must be one of {allowed.__args__}, got {value!r}")
        if norm == "adain" and style_dim is None:
            raise ValueError("ConvNormAct: norm='adain' needs style_dim (the style vector length)")
        self.dims, self.sample, self.norm_kind = dims, sample, norm
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        pad = kernel_size // 2 if padding is None else padding
        self.conv = conv(in_channels, out_channels, kernel_size, stride, pad, bias=norm == "none")
        if norm == "batch":
            self.norm: nn.Module = (nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d)(out_channels)
        elif norm == "instance":
            self.norm = (nn.InstanceNorm2d if dims == 2 else nn.InstanceNorm3d)(out_channels, affine=True)
        elif norm == "adain":
            self.norm = AdaIN(out_channels, style_dim, dims)  # type: ignore[arg-type]
        else:
            self.norm = nn.Identity()
        self.act = {"relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(0.2), "none": nn.Identity()}[act]

    def _scale(self) -> tuple[float, ...]:
        return (2.0, 2.0) if self.dims == 2 else (1.0, 2.0, 2.0)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, C_in, H, W) or (B, C_in, D, H, W); style: (B, style_dim) for AdaIN blocks only."""
        if x.dim() != self.dims + 2:
            raise ValueError(f"ConvNormAct(dims={self.dims}): x must have {self.dims + 2} axes, got {tuple(x.shape)}")
        if (style is not None) != (self.norm_kind == "adain"):
            raise ValueError(f"ConvNormAct(norm={self.norm_kind!r}): a style vector is "
                             f"{'required' if self.norm_kind == 'adain' else 'not accepted'}")
        if self.sample == "up":
            x = F.interpolate(x, scale_factor=self._scale(), mode="nearest")
        x = self.conv(x)
        x = self.norm(x, style) if self.norm_kind == "adain" else self.norm(x)
        x = self.act(x)
        if self.sample == "down":
            pool = F.avg_pool2d if self.dims == 2 else F.avg_pool3d
            x = pool(x, kernel_size=(2, 2) if self.dims == 2 else (1, 2, 2))
        return x


def adain_to_instance_norm(module: nn.Module, style: torch.Tensor) -> int:
    """Replace, in place, every AdaIN `ConvNormAct` inside `module` by affine instance norm for one style.

    Head2HeadFS fine-tuning (section 3.4): each layer gets gamma = P_gamma h_new, beta = P_beta h_new
    (`AdaIN.to_instance_norm`) and the blocks then take no style vector.

    Args:
        module: a network built from `ConvNormAct` / `ResBlock`.
        style: (style_dim,) the new identity's embedding h_new.

    Returns:
        The number of layers replaced.
    """
    count = 0
    for block in module.modules():
        if isinstance(block, ConvNormAct) and block.norm_kind == "adain":
            block.norm = block.norm.to_instance_norm(style)
            block.norm_kind = "instance"
            count += 1
    return count


class ResBlock(nn.Module):
    """Residual block: x + ConvNormAct(act=none)(ConvNormAct(act)(x)) (pix2pixHD `ResnetBlock`).

    Two 3x3 convolutions at stride 1; the skip is the identity when in == out channels, else a 1x1
    convolution. No activation after the sum (as pix2pixHD). Shapes: (B, C_in, *spatial) ->
    (B, C_out, *spatial). AdaIN blocks take the same style vector in both normalisations.

    Args:
        in_channels, out_channels, norm, act, dims, style_dim: as `ConvNormAct`.
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, norm: Norm = "batch",
                 act: Act = "relu", dims: Dims = 2, style_dim: int | None = None):
        super().__init__()
        out_channels = out_channels or in_channels
        self.conv1 = ConvNormAct(in_channels, out_channels, 3, norm=norm, act=act, dims=dims, style_dim=style_dim)
        self.conv2 = ConvNormAct(out_channels, out_channels, 3, norm=norm, act="none", dims=dims,
                                 style_dim=style_dim)
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.skip = nn.Identity() if in_channels == out_channels else conv(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        return self.skip(x) + self.conv2(self.conv1(x, style), style)


class SameBlock(ConvNormAct):
    """face-vid2vid `SameBlock2d`: conv -> BatchNorm -> ReLU at the same resolution."""

    def __init__(self, in_channels: int, out_channels: int, dims: Dims = 2, kernel_size: int = 3):
        super().__init__(in_channels, out_channels, kernel_size, norm="batch", act="relu", dims=dims)


class DownBlock(ConvNormAct):
    """face-vid2vid `DownBlock2d/3d`: conv k3 -> BatchNorm -> ReLU -> avg-pool (H, W halved)."""

    def __init__(self, in_channels: int, out_channels: int, dims: Dims = 2):
        super().__init__(in_channels, out_channels, 3, norm="batch", act="relu", sample="down", dims=dims)


class UpBlock(ConvNormAct):
    """face-vid2vid `UpBlock2d/3d`: nearest x2 (H, W) -> conv k3 -> BatchNorm -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, dims: Dims = 2):
        super().__init__(in_channels, out_channels, 3, norm="batch", act="relu", sample="up", dims=dims)
