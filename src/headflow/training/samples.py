"""Sample grids: a batch of images as one PNG per epoch, for image-generating families."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch


def image_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile a batch of images into one uint8 image.

    Args:
        images: Float[Tensor, "n c h w"] in [0, 1] (values outside are clipped); c = 1 or 3.
        nrow: images per row (default: ceil(sqrt(n))).
        pad: white pixels between tiles and around the grid.

    Returns:
        uint8 array (H, W, 3): rows of `nrow` tiles, in batch order, left to right.

    Raises:
        ValueError: if `images` is not (n, 1 or 3, h, w) with n >= 1.
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3) or images.shape[0] == 0:
        raise ValueError(f"sample images must be (n, 1 or 3, h, w) with n >= 1, got {tuple(images.shape)}")
    x = images.detach().float().clamp(0, 1).cpu()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    n, _, h, w = x.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    grid = np.full((pad + rows * (h + pad), pad + nrow * (w + pad), 3), 255, np.uint8)
    tiles = (x.permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, nrow)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = tile
    return grid


def save_grid(images: torch.Tensor, path: Path, nrow: int | None = None):
    """Write `image_grid(images)` as a PNG (PIL), atomically; returns the PIL image."""
    import os

    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(image_grid(images, nrow))
    tmp = path.with_name(f".{path.stem}.tmp.png")
    image.save(tmp)
    os.replace(tmp, path)
    return image
