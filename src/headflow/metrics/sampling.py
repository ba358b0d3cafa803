"""Which frames the costly per-frame metrics (face descriptors, CPBD, landmarks) look at."""

from __future__ import annotations

import numpy as np


def frame_sample(n_frames: int, k: int = 8) -> np.ndarray:
    """`k` evenly spaced frame indices of a clip of `n_frames`, deterministic.

    Frame `i` of the sample is the middle frame of the i-th of `k` equal segments of the clip:
    `floor((i + 0.5) * n_frames / k)`. The first and last frames are avoided on purpose (fades,
    frames without a full audio window). Every clip of the same length gets the same frames, so
    two systems scored on one clip are compared on the same frames.

    Args:
        n_frames: frames in the clip (>= 0).
        k: how many frames to keep (>= 1).

    Returns:
        int64 array of shape (min(k, n_frames),), strictly increasing, values in [0, n_frames).
        All frames (`arange(n_frames)`) when the clip has `k` frames or fewer; empty for 0 frames.

    Raises:
        ValueError: `n_frames` < 0 or `k` < 1.
    """
    if n_frames < 0:
        raise ValueError(f"frame_sample: n_frames must be >= 0, got {n_frames}")
    if k < 1:
        raise ValueError(f"frame_sample: k must be >= 1, got {k}; pass the number of frames to keep")
    if n_frames <= k:
        return np.arange(n_frames, dtype=np.int64)
    return np.floor((np.arange(k) + 0.5) * n_frames / k).astype(np.int64)
