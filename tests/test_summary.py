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


def test_summary_says_who_is_in_which_split(tmp_path, monkeypatch):
    import pandas as pd

    monkeypatch.chdir(tmp_path)
    clips = pd.DataFrame({
        "speaker_id": ["ann"] * 3 + ["bob"] * 2 + ["bad"] + ["cat"] * 2,
        "split": ["train"] * 6 + ["test"] * 2,
        "duration_s": [3.0] * 8,
        "style": ["neutral", "smiling", "neutral", "neutral", "restrained", None, "neutral", "exaggerated"]})
    assert summary.speakers_by_split(clips) == [
        "  train: 3 speakers, 6 clips: ann (3), bob (2), bad (1); styles {'neutral': 3, 'restrained': 1, 'smiling': 1}",
        "  test: 1 speaker, 2 clips: cat (2); styles {'exaggerated': 1, 'neutral': 1}"]
    assert summary.speakers_by_split(clips.assign(style=None))[1] == "  test: 1 speaker, 2 clips: cat (2)"
    (tmp_path / "data/interim/ingest").mkdir(parents=True)
    clips.to_parquet(tmp_path / "data/interim/ingest/clips.parquet")
    text = summary.render().splitlines()
    at = next(i for i, l in enumerate(text) if l.startswith("ingest: 8 clips accepted (4 speakers"))
    assert text[at + 1].startswith("  train: 3 speakers") and text[at + 2].startswith("  test: 1 speaker")


def test_summary_reports_the_judge_and_the_evaluation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports/metrics").mkdir(parents=True)
    # the judge's settings come from its params block, its figures from its metrics file
    (tmp_path / "params.yaml").write_text("train_judge:\n  model: {face_input: gray_norm, width: 0.25}\n"
                                          "  loop: {epochs: 12, batch_size: 64, lr: 0.001, seed: 1}\n")
    (tmp_path / "reports/metrics/train_judge.json").write_text(json.dumps({
        "held_out_speakers": ["t1_2"], "val_balanced_accuracy": 0.81, "train_seconds": 230.0}))
    (tmp_path / "reports/metrics/evaluate.json").write_text(json.dumps({
        "clips": 11, "quarantined": 2, "speed/total_seconds": 95.0, "reconstruction/ground_truth/lse_c": 0.41,
        "reconstruction/baseline_static_frame/ssim": 0.7, "dubbing/lipsync:default/lse_c": 0.3}))
    lines = summary.render().splitlines()
    judge = next(l for l in lines if l.startswith("train_judge:"))
    assert "(gray_norm, width 0.25, seed 1) held-out t1_2 balanced accuracy 0.81" in judge
    assert "data/models/judge/last.pt" in judge
    ev = next(l for l in lines if l.startswith("evaluate:"))
    assert "11 test clips" in ev and "baseline_static_frame, ground_truth, lipsync:default" in ev
    assert "LSE-C 0.41" in ev and "2 quarantined" in ev and "reports/report.html" in ev


def test_generator_lines_read_the_lipsync_stage_metrics(tmp_path):
    import json

    from headflow.catalog import Catalog
    from headflow.summary import generator_lines

    cat = Catalog(tmp_path)
    assert generator_lines(cat) == []                       # nothing trained yet: no line, no error
    cat.metrics("train_lipsync").parent.mkdir(parents=True)
    cat.metrics("train_lipsync").write_text(json.dumps({
        "n_train_clips": 52, "n_val_clips": 10, "epochs_stage1": 6, "epochs_stage2": 1, "steps": 336,
        "train_seconds": 79.6, "train_samples_per_s": 9.4, "data_wait_fraction": 0.006, "val_l1_masked": 0.1955,
        "sync_on": False, "perceptual_backend": "weight_free"}))
    cat.metrics("generate_lipsync").write_text(json.dumps({"outputs": 6, "frames": 510, "frames_per_s": 60.4,
                                                            "quarantined": 0}))
    train, gen = generator_lines(cat)
    assert "52 train / 10 val clips" in train and "6 + 1 epochs (336 steps" in train and "not yet on" in train
    assert "6 videos (510 frames, 60.4 frames/s" in gen


def test_generator_lines_read_the_stylemap_stage_metrics(tmp_path):
    import json

    from headflow.catalog import Catalog
    from headflow.summary import generator_lines

    cat = Catalog(tmp_path)
    cat.metrics("train_stylemap").parent.mkdir(parents=True)
    cat.metrics("train_stylemap").write_text(json.dumps({
        "n_train_clips": 52, "n_val_clips": 10, "epochs": 4, "steps": 96, "train_seconds": 180.8,
        "train_samples_per_s": 1.36, "data_wait_fraction": 0.004, "val_l1": 0.1904, "val_pose_err_deg": 8.88}))
    cat.metrics("generate_stylemap").write_text(json.dumps({
        "outputs": 20, "frames": 1746, "frames_per_s": 7.99, "quarantined": 0, "pose_err_median_deg": 2.841,
        "baseline_pose_err_median_deg": 5.725}))
    train, gen = generator_lines(cat)
    assert "train_stylemap: 52 train / 10 val clips, 4 epochs (96 steps" in train and "val pose error 8.9 deg" in train
    assert "20 videos (1746 frames, 7.99 frames/s), 0 quarantined" in gen and "2.841 deg vs mean-pose baseline 5.725" in gen


def test_generator_lines_read_the_styletalk_and_head2headfs_stage_metrics(tmp_path):
    import json

    from headflow.catalog import Catalog
    from headflow.summary import generator_lines

    cat = Catalog(tmp_path)
    cat.metrics("train_styletalk").parent.mkdir(parents=True)
    figures = {   # the keys each stage writes (styletalk/train.py, generate.py; head2headfs/train.py, finetune.py, ...)
        "train_styletalk_disc": {"n_train_clips": 52, "n_val_clips": 10, "train_seconds": 3.0, "val_sync_acc": 0.640625,
                                 "val_style_acc": 0.46875},
        "train_styletalk": {"n_train_clips": 52, "n_val_clips": 10, "epochs": 6, "steps": 144, "train_seconds": 15.6,
                            "train_sequences_per_s": 43.08, "val_l1": 0.12397, "val_style_acc": None},
        "generate_styletalk": {"outputs": 20, "baseline_outputs": 20, "frames": 1650, "frames_per_s": 63.35,
                               "quarantined": 0},
        "train_head2headfs": {"n_clips": 52, "n_identities": 5, "epochs": 2, "steps": 96, "train_seconds": 13.3,
                              "train_samples_per_s": 8.67, "perceptual_backend": "weight_free"},
        "finetune_head2headfs": {"targets": 1, "finetuned": 1, "finetune_seconds": 8.2, "quarantined": 0},
        "generate_head2headfs": {"outputs": 6, "baseline_outputs": 0, "self": 3, "cross": 3, "frames": 594,
                                 "resolution": 64, "frames_per_s": 66.08, "quarantined": 0},
    }
    for stage, m in figures.items():
        cat.metrics(stage).write_text(json.dumps(m))
    disc, train, gen, init, fine, h2h = generator_lines(cat)
    assert disc.startswith("train_styletalk_disc: 52 train / 10 val clips, 3.0 s, val sync accuracy 0.641")
    assert "6 epochs (144 steps, 15.6 s, 43.1 sequences/s), val L1 0.1240, val style accuracy n/a" in train
    assert "20 videos + 20 baseline videos (1650 frames, 63.35 frames/s), 0 quarantined" in gen
    assert "52 clips of 5 identities, 2 epochs (96 steps, 13.3 s, 8.7 windows/s)" in init
    assert "1 of 1 targets fine-tuned (8.2 s)" in fine and "data/models/head2headfs/people" in fine
    assert "6 videos (3 self / 3 cross-reenactment tasks), 594 frames at 64 px" in h2h   # no baselines: not named


def test_follow_repro_times_each_stage_that_ran():
    from headflow.demo_run import follow_repro

    out = ["Running stage 'ingest':\n", "> python stages/ingest.py\n", "Updating lock file 'dvc.lock'\n",
           "Stage 'audio_features' didn't change, skipping\n", "Running stage 'faces':\n", "> python ...\n",
           "Running stage 'align':\n", "ERROR: failed to reproduce 'align': exit code 1\n"]
    ticks = iter([10.0, 25.5, 26.0, 86.0, 90.0])     # the clock at each stage line, then at the end
    echoed = []
    status, wall = follow_repro(out, clock=lambda: next(ticks), echo=echoed.append)
    assert echoed == out
    assert status == {"ingest": "ran", "audio_features": "cached", "faces": "ran", "align": "FAILED"}
    # ingest: its line (10.0) to the next stage line (25.5); faces 26.0 -> 86.0; align until its failure
    assert wall == {"ingest": 15.5, "faces": 60.0, "align": 4.0}
    ticks = iter([0.0, 7.0])                          # the last stage ends with the output
    assert follow_repro(["Running stage 'evaluate':\n", "done\n"], clock=lambda: next(ticks), echo=echoed.append)[1] \
        == {"evaluate": 7.0}


def test_summary_prints_each_stage_wall_time_and_disk_use(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "disk use" not in summary.render()                         # nothing built, nothing ran
    (tmp_path / "data/interim/ingest/media").mkdir(parents=True)
    (tmp_path / "data/interim/ingest/media/a.mp4").write_bytes(b"\0" * 2_500_000)
    (tmp_path / "data/interim/ingest/words.bin").write_bytes(b"\0" * 30_000)
    (tmp_path / "data/interim/faces").mkdir(parents=True)
    (tmp_path / "data/interim/faces/link.mp4").symlink_to(tmp_path / "data/interim/ingest/media/a.mp4")
    (tmp_path / "data/models/expert").mkdir(parents=True)             # train_expert's model folder is its out too
    (tmp_path / "data/models/expert/last.pt").write_bytes(b"\0" * 1_000_000)
    text = summary.render({"ingest": "ran", "faces": "cached"}, 100.0,
                          stage_wall_s={"ingest": 42.4}).splitlines()
    at = text.index("wall time and disk use per stage (its DVC outs):")
    rows = [line.split() for line in text[at + 1: at + 4]]
    # 2.5 MB + 0.03 MB under ingest; faces holds only a link (counted where it points); expert 1.0 MB
    assert rows == [["ingest", "42", "s", "2.5", "MB"], ["train_expert", "-", "1.0", "MB"],
                    ["total", "42", "s", "3.5", "MB"]]
    assert text[-1] == "wall time: 100 s"
