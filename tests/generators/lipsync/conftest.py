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


@pytest.fixture
def tiny_batch():
    """A batch as `LipsyncObjective` takes it: 2 windows of 5 frames, 2 references each."""
    torch.manual_seed(0)
    b, n = 2, 2
    opens = [[0, 3, 6, 9, 12], [12, 9, 6, 3, 0]]
    faces = np.stack([[render_face(template_landmarks(o)) for o in row] for row in opens])       # (2, 5, 96, 96, 3)
    hull = np.stack([[_hull(template_landmarks(o)) for o in row] for row in opens])
    refs = np.stack([[render_face(template_landmarks(o)) for o in (2, 10)] for _ in range(b)])
    mels = torch.randn(b, 5, 1, 80, 16)
    return {
        "faces": torch.from_numpy(faces).permute(0, 1, 4, 2, 3).float() / 255,
        "mels": mels,
        "references": torch.from_numpy(refs).permute(0, 1, 4, 2, 3).float() / 255,
        "ref_augment": torch.tensor([[False, True], [False, False]]),
        "hull": torch.from_numpy(hull).float()[:, :, None],
        "expert_mel": mels[:, 0],
        "mouth_reference": torch.from_numpy(faces[:, :, 48:].mean(1)).float(),
    }


def _hull(lm):
    from headflow.generators.lipsync.data import hull_mask

    return hull_mask(lm)
