"""A synthetic sync task: the mouth opens with the audio's loudness, so sync is learnable and checkable."""

from __future__ import annotations

import numpy as np

from headflow.sync.data import ClipArrays


def loudness(n: int, rng: np.random.Generator, rate: float) -> np.ndarray:
    """Smooth random loudness in [0, 1] sampled at `rate` Hz (syllable-like bursts ~4 Hz)."""
    knots = rng.uniform(0, 1, int(n / rate * 5) + 3) ** 2
    t = np.arange(n) / rate * 5
    return np.interp(t, np.arange(len(knots)), knots)


def synthetic_clip(clip_id: str, n_frames: int, seed: int, speaker: str | None = None) -> ClipArrays:
    """A clip whose mouth opening follows its mel loudness; `speaker` as in `ClipArrays` (None: the clip alone)."""
    rng = np.random.default_rng(seed)
    n_mel = int(n_frames * 80 / 25) + 16
    level = loudness(n_mel, rng, 80.0)
    profile = np.linspace(1.0, 0.3, 80)
    mel = (-4 + 7 * level[:, None] * profile[None] + 0.2 * rng.normal(size=(n_mel, 80))).astype(np.float32)
    mouths = np.full((n_frames, 48, 96, 3), 200, np.uint8)
    yy, xx = np.mgrid[0:48, 0:96]
    for f in range(n_frames):
        # The frame shows the loudness over its own 40 ms (mel frames 3.2 f .. 3.2 f + 3.2).
        m = int(f * 80 / 25)
        h = 2 + 20 * level[m:m + 4].mean()
        mouths[f][((xx - 48) / 30) ** 2 + ((yy - 20) / h) ** 2 <= 1] = 30
    return ClipArrays(clip_id, mouths, mel, speaker=speaker)
