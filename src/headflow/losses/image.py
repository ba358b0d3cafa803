"""Pixel-space reconstruction terms: masked L1, invalid pixels filled from the target, L1 on image gradients."""

from __future__ import annotations

import torch


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the masked pixels (the lip-sync coursework's masked L1, "normalised by sum M").

    L = sum_{b,c,h,w} m_{b,h,w} |pred - target| / (C * sum_{b,h,w} m_{b,h,w}): the mean per channel value
    over the pixels inside the mask, pooled over the batch (a sample with a larger mask weighs more). A
    soft mask in [0, 1] weights pixels. An all-zero mask gives 0.

    Args:
        pred, target: (B, C, H, W), same value range.
        mask: (B, 1, H, W) broadcast over channels, or (B, C, H, W) (then C * sum m is replaced by sum m
            over all channels), values in [0, 1].

    Returns:
        Scalar >= 0, in the units of |pred - target|.

    Raises:
        ValueError: pred and target differ in shape, or mask is neither (B, 1, H, W) nor (B, C, H, W).
    """
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(f"masked_l1: pred and target must be equal (B, C, H, W), got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    b, c, h, w = pred.shape
    if mask.shape not in ((b, 1, h, w), (b, c, h, w)):
        raise ValueError(f"masked_l1: mask must be (B, 1, H, W) or (B, C, H, W) = {(b, 1, h, w)} or "
                         f"{(b, c, h, w)}, got {tuple(mask.shape)}")
    mask = mask.to(pred.dtype)
    weight = mask.sum() * (c if mask.shape[1] == 1 else 1)
    return (mask * (pred - target).abs()).sum() / weight.clamp_min(1e-8)


def image_gradients(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences (dx (B, C, H, W-1), dy (B, C, H-1, W)): dx[..., x] = img[..., x+1] - img[..., x]."""
    return img[..., :, 1:] - img[..., :, :-1], img[..., 1:, :] - img[..., :-1, :]


def image_gradient_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between the horizontal and vertical forward differences of two images.

    L = mean|dx(pred) - dx(target)| + mean|dy(pred) - dy(target)| (each mean over its own elements), the
    gradient difference loss of Mathieu et al. 2016 (alpha = 1). Invariant to a constant
    offset between pred and target; 0 for identical images.

    Args:
        pred, target: (B, C, H, W), H, W >= 2, same value range.

    Returns:
        Scalar >= 0.

    Raises:
        ValueError: shapes differ or H, W < 2.
    """
    if pred.shape != target.shape or pred.dim() != 4 or min(pred.shape[-2:]) < 2:
        raise ValueError(f"image_gradient_l1: pred and target must be equal (B, C, H, W) with H, W >= 2, got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")
    pdx, pdy = image_gradients(pred)
    tdx, tdy = image_gradients(target)
    return (pdx - tdx).abs().mean() + (pdy - tdy).abs().mean()


def fill_invalid(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """`pred` with its invalid pixels replaced by the target's: the prediction a perceptual loss compares.

    Used to leave pixels out of a perceptual term (e.g. the edge smear of a tight crop,
    `headflow.shards.geometry.resize_inside`). Replacing, rather than multiplying both images by the mask,
    keeps both inputs natural images (no black border the feature network never saw in training), and the
    replaced pixels are equal in both, so they add nothing to the distance and get no gradient; features
    whose receptive field straddles the border still compare the valid pixels. The distance stays a mean
    over every feature position (not renormalised to the valid area), so a frame with much smear weighs a
    little less. An all-True mask returns `pred`'s values (bit-identical losses and gradients).

    Args:
        pred, target: (N, C, H, W), same shape and range.
        valid: (N, 1, H, W) bool or {0, 1} float: True / 1 where the pixel counts.

    Returns:
        (N, C, H, W) where(valid, pred, target).

    Raises:
        ValueError: shapes that disagree.
    """
    if pred.shape != target.shape or pred.dim() != 4 or valid.shape != (pred.shape[0], 1, *pred.shape[2:]):
        raise ValueError(f"fill_invalid: pred and target must be equal (N, C, H, W) and valid (N, 1, H, W), got "
                         f"{tuple(pred.shape)}, {tuple(target.shape)}, {tuple(valid.shape)}")
    return torch.where(valid.bool(), pred, target)
