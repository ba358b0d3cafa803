"""headflow.evaluate.external: the GRID benches' items with several rows per task, and the null-metric notes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from headflow.evaluate.baselines import canonical_tasks
from headflow.evaluate.external import clip_items, null_notes


def _row(variant: str) -> dict:
    return {"family": "discohead", "variant": variant, "seed": 0, "output_path": f"a.{variant}.mp4",
            "output_kind": "video", "fps": 25.0, "frame_start": 5, "frame_end": 70}


def test_clip_items_takes_a_list_of_rows_in_order_after_the_baselines():
    tasks, _ = canonical_tasks({"a": 75, "b": 75}, {"a": 240, "b": 240}, ["reconstruction"], frame_start=5)
    rows = [_row("affine-DM"), _row("affine-DM+source_warp")]
    items = clip_items(tasks, {("reconstruction", "a"): rows})
    assert [(s, r["variant"] if r else None) for _, s, r in items["a"]] == [
        ("ground_truth", None), ("baseline_static_frame", None), ("baseline_reference_fill", None),
        ("discohead", "affine-DM"), ("discohead", "affine-DM+source_warp")]
    assert [s for _, s, _ in items["b"]] == ["ground_truth", "baseline_static_frame", "baseline_reference_fill"]
    assert all(t.frame_start == 5 for t, _, _ in items["a"])


def test_null_notes_names_only_all_null_metrics_with_a_reason():
    agg = pd.DataFrame([
        {"metric": "lpips", "mean": np.nan, "note": "no LPIPS weights"},
        {"metric": "lpips", "mean": np.nan, "note": "no LPIPS weights"},
        {"metric": "psnr", "mean": 20.0, "note": None},
        {"metric": "lse_c", "mean": np.nan, "note": None},      # null without a reason: not listed
        {"metric": "akd", "mean": np.nan, "note": "x"},         # null, but not asked for
    ])
    assert null_notes(agg, ("lpips", "psnr", "lse_c", "fid_inception")) == ["lpips: null (no LPIPS weights)"]
