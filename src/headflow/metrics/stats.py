"""Bootstrap confidence intervals, and the paired bootstrap by which the evaluation claims a win.

Units are clips: `values[i]` is one clip's score (already pooled over its frames). Resampling clips,
not frames, keeps the frames of one clip together (they are not independent samples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

_CHUNK = 1_000_000  # resampled values per chunk: bounds memory for large n * n_boot


@dataclass(frozen=True)
class BootstrapCI:
    """A mean with its percentile-bootstrap confidence interval."""

    mean: float
    """Mean of the finite values (NaN when there are none)."""
    low: float
    """Lower bound: the (1 - ci) / 2 quantile of the bootstrap means."""
    high: float
    """Upper bound: the 1 - (1 - ci) / 2 quantile of the bootstrap means."""
    n: int
    """Values used (finite)."""
    n_dropped: int
    """Values dropped because they were NaN or infinite."""
    ci: float
    """Confidence level, e.g. 0.95."""


@dataclass(frozen=True)
class PairedBootstrap:
    """The difference of means of two systems on the same clips, with its bootstrap interval."""

    diff: float
    """mean(a - b) over the clips where both are finite."""
    low: float
    high: float
    n: int
    """Clips used (both scores finite)."""
    n_dropped: int
    """Clips dropped because a or b was NaN or infinite."""
    ci: float
    excludes_zero: bool
    """True when the interval lies entirely above or entirely below 0: the difference is significant."""
    winner: Literal["a", "b", "none"]
    """Which system wins given `higher_is_better`; "none" when the interval contains 0."""


def _bootstrap_means(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    n = x.size
    rows = max(1, _CHUNK // n)
    out = np.empty(n_boot)
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = x[idx].mean(axis=1)
    return out


def _check(n_boot: int, ci: float, fn: str) -> None:
    if n_boot < 1:
        raise ValueError(f"{fn}: n_boot must be >= 1, got {n_boot}")
    if not 0 < ci < 1:
        raise ValueError(f"{fn}: ci must be in (0, 1), e.g. 0.95, got {ci}")


def bootstrap_ci(values: np.ndarray, n_boot: int = 1000, seed: int = 0, ci: float = 0.95) -> BootstrapCI:
    """Percentile bootstrap confidence interval of the mean.

    Resamples the values with replacement `n_boot` times (numpy `default_rng(seed)`, so the same
    inputs give the same interval), takes each resample's mean, and reports the (1 - ci)/2 and
    1 - (1 - ci)/2 quantiles of those means (Efron's percentile interval; numpy's default linear
    quantile interpolation).

    NaN handling: non-finite values (NaN: a metric with nothing to compare in that clip; inf: e.g.
    PSNR of identical frames) are dropped before resampling and counted in `n_dropped`; report that
    count next to the interval. With no finite value every field is NaN; with one value the
    interval is that value.

    Args:
        values: (N,) per-clip scores.
        n_boot: bootstrap resamples (>= 1; 1000 for reports, 10000 when the interval edge matters).
        seed: seed of the resampling.
        ci: confidence level in (0, 1).

    Returns:
        `BootstrapCI(mean, low, high, n, n_dropped, ci)`.
    """
    _check(n_boot, ci, "bootstrap_ci")
    x = np.asarray(values, dtype=np.float64).ravel()
    finite = np.isfinite(x)
    x = x[finite]
    dropped = int((~finite).sum())
    if x.size == 0:
        return BootstrapCI(float("nan"), float("nan"), float("nan"), 0, dropped, ci)
    means = _bootstrap_means(x, n_boot, np.random.default_rng(seed))
    alpha = (1.0 - ci) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return BootstrapCI(float(x.mean()), float(low), float(high), int(x.size), dropped, ci)


def paired_bootstrap(a: np.ndarray, b: np.ndarray, n_boot: int = 1000, seed: int = 0, ci: float = 0.95,
                     higher_is_better: bool = True) -> PairedBootstrap:
    """Paired bootstrap of the difference of means of two systems scored on the same clips.

    The per-clip differences `d_i = a_i - b_i` are resampled (clips, with replacement, the pairs kept
    together), giving a percentile interval for mean(d) as in `bootstrap_ci`. The evaluation claims
    that a system beats another only when this interval excludes 0: `winner` is "a" when the interval
    lies above 0 and higher is better (or below 0 and lower is better), "b" in the mirrored cases,
    and "none" otherwise. Pairing removes the clip-to-clip variance both systems share, so it detects
    smaller differences than comparing two separate intervals.

    NaN handling: a clip where a or b is not finite is dropped from both (the pair is incomplete) and
    counted in `n_dropped`. A system whose outputs were quarantined must be scored as a failure
    before this point, not dropped (DESIGN: a quarantined output counts against its system).

    Args:
        a, b: (N,) per-clip scores of the two systems on the same N clips, in the same order.
        n_boot, seed, ci: as in `bootstrap_ci`.
        higher_is_better: the metric's direction (True for PSNR/SSIM/CSIM, False for LMD/FID/APD).

    Returns:
        `PairedBootstrap(diff, low, high, n, n_dropped, ci, excludes_zero, winner)`.

    Raises:
        ValueError: a and b have different lengths.
    """
    _check(n_boot, ci, "paired_bootstrap")
    xa = np.asarray(a, dtype=np.float64).ravel()
    xb = np.asarray(b, dtype=np.float64).ravel()
    if xa.shape != xb.shape:
        raise ValueError(f"paired_bootstrap: a and b must score the same clips, got {xa.size} and {xb.size} values")
    ok = np.isfinite(xa) & np.isfinite(xb)
    d = np.full(xa.shape, np.nan)
    d[ok] = xa[ok] - xb[ok]
    r = bootstrap_ci(d, n_boot, seed, ci)
    above, below = r.low > 0, r.high < 0
    if above or below:
        a_wins = above == higher_is_better
        winner: Literal["a", "b", "none"] = "a" if a_wins else "b"
    else:
        winner = "none"
    return PairedBootstrap(r.mean, r.low, r.high, r.n, r.n_dropped, ci, bool(above or below), winner)
