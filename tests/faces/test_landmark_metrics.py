"""jitter and still_frames (the figures behind the smoothing gates) on landmark tracks with known motion."""

import numpy as np
import pytest

from headflow.faces.evaluate import RIGID, jitter, landmark_error, still_frames


def _track(x: np.ndarray) -> np.ndarray:
    """(T,) horizontal motion of the whole head -> (T, 68, 2), outer eye corners 36 / 45 50 px apart."""
    base = np.zeros((68, 2))
    base[:, 0] = np.linspace(0, 50, 68)
    base[36], base[45] = (0, 0), (50, 0)
    out = np.repeat(base[None], len(x), 0)
    out[:, :, 0] += x[:, None]
    return out


def test_jitter_of_constant_acceleration():
    # x = 0.25 t^2: second difference 0.5 px on every rigid point, IOD 50 px -> 1% of IOD on every frame.
    t = np.arange(20.0)
    lm = _track(0.25 * t ** 2)
    frames = np.zeros(20, bool)
    frames[1:-1] = True
    assert jitter(lm, frames) == pytest.approx(1.0)
    # Non-rigid points (the mouth, 48-67) do not count, however they move.
    assert not set(range(48, 68)) & set(RIGID.tolist())
    noisy = lm.copy()
    noisy[:, 48:] += np.random.default_rng(0).normal(0, 5, noisy[:, 48:].shape)
    assert jitter(noisy, frames) == pytest.approx(1.0)
    # The median over the chosen frames: a single 4 px kick (second difference 4, -8, 4 at t-1, t, t+1)
    # on a still track changes 3 of 18 frames, so the median stays 0; over those 3 frames it is 8%.
    still = _track(np.zeros(20))
    still[10, :, 0] += 4.0
    assert jitter(still, frames) == pytest.approx(0.0)
    kick = np.zeros(20, bool)
    kick[9:12] = True
    assert jitter(still, kick) == pytest.approx(8.0)
    assert np.isnan(jitter(still, np.zeros(20, bool)))


def test_still_frames_exclude_motion_edges_and_invalid_neighbours():
    # Still for 10 frames, then 2 px/frame (0.04 IOD/frame, above 0.01), then still again.
    x = np.r_[np.zeros(10), np.arange(1, 11) * 2.0, np.full(10, 20.0)]
    valid = np.ones(30, bool)
    valid[25] = False
    mask = still_frames(_track(x), valid)
    # Frames 9 and 19 have a moving neighbour (speed (2 - 0) / 2 / 50 = 0.02 IOD/frame), 10-18 move; 0
    # and 29 are edges; 24-26 are at or next to the invalid frame 25. Frame 20 (x 20 on both sides) is still.
    assert np.flatnonzero(mask).tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 20, 21, 22, 23, 27, 28]


def test_landmark_error_in_iod():
    truth = _track(np.zeros(3))
    pred = truth + np.array([3.0, 4.0])        # 5 px off everywhere, IOD 50 -> 0.1
    np.testing.assert_allclose(landmark_error(pred, truth), [0.1, 0.1, 0.1])
