"""Typed params: strict loading and the real params.yaml."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from headflow import params
from headflow.config import ConfigError, from_dict


@dataclass
class Inner:
    k: int = 1


@dataclass
class Block:
    rate: float = 1.0
    name: str = "x"
    flag: bool = False
    mode: Literal["a", "b"] = "a"
    sizes: list[int] = field(default_factory=list)
    opt: int | None = None
    inner: Inner = field(default_factory=Inner)


def test_real_params_yaml_loads_every_block(project_root):
    blocks = params.load_all(project_root / "params.yaml")
    assert set(blocks) == set(params.BLOCKS)
    assert blocks["demo_corpus"].n_clips >= 24
    assert len(blocks["demo_corpus"].identities) >= 6
    assert blocks["ingest"].fps == 25 and blocks["ingest"].sample_rate == 16000


def test_values_are_typed_and_int_widens_to_float():
    b = from_dict(Block, {"rate": 2, "sizes": [1, 2], "opt": None, "inner": {"k": 3}}, "blk")
    assert b.rate == 2.0 and isinstance(b.rate, float)
    assert b.sizes == [1, 2] and b.inner.k == 3


@pytest.mark.parametrize("data, message", [
    ({"rat": 1.0}, "blk.rat: unknown key (did you mean 'rate'?)"),
    ({"rate": "fast"}, "blk.rate: expected float, got str"),
    ({"flag": 1}, "blk.flag: expected bool"),
    ({"mode": "c"}, "blk.mode: expected one of 'a', 'b'"),
    ({"sizes": [1, "2"]}, "blk.sizes[1]: expected int"),
    ({"inner": {"j": 1}}, "blk.inner.j: unknown key"),
    ({"name": 3}, "blk.name: expected str"),
])
def test_unknown_or_mistyped_keys_name_the_key(data, message):
    with pytest.raises(ConfigError) as err:
        from_dict(Block, data, "blk")
    assert message in str(err.value)


def test_validate_hook_reports_the_block(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("ingest:\n  min_duration_s: 20.0\n  max_duration_s: 10.0\n")
    with pytest.raises(ConfigError, match="ingest: min_duration_s must be below max_duration_s"):
        params.load("ingest", p)


def test_unknown_block_is_an_error(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("ingest: {}\ndemo_corpus: {}\ningset: {}\n")
    with pytest.raises(ConfigError, match="unknown params block"):
        params.load_all(p)
