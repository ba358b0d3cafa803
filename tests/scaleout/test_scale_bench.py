"""bench/scale.py's arithmetic: the fitted power-law exponent and the table it prints."""

from __future__ import annotations

import math

import pytest

from bench.scale import fit_exponent, fit_linear, summarise


@pytest.mark.parametrize("b", [0.5, 1.0, 2.0])
def test_exponent_of_an_exact_power_law(b):
    sizes = [100, 300, 1000]
    # wall = 0.7 s x N^b exactly: log(wall) = log(0.7) + b log(N), so the least-squares slope is b
    assert fit_exponent(sizes, [0.7 * n ** b for n in sizes]) == pytest.approx(b, abs=1e-9)


def test_exponent_of_linear_cost_plus_start_up_is_below_one():
    sizes = [100, 300, 1000]
    walls = [5.0 + 0.1 * n for n in sizes]      # 15, 35, 105 s: a fixed start-up flattens the fit
    expected = (math.log(105) - math.log(15)) / (math.log(1000) - math.log(100))   # ~0.85 (3 points near a line)
    assert 0.8 < fit_exponent(sizes, walls) < 0.9 and abs(fit_exponent(sizes, walls) - expected) < 0.05
    assert fit_exponent([100, 100], [1.0, 2.0]) is None


def test_summary_lists_each_stage_with_its_exponent():
    records = [{"n_clips": n, "stage": "ingest", "wall_s": 0.5 * n, "peak_rss_mib": 200.0} for n in (100, 300)]
    table = summarise(records)
    assert "ingest" in table and table.splitlines()[1].rstrip().endswith("| 1.00")
    assert "0.500" in table                      # seconds per clip


def test_linear_fit_recovers_start_up_and_per_clip_cost():
    # 5 s + 0.1 s x N at 100, 300, 1000 clips (15, 35, 105 s) lies on the line: a = 5, c = 0.1 exactly
    a, c = fit_linear([100, 300, 1000], [15.0, 35.0, 105.0])
    assert a == pytest.approx(5.0) and c == pytest.approx(0.1)
    assert fit_linear([100, 100], [1.0, 2.0]) is None
    records = [{"n_clips": n, "stage": "ingest", "cpu_s": 5.0 + 0.1 * n, "wall_s": 1.0} for n in (100, 300)]
    assert "5.0 s + 0.100 s x N" in summarise(records)     # the CPU figure, not the wall time
