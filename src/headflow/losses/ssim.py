"""Multi-scale SSIM (Wang, Simoncelli & Bovik 2003), differentiable, with a scale count that fits small crops.

Definition (the paper's eq. 7, as pytorch-msssim 1.0's `ms_ssim`, which this matches to 1e-5 at five
scales): per channel, an 11-tap Gaussian window (sigma 1.5, separable, "valid" convolution) gives local
means, variances and covariance; at scale j the contrast-structure term cs_j = mean (2 s_xy + C2) /
(s_x^2 + s_y^2 + C2), and at the coarsest scale M the full SSIM (luminance times cs). Between scales both
images are average-pooled by 2 (padding odd sizes). MS-SSIM = prod_{j<M} cs_j^{w_j} * ssim_M^{w_M},
averaged over channels and the batch, with C1 = (0.01 L)^2, C2 = (0.03 L)^2, L the data range, and the
paper's weights w = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333).

Small images: five scales need a smaller side > (11 - 1) * 2^4 = 160 px. With `scales=None` the largest
M <= 5 with smaller side > 10 * 2^(M - 1) is used (256 px: 5, 96 px: 4, 48-64 px: 3, 32 px: 2, 11-20 px: 1)
and the first M weights are rescaled to sum to 1, so MS-SSIM stays in [0, 1] with 1 for equal images.
Negative cs / ssim values are clamped to 1e-8 (pytorch-msssim uses relu, whose 0 ** w has no gradient).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

WANG_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WIN_SIZE = 11
WIN_SIGMA = 1.5


def auto_scales(height: int, width: int, win_size: int = WIN_SIZE) -> int:
    """The number of MS-SSIM scales (1-5) that an H x W image supports (module docstring)."""
    side = min(height, width)
    if side < win_size:
        raise ValueError(f"MS-SSIM needs images of at least {win_size}x{win_size} px, got {height}x{width}")
    scales = 1
    while scales < len(WANG_WEIGHTS) and side > (win_size - 1) * 2 ** scales:
        scales += 1
    return scales


def _gaussian_window(size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    coords = torch.arange(size, device=like.device, dtype=like.dtype) - size // 2
    g = torch.exp(-coords.pow(2) / (2 * sigma**2))
    return g / g.sum()


def _blur(x: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    x = F.conv2d(x, win.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)  # along H
    return F.conv2d(x, win.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)  # along W


def _ssim_cs(x: torch.Tensor, y: torch.Tensor, win: torch.Tensor, c1: float, c2: float):
    mu_x, mu_y = _blur(x, win), _blur(y, win)
    var_x = _blur(x * x, win) - mu_x.pow(2)
    var_y = _blur(y * y, win) - mu_y.pow(2)
    cov = _blur(x * y, win) - mu_x * mu_y
    cs_map = (2 * cov + c2) / (var_x + var_y + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x.pow(2) + mu_y.pow(2) + c1) * cs_map
    return ssim_map.flatten(2).mean(-1), cs_map.flatten(2).mean(-1)  # (B, C) each


def ms_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, scales: int | None = None,
            reduction: str = "mean") -> torch.Tensor:
    """MS-SSIM of two image batches (module docstring for the definition and the scales).

    Args:
        x, y: (B, C, H, W) images with values in [0, data_range], smaller side >= 11.
        data_range: L, the value range (1.0 for [0, 1] images, 255 for 8-bit).
        scales: number of scales M (1-5); None = as many as the size allows.
        reduction: "mean" (scalar) or "none" (B,) per sample (mean over channels).

    Returns:
        MS-SSIM in [0, 1] (1 for identical images).

    Raises:
        ValueError: shapes differ, the image is too small for the requested scales, bad scales/reduction.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"ms_ssim: x and y must be equal (B, C, H, W), got {tuple(x.shape)} and {tuple(y.shape)}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"ms_ssim: reduction must be 'mean' or 'none', got {reduction!r}")
    most = auto_scales(*x.shape[-2:])
    if scales is None:
        scales = most
    if not 1 <= scales <= most:
        raise ValueError(f"ms_ssim: {x.shape[-2]}x{x.shape[-1]} images support 1..{most} scales (smaller side > "
                         f"10 * 2^(scales - 1)), got scales={scales}; use larger crops or fewer scales")
    weights = torch.tensor(WANG_WEIGHTS[:scales], device=x.device, dtype=x.dtype)
    weights = weights / weights.sum()
    win = _gaussian_window(WIN_SIZE, WIN_SIGMA, x)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    terms = []
    for j in range(scales):
        ssim_val, cs = _ssim_cs(x, y, win, c1, c2)
        if j < scales - 1:
            terms.append(cs)
            pad = [s % 2 for s in x.shape[2:]]
            x = F.avg_pool2d(x, kernel_size=2, padding=pad)
            y = F.avg_pool2d(y, kernel_size=2, padding=pad)
    terms.append(ssim_val)
    stacked = torch.stack(terms, dim=0).clamp_min(1e-8)  # (M, B, C)
    value = torch.prod(stacked ** weights.view(-1, 1, 1), dim=0).mean(dim=1)  # (B,)
    return value.mean() if reduction == "mean" else value
