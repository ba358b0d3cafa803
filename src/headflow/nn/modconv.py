"""Modulated convolution with weight demodulation (StyleGAN2; Karras et al. 2020, section 2.2, eq. 1-3).

DisCoHead's expression-control decoder (papers/discohead.txt, section 2.3, eq. 11) modulates its decoder with
this layer, the style s predicted from the audio and eye features.

    modulation   (eq. 1)  w'_ijk  = s_i * w_ijk
    demodulation (eq. 3)  w''_ijk = w'_ijk / sqrt(sum_{i,k} w'_ijk^2 + eps)

i: input channel, j: output channel, k: kernel tap. Each sample in the batch gets its own kernel; the
batch runs as one grouped convolution (B groups), as NVlabs' `stylegan2-ada-pytorch`
`training/networks.py::modulated_conv2d` (fused path).

Why demodulation gives unit output variance: for an input with i.i.d. unit-variance entries,
y_j = sum_{i,k} w''_ijk x_{i,k} has Var(y_j) = sum_{i,k} w''_ijk^2 = 1 - eps / (sum w'^2 + eps) ~ 1.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class ModulatedConv2d(nn.Module):
    """Per-sample style-modulated 2D convolution, optionally demodulated and 2x up-sampled.

    The weight uses StyleGAN2's equalised learning rate (stored N(0, 1), multiplied by 1/sqrt(fan_in)
    at run time). The style affine map A (a Linear layer, bias initialised to 1 as in StyleGAN2) turns
    the style vector into per-input-channel scales s. With `upsample`, the input is first resized
    bilinearly by 2 (DisCoHead's "bilinear-upsample conv blocks"; StyleGAN2 instead uses a transposed
    convolution followed by a FIR blur).

    Args:
        in_channels, out_channels: channel counts.
        kernel_size: odd kernel size (padding kernel_size // 2 keeps H, W).
        style_dim: length of the style vector.
        demodulate: apply eq. 3 (True for feature layers, False for StyleGAN2's ToRGB).
        upsample: bilinear x2 before the convolution.
        bias: add a learned per-output-channel bias (zero-initialised) after the convolution.
        eps: the eps of eq. 3 (1e-8 as StyleGAN2).

    Shapes: x (B, C_in, H, W), style (B, style_dim) -> (B, C_out, H', W'), H' = 2H with upsample else H.

    Raises:
        ValueError: an even kernel_size; x or style of the wrong shape.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False, bias: bool = True, eps: float = 1e-8):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"ModulatedConv2d: kernel_size must be odd (same padding), got {kernel_size}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.style_dim, self.demodulate, self.upsample, self.eps = style_dim, demodulate, upsample, eps
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.affine = nn.Linear(style_dim, in_channels)
        nn.init.ones_(self.affine.bias)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def modulated_weight(self, style: torch.Tensor) -> torch.Tensor:
        """Per-sample kernels (B, C_out, C_in, k, k): eq. 1, then eq. 3 when `demodulate`."""
        s = self.affine(style)  # (B, C_in)
        w = self.weight[None] * self.weight_gain * s[:, None, :, None, None]
        if self.demodulate:
            w = w * torch.rsqrt(w.pow(2).sum(dim=(2, 3, 4), keepdim=True) + self.eps)
        return w

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ModulatedConv2d: x must be (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if style.shape != (x.shape[0], self.style_dim):
            raise ValueError(f"ModulatedConv2d: style must be (B={x.shape[0]}, {self.style_dim}), "
                             f"got {tuple(style.shape)}")
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        b, _, h, w = x.shape
        weight = self.modulated_weight(style).reshape(b * self.out_channels, self.in_channels,
                                                      self.kernel_size, self.kernel_size)
        y = F.conv2d(x.reshape(1, b * self.in_channels, h, w), weight, padding=self.kernel_size // 2, groups=b)
        y = y.reshape(b, self.out_channels, h, w)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1)
        return y
