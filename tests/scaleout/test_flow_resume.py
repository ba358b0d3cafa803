"""A flow run interrupted half way and restarted does not redo the shards that finished (pipelines/resume.py)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from pipelines.resume import RESUMABLE, ShardCache, stage_context

CALLS: list[str] = []
FAIL_ON: set[str] = set()


def faces_or_fail(job):
    """The faces stage's per-clip function, recording each call and failing on the clips in FAIL_ON
    (top level, so the shard cache can pickle it by reference as it does the real one)."""
    from headflow.faces.worker import faces_for_clip

    CALLS.append(job.clip_id)
    if job.clip_id in FAIL_ON:
        raise RuntimeError(f"injected failure on {job.clip_id}")
    return faces_for_clip(job)


@pytest.mark.e2e
@pytest.mark.slow
def test_restarted_flow_runs_only_the_unfinished_shards(tmp_path, monkeypatch):
    from prefect.testing.utilities import prefect_test_harness
    from scaleout_project import PREPROCESS, copy_project, cwd, differences, run_stages

    import headflow.faces.stage as faces_stage
    from pipelines.preprocess import main

    root = tmp_path / "project"
    copy_project(root)
    run_stages(root, ["demo_corpus", *PREPROCESS[:PREPROCESS.index("faces") + 1]])
    reference = tmp_path / "faces_reference"
    shutil.copytree(root / "data/interim/faces", reference)
    shutil.rmtree(root / "data/interim/faces")
    import pandas as pd

    clips = sorted(pd.read_parquet(root / "data/interim/ingest/clips.parquet").clip_id)
    assert len(clips) == 3
    monkeypatch.setattr(faces_stage, "faces_for_clip", faces_or_fail)
    CALLS.clear()
    FAIL_ON.clear()
    FAIL_ON.add(clips[0])     # the first shard: the others still finish and are stored before it is raised
    with prefect_test_harness(server_startup_timeout=600), cwd(root):
        with pytest.raises(Exception, match="injected failure"):
            main(["--skip-demo", "--shard-size", "1", "--stages", "faces"])
        assert sorted(CALLS) == clips                            # every shard started once
        entries = list((root / "data/.flow_cache/faces").rglob("*.pkl"))
        assert len(entries) == 2                                 # the two that finished
        CALLS.clear()
        FAIL_ON.clear()
        main(["--skip-demo", "--shard-size", "1", "--stages", "faces"])
    assert CALLS == [clips[0]]                                   # only the shard that had failed
    assert differences(reference, root / "data/interim/faces") == []
    assert not (root / "data/.flow_cache/faces").exists()        # cleared once the stage completed


def _cache(tmp_path: Path, stage: str = "faces", context: str = "a" * 64) -> ShardCache:
    return ShardCache(stage, context, root=tmp_path / "cache")


def test_entries_round_trip_and_other_contexts_are_deleted(tmp_path):
    cache = _cache(tmp_path)
    key = cache.key(len, [("clip_a", 1.0)])
    assert cache.get(key) is None and cache.misses == 1
    cache.put(key, [{"clip_id": "clip_a"}])
    assert cache.get(key) == [{"clip_id": "clip_a"}] and cache.hits == 1
    assert cache.key(len, [("clip_b", 1.0)]) != key and cache.key(len, [("clip_a", 1.0)]) == key
    other = _cache(tmp_path, context="b" * 64)                   # other params or inputs: old entries go
    assert other.get(other.key(len, [("clip_a", 1.0)])) is None
    assert [p.name for p in (tmp_path / "cache/faces").iterdir()] == ["b" * 24]
    other.clear()
    assert not (tmp_path / "cache/faces").exists()


def test_unpicklable_jobs_and_non_resumable_stages_are_never_cached(tmp_path):
    cache = _cache(tmp_path)
    assert cache.key(len, [lambda: None]) is None               # a lambda does not pickle
    cache.put(None, [1])
    assert cache.get(None) is None
    assert "demo_corpus" not in RESUMABLE                        # it clears its folder when it starts
    demo = _cache(tmp_path, stage="demo_corpus")
    assert demo.key(len, [1]) is None and not (tmp_path / "cache/demo_corpus").exists()


def test_a_torn_entry_is_a_miss(tmp_path):
    cache = _cache(tmp_path)
    key = cache.key(len, [1])
    (cache.folder / f"{key}.pkl").write_bytes(b"not a pickle")
    assert cache.get(key) is None and cache.misses == 1


def test_context_follows_params_and_dependency_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("dvc.yaml").write_text("stages:\n  faces:\n    cmd: x\n    deps:\n      - code.py\n      - data/in\n")
    Path("code.py").write_text("a = 1\n")
    Path("data/in").mkdir(parents=True)
    Path("data/in/clip.mp4").write_bytes(b"123")
    first = stage_context("faces", {"p": 1})
    assert stage_context("faces", {"p": 1}) == first
    assert stage_context("faces", {"p": 2}) != first            # params
    Path("data/in/clip2.mp4").write_bytes(b"4")
    second = stage_context("faces", {"p": 1})
    assert second != first                                      # a new upstream file
    st = os.stat("data/in/clip.mp4")
    os.utime("data/in/clip.mp4", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    time.sleep(0.01)
    assert stage_context("faces", {"p": 1}) != second           # a rewritten one (mtime)
