"""frame_sample: evenly spaced, deterministic frame indices."""

from __future__ import annotations

import numpy as np
import pytest

from headflow.metrics.sampling import frame_sample


def test_known_indices():
    # floor((i + 0.5) * 100 / 8) = floor(6.25, 18.75, 31.25, 43.75, 56.25, 68.75, 81.25, 93.75)
    assert frame_sample(100, 8).tolist() == [6, 18, 31, 43, 56, 68, 81, 93]


def test_short_clip_keeps_every_frame():
    assert frame_sample(5, 8).tolist() == [0, 1, 2, 3, 4]
    assert frame_sample(8, 8).tolist() == list(range(8))
    assert frame_sample(0, 8).size == 0


@pytest.mark.parametrize("n", [9, 10, 17, 64, 99, 1001])
@pytest.mark.parametrize("k", [1, 3, 8])
def test_strictly_increasing_in_range_and_repeatable(n, k):
    idx = frame_sample(n, k)
    assert idx.size == min(n, k)
    assert np.all(np.diff(idx) > 0) and idx[0] >= 0 and idx[-1] < n
    assert np.array_equal(idx, frame_sample(n, k))


def test_bad_arguments():
    with pytest.raises(ValueError, match="k must be >= 1"):
        frame_sample(10, 0)
    with pytest.raises(ValueError, match="n_frames"):
        frame_sample(-1, 8)
