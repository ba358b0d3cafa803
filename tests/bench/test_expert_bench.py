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


def test_an_ambiguous_or_unknown_key_is_an_error():
    bench = _bench()
    with pytest.raises(SystemExit, match="names 0 train_expert params"):
        bench.parse_overrides(["no_such_setting=1"])
