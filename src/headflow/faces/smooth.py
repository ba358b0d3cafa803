"""Temporal smoothing of landmark tracks that removes jitter without lagging real motion.

Both filters are zero-phase (the stage runs offline, so it can look ahead):
- Savitzky-Golay fits a polynomial of order p in a sliding window: a ramp or parabola passes
  through unchanged (no lag), white noise is attenuated.
- One-Euro (Casiez et al. 2012) adapts its cutoff to the speed; run forward and backward and
  averaged, its lag cancels to first order.
Smoothing runs on each contiguous run of valid frames separately; invalid frames stay untouched.
"""

from __future__ import annotations

import numpy as np

from headflow.faces.params import SmoothParams
from headflow.landmarks68 import MOUTH


def valid_runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True in a (T,) bool mask."""
    v = np.concatenate([[False], np.asarray(valid, bool), [False]])
    d = np.diff(v.astype(np.int8))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def savgol_weights(window: int, polyorder: int) -> np.ndarray:
    """(window, window) matrix: row j gives the value at position j of the least-squares polynomial
    of order `polyorder` fitted to the window's samples (the centre row is the classic filter)."""
    t = np.arange(window) - window // 2
    V = np.vander(t, polyorder + 1, increasing=True)          # (window, order+1)
    return V @ np.linalg.pinv(V)                             # hat matrix of the fit


def savgol(x: np.ndarray, window: int, polyorder: int) -> np.ndarray:
    """Savitzky-Golay along axis 0 (like scipy's `savgol_filter(mode="interp")`: the first and last
    half-windows take the polynomial fitted to the first and last full window). Shorter inputs
    use the largest odd window that fits. Implemented in numpy: importing scipy.signal costs each
    worker process ~0.5 s."""
    n = len(x)
    w = min(window, n if n % 2 else n - 1)
    if w <= polyorder or w < 3:
        return x.copy()
    H = savgol_weights(w, polyorder)
    h = w // 2
    flat = x.reshape(n, -1).astype(np.float64)
    out = np.empty_like(flat)
    out[h:n - h] = np.lib.stride_tricks.sliding_window_view(flat, w, axis=0) @ H[h]
    out[:h] = H[:h] @ flat[:w]
    out[n - h:] = H[w - h:] @ flat[n - w:]
    return out.reshape(x.shape)


def _alpha(cutoff: np.ndarray | float, fps: float) -> np.ndarray:
    tau = 1.0 / (2 * np.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau * fps)


def one_euro_causal(x: np.ndarray, fps: float, min_cutoff: float, beta: float, d_cutoff: float) -> np.ndarray:
    """The causal One-Euro filter along axis 0 (each column independently)."""
    out = np.empty_like(x, dtype=np.float64)
    prev = x[0].astype(np.float64)
    dprev = np.zeros_like(prev)
    out[0] = prev
    a_d = _alpha(d_cutoff, fps)
    for t in range(1, len(x)):
        dx = (x[t] - prev) * fps
        dprev = a_d * dx + (1 - a_d) * dprev
        a = _alpha(min_cutoff + beta * np.abs(dprev), fps)
        prev = a * x[t] + (1 - a) * prev
        out[t] = prev
    return out


def one_euro(x: np.ndarray, fps: float, min_cutoff: float, beta: float, d_cutoff: float) -> np.ndarray:
    """Zero-phase One-Euro: the mean of a forward and a backward pass."""
    if len(x) < 2:
        return x.astype(np.float64)
    fwd = one_euro_causal(x, fps, min_cutoff, beta, d_cutoff)
    bwd = one_euro_causal(x[::-1], fps, min_cutoff, beta, d_cutoff)[::-1]
    return 0.5 * (fwd + bwd)


def smooth_series(x: np.ndarray, params: SmoothParams, fps: float, window: int | None = None) -> np.ndarray:
    """Smooth one contiguous series (T, ...) along time with the configured method."""
    shape = x.shape
    flat = x.reshape(len(x), -1).astype(np.float64)
    if params.method == "savgol":
        out = savgol(flat, window or params.window, params.polyorder)
    elif params.method == "one_euro":
        out = one_euro(flat, fps, params.min_cutoff, params.beta, params.d_cutoff)
    else:
        out = flat
    return out.reshape(shape)


def smooth_landmarks(landmarks: np.ndarray, valid: np.ndarray, params: SmoothParams, fps: float = 25.0) -> np.ndarray:
    """Smooth (T, 68, 2) landmarks over each valid run; the mouth uses `params.mouth_window` (savgol).

    Returns a float32 copy; invalid frames are returned as they came in.
    """
    out = landmarks.astype(np.float32).copy()
    for a, b in valid_runs(valid):
        seg = landmarks[a:b].astype(np.float64)
        sm = smooth_series(seg, params, fps)
        if params.method == "savgol":
            if params.mouth_window > params.polyorder and params.mouth_window >= 3:
                sm[:, MOUTH] = smooth_series(seg[:, MOUTH], params, fps, window=params.mouth_window)
            else:
                sm[:, MOUTH] = seg[:, MOUTH]
        out[a:b] = sm
    return out
