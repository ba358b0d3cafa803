"""End to end: `dvc repro` on a shrunken copy of the project, caching, param granularity, Prefect flow."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _run(cmd, cwd, check=True):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def _merge(target: dict, values: dict) -> None:
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def _set_params(project: Path, **blocks):
    """Override params.yaml values; nested blocks (train_expert.loop) are merged key by key."""
    path = project / "params.yaml"
    data = yaml.safe_load(path.read_text())
    for block, values in blocks.items():
        _merge(data[block], values)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture(scope="module")
def project(tmp_path_factory, project_root):
    """A git+DVC copy of the tracked project files with a small demo corpus."""
    dst = tmp_path_factory.mktemp("proj") / "headflow"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=project_root,
                           capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if rel.startswith(("data/", "reports/")) or rel == "dvc.lock" or not (project_root / rel).is_file():
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(project_root / rel, dst / rel)
    _set_params(dst, demo_corpus={"n_clips": 3}, ingest={"face_probe_frames": 2, "max_reject_fraction": 0.8,
                                                           "split": {"min_speaker_clips": 1}},
                train_expert={"loop": {"epochs": 1, "batch_size": 32}, "samples_per_epoch": 128, "val_samples": 64,
                              "eval_shifts": [5], "max_offset": 5})
    _run(["git", "init", "-q"], dst)
    _run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A"], dst)
    _run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init"], dst)
    first = _run([sys.executable, "-m", "headflow.demo_run"], dst)
    return dst, first.stdout


def test_demo_run_builds_everything_and_summarises(project):
    dst, out = project
    assert "Running stage 'demo_corpus'" in out and "Running stage 'ingest'" in out
    for stage in ("demo_corpus", "ingest", "audio_features", "align", "faces", "shards", "train_expert", "sync_check",
                  "fit3dmm", "expressions", "shard_labels"):
        assert f"{stage} (ran)" in out
    shards = pd.read_parquet(dst / "data/interim/shards/shards.parquet")
    labels = pd.read_parquet(dst / "data/interim/shard_labels/shard_labels.parquet")
    shard_q = pd.read_parquet(dst / "data/interim/shards/quarantine.parquet")
    cut = pd.read_parquet(dst / "data/interim/faces/faces.parquet").merge(
        pd.read_parquet(dst / "data/interim/audio_features/audio_features.parquet"), on="clip_id")
    assert len(cut) == len(shards) + len(shard_q) and set(labels.clip_id) == set(shards.clip_id)   # in = out + q
    fits = pd.read_parquet(dst / "data/interim/fit3dmm/fits.parquet")
    faces_ok = pd.read_parquet(dst / "data/interim/faces/faces.parquet")
    fit_q = pd.read_parquet(dst / "data/interim/fit3dmm/quarantine.parquet")
    assert len(faces_ok) == len(fits) + len(fit_q) and len(fits) >= 1    # rows in = out + quarantined
    assert fits.jaw_open_r.notna().all() and (dst / "reports/fit3dmm/preview.png").is_file()
    expressions = pd.read_parquet(dst / "data/interim/expressions/expressions.parquet")
    assert len(expressions) == fits.n_frames.sum()
    assert "fit3dmm:" in out and "expressions:" in out
    assert (dst / "data/models/expert/last.pt").is_file()
    scores = pd.read_parquet(dst / "data/interim/sync_check/scores.parquet")   # report mode: every clip kept
    assert len(scores) == len(pd.read_parquet(dst / "data/interim/sync_check/clips.parquet"))
    assert set(scores.action) == {"keep"} and scores.offset.notna().all()
    history = json.loads((dst / "reports/plots/expert_history.json").read_text())
    assert [h["epoch"] for h in history] == [1] and 0 <= history[0]["val_balanced_accuracy"] <= 1
    clips = pd.read_parquet(dst / "data/interim/ingest/clips.parquet")
    quarantine = pd.read_parquet(dst / "data/interim/ingest/quarantine.parquet")
    corpus = pd.read_parquet(dst / "data/raw/demo/corpus.parquet")
    assert len(corpus) == len(clips) + len(quarantine)          # rows in = out + quarantined
    expected = corpus[(corpus.kind == "bad") & (corpus.expected_stage == "ingest")]
    got = dict(zip(quarantine.source_path, quarantine.reason_code))
    assert {r.source_path: r.expected_reason for r in expected.itertuples()} == got
    for line in ("no_audio_stream", "unreadable", "duplicate_content", "no_face", "too_short"):
        assert line in out
    assert "WRONG" not in out


def test_noop_repro_is_fast_and_param_change_reruns_only_ingest(project):
    dst, _ = project
    dvc = str(Path(sys.executable).parent / "dvc")
    timings = []
    for _ in range(2):
        start = time.perf_counter()
        out = _run([dvc, "repro"], dst).stdout
        timings.append(time.perf_counter() - start)
        assert "Running stage" not in out
    print(f"no-op dvc repro: {min(timings):.2f} s (best of 2)")
    assert min(timings) < 3.0
    _set_params(dst, ingest={"crf": 23})
    out = _run([dvc, "repro"], dst).stdout
    assert "Stage 'demo_corpus' didn't change" in out and "Running stage 'ingest'" in out
    metrics = _run([dvc, "metrics", "show"], dst).stdout
    assert "reports/metrics/ingest.json" in metrics and "accepted" in metrics


def test_align_param_change_reruns_only_align(project):
    dst, _ = project
    dvc = str(Path(sys.executable).parent / "dvc")
    assert (dst / "data/interim/align/frame_labels.parquet").is_file()
    data = yaml.safe_load((dst / "params.yaml").read_text())
    data["align"]["builtin"]["iterations"] = 6
    (dst / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    out = _run([dvc, "repro"], dst).stdout
    assert "Running stage 'align'" in out
    for other in ("demo_corpus", "ingest", "audio_features"):
        assert f"Running stage '{other}'" not in out
    labels = pd.read_parquet(dst / "data/interim/align/frame_labels.parquet")
    alignments = pd.read_parquet(dst / "data/interim/align/alignments.parquet")
    assert len(labels) == alignments.n_frames.sum() and (dst / alignments.textgrid_path[0]).is_file()
def test_faces_param_change_reruns_only_faces(project):
    dst, _ = project
    dvc = str(Path(sys.executable).parent / "dvc")
    _run([dvc, "repro"], dst)
    faces = pd.read_parquet(dst / "data/interim/faces/faces.parquet")
    fq = pd.read_parquet(dst / "data/interim/faces/quarantine.parquet")
    clips = pd.read_parquet(dst / "data/interim/ingest/clips.parquet")
    assert len(clips) == len(faces) + len(fq)                     # rows in = out + quarantined
    assert dict(zip(fq.source_path, fq.reason_code)).get("bad/two_faces.mp4") == "ambiguous_speaker"
    _set_params(dst, faces={"min_face_px": 40.0})
    out = _run([dvc, "repro"], dst).stdout
    assert "Stage 'demo_corpus' didn't change" in out and "Stage 'ingest' didn't change" in out
    assert "Running stage 'faces'" in out


def test_prefect_flow_writes_what_dvc_writes(project, monkeypatch):
    from prefect.testing.utilities import prefect_test_harness

    dst, _ = project
    dvc_clips = pd.read_parquet(dst / "data/interim/ingest/clips.parquet")
    dvc_quarantine = pd.read_parquet(dst / "data/interim/ingest/quarantine.parquet")
    monkeypatch.chdir(dst)
    from pipelines.preprocess import preprocess

    with prefect_test_harness():
        metrics = preprocess(params_path="params.yaml", build_demo=False)
    flow_quarantine = pd.read_parquet(dst / "data/interim/ingest/quarantine.parquet")
    assert flow_quarantine[["source_path", "reason_code"]].to_dict("records") == \
        dvc_quarantine[["source_path", "reason_code"]].to_dict("records")
    assert flow_quarantine.equals(dvc_quarantine)
    flow_clips = pd.read_parquet(dst / "data/interim/ingest/clips.parquet")
    assert list(flow_clips.source_path) == list(dvc_clips.source_path)
    assert list(flow_clips.clip_id) == list(dvc_clips.clip_id)
    assert metrics["ingest"]["accepted"] == len(dvc_clips)
    assert metrics["align"]["clips"] == len(pd.read_parquet(dst / "data/interim/align/alignments.parquet"))
    assert metrics["faces"]["inputs"] == len(dvc_clips)
    assert metrics["fit3dmm"]["inputs"] == metrics["faces"]["accepted"]
    assert metrics["expressions"]["clips"] == metrics["fit3dmm"]["clips"]
    assert metrics["shards"]["clips"] == len(pd.read_parquet(dst / "data/interim/shards/shards.parquet")) >= 1
    assert metrics["shard_labels"]["inputs"] == metrics["shards"]["clips"]
