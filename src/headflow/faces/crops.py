"""Crop transforms: source frame -> aligned face crop, as 2x3 affine matrices.

Conventions (OpenCV's): a pixel's centre has integer coordinates; `M` maps a source point (x, y)
to crop coordinates `M @ [x, y, 1]`; `cv2.warpAffine(frame, M, (size, size))` renders the crop.
Storing M per frame lets any consumer re-derive its crop, and map crop points back with `invert`.

- `align_transform`: FFHQ-style similarity (eyes and mouth fix centre, scale and roll) for the
  256x256 generator crops.
- `crop_transform_for` / `mouth_crop`: Wav2Lip's convention, an axis-aligned face box padded at the
  bottom and resized to 96x96, of which the lower half (rows 48-95) is the mouth region. Train and
  inference code call these same two functions.
"""

from __future__ import annotations

import cv2
import numpy as np

from headflow.landmarks68 import MOUTH_CORNERS, eye_centres

Box = tuple[float, float, float, float]


def apply(M: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Map points (..., 2) through the 2x3 affine `M`."""
    pts = np.asarray(pts, dtype=np.float64)
    return pts @ M[:, :2].T + M[:, 2]


def invert(M: np.ndarray) -> np.ndarray:
    """The 2x3 inverse of an affine 2x3 (crop -> source)."""
    return cv2.invertAffineTransform(np.asarray(M, dtype=np.float64))


def align_transform(landmarks: np.ndarray, size: int = 256, scale: float = 1.0) -> np.ndarray:
    """FFHQ-style alignment of 68 landmarks (68, 2) -> 2x3 similarity onto a `size` x `size` crop.

    The face quad of Karras et al. (FFHQ): its axis follows the eye line corrected by the
    eye-to-mouth direction, its half side is max(2x eye distance, 1.8x eye-to-mouth distance),
    its centre 0.1 of the way from the eyes to the mouth. `scale` > 1 zooms in.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    eye_l, eye_r = eye_centres(lm)          # image left, image right (the subject's right, left)
    eye_avg, eye_to_eye = (eye_l + eye_r) / 2, eye_r - eye_l
    mouth_avg = lm[MOUTH_CORNERS].mean(0)
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    half = max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8) / scale
    centre = eye_avg + eye_to_mouth * 0.1
    k = size / (2 * half)
    A = k * np.array([[x[0], x[1]], [-x[1], x[0]]])
    t = np.array([(size - 1) / 2, (size - 1) / 2]) - A @ centre
    return np.hstack([A, t[:, None]])


def align_transforms(landmarks: np.ndarray, size: int = 256, scale: float = 1.0) -> np.ndarray:
    """`align_transform` per frame: (T, 68, 2) -> (T, 2, 3)."""
    return np.stack([align_transform(lm, size, scale) for lm in landmarks]) if len(landmarks) else np.zeros((0, 2, 3))


def warp(frame: np.ndarray, M: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Render the crop of `frame` under `M` (bilinear; the border repeats edge pixels)."""
    wh = (size, size) if isinstance(size, int) else size
    return cv2.warpAffine(frame, np.asarray(M, dtype=np.float64), wh, flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


# Wav2Lip: `face_detect` pads the S3FD box (pads = [top, bottom, left, right] = [0, 10, 0, 0] px by
# default), clips it to the frame and `cv2.resize`s it to 96x96; the expert and the generator see
# the lower half. We pad by fractions of the box height (10 px on LRS2's ~100 px boxes = 0.1) so the
# rule does not depend on resolution.
WAV2LIP_SIZE = 96
WAV2LIP_PADS = (0.0, 0.1, 0.0, 0.0)


def wav2lip_box(box: Box, frame_hw: tuple[int, int], pads: tuple[float, float, float, float] = WAV2LIP_PADS) -> Box:
    """Wav2Lip's padded face box (top, bottom, left, right pads as fractions of the box height), clipped."""
    h, w = frame_hw
    bh = box[3] - box[1]
    return (max(0.0, box[0] - pads[2] * bh), max(0.0, box[1] - pads[0] * bh),
            min(float(w), box[2] + pads[3] * bh), min(float(h), box[3] + pads[1] * bh))


def crop_transform_for(box: Box, frame_hw: tuple[int, int], size: int = WAV2LIP_SIZE,
                       pads: tuple[float, float, float, float] = WAV2LIP_PADS) -> np.ndarray:
    """2x3 transform of Wav2Lip's face crop: the padded box resized (per axis) to `size` x `size`.

    Matches `cv2.resize(frame[y1:y2, x1:x2], (size, size))` for integer boxes: dst = (src - x1 + 0.5) * size / w - 0.5.
    """
    x1, y1, x2, y2 = wav2lip_box(box, frame_hw, pads)
    sx, sy = size / (x2 - x1), size / (y2 - y1)
    return np.array([[sx, 0.0, (0.5 - x1) * sx - 0.5], [0.0, sy, (0.5 - y1) * sy - 0.5]])


def face_crop(frame: np.ndarray, transform: np.ndarray, size: int = WAV2LIP_SIZE) -> np.ndarray:
    """The whole `size` x `size` Wav2Lip face crop (the generator's input and target)."""
    return warp(frame, transform, size)


def mouth_crop(frame: np.ndarray, transform: np.ndarray, size: int = WAV2LIP_SIZE) -> np.ndarray:
    """The lower half (size/2 x size) of the Wav2Lip face crop: what the lip-sync expert sees."""
    return face_crop(frame, transform, size)[size // 2:]


def crop_motion(transforms: np.ndarray, size: int) -> np.ndarray:
    """Frame-to-frame change of a crop transform (T, 2, 3) -> (T-1,) in crop pixels.

    For each step, the crop's corners and centre at frame t are mapped to the source and back
    through frame t+1's transform; the mean displacement is how far the crop's content moved.
    """
    if len(transforms) < 2:
        return np.zeros(0)
    probe = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1], [(size - 1) / 2] * 2], float)
    out = []
    for a, b in zip(transforms[:-1], transforms[1:]):
        src = apply(invert(a), probe)
        out.append(float(np.linalg.norm(apply(b, src) - probe, axis=1).mean()))
    return np.asarray(out)


def inside_mask(transform: np.ndarray, size: int, frame_hw: tuple[int, int]) -> np.ndarray:
    """(size, size) bool: the crop pixels whose source position lies inside the frame.

    The rule of `outside_fraction` at every pixel: crop pixel (x, y) (OpenCV's integer pixel centres, as
    `warp` samples them) maps through the inverse transform to the source, and is inside when
    0 <= x_src <= W - 1 and 0 <= y_src <= H - 1; outside pixels are the edge smear `warp` fills in.

    Args:
        transform: (2, 3) source -> crop.
        size: crop side in pixels.
        frame_hw: source frame (height, width).
    """
    c = np.arange(size, dtype=np.float64)
    pts = np.stack(np.meshgrid(c, c), axis=-1).reshape(-1, 2)          # (size^2, 2) x, y
    src = apply(invert(np.asarray(transform, np.float64)), pts)
    h, w = frame_hw
    inside = (src[:, 0] >= 0) & (src[:, 0] <= w - 1) & (src[:, 1] >= 0) & (src[:, 1] <= h - 1)
    return inside.reshape(size, size)


def outside_fraction(transforms: np.ndarray, size: int, frame_hw: tuple[int, int], grid: int = 64) -> np.ndarray:
    """Per frame, the fraction of the `size` x `size` crop whose source pixels lie outside the frame.

    `warp` fills those pixels by repeating the frame's edge (BORDER_REPLICATE): on tight face crops
    (VoxCeleb's 224x224) the FFHQ framing reaches past the source, and that smear is not face. The
    crop is sampled at `grid` x `grid` pixel centres mapped to the source through the inverse
    transform; a sample counts as outside when it falls beyond the outermost pixel centres
    (x < 0 or x > W - 1, likewise y), where bilinear sampling starts to repeat the edge.

    Args:
        transforms: (T, 2, 3) source -> crop transforms (or one (2, 3)).
        size: crop side in pixels.
        frame_hw: source frame (height, width).
        grid: samples per side (64: the fraction to within ~1/64 at the crop's edge).

    Returns:
        (T,) float64 fractions in [0, 1] ((), a float array, for one transform).
    """
    M = np.asarray(transforms, dtype=np.float64)
    single = M.ndim == 2
    M = M[None] if single else M
    c = (np.arange(grid) + 0.5) * size / grid - 0.5                     # sample centres in crop pixels
    pts = np.stack(np.meshgrid(c, c), axis=-1).reshape(-1, 2)            # (grid^2, 2)
    h, w = frame_hw
    out = np.empty(len(M))
    for t, m in enumerate(M):
        src = apply(invert(m), pts)
        out[t] = np.mean((src[:, 0] < 0) | (src[:, 0] > w - 1) | (src[:, 1] < 0) | (src[:, 1] > h - 1))
    return out[0] if single else out
