"""bench/flow_overhead.py's arithmetic, table and output comparison (no cluster, no project)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.flow_overhead import (differences, fit_per_task, main, overhead_fraction, overhead_per_task,
                                 smallest_shard, summarise)


def test_overhead_per_task_spreads_the_extra_wall_time_over_the_tasks():
    # 100 s plain, 150 s as 125 shard tasks: 50 s / 125 = 0.4 s a task
    assert overhead_per_task(150.0, 100.0, 125) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="tasks must be >= 1"):
        overhead_per_task(150.0, 100.0, 0)


def test_fit_separates_fixed_start_up_from_per_task_cost():
    # wall = 20 s + 0.3 s x tasks at 8, 32 and 125 tasks: 22.4, 29.6, 57.5 s lie on the line exactly
    fixed, per_task = fit_per_task([125, 32, 8], [57.5, 29.6, 22.4])
    assert fixed == pytest.approx(20.0) and per_task == pytest.approx(0.3)
    assert fit_per_task([8, 8], [1.0, 2.0]) is None


def test_overhead_fraction_and_the_smallest_shard_under_five_percent():
    # 0.5 s a task against 8 clips of 0.52 CPU s (4.16 s of work): 12 %
    assert overhead_fraction(0.5, 8, 0.52) == pytest.approx(0.5 / 4.16)
    # 0.5 / (0.05 x 0.52) = 19.2 clips -> the next power of two, 32 (16 gives 6.0 %)
    assert smallest_shard(0.5, 0.52) == 32
    assert overhead_fraction(0.5, 16, 0.52) > 0.05 >= overhead_fraction(0.5, 32, 0.52)
    # align, 0.095 s a clip: 0.5 / 0.00475 = 105.3 -> 128
    assert smallest_shard(0.5, 0.095) == 128
    assert smallest_shard(0.0, 0.095) == 1 and smallest_shard(-0.1, 0.095) == 1   # no measurable overhead


def _rec(kind, wall, **kw):
    base = {"kind": kind, "stage": "align", "n_clips": 1000, "wall_s": wall, "cpu_s": wall, "load": [2.0, 2.5],
            "same_outputs": True}
    if kind == "flow":
        base.update(flow_wall_s=wall - 5, flow_cpu_s=1.0, workers_cpu_s=2.0, server_cpu_s=3.0)
    return {**base, **kw}


def test_summary_uses_the_min_of_the_repeats_and_the_min_plain_wall():
    records = [_rec("plain", 110.0), _rec("plain", 100.0),
               _rec("flow", 170.0, n_workers=1, shard_size=8, tasks=125),
               _rec("flow", 150.0, n_workers=1, shard_size=8, tasks=125),
               _rec("flow", 112.0, n_workers=1, shard_size=128, tasks=8, same_outputs=False)]
    table = summarise(records)
    row8 = next(line for line in table.splitlines() if line.lstrip().startswith("1     8"))
    assert "170.0 / 150.0" in row8 and " 0.400 " in row8            # (150 - 100) / 125
    row128 = next(line for line in table.splitlines() if line.lstrip().startswith("1   128"))
    assert " 1.500 " in row128 and "OUTPUTS DIFFER" in row128        # (112 - 100) / 8
    # fit through (8, 112) and (125, 150): slope 38 / 117 = 0.325 s a task
    assert "+ 0.325 s x tasks" in table
    assert summarise([]) == "no plain run recorded"


def test_differences_compare_parquet_as_tables_and_skip_metrics(tmp_path):
    ref, new = tmp_path / "ref", tmp_path / "new"
    for d in (ref, new):
        d.mkdir()
        (d / "m.json").write_text(f'{{"seconds": {len(str(d))}}}')
        (d / "a.TextGrid").write_text("x")
    pq.write_table(pa.table({"clip_id": ["a", "b"], "frame": [0, 1]}), ref / "t.parquet")
    # the same table in two row groups: equal as a table although the bytes differ
    pq.write_table(pa.table({"clip_id": ["a", "b"], "frame": [0, 1]}), new / "t.parquet", row_group_size=1)
    assert differences(ref, new) == []
    pq.write_table(pa.table({"clip_id": ["a", "b"], "frame": [0, 2]}), new / "t.parquet")
    (new / "a.TextGrid").write_text("y")
    (new / "extra.txt").write_text("")
    assert differences(ref, new) == [f"only in {new}: extra.txt", "differs: a.TextGrid", "differs: t.parquet"]


def test_main_refuses_a_folder_without_params(tmp_path):
    with pytest.raises(SystemExit):
        main(["--project", str(tmp_path)])
