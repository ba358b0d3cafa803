"""Relative vs exact offset recovery, the absolute-offset table and the Wilson interval (no expert: hand-made offsets)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from headflow.metrics.offset_recovery import (format_tables, recovery_tables, shift_table, summarise,
                                              wilson_interval)


def _rows(clips: dict[str, dict[int, int]], lse_c: dict[str, float] | None = None) -> pd.DataFrame:
    """offset_recovery-shaped rows: clips[clip_id][applied_shift] = recovered offset (0 = unshifted)."""
    out = []
    for cid, by_shift in clips.items():
        for s, o in by_shift.items():
            out.append({"clip_id": cid, "applied_shift": s, "recovered_offset": o, "recovered": o == s,
                        "lse_c": (lse_c or {}).get(cid, 0.2) if s == 0 else 0.1, "lse_d": 1.0,
                        "dist_at_zero": 1.0, "frames": 75, "seconds": 0.1})
    return pd.DataFrame(out)


@pytest.mark.parametrize("k, n, lo, hi", [
    # 0/10: centre = (z^2/2n)/(1+z^2/n) = 0.19207/1.38415 = 0.13877 and half-width the same, so [0, 0.2775]
    (0, 10, 0.0, 0.2775),
    # 10/10 mirrors 0/10
    (10, 10, 0.7225, 1.0),
    # 5/10: centre 0.5, half = 1.96/1.38415 * sqrt(0.025 + 0.0096037) = 1.41599 * 0.18602 = 0.26340
    (5, 10, 0.2366, 0.7634),
    # 1/1: centre (1 + 1.92073)/4.84146 = 0.60329, half = 1.96/4.84146 * sqrt(0.96037) = 0.39673
    (1, 1, 0.2065, 1.0),
])
def test_wilson_known_answers(k, n, lo, hi):
    got = wilson_interval(k, n)
    assert got == pytest.approx((lo, hi), abs=6e-4)


def test_wilson_rejects_rates_and_empty():
    with pytest.raises(ValueError, match="successes <= trials"):
        wilson_interval(11, 10)
    with pytest.raises(ValueError, match="trials >= 1"):
        wilson_interval(0, 0)


def test_clip_two_frames_off_is_fully_relative_and_never_exact():
    # The recording itself scores at +2 (audio lags 2 frames); every shifted copy is found at s + 2:
    # the expert saw each shift (relative 4/4) but none equals the nominal shift (exact 0/4).
    rows = _rows({"c": {0: 2, -10: -8, -5: -3, 5: 7, 10: 12}})
    t = recovery_tables(rows)
    assert t["relative"]["overall"]["k"] == 4 and t["relative"]["overall"]["rate"] == 1.0
    assert t["exact"]["overall"]["k"] == 0 and t["exact"]["overall"]["rate"] == 0.0
    assert t["relative"]["overall"]["ci95"] == [round(wilson_interval(4, 4)[0], 4), 1.0]
    assert {s: d["rate"] for s, d in t["relative"]["by_shift"].items()} == {-10: 1.0, -5: 1.0, 5: 1.0, 10: 1.0}
    # the older summary agrees with the new tables
    assert summarise(rows)["relative_recovery_rate"] == 1.0 and summarise(rows)["recovery_rate"] == 0.0


def test_sign_convention_a_shift_moves_the_offset_by_plus_s():
    # Found at -s instead of +s (a sign flip) is neither relative nor exact recovery.
    rows = _rows({"c": {0: 0, -5: 5, 5: -5}})
    sh = shift_table(rows)
    assert not sh.relative.any() and not sh.exact.any()


def test_absolute_fractions_on_a_hand_made_table():
    # o0 per clip: a 0, b -1, c +2, d +7 -> |o0| <= 1 for a and b: 2/4 in sync.
    # LSE-C: in sync {a 0.40, b 0.30} -> median 0.35; others {c 0.10, d 0.05} -> median 0.075.
    clips = {"a": {0: 0, 5: 5}, "b": {0: -1, 5: 4}, "c": {0: 2, 5: 5}, "d": {0: 7, 5: 7}}
    rows = _rows(clips, {"a": 0.40, "b": 0.30, "c": 0.10, "d": 0.05})
    t = recovery_tables(rows)
    ab = t["absolute"]
    assert (ab["in_sync"]["k"], ab["in_sync"]["n"]) == (2, 4)
    assert ab["median_lse_c_in_sync"] == pytest.approx(0.35)
    assert ab["median_lse_c_out_of_sync"] == pytest.approx(0.075)
    assert [c["in_sync"] for c in ab["clips"]] == [True, True, False, False]
    # shifted copies: a 5==5 exact+relative, b 4-(-1)==5 relative only, c 5 exact only (5-2 != 5), d neither
    assert (t["relative"]["overall"]["k"], t["exact"]["overall"]["k"]) == (2, 2)
    # a looser tolerance counts c too
    assert recovery_tables(rows, tolerance=2)["absolute"]["in_sync"]["k"] == 3
    text = format_tables(t)
    assert "2/4 = 0.500" in text and "median LSE-C in sync 0.350, others 0.075" in text
    lo, hi = wilson_interval(2, 4)
    assert math.isclose(ab["in_sync"]["ci95"][0], round(lo, 4)) and f"[{lo:.3f}, {hi:.3f}]" in text


def test_missing_unshifted_row_is_an_error():
    rows = _rows({"c": {5: 5}})
    with pytest.raises(ValueError, match=r"\['c'\].*applied_shift 0"):
        recovery_tables(rows)


def test_subframe_relative_recovery_counts_a_clip_recorded_half_a_frame_off():
    # lbbc2a with the demo expert (2026-11-30): unshifted peak +0.46 -> integer 0; shifted by +5 the
    # peak is +5.52 -> integer 6. The integer tables call that a miss (6 - 0 != 5); on sub-frame peaks
    # round(5.52 - 0.46) = 5 is a hit. A real miss (+7.4 for +5) stays a miss.
    rows = _rows({"a": {0: 0, 5: 6}, "b": {0: 0, 5: 7}})
    rows["recovered_subframe"] = [0.46, 5.52, 0.1, 7.4]
    sh = shift_table(rows)
    assert sh.relative.tolist() == [False, False] and sh.exact.tolist() == [False, False]
    assert sh.relative_subframe.tolist() == [True, False]
    tables = recovery_tables(rows)
    assert tables["relative_subframe"]["overall"]["k"] == 1 and tables["relative"]["overall"]["k"] == 0
    assert tables["absolute"]["clips"][0]["o0_subframe"] == 0.46
    assert "sub-frame" in format_tables(tables)


def test_tables_without_subframe_column_are_unchanged():
    tables = recovery_tables(_rows({"a": {0: 0, 5: 5}}))
    assert "relative_subframe" not in tables and "o0_subframe" not in tables["absolute"]["clips"][0]
    assert "sub-frame peaks" not in format_tables(tables)
