"""Smoothing removes jitter and does not lag real motion."""

from __future__ import annotations

import numpy as np
import pytest

from headflow.faces.params import SmoothParams
from headflow.faces.smooth import smooth_landmarks, smooth_series, valid_runs

METHODS = [SmoothParams(method="savgol"), SmoothParams(method="one_euro")]


def track(positions: np.ndarray, noise: float, seed: int = 0) -> np.ndarray:
    """(T,) x positions -> (T, 68, 2) landmarks, the same motion for every point, plus noise."""
    rng = np.random.default_rng(seed)
    base = np.stack([positions, np.zeros_like(positions)], axis=-1)[:, None, :] + np.zeros((1, 68, 2))
    return base + rng.normal(0, noise, base.shape)


@pytest.mark.parametrize("params", METHODS, ids=lambda p: p.method)
def test_removes_jitter_on_a_still_face(params):
    lm = track(np.full(200, 50.0), noise=1.0)
    out = smooth_landmarks(lm, np.ones(200, bool), params)
    interior = slice(10, -10)
    # Savitzky-Golay (9, 2) keeps ~26% of white-noise variance on the central point (sum of squared
    # weights 0.255), i.e. std x0.50; forward-backward One-Euro is comparable on a still face.
    ratio = out[interior, :48].std(axis=0).mean() / lm[interior, :48].std(axis=0).mean()
    assert ratio < 0.6, ratio


@pytest.mark.parametrize("params", METHODS, ids=lambda p: p.method)
def test_no_lag_on_a_ramp(params):
    x = np.linspace(0, 120, 100)   # 1.2 px/frame, a brisk head turn
    out = smooth_series(x[:, None], params, fps=25.0)[:, 0]
    err = np.abs(out - x)[5:-5]
    # Savitzky-Golay is exact on polynomials up to its order; forward-backward One-Euro cancels lag.
    assert err.max() < (1e-6 if params.method == "savgol" else 0.3), err.max()


@pytest.mark.parametrize("params", METHODS, ids=lambda p: p.method)
def test_step_is_followed_within_two_frames(params):
    x = np.r_[np.zeros(30), np.full(30, 20.0)]    # a sudden 20 px jump at frame 30
    out = smooth_series(x[:, None], params, fps=25.0)[:, 0]
    assert abs(out[33] - 20) < 2 and abs(out[26]) < 2
    assert abs(out[-1] - 20) < 0.1 and abs(out[0]) < 0.1


def test_invalid_frames_are_left_alone_and_split_runs():
    valid = np.array([True] * 10 + [False] * 3 + [True] * 10)
    assert valid_runs(valid) == [(0, 10), (13, 23)]
    lm = track(np.r_[np.zeros(10), np.full(3, np.nan), np.full(10, 100.0)], noise=0.5)
    out = smooth_landmarks(np.nan_to_num(lm), valid, SmoothParams())
    assert np.array_equal(out[10:13], np.nan_to_num(lm[10:13]).astype(np.float32))   # untouched (the caller blanks them)
    assert np.abs(out[:10, :, 0]).max() < 2 and np.abs(out[13:, :, 0] - 100).max() < 2   # no bleeding across the gap


def test_method_none_is_identity():
    lm = track(np.linspace(0, 10, 20), noise=1.0).astype(np.float32)
    assert np.array_equal(smooth_landmarks(lm, np.ones(20, bool), SmoothParams(method="none")), lm)


@pytest.mark.parametrize("n,window,order", [(50, 9, 2), (9, 9, 2), (12, 5, 3), (7, 9, 2)])
def test_numpy_savgol_matches_scipy(n, window, order):
    from scipy.signal import savgol_filter

    from headflow.faces.smooth import savgol

    x = np.random.default_rng(n).normal(size=(n, 6))
    w = min(window, n if n % 2 else n - 1)
    assert np.allclose(savgol(x, window, order), savgol_filter(x, w, order, axis=0, mode="interp"), atol=1e-10)
