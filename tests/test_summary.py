"""The `make demo` summary reports the expert's held-out figures from its metrics file."""

import json

from headflow import summary


def test_summary_reports_the_expert(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "train_expert" not in summary.render()
    (tmp_path / "reports/metrics").mkdir(parents=True)
    (tmp_path / "reports/metrics/train_expert.json").write_text(json.dumps({
        "held_out_speakers": ["t1_2"], "held_out_clips": 10, "val_balanced_accuracy": 0.8574,
        "offset_recovery": 1.0, "train_seconds": 891.6, "train_samples_per_s": 198.5}))
    line = next(l for l in summary.render().splitlines() if l.startswith("train_expert:"))
    assert "t1_2 (10 clips) balanced accuracy 0.8574" in line and "offset recovery 100 %" in line
