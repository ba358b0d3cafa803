"""Percentile bootstrap of the mean and the paired bootstrap that decides wins."""

from __future__ import annotations

import math

import numpy as np
import pytest

from headflow.metrics.stats import bootstrap_ci, paired_bootstrap


def test_constant_values_give_a_point_interval():
    r = bootstrap_ci(np.full(20, 3.25))
    assert (r.mean, r.low, r.high, r.n, r.n_dropped) == (3.25, 3.25, 3.25, 20, 0)


def test_two_point_distribution_known_quantiles():
    # resample means of [0, 1]: 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4;
    # the 30% and 70% quantiles (ci = 0.4) both fall in the 0.5 mass
    r = bootstrap_ci([0.0, 1.0], n_boot=4000, ci=0.4)
    assert r.low == 0.5 and r.high == 0.5
    r = bootstrap_ci([0.0, 1.0], n_boot=4000, ci=0.95)  # 2.5% / 97.5% quantiles: the outer masses
    assert r.low == 0.0 and r.high == 1.0


def test_normal_sample_interval_width_and_centre():
    x = np.random.default_rng(7).normal(5.0, 2.0, 400)
    r = bootstrap_ci(x, n_boot=2000)
    # normal theory: half-width 1.96 s / sqrt(n) = 1.96 * 2 / 20 = 0.196
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)
    assert (r.high - r.low) / 2 == pytest.approx(half, rel=0.12)
    assert r.low < r.mean < r.high and r.mean == pytest.approx(x.mean())


def test_coverage_of_a_known_mean():
    # 200 samples of n = 30 from N(1, 1): the 90% interval should contain 1 about 90% of the time
    rng = np.random.default_rng(11)
    hits = 0
    for i in range(200):
        r = bootstrap_ci(rng.normal(1.0, 1.0, 30), n_boot=500, seed=i, ci=0.9)
        hits += r.low <= 1.0 <= r.high
    assert 0.82 <= hits / 200 <= 0.96


def test_nan_and_inf_are_dropped_and_counted():
    r = bootstrap_ci([1.0, np.nan, 3.0, np.inf])
    assert (r.n, r.n_dropped, r.mean) == (2, 2, 2.0)
    empty = bootstrap_ci([np.nan, np.nan])
    assert empty.n == 0 and math.isnan(empty.mean) and math.isnan(empty.low)


def test_seeded_and_repeatable():
    x = np.random.default_rng(0).normal(size=50)
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)
    assert bootstrap_ci(x, seed=3).low != bootstrap_ci(x, seed=4).low
    with pytest.raises(ValueError, match="ci"):
        bootstrap_ci(x, ci=95)


def test_paired_bootstrap_finds_a_consistent_small_gain():
    rng = np.random.default_rng(5)
    base = rng.normal(25.0, 4.0, 60)  # clip difficulty varies a lot (e.g. PSNR per clip)
    a = base + 0.5 + rng.normal(0, 0.2, 60)  # system a is 0.5 dB better on every clip
    b = base
    r = paired_bootstrap(a, b)
    assert r.excludes_zero and r.winner == "a" and r.low > 0
    assert r.diff == pytest.approx(np.mean(a - b))
    # the same gain is invisible to two separate intervals, which overlap (why the evaluation pairs)
    ca, cb = bootstrap_ci(a), bootstrap_ci(b)
    assert ca.low < cb.high
    # lower is better (e.g. LMD): the same numbers make b the winner
    assert paired_bootstrap(a, b, higher_is_better=False).winner == "b"


def test_paired_bootstrap_no_difference_and_nan_pairs():
    rng = np.random.default_rng(2)
    a = rng.normal(0, 1, 40)
    d = np.repeat([-0.3, 0.3], 20)  # differences symmetric around 0
    r = paired_bootstrap(a + d, a)
    assert r.diff == pytest.approx(0.0, abs=1e-12)
    assert not r.excludes_zero and r.winner == "none" and r.low < 0 < r.high
    b = a.copy()
    b[:5] = np.nan
    r = paired_bootstrap(a, b)
    assert (r.n, r.n_dropped) == (35, 5)
    with pytest.raises(ValueError, match="same clips"):
        paired_bootstrap(a, a[:-1])
