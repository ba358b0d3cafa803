"""Synthetic material for the stylemap family's tests: clips of a drawn face that turns and rolls."""

from __future__ import annotations

import cv2
import numpy as np

from headflow.generators.stylemap.data import StylemapClip


def face_frame(size: int, yaw: float = 0.0, roll: float = 0.0, seed: int = 0) -> np.ndarray:
    """(size, size, 3) uint8: an ellipse face with eyes and mouth; yaw shifts the features, roll rotates them."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size, 3), rng.integers(20, 60, 3), np.uint8)
    c = size / 2
    cv2.ellipse(img, (int(c), int(c)), (int(size * 0.3), int(size * 0.4)), 0, 0, 360, (200, 160, 140), -1)
    dx = yaw / 90 * size * 0.15
    for ex in (-0.12, 0.12):
        cv2.circle(img, (int(c + dx + ex * size), int(c - 0.1 * size)), max(1, size // 20), (30, 30, 30), -1)
    cv2.ellipse(img, (int(c + dx), int(c + 0.18 * size)), (max(1, size // 8), max(1, size // 24)), 0, 0, 360,
                (120, 40, 40), -1)
    m = cv2.getRotationMatrix2D((c, c), roll, 1.0)
    return cv2.warpAffine(img, m, (size, size), borderMode=cv2.BORDER_REFLECT)


def synthetic_clip(n: int, clip_id: str, size: int = 32, seed: int = 0,
                   valid: np.ndarray | None = None) -> StylemapClip:
    """n frames of `face_frame` with yaw/roll on a slow sine; angles = the drawn pose (pitch 0)."""
    t = np.arange(n)
    yaw = 20 * np.sin(t / 5 + seed)
    roll = 10 * np.sin(t / 7 + seed)
    frames = np.stack([face_frame(size, yaw[i], roll[i], seed) for i in range(n)])
    angles = np.stack([yaw, np.zeros(n), roll], 1).astype(np.float32)
    return StylemapClip(clip_id, frames, angles, np.ones(n, bool) if valid is None else valid, f"spk_{clip_id}")
