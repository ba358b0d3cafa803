"""The helpers of bench/lipsync_grid.py (the bench itself needs trained checkpoints and minutes: not run here)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bench.lipsync_grid import _records, clip_items, markdown_tables
from headflow.evaluate.baselines import Task, canonical_tasks


def _row(protocol: str, clip: str) -> dict:
    return {"family": "lipsync", "variant": "v", "seed": 0, "output_path": f"{clip}.{protocol}.mp4",
            "output_kind": "video", "fps": 25.0, "frame_start": 0, "frame_end": 70}


def test_clip_items_baselines_then_the_generated_output_per_frame_clip():
    # 75 frames, 3 s of mel (240 frames at 80/s): both clips get both tasks; dubbing pairs a -> b, b -> a.
    tasks, skipped = canonical_tasks({"a": 75, "b": 75}, {"a": 240, "b": 240}, ["reconstruction", "dubbing"])
    assert not skipped and len(tasks) == 4
    outputs = {("reconstruction", "a"): _row("reconstruction", "a"), ("dubbing", "b"): _row("dubbing", "b")}
    items = clip_items(tasks, outputs)
    assert sorted(items) == ["a", "b"]
    got_a = [(t.protocol, t.audio_clip, system, row is not None) for t, system, row in items["a"]]
    assert got_a == [("reconstruction", "a", "ground_truth", False),
                     ("reconstruction", "a", "baseline_static_frame", False),
                     ("reconstruction", "a", "baseline_reference_fill", False),
                     ("reconstruction", "a", "lipsync", True),
                     ("dubbing", "b", "baseline_unedited", False),
                     ("dubbing", "b", "baseline_reference_fill", False)]   # no output for a's dubbing: baselines only
    got_b = [(t.protocol, t.audio_clip, system) for t, system, _ in items["b"]]
    assert got_b[-1] == ("dubbing", "a", "lipsync") and len(got_b) == 6
    assert items["b"][-1][2] is outputs[("dubbing", "b")]


def test_clip_items_rejects_a_protocol_without_baselines():
    task = Task("reenactment", "x", "x", None, "x", True, 1, 10)
    with pytest.raises(ValueError, match="reenactment"):
        clip_items([task], {})


def test_markdown_tables_order_cells_and_comparisons():
    def agg(system, variant, metric, mean, low, high, higher):
        return {"system": system, "variant": variant, "protocol": "reconstruction", "metric": metric, "mean": mean,
                "low": low, "high": high, "higher_is_better": higher}

    aggregates = pd.DataFrame([  # deliberately out of report order
        agg("lipsync", "v", "m_lmd", 1.0, 0.5, 1.5, False),
        agg("baseline_static_frame", None, "m_lmd", 2.0, 1.5, 2.5, False),
        agg("ground_truth", None, "psnr_masked", np.inf, np.inf, np.inf, True),
        agg("ground_truth", None, "m_lmd", 0.0, 0.0, 0.0, False),
        agg("lipsync", "v", "psnr_masked", 20.0, np.nan, np.nan, True),   # no interval: the mean alone
    ])
    comparisons = pd.DataFrame([{"system": "lipsync", "variant": "v", "protocol": "reconstruction",
                                 "opponent": "baseline_static_frame", "metric": "m_lmd", "diff": -1.0, "low": -1.5,
                                 "high": -0.5, "n": 6, "winner": "system"}])
    text = markdown_tables(aggregates, comparisons, {"reconstruction": ("m_lmd", "psnr_masked")}, digits=2)
    assert text.splitlines() == [
        "reconstruction:",
        "",
        "| system | M-LMD px ↓ | PSNR lower dB ↑ |",
        "|---|---|---|",
        "| ground_truth | 0.00 [0.00, 0.00] | inf |",
        "| baseline_static_frame | 2.00 [1.50, 2.50] | n/a |",      # static has no PSNR row: n/a
        "| lipsync:v | 1.00 [0.50, 1.50] | 20.00 |",
        "",
        "| system - baseline | metric | diff [95% interval] | n | winner |",
        "|---|---|---|---|---|",
        "| lipsync:v - baseline_static_frame | M-LMD px | -1.00 [-1.50, -0.50] | 6 | system |",
    ]
    # a protocol absent from the aggregates prints nothing
    assert markdown_tables(aggregates, comparisons, {"dubbing": ("lse_c",)}) == "\n"


def test_records_are_strict_json():
    df = pd.DataFrame({"a": [np.inf, -np.inf, np.nan, 1.5], "b": ["x", None, "y", "z"], "n": np.arange(4)})
    rows = _records(df)
    assert [r["a"] for r in rows] == ["inf", "-inf", None, 1.5]
    assert rows[1]["b"] is None and rows[3]["n"] == 3 and type(rows[3]["n"]) is int
    assert not any(isinstance(v, float) and not math.isfinite(v) for r in rows for v in r.values())
