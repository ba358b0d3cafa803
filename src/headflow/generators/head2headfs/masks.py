"""Foreground masks without downloaded weights: GrabCut seeded once per clip, propagated by landmarks.

Head2HeadFS removes the background of every training frame with a face-parsing network (section 4,
zllrunning/face-parsing.PyTorch) and trains G to predict the foreground mask. That network needs
weights; this module's default needs none:

1. Seed frame: the valid frame whose head render (the NMFC coverage mask of the fitted 3DMM) is
   largest. GrabCut (Rother et al. 2004, OpenCV `cv2.grabCut`, initialised with a mask) runs once on it
   at `grabcut_size`: sure foreground = the head render eroded; probable foreground = the landmark box
   widened by a quarter and raised by `hair_extent` x its height (hair), plus a neck band below the chin
   down to the bottom edge; sure background = a border band at the top, left and right; probable
   background elsewhere.
2. Propagation: for every other valid frame, the seed mask is warped by the similarity transform that
   maps the seed frame's 68 landmarks onto the frame's (`cv2.estimateAffinePartial2D`, least squares),
   then united with the frame's own head render (so the face follows expressions exactly).
3. Frames without a fit get an all-zero mask (they are never trained on).

Cost: one GrabCut per clip (~20-60 ms at 128 px) and per frame one landmark fit and one warp
(well under 1 ms at 256 px). Quality is checked on hand-checkable synthetic cases in the tests (a
disk "head" on a uniform background) and reported against the head render (IoU) by bench/head2headfs.py.
"""

from __future__ import annotations

import cv2
import numpy as np

from headflow.generators.head2headfs.params import MaskParams


def _landmark_box(lm: np.ndarray) -> tuple[float, float, float, float]:
    x0, y0 = np.min(lm, axis=0)
    x1, y1 = np.max(lm, axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def grabcut_seed(image: np.ndarray, head: np.ndarray, landmarks: np.ndarray, params: MaskParams) -> np.ndarray:
    """GrabCut on one frame, seeded from its head render and landmarks.

    Args:
        image: (H, W, 3) uint8 RGB crop.
        head: (H, W) bool head render (NMFC coverage) of the same frame.
        landmarks: (68, 2) float crop pixels (finite).
        params: the mask settings.

    Returns:
        (H, W) bool foreground (head, hair, neck as GrabCut separates them from the background).

    Raises:
        ValueError: shapes that disagree, or an empty head render.
    """
    h, w = head.shape
    if image.shape[:2] != (h, w) or landmarks.shape != (68, 2):
        raise ValueError(f"grabcut_seed: image {image.shape}, head {head.shape} and landmarks {landmarks.shape} "
                         "must be (H, W, 3), (H, W) and (68, 2)")
    if not head.any():
        raise ValueError("grabcut_seed: the head render is empty on the seed frame; pick a frame with a fit")
    s = params.grabcut_size / max(h, w)
    size = (max(8, round(w * s)), max(8, round(h * s)))
    img = cv2.resize(np.ascontiguousarray(image[..., ::-1]), size, interpolation=cv2.INTER_AREA)
    hd = cv2.resize(head.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    lm = landmarks * s
    mask = np.full(hd.shape, cv2.GC_PR_BGD, np.uint8)
    x0, y0, x1, y1 = _landmark_box(lm)
    bw, bh = x1 - x0, y1 - y0
    px0, px1 = int(max(0, x0 - 0.25 * bw)), int(min(size[0], x1 + 0.25 * bw + 1))
    py0, py1 = int(max(0, y0 - params.hair_extent * bh)), int(min(size[1], y1 + 1))
    mask[py0:py1, px0:px1] = cv2.GC_PR_FGD
    nx0, nx1 = int(max(0, x0 + 0.2 * bw)), int(min(size[0], x1 - 0.2 * bw + 1))
    mask[int(y1):, nx0:nx1] = cv2.GC_PR_FGD          # the neck below the chin
    band = max(1, size[0] // 32)
    mask[:band, :] = cv2.GC_BGD
    mask[:, :band] = cv2.GC_BGD
    mask[:, -band:] = cv2.GC_BGD
    sure = cv2.erode(hd.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    mask[sure if sure.any() else hd] = cv2.GC_FGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)   # GrabCut's GMM initialisation (k-means) draws from OpenCV's RNG: same input, same mask
    cv2.grabCut(img, mask, None, bgd, fgd, params.grabcut_iterations, cv2.GC_INIT_WITH_MASK)
    fg = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    return cv2.resize(fg, (w, h), interpolation=cv2.INTER_NEAREST).astype(bool) | head


def clip_masks(frames: np.ndarray, head: np.ndarray, landmarks: np.ndarray, valid: np.ndarray,
               params: MaskParams) -> np.ndarray:
    """Foreground masks of a whole clip: one seeded GrabCut, propagated (module docstring).

    Args:
        frames: (T, H, W, 3) uint8 crops.
        head: (T, H, W) bool head renders (NMFC coverage).
        landmarks: (T, 68, 2) float crop pixels (NaN where not valid).
        valid: (T,) bool frames with a fit and landmarks.
        params: the mask settings ("nmfc" backend: the head render alone).

    Returns:
        (T, H, W) bool; False everywhere on frames that are not valid.

    Raises:
        ValueError: arrays whose frame counts or sizes disagree (name both), or no valid frame.
    """
    T = len(frames)
    if not (len(head) == len(landmarks) == len(valid) == T) or head.shape[1:] != frames.shape[1:3]:
        raise ValueError(f"clip_masks: frames {frames.shape}, head {head.shape}, landmarks {landmarks.shape}, "
                         f"valid {valid.shape} must agree on T and (H, W)")
    ok = np.asarray(valid, bool) & np.isfinite(landmarks).all(axis=(1, 2)) & head.reshape(T, -1).any(1)
    out = np.zeros(head.shape, bool)
    if not ok.any():
        raise ValueError("clip_masks: no frame has both a head render and finite landmarks")
    if params.backend == "nmfc":
        out[ok] = head[ok]
        return out
    seed = int(np.flatnonzero(ok)[np.argmax(head[ok].reshape(int(ok.sum()), -1).sum(1))])
    seed_mask = grabcut_seed(frames[seed], head[seed], landmarks[seed], params).astype(np.uint8)
    h, w = head.shape[1:]
    for t in np.flatnonzero(ok):
        if t == seed:
            out[t] = seed_mask.astype(bool)
            continue
        M, _ = cv2.estimateAffinePartial2D(landmarks[seed].astype(np.float32), landmarks[t].astype(np.float32),
                                           method=cv2.LMEDS)
        warped = (cv2.warpAffine(seed_mask, M, (w, h), flags=cv2.INTER_NEAREST).astype(bool) if M is not None
                  else seed_mask.astype(bool))
        out[t] = warped | head[t]
    return out


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """|a & b| / |a | b| of two bool masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)
