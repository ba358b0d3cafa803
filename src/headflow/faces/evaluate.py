"""Landmark quality figures: error against ground truth, jitter on still segments, crop stability."""

from __future__ import annotations

import numpy as np

from headflow.landmarks68 import RIGID_JITTER, inter_ocular

# Jitter and head speed are measured on RIGID_JITTER: nose bridge and tip, nostrils, eye corners
# (points that move with the head only).


def landmark_error(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per frame: mean point-to-point distance / inter-ocular distance (outer corners) of the truth."""
    return np.linalg.norm(pred - truth, axis=-1).mean(axis=-1) / inter_ocular(truth)


def still_frames(reference: np.ndarray, valid: np.ndarray, max_speed: float = 0.01) -> np.ndarray:
    """(T,) mask of interior frames where the head is still.

    Speed: displacement of the rigid points' centroid of `reference` (a smoothed track) over +-1
    frame, in inter-ocular distances per frame. Frames next to an invalid frame are excluded.
    """
    T = len(reference)
    out = np.zeros(T, bool)
    if T < 3:
        return out
    c = reference[:, RIGID_JITTER].mean(axis=1)
    iod = inter_ocular(reference)
    speed = np.full(T, np.inf)
    speed[1:-1] = np.linalg.norm(c[2:] - c[:-2], axis=-1) / 2 / iod[1:-1]
    ok = valid.copy()
    ok[1:-1] &= valid[:-2] & valid[2:]
    ok[[0, -1]] = False
    return ok & (speed < max_speed)


def jitter(landmarks: np.ndarray, frames: np.ndarray) -> float:
    """Median over `frames` (a (T,) mask of interior frames) of the rigid points' second difference
    |x[t+1] - 2 x[t] + x[t-1]|, in % of the inter-ocular distance. NaN when no frame qualifies."""
    idx = np.flatnonzero(frames)
    if not len(idx):
        return float("nan")
    rigid = landmarks[:, RIGID_JITTER]
    acc = rigid[idx + 1] - 2 * rigid[idx] + rigid[idx - 1]
    per_frame = np.linalg.norm(acc, axis=-1).mean(axis=-1) / inter_ocular(landmarks[idx])
    return float(np.median(per_frame) * 100)
