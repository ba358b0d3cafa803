"""The reconstruction baseline of the Style Mapping issue: the source warped by one global transform from landmarks.

For each driving frame t, the least-squares 2D transform A_t that maps the source frame's 68 landmarks onto
frame t's (both in the 256x256 aligned crop, the shards' `crop256_landmarks`) warps the source crop
(`cv2.warpAffine`, bilinear, edge replication as the crop itself uses). It moves the head as a whole and
nothing inside it: the opponent a keypoint-warping generator must beat on AKD / PSNR to show that its local
motion is worth anything.

Two transform families (`Kind`):

* "similarity" (4 degrees of freedom: rotation, uniform scale, translation): the closed-form least-squares
  fit of Umeyama (1991), "Least-squares estimation of transformation parameters between two point
  patterns", eq. 40-42, without reflections. The default: a rigid head moving in the image plane is a
  similarity, and the extra two degrees of an affine are spent on the expression (an open mouth
  stretches the whole face vertically).
* "affine" (6 degrees of freedom): ordinary least squares `min_A sum_i |A [p_i; 1] - q_i|^2`
  (`numpy.linalg.lstsq`).

Why not `cv2.estimateAffinePartial2D` / `cv2.estimateAffine2D` (or kornia) for the fit: OpenCV's estimators are
robust ones (RANSAC or LMedS, then Levenberg-Marquardt on the inliers), so which landmarks count (the
speaking mouth's are the first to be called outliers) changes from frame to frame; the issue asks for the
least-squares transform of all 68 points, which the closed forms give exactly and deterministically
(`tests/generators/stylemap/test_stylemap_affine.py` checks they agree with OpenCV's on noise-free points).
kornia 0.9's `kornia.geometry.solvers.find_affine` is the same least-squares affine (the test checks it gives
our "affine" on noisy points) but has no similarity fit, and would bring torch into a per-frame numpy loop.
The warp itself is `cv2.warpAffine`.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

Kind = Literal["similarity", "affine"]
KINDS: tuple[str, ...] = ("similarity", "affine")


def _check_points(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(src, np.float64)
    q = np.asarray(dst, np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or p.shape != q.shape:
        raise ValueError(f"fit_transform: src and dst must be (N, 2) point sets of one N, got {np.shape(src)} and "
                         f"{np.shape(dst)}")
    if len(p) < 3:
        raise ValueError(f"fit_transform: at least 3 points are needed, got {len(p)}")
    if not (np.isfinite(p).all() and np.isfinite(q).all()):
        raise ValueError("fit_transform: src or dst has NaN / inf points (a frame without landmarks); "
                         "pass only frames whose landmarks are finite")
    return p, q


def fit_transform(src: np.ndarray, dst: np.ndarray, kind: Kind = "similarity") -> np.ndarray:
    """The least-squares 2D transform taking the points `src` onto `dst`.

    Args:
        src: (N, 2) points (x, y) in pixels, N >= 3 (e.g. the source frame's 68 landmarks).
        dst: (N, 2) the corresponding points (the driving frame's landmarks).
        kind: "similarity" (Umeyama 1991's closed form, no reflection) or "affine" (6-parameter least squares).

    Returns:
        (2, 3) float64 matrix A with dst_i ~ A @ [x_i, y_i, 1], the layout `cv2.warpAffine` takes.

    Raises:
        ValueError: shapes differ, fewer than 3 points, non-finite points, an unknown kind, or degenerate
            points (all equal, or collinear for "affine").
    """
    p, q = _check_points(src, dst)
    if kind == "similarity":
        mp, mq = p.mean(0), q.mean(0)
        pc, qc = p - mp, q - mq
        var_p = (pc ** 2).sum() / len(p)
        if var_p <= 1e-12:
            raise ValueError("fit_transform: all src points coincide; no similarity is defined")
        cov = qc.T @ pc / len(p)                          # Umeyama eq. 38: Sigma_xy (dst x src)
        u, d, vt = np.linalg.svd(cov)
        s = np.eye(2)
        if np.linalg.det(u) * np.linalg.det(vt) < 0:      # eq. 39: no reflection
            s[1, 1] = -1.0
        rot = u @ s @ vt                                  # eq. 40
        scale = float(np.trace(np.diag(d) @ s) / var_p)   # eq. 42
        t = mq - scale * rot @ mp                         # eq. 41
        return np.hstack([scale * rot, t[:, None]])
    if kind == "affine":
        x = np.hstack([p, np.ones((len(p), 1))])
        if np.linalg.matrix_rank(x) < 3:
            raise ValueError("fit_transform: src points are collinear; no affine transform is defined")
        sol, *_ = np.linalg.lstsq(x, q, rcond=None)       # (3, 2): q = x @ sol
        return sol.T
    raise ValueError(f"fit_transform: kind must be one of {KINDS}, got {kind!r}")


def warp_source(source: np.ndarray, source_landmarks: np.ndarray, driving_landmarks: np.ndarray,
                kind: Kind = "similarity") -> np.ndarray:
    """The source image warped onto each driving frame by the least-squares transform of their landmarks.

    Args:
        source: (H, W, 3) uint8 source frame (the 256x256 aligned crop).
        source_landmarks: (68, 2) its landmarks in its pixels.
        driving_landmarks: (N, 68, 2) each driving frame's landmarks, in the same pixel frame (all finite: hold
            the last valid frame for frames without a face, `generate.hold_invalid`).
        kind: as in `fit_transform`.

    Returns:
        (N, H, W, 3) uint8: frame t = `cv2.warpAffine(source, A_t)` with A_t = `fit_transform(source_landmarks,
        driving_landmarks[t], kind)` (bilinear, borders replicated).

    Raises:
        ValueError: as `fit_transform` (the message names the driving frame).
    """
    src = np.asarray(source)
    if src.ndim != 3 or src.dtype != np.uint8:
        raise ValueError(f"warp_source: source must be an (H, W, 3) uint8 image, got {src.dtype} {src.shape}")
    h, w = src.shape[:2]
    drv = np.asarray(driving_landmarks, np.float64)
    out = np.empty((len(drv), h, w, src.shape[2]), np.uint8)
    for t, q in enumerate(drv):
        try:
            m = fit_transform(source_landmarks, q, kind)
        except ValueError as err:
            raise ValueError(f"warp_source: driving frame {t}: {err}") from None
        out[t] = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out


__all__ = ["KINDS", "Kind", "fit_transform", "warp_source"]
