"""bench/expert.py (what `make quality` runs first): its --set overrides resolve and validate."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_expert", ROOT / "bench/expert.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_quality_overrides_resolve_and_apply():
    from headflow import params

    bench = _bench()
    overrides = bench.parse_overrides(["model.width=0.5", "loop.epochs=40", "seed=2"])
    assert overrides == {"model.width": 0.5, "loop.epochs": 40, "loop.seed": 2}
    got = bench.with_overrides(params.load("train_expert", ROOT / "params.yaml"), overrides)
    assert (got.model.width, got.loop.epochs, got.loop.seed) == (0.5, 40, 2)
    # The Makefile's own `quality` line resolves and validates as written.
    line = next(ln for ln in (ROOT / "Makefile").read_text().splitlines() if "bench/expert.py --set" in ln)
    items = line.split("--set", 1)[1].split()
    quality = bench.with_overrides(params.load("train_expert", ROOT / "params.yaml"), bench.parse_overrides(items))
    assert (quality.model.width, quality.loop.epochs, quality.loop.ema_decay) == (0.5, 40, 0.998)


def test_an_ambiguous_or_unknown_key_is_an_error():
    bench = _bench()
    with pytest.raises(SystemExit, match="names 0 train_expert params"):
        bench.parse_overrides(["no_such_setting=1"])


def test_pairs_are_labelled_with_their_face_clips_style(tmp_path):
    import numpy as np
    import pandas as pd

    from headflow.sync.data import ClipArrays, SyncPairs

    bench = _bench()
    (tmp_path / "interim/ingest").mkdir(parents=True)
    pd.DataFrame({"clip_id": ["a", "b", "c"], "style": ["neutral", "smiling", None]}).to_parquet(
        tmp_path / "interim/ingest/clips.parquet")
    styles = bench.clip_styles(tmp_path)
    assert styles == {"a": "neutral", "b": "smiling"}             # a clip without a style has none
    assert bench.clip_styles(tmp_path / "nowhere") == {}

    # Each clip's face windows are filled with its own index, so the face a pair shows names its clip.
    clips = [ClipArrays(cid, np.full((30, 48, 96, 3), i, np.uint8), np.zeros((30 * 16 // 5 + 16, 80), np.float32),
                        speaker="s") for i, cid in enumerate(["a", "b", "c"])]
    pairs = SyncPairs(clips, 40, seed=3, min_shift=5)
    labels = bench.pair_styles(pairs, styles)
    expected = [["neutral", "smiling", None][int(pairs[i][0][0, 0, 0])] for i in range(len(pairs))]
    assert labels == expected and {"neutral", "smiling", None} <= set(labels)
    assert bench.pair_styles(pairs, {}) is None
