"""Synthetic material for the lip-sync family's tests: 68-point landmarks and faces in a 96x96 crop."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def template_landmarks(opening: float = 0.0, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """A plausible (68, 2) iBUG layout in a 96x96 crop; `opening` (px) opens the mouth and drops the chin."""
    pts = np.zeros((68, 2))
    jaw_t = np.linspace(-1, 1, 17)
    pts[:17, 0] = 48 + 38 * jaw_t
    pts[:17, 1] = 40 + 50 * np.sqrt(1 - jaw_t ** 2) + opening * 0.5 * (1 - jaw_t ** 2)
    pts[17:27] = np.c_[np.linspace(20, 76, 10), np.full(10, 28)]           # brows
    pts[27:31] = np.c_[np.full(4, 48), np.linspace(36, 54, 4)]              # nose bridge, tip = 30 at y 54
    pts[31:36] = np.c_[np.linspace(42, 54, 5), np.full(5, 58)]              # nostrils
    pts[36:42] = np.c_[np.linspace(30, 40, 6), np.full(6, 36)]              # eyes
    pts[42:48] = np.c_[np.linspace(56, 66, 6), np.full(6, 36)]
    a = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    pts[48:60] = np.c_[48 + 13 * np.cos(a), 72 + (3 + opening / 2) * np.sin(a)]
    b = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    pts[60:68] = np.c_[48 + 8 * np.cos(b), 72 + (opening / 2) * np.sin(b)]
    return pts + np.asarray(shift)


@pytest.fixture
def three_shape_clip():
    """40 frames cycling through three mouth openings in blocks; frames 20-22 are the only wide-open ones.

    Returns (landmarks (40, 68, 2), valid (40,), shape id per frame (40,)).
    """
    shapes = np.array([0] * 10 + [1] * 10 + [2] * 3 + [0] * 8 + [1] * 9)
    openings = {0: 0.0, 1: 6.0, 2: 14.0}
    rng = np.random.default_rng(0)
    lm = np.stack([template_landmarks(openings[s]) + rng.normal(0, 0.05, (68, 2)) for s in shapes])
    return lm.astype(np.float32), np.ones(len(shapes), bool), shapes


def render_face(landmarks: np.ndarray, size: int = 96) -> np.ndarray:
    """A flat-shaded face (size, size, 3) uint8: skin disc, dark mouth polygon from the inner lips."""
    import cv2

    img = np.full((size, size, 3), (60, 90, 120), np.uint8)
    cv2.ellipse(img, (48, 52), (38, 44), 0, 0, 360, (170, 140, 120), -1)
    cv2.fillPoly(img, [np.round(landmarks[48:60]).astype(np.int32)], (150, 60, 70))
    cv2.fillPoly(img, [np.round(landmarks[60:68]).astype(np.int32)], (30, 10, 20))
    for eye in (landmarks[36:42], landmarks[42:48]):
        cv2.circle(img, tuple(int(v) for v in eye.mean(0)), 3, (20, 20, 20), -1)
    return img


def synthetic_clip(n_frames: int = 40, clip_id: str = "synthetic", seed: int = 0):
    """A `LipsyncClip` of rendered faces whose mouth opens and closes, with a random mel of the right length."""
    from headflow.generators.lipsync.data import LipsyncClip

    rng = np.random.default_rng(seed)
    opens = 6 + 6 * np.sin(np.arange(n_frames) * 0.7)
    lm = np.stack([template_landmarks(o, (rng.normal(0, 0.3), rng.normal(0, 0.3))) for o in opens]).astype(np.float32)
    faces = np.stack([render_face(x) for x in lm])
    n_mel = int(80 * n_frames / 25) + 16
    mel = rng.uniform(-4, 4, (n_mel, 80)).astype(np.float32)
    return LipsyncClip(clip_id, faces, lm, np.ones(n_frames, bool), mel)


@pytest.fixture
def tiny_batch():
    """A prepared batch as `LipsyncStep` takes it: 2 windows of 5 frames from a synthetic clip, tiny params'
    references (2 per window), through the real sampling, collation and preparation."""
    from torch.utils.data import default_collate

    from headflow.generators.lipsync.data import LipsyncWindows, index_clip, prepare_batch
    from headflow.generators.lipsync.params import tiny_params

    p = tiny_params()
    ds = LipsyncWindows([index_clip(synthetic_clip(), p.data)], p.data, samples_per_epoch=2, seed=0)
    return prepare_batch(default_collate([ds[0], ds[1]]), p.data, torch.Generator().manual_seed(0))
