"""Geometry of the shard views: transforms between crops, landmarks in crop pixels, region boxes.

Conventions are `headflow.faces.crops`' (OpenCV's): a pixel's centre has integer coordinates and a
2x3 affine `M` maps a source-frame point (x, y) to crop pixels `M @ [x, y, 1]`. Every view of a shard
carries such a transform per frame, so a consumer can map points between the source frame and any
crop, or re-derive a crop of another size.
"""

from __future__ import annotations

import numpy as np

CROP_SIZE = 256
"""Side of the `crop256` view (the FFHQ-style aligned crop the generators read)."""
FACE_SIZE = 96
"""Side of the `face96` view (Wav2Lip's face crop; the expert sees rows 48-95)."""

REGION_POINTS: dict[str, tuple[int, ...]] = {
    "mouth": tuple(range(48, 68)),                              # outer + inner lips
    "eyes": (*range(17, 27), *range(36, 48)),                   # brows + eyes
}
"""The 68-point (iBUG) landmarks whose mean centres each region box."""


def resize_transform(M: np.ndarray, from_size: int, to_size: int) -> np.ndarray:
    """The transform onto a `to_size` crop showing what `M` shows on a `from_size` crop.

    With pixel centres at integers, crop pixel x of the first maps to (x + 0.5) * k - 0.5 in the
    second, k = to_size / from_size (the same rule as `cv2.resize`).

    Args:
        M: (..., 2, 3) source -> `from_size` crop.
    Returns:
        (..., 2, 3) float64 source -> `to_size` crop.
    """
    M = np.array(M, dtype=np.float64)
    if from_size == to_size:
        return M
    k = to_size / from_size
    out = M * k
    out[..., :, 2] += 0.5 * k - 0.5
    return out


def translate(M: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Transforms (T, 2, 3) followed by a shift of the crop's origin to `offset` (T, 2) = (x0, y0):
    the transform onto a sub-window whose top-left pixel is crop pixel (x0, y0)."""
    out = np.array(M, dtype=np.float64)
    out[:, :, 2] -= np.asarray(offset, dtype=np.float64)
    return out


def map_landmarks(transforms: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Landmarks (T, 68, 2) in source pixels -> (T, 68, 2) float32 in crop pixels, per frame's transform.

    NaN (frames without landmarks) stays NaN.
    """
    M = np.asarray(transforms, dtype=np.float64)
    pts = np.asarray(landmarks, dtype=np.float64)
    out = np.einsum("tij,tkj->tki", M[:, :, :2], pts) + M[:, None, :, 2]
    return out.astype(np.float32)


def region_boxes(crop_landmarks: np.ndarray, valid: np.ndarray, points: tuple[int, ...], height: int,
                 width: int, crop_size: int = CROP_SIZE) -> np.ndarray:
    """Integer boxes (T, 4) int16 `x0, y0, x1, y1` (x1, y1 exclusive) of a fixed-size region per frame.

    The box of `height` x `width` crop pixels is centred on the mean of `points` of the frame's
    landmarks in crop pixels (`crop_landmarks`), rounded to whole pixels (so the region's pixels are
    exactly crop pixels, never resampled) and moved inside the crop where it would cross its edge.
    Frames where `valid` is False get the empty box (0, 0, 0, 0).

    Raises:
        ValueError: when the box is larger than the crop.
    """
    if height > crop_size or width > crop_size:
        raise ValueError(f"a {height}x{width} region does not fit the {crop_size}x{crop_size} crop")
    lm = np.asarray(crop_landmarks, dtype=np.float64)
    valid = np.asarray(valid, bool)
    boxes = np.zeros((len(lm), 4), np.int16)
    if not valid.any():
        return boxes
    centre = lm[valid][:, list(points)].mean(axis=1)            # (V, 2) crop pixels
    # the box's centre pixel lies at x0 + (width - 1) / 2
    x0 = np.clip(np.round(centre[:, 0] - (width - 1) / 2), 0, crop_size - width)
    y0 = np.clip(np.round(centre[:, 1] - (height - 1) / 2), 0, crop_size - height)
    boxes[valid] = np.stack([x0, y0, x0 + width, y0 + height], axis=1).astype(np.int16)
    return boxes


def cut_regions(crop: np.ndarray, boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """The region pixels (T, height, width, 3) uint8 of `crop` (T, S, S, 3) under `region_boxes`' boxes.

    Frames with an empty box are zeros.
    """
    out = np.zeros((len(crop), height, width, crop.shape[-1]), np.uint8)
    for t, (x0, y0, x1, y1) in enumerate(np.asarray(boxes, np.int64)):
        if x1 > x0:
            out[t] = crop[t, y0:y1, x0:x1]
    return out


INSIDE_THRESHOLD = 0.999
"""`resize_inside`: the least area fraction of a resized pixel that must come from inside the source frame."""


def resize_inside(inside: np.ndarray | None, size: int) -> np.ndarray | None:
    """crop256's validity mask (True: sampled inside the source frame) at a trainer's image size.

    Area interpolation of the 0/1 mask (OpenCV INTER_AREA, the rule the trainers resize the crops with, so
    each resized pixel's value is the fraction of it that came from inside the source), then a threshold
    of `INSIDE_THRESHOLD`: a resized pixel is valid only when essentially all of it was sampled inside, so
    no pixel that mixes in some edge smear is learnt. Upscaling (INTER_AREA then interpolates) keeps the
    same rule. Same size: a copy.

    Args:
        inside: (T, H, W) bool (`ImageView.mask` of crop256), square; or None (a shard written before the
            mask existed: every pixel is valid, and None is returned).
        size: the trainer's image side in pixels.

    Returns:
        (T, size, size) bool, or None when `inside` is None.

    Raises:
        ValueError: a mask that is not (T, S, S).
    """
    if inside is None:
        return None
    inside = np.asarray(inside)
    if inside.ndim != 3 or inside.shape[1] != inside.shape[2]:
        raise ValueError(f"resize_inside: expected crop256's (T, S, S) validity mask, got {inside.shape}")
    if inside.shape[1] == size:
        return inside.astype(bool, copy=True)
    import cv2

    if len(inside) == 0:
        return np.zeros((0, size, size), bool)
    frac = np.stack([cv2.resize(m.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) for m in inside])
    return frac >= INSIDE_THRESHOLD
