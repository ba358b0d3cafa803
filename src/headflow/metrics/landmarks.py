"""Landmark distances between generated and ground-truth faces: F-LMD, M-LMD and FOMM's AKD.

Landmarks are 68 points in iBUG/Multi-PIE (dlib) order, `(T, 68, 2)` (x, y) in pixels of the crop
both videos were scored in (the 256x256 generator crop in this project), with a per-frame `valid`
mask as the faces stage writes it. Mouth = points 48-67 (20 points: outer lip 48-59, inner lip 60-67).

Normalisation. None: distances are in pixels of the crop the landmarks are given in, so always
score both videos in the same crop size. StyleTalk (papers/styletalk.txt, Table 1: M-LMD 2.4-4.2,
F-LMD 1.9-2.7, GT 0, on 256x256 MEAD/HDTF) defines LMD by citing Chen et al. 2019 (ATVGnet) and
publishes no evaluation script; its magnitudes are those of pixel distances on 256-pixel crops.
The public LMD scripts we read do not normalise by face size either: ViCo's
`evaluations/compute_lmd.py` and ATVGnet's `evaluation_matrix.py`. We did not find MakeItTalk's
evaluation code (its repository ships none), so its normalisation is not reproduced here.
`normalize="interocular"` divides each frame by the ground truth's outer-eye-corner distance
(points 36-45) when crops of different sizes must be compared; say so next to any number.

Public scripts that compute something else under the same name (do not compare numbers across):
- ViCo `compute_lmd.py`: mouth only, mean of |dx| and |dy| (per-coordinate absolute error, not the
  Euclidean distance): between 1/2 and 1/sqrt(2) of M-LMD for the same points.
- ATVGnet `evaluation_matrix.py`: mouth points re-centred on their mean before comparing (head
  translation removed; `m_lmd(center_mouth=True)`) and the 20 distances summed, not averaged (20x).
- Summing the 20 mouth distances and dividing by 68 under-reports M-LMD by 68/20 = 3.4x; M-LMD here
  is a mean over the 20 mouth points (a test guards this).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

MOUTH = slice(48, 68)
"""The 20 mouth points of the 68-point iBUG layout (outer lip 48-59, inner lip 60-67)."""
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 36, 45


def _points(pred: np.ndarray, gt: np.ndarray, fn: str, n_points: int | None = 68) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if p.ndim == 2:
        p = p[None]
    if g.ndim == 2:
        g = g[None]
    if p.shape != g.shape or p.ndim != 3 or p.shape[-1] != 2:
        raise ValueError(f"{fn}: pred and gt must both be (T, K, 2) or (K, 2) landmarks of the same shape, "
                         f"got {np.shape(pred)} and {np.shape(gt)}")
    if n_points is not None and p.shape[1] != n_points:
        raise ValueError(f"{fn}: expected {n_points} landmarks per frame (iBUG 68-point order), got {p.shape[1]}")
    return p, g


def _frame_mask(p: np.ndarray, g: np.ndarray, valid: np.ndarray | None, fn: str) -> np.ndarray:
    """Frames that count: `valid` (default all) and every coordinate finite in both."""
    t = p.shape[0]
    if valid is None:
        keep = np.ones(t, dtype=bool)
    else:
        keep = np.asarray(valid, dtype=bool)
        if keep.shape != (t,):
            raise ValueError(f"{fn}: valid must be a (T,) = ({t},) bool mask, got shape {keep.shape}")
    finite = np.isfinite(p).all(axis=(1, 2)) & np.isfinite(g).all(axis=(1, 2))
    return keep & finite


def lmd_per_frame(pred: np.ndarray, gt: np.ndarray, points: slice | np.ndarray = slice(None),
                  normalize: Literal["none", "interocular"] = "none", center: bool = False) -> np.ndarray:
    """Mean Euclidean distance over the selected points, per frame.

    Args:
        pred, gt: (T, 68, 2) or (68, 2) landmarks in crop pixels.
        points: which points (slice or index array) of the 68; all by default.
        normalize: "none" (pixels) or "interocular" (divided by gt's |p36 - p45| in that frame).
        center: subtract each frame's centroid of the selected points from pred and gt first
            (removes translation; ATVGnet's mouth alignment).

    Returns:
        (T,) float64, NaN where a coordinate is not finite.
    """
    p, g = _points(pred, gt, "lmd_per_frame")
    ps, gs = p[:, points], g[:, points]
    if ps.shape[1] == 0:
        raise ValueError("lmd_per_frame: `points` selects no landmark")
    if center:
        ps = ps - ps.mean(axis=1, keepdims=True)
        gs = gs - gs.mean(axis=1, keepdims=True)
    d = np.linalg.norm(ps - gs, axis=-1).mean(axis=1)
    if normalize == "interocular":
        iod = np.linalg.norm(g[:, RIGHT_EYE_OUTER] - g[:, LEFT_EYE_OUTER], axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(iod > 0, d / iod, np.nan)
    elif normalize != "none":
        raise ValueError(f"lmd_per_frame: normalize must be 'none' or 'interocular', got {normalize!r}")
    return d


def _mean_valid(per_frame: np.ndarray, keep: np.ndarray) -> float:
    keep = keep & np.isfinite(per_frame)
    if not keep.any():
        # No frame has landmarks in both videos: there is nothing to compare, and 0 would read as perfect.
        return float("nan")
    return float(per_frame[keep].mean())


def f_lmd(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None,
          normalize: Literal["none", "interocular"] = "none") -> float:
    """F-LMD: mean Euclidean distance over all 68 landmarks, averaged over valid frames.

    `F-LMD = mean_t mean_{k<68} ||pred[t, k] - gt[t, k]||_2` (StyleTalk's "Landmark Distance on
    the whole face", papers/styletalk.txt, Sec. "Quantitative Evaluation"; see the module docstring for
    the normalisation).

    Args:
        pred, gt: (T, 68, 2) or (68, 2) landmarks, dlib order, in pixels of the same crop.
        valid: optional (T,) bool; frames marked False, or with a non-finite coordinate, are ignored.
        normalize: "none" (pixels, default) or "interocular".

    Returns:
        Pixels (or inter-ocular units), >= 0. NaN when no frame is valid in both videos (nothing was
        compared; a 0 would read as a perfect score).

    Raises:
        ValueError: shapes differ or are not 68-point landmarks.
    """
    p, g = _points(pred, gt, "f_lmd")
    keep = _frame_mask(p, g, valid, "f_lmd")
    return _mean_valid(lmd_per_frame(p, g, slice(None), normalize), keep)


def m_lmd(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None,
          normalize: Literal["none", "interocular"] = "none", center_mouth: bool = False) -> float:
    """M-LMD: mean Euclidean distance over the 20 mouth landmarks (48-67), averaged over valid frames.

    `M-LMD = mean_t (1/20) sum_{k=48}^{67} ||pred[t, k] - gt[t, k]||_2` (Chen et al. 2019's
    landmark distance around the mouth, as StyleTalk reports it). The divisor is 20, the number of
    mouth points.

    Args:
        pred, gt: (T, 68, 2) or (68, 2) landmarks, dlib order, in pixels of the same crop.
        valid: optional (T,) bool; frames marked False, or with a non-finite coordinate, are ignored.
        normalize: "none" (pixels, default) or "interocular".
        center_mouth: re-centre the 20 mouth points of each frame on their mean first (ATVGnet's
            variant, insensitive to head translation). Off by default.

    Returns:
        Pixels (or inter-ocular units), >= 0; NaN when no frame is valid in both videos.
    """
    p, g = _points(pred, gt, "m_lmd")
    keep = _frame_mask(p, g, valid, "m_lmd")
    return _mean_valid(lmd_per_frame(p, g, MOUTH, normalize, center=center_mouth), keep)


def akd(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Average keypoint distance (AKD) as First Order Motion Model's evaluation computes it.

    FOMM's `pose-evaluation` repository (`cmp_kp.py`, keypoints from `extract.py --type face_pose`,
    face-alignment's 68 points on 256x256 frames) takes, per frame, the mean over keypoints *and
    over the x and y coordinates* of the absolute difference, `mean_{k,c} |pred[t,k,c] - gt[t,k,c]|`,
    then the mean over frames with a detection. This is a per-coordinate L1 error, not the Euclidean
    distance its name suggests: a point off by (3, 4) px counts 3.5, not 5. DisCoHead reports AKD
    0.98-1.16 on GRID (papers/discohead.txt, Table 1).

    Args:
        pred, gt: (T, K, 2) or (K, 2) keypoints (any K, usually 68) in pixels of the same crop.
        valid: optional (T,) bool; frames marked False, or with a non-finite coordinate, are ignored
            (FOMM skips frames where the generated frame has no detection).

    Returns:
        Pixels, >= 0; NaN when no frame is valid in both videos.
    """
    p, g = _points(pred, gt, "akd", n_points=None)
    keep = _frame_mask(p, g, valid, "akd")
    per_frame = np.abs(p - g).mean(axis=(1, 2))
    return _mean_valid(per_frame, keep)
