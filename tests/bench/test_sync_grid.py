"""bench/sync_grid.py's expert-vs-envelope table on made-up rows (the bench itself needs a trained expert)."""

import pandas as pd
import pytest

from bench.sync_grid import format_independent, independent_check


def test_independent_check_reads_both_offsets_relative_to_their_medians():
    rows = pd.DataFrame({
        "clip_id": ["a", "a", "b", "b", "c", "c"],
        "applied_shift": [0, 5, 0, 5, 0, 5],
        "recovered_subframe": [0.5, 5.5, 0.0, 5.0, -0.2, 4.8],
        "envelope_offset": [1.4, 6.3, 1.0, 7.2, 0.8, 5.9],
    })
    ind = independent_check(rows)
    # envelope: b's +5 copy moved by 6.2 (round 6 != 5); a (4.9) and c (5.1) follow the shift
    assert ind["envelope_relative_recovery"] == {"k": 2, "n": 3}
    by = {c["clip_id"]: c for c in ind["clips"]}
    assert by["a"]["expert_rel"] == pytest.approx(0.5) and by["c"]["expert_rel"] == pytest.approx(-0.2)   # median 0.0
    assert by["a"]["envelope_rel"] == pytest.approx(0.4) and by["c"]["envelope_rel"] == pytest.approx(-0.2)  # median 1.0
    # expert (0.5, 0, -0.2) and envelope (0.4, 0, -0.2) minus medians are almost collinear
    assert ind["pearson_r"] > 0.99
    assert "2/3" in format_independent(ind)


def test_comparison_puts_the_baseline_first_with_each_experts_rates():
    from bench.sync_grid import format_comparison

    def result(name, rel, ex):
        return {"expert": name, "independent": {"pearson_r": 0.5},
                "tables": {"relative": {"overall": {"k": rel, "n": 24}}, "exact": {"overall": {"k": ex, "n": 24}}}}

    text = format_comparison([result("base.pt", 22, 18), result("new.pt", 24, 20)]).splitlines()
    assert "base.pt" in text[2] and "22/24" in text[2] and "18/24" in text[2]
    assert "new.pt" in text[3] and "24/24 = 1.000" in text[3] and "20/24" in text[3]
    assert text[3].split()[-2:] == ["-", "0.5"]                 # no sub-frame column in these tables; r last


def test_clip_consistency_and_the_per_clip_comparison():
    from bench.sync_grid import clip_consistency, format_comparison
    # clip a: own offsets (recovered - applied) 0.5, 0.5, 0.5 -> sd 0; clip b: 0, 1, -1 -> sd 1
    rows = pd.DataFrame({
        "clip_id": ["a", "a", "a", "b", "b", "b"],
        "applied_shift": [0, -5, 5, 0, -5, 5],
        "recovered_subframe": [0.5, -4.5, 5.5, 0.0, -4.0, 4.0],
        "lse_c": [3.0, 2.0, 1.0, 6.0, 5.0, 4.0],
    })
    pc = clip_consistency(rows)
    assert pc["a"] == {"lse_c_unshifted": 3.0, "lse_c_mean": 2.0, "own_offset_mean": 0.5, "own_offset_sd": 0.0}
    assert pc["b"]["own_offset_sd"] == pytest.approx(1.0) and pc["b"]["lse_c_mean"] == 5.0

    better = {"a": {**pc["a"], "lse_c_mean": 2.5}, "b": {**pc["b"], "own_offset_sd": 0.5}}
    res = [{"expert": name, "independent": {"pearson_r": 0.5}, "tables": {}, "per_clip": per}
           for name, per in (("base.pt", pc), ("new.pt", better))]
    text = format_comparison(res)
    assert "LSE-C higher on 1/2 clips, own-offset sd lower on 1/2" in text
    mean_row = [ln for ln in text.splitlines() if ln.split()[:1] == ["mean"]][0]
    # base.pt: LSE-C (2 + 5) / 2 = 3.5, sd (0 + 1) / 2 = 0.5; new.pt: (2.5 + 5) / 2 = 3.75, (0 + 0.5) / 2 = 0.25
    assert "3.500 / 0.500" in mean_row and "3.750 / 0.250" in mean_row
