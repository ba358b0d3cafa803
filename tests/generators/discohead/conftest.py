"""Synthetic material for the DisCoHead family's tests: faces with 68 landmarks in a small aligned crop."""

from __future__ import annotations

import numpy as np


def face_landmarks(size: int, dx: float = 0.0, dy: float = 0.0, blink: float = 0.0) -> np.ndarray:
    """(68, 2) iBUG-ordered points of a frontal face in a size x size crop, shifted by (dx, dy) pixels;
    `blink` in [0, 1] closes the eyes (eyelid points move to the eye's centre line)."""
    u = size / 64.0
    pts = np.zeros((68, 2))
    t = np.linspace(-1, 1, 17)
    pts[:17] = np.c_[32 + 24 * t, 26 + 30 * np.sqrt(1 - t ** 2)]                     # jaw
    pts[17:22] = np.c_[np.linspace(16, 28, 5), np.full(5, 18.0)]                     # brows
    pts[22:27] = np.c_[np.linspace(36, 48, 5), np.full(5, 18.0)]
    pts[27:36] = np.c_[np.r_[np.full(4, 32.0), np.linspace(28, 36, 5)], np.r_[np.linspace(24, 36, 4), np.full(5, 38.0)]]
    a = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    for first, cx in ((36, 22.0), (42, 42.0)):                                      # eyes
        pts[first:first + 6] = np.c_[cx + 5 * np.cos(a), 24 + 2.5 * (1 - blink) * np.sin(a)]
    b = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    pts[48:60] = np.c_[32 + 9 * np.cos(b), 46 + 3 * np.sin(b)]
    c = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    pts[60:68] = np.c_[32 + 6 * np.cos(c), 46 + 1.5 * np.sin(c)]
    return (pts * u + np.array([dx, dy])).astype(np.float32)


def render(landmarks: np.ndarray, size: int) -> np.ndarray:
    """A flat-shaded face (size, size, 3) uint8 drawn from its landmarks."""
    import cv2

    img = np.full((size, size, 3), (50, 80, 110), np.uint8)
    cv2.fillPoly(img, [np.round(landmarks[:17]).astype(np.int32)], (180, 150, 130))
    for eye in (landmarks[36:42], landmarks[42:48]):
        cv2.fillPoly(img, [np.round(eye).astype(np.int32)], (250, 250, 250))
    cv2.fillPoly(img, [np.round(landmarks[48:60]).astype(np.int32)], (140, 50, 60))
    return img


def synthetic_clip(n_frames: int = 30, clip_id: str = "synthetic", seed: int = 0, size: int = 32):
    """A `DisCoHeadClip` whose head sways and eyes blink, with a random mel as long as 16 kHz audio of the clip."""
    from headflow.generators.discohead.data import DisCoHeadClip

    rng = np.random.default_rng(seed)
    f = np.arange(n_frames)
    lm = np.stack([face_landmarks(size, 2 * np.sin(0.3 * i), rng.normal(0, 0.3), float(i % 7 == 0)) for i in f])
    frames = np.stack([render(x, size) for x in lm])
    mel = rng.uniform(-4, 4, (int(80 * n_frames / 25) + 1, 80)).astype(np.float32)
    return DisCoHeadClip(clip_id, frames, lm, np.ones(n_frames, bool), mel)
