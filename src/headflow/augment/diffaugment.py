"""DiffAugment: differentiable augmentation of real and fake images for data-efficient GAN training.

Zhao, Liu, Lin, Zhu & Han 2020, "Differentiable Augmentation for Data-Efficient GAN Training", section 3
and the authors' `DiffAugment_pytorch.py`. The same kind of transform is applied to every image shown to D
(real and generated, in both the D and the G step), and it is differentiable so G's gradient passes it.
Per sample:

* color: brightness x + (u - 0.5); saturation (x - mean_c x) * 2u + mean_c x; contrast
  (x - mean_chw x) * (u + 0.5) + mean_chw x; u ~ U[0, 1) each (in this order).
* translation: integer shift of up to round(1/8 of the side) pixels in each axis, uniform over
  [-s, s], zero fill (content moves right/down by positive shifts).
* cutout: a zeroed rectangle of round(1/2 of the side), centred anywhere in the image (clipped at the
  borders), as the reference `rand_cutout`.

Randomness comes from an optional `torch.Generator`, so a seed reproduces the augmentation; the
parameters can be sampled once and applied to several tensors (a frame and its mask, or real and fake).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

OPS = ("color", "translation", "cutout")


@dataclass(frozen=True)
class DiffAugmentParams:
    """Sampled parameters of one DiffAugment call, for a batch of B images of H x W."""

    policy: tuple[str, ...]
    """The ops, in application order ("color", "translation", "cutout")."""
    height: int
    width: int
    brightness: torch.Tensor | None = None
    """(B,) additive offset in [-0.5, 0.5)."""
    saturation: torch.Tensor | None = None
    """(B,) factor in [0, 2)."""
    contrast: torch.Tensor | None = None
    """(B,) factor in [0.5, 1.5)."""
    shift: torch.Tensor | None = None
    """(B, 2) int64 (dx, dy) pixels the content moves (right, down)."""
    cutout_centre: torch.Tensor | None = None
    """(B, 2) int64 (cx, cy) centre of the cut-out rectangle."""
    cutout_size: tuple[int, int] = (0, 0)
    """(h, w) of the cut-out rectangle."""


def parse_policy(policy: str) -> tuple[str, ...]:
    """"color,translation,cutout" -> ("color", "translation", "cutout"); "" -> (). Raises ValueError on unknown ops."""
    ops = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [p for p in ops if p not in OPS]
    if unknown:
        raise ValueError(f"DiffAugment policy {policy!r}: unknown ops {unknown}; known: {list(OPS)}")
    return ops


def sample_params(batch: int, height: int, width: int, policy: str = "color,translation,cutout",
                  generator: torch.Generator | None = None, translation_ratio: float = 0.125,
                  cutout_ratio: float = 0.5) -> DiffAugmentParams:
    """Draw DiffAugment parameters (on the generator's device, CPU by default).

    Args:
        batch, height, width: B, H, W of the images they will be applied to.
        policy: comma-separated ops from "color", "translation", "cutout".
        generator: source of randomness (None: torch's global generator).
        translation_ratio: maximal shift as a fraction of each side (paper: 1/8).
        cutout_ratio: cut-out side as a fraction of each side (paper: 1/2).
    """
    ops = parse_policy(policy)
    dev = generator.device if generator is not None else torch.device("cpu")

    def uniform() -> torch.Tensor:
        return torch.rand(batch, generator=generator, device=dev)

    def randint(low: int, high: int) -> torch.Tensor:  # [low, high)
        return torch.randint(low, high, (batch,), generator=generator, device=dev)

    kw: dict = {}
    for op in ops:
        if op == "color":
            kw["brightness"] = uniform() - 0.5
            kw["saturation"] = uniform() * 2.0
            kw["contrast"] = uniform() + 0.5
        elif op == "translation":
            sy, sx = int(height * translation_ratio + 0.5), int(width * translation_ratio + 0.5)
            dy = randint(-sy, sy + 1)
            dx = randint(-sx, sx + 1)
            kw["shift"] = torch.stack([dx, dy], dim=1)
        else:
            ch, cw = int(height * cutout_ratio + 0.5), int(width * cutout_ratio + 0.5)
            cy = randint(0, height + (1 - ch % 2))
            cx = randint(0, width + (1 - cw % 2))
            kw["cutout_centre"] = torch.stack([cx, cy], dim=1)
            kw["cutout_size"] = (ch, cw)
    return DiffAugmentParams(policy=ops, height=height, width=width, **kw)


def _translate(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    dx, dy = shift[:, 0].view(b, 1), shift[:, 1].view(b, 1)
    rows = torch.arange(h, device=x.device).view(1, h) - dy  # output row i reads input row i - dy
    cols = torch.arange(w, device=x.device).view(1, w) - dx
    row_ok = ((rows >= 0) & (rows < h)).to(x.dtype).view(b, 1, h, 1)
    col_ok = ((cols >= 0) & (cols < w)).to(x.dtype).view(b, 1, 1, w)
    x = x.gather(2, rows.clamp(0, h - 1).view(b, 1, h, 1).expand(b, c, h, w))
    x = x.gather(3, cols.clamp(0, w - 1).view(b, 1, 1, w).expand(b, c, h, w))
    return x * row_ok * col_ok


def _cutout(x: torch.Tensor, centre: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    b, _, h, w = x.shape
    ch, cw = size
    top = (centre[:, 1] - ch // 2).view(b, 1)
    left = (centre[:, 0] - cw // 2).view(b, 1)
    rows = torch.arange(h, device=x.device).view(1, h)
    cols = torch.arange(w, device=x.device).view(1, w)
    in_rows = ((rows >= top) & (rows < top + ch)).view(b, 1, h, 1)
    in_cols = ((cols >= left) & (cols < left + cw)).view(b, 1, 1, w)
    return x * (~(in_rows & in_cols)).to(x.dtype)


def apply_params(x: torch.Tensor, params: DiffAugmentParams, color: bool = True) -> torch.Tensor:
    """Apply sampled DiffAugment parameters to a batch.

    Args:
        x: (B, C, H, W) with B, H, W as sampled; colour ops expect intensities (any range; the reference
            uses [-1, 1]).
        params: from `sample_params`.
        color: apply the colour ops (False for masks, label maps, keypoint heatmaps: geometry only).

    Returns:
        (B, C, H, W), differentiable with respect to x.

    Raises:
        ValueError: x's B, H or W differ from the sampled ones.
    """
    b = next((t.shape[0] for t in (params.brightness, params.shift, params.cutout_centre) if t is not None), None)
    if x.dim() != 4 or x.shape[-2:] != (params.height, params.width) or (b is not None and x.shape[0] != b):
        raise ValueError(f"DiffAugment: x must be (B={b}, C, {params.height}, {params.width}) as sampled, "
                         f"got {tuple(x.shape)}")
    for op in params.policy:
        if op == "color" and color:
            x = x + params.brightness.to(x).view(-1, 1, 1, 1)
            mean = x.mean(dim=1, keepdim=True)
            x = (x - mean) * params.saturation.to(x).view(-1, 1, 1, 1) + mean
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * params.contrast.to(x).view(-1, 1, 1, 1) + mean
        elif op == "translation":
            x = _translate(x, params.shift.to(x.device))
        elif op == "cutout":
            x = _cutout(x, params.cutout_centre.to(x.device), params.cutout_size)
    return x


def diff_augment(x: torch.Tensor, policy: str = "color,translation,cutout",
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """DiffAugment one batch (x (B, C, H, W)) with freshly sampled parameters; see `apply_params`."""
    return apply_params(x, sample_params(x.shape[0], x.shape[-2], x.shape[-1], policy, generator))


def diff_augment_shared(tensors: Sequence[torch.Tensor], policy: str = "color,translation,cutout",
                        generator: torch.Generator | None = None,
                        color: Sequence[bool] | None = None) -> list[torch.Tensor]:
    """Augment several batches with the SAME parameters (e.g. a frame and its mask, or real and fake).

    Args:
        tensors: each (B, C_i, H, W) with common B, H, W.
        policy, generator: as `diff_augment`.
        color: per tensor, whether the colour ops apply (default: all True; pass False for masks).

    Returns:
        The augmented tensors, in order.

    Raises:
        ValueError: no tensors, differing B/H/W, or a `color` list of another length.
    """
    if not tensors:
        raise ValueError("diff_augment_shared: give at least one tensor")
    b, h, w = tensors[0].shape[0], tensors[0].shape[-2], tensors[0].shape[-1]
    if any(t.dim() != 4 or t.shape[0] != b or t.shape[-2:] != (h, w) for t in tensors):
        raise ValueError(f"diff_augment_shared: every tensor must be (B, C_i, H, W) with the same B, H, W; got "
                         f"{[tuple(t.shape) for t in tensors]}")
    color = [True] * len(tensors) if color is None else list(color)
    if len(color) != len(tensors):
        raise ValueError(f"diff_augment_shared: color has {len(color)} entries for {len(tensors)} tensors")
    params = sample_params(b, h, w, policy, generator)
    return [apply_params(t, params, c) for t, c in zip(tensors, color)]
