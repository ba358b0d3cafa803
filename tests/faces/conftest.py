"""Tiny face videos made in the test from a real portrait (shipped in an installed package)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest


@pytest.fixture(scope="session")
def portrait() -> np.ndarray:
    """A 192x192 RGB portrait with one frontal face (~90 px box)."""
    from headflow.demo.portraits import prepare_portrait

    return prepare_portrait("tom_hanks", size=192).image


def write_clip(path: Path, frames: list[np.ndarray]) -> Path:
    from headflow.media import encode_video

    encode_video(frames, path, fps=25, crf=12, preset="ultrafast", threads=1)
    return path


def moving(portrait: np.ndarray, n: int, canvas: tuple[int, int] = (192, 256), dx: float = 1.0) -> list[np.ndarray]:
    """The portrait sliding right by `dx` px per frame on a grey canvas (h, w)."""
    h, w = canvas
    out = []
    for t in range(n):
        M = np.float32([[1, 0, (w - portrait.shape[1]) / 2 - n * dx / 2 + t * dx], [0, 1, (h - portrait.shape[0]) / 2]])
        out.append(cv2.warpAffine(portrait, M, (w, h), borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128)))
    return out


@pytest.fixture(scope="session")
def clipkit():
    """The helpers above, for tests (test folders are not packages, so no relative imports)."""

    class Kit:
        write = staticmethod(write_clip)
        moving = staticmethod(moving)

    return Kit
