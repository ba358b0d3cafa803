"""StyleTalk's params: presets, the paper's values, params.yaml = the demo presets."""

from __future__ import annotations

from pathlib import Path

import pytest

from headflow import params as registry
from headflow.config import ConfigError, from_dict, to_dict
from headflow.generators.styletalk import params as P

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("preset", [P.tiny_params, P.demo_params, P.quality_params, P.published_params])
def test_presets_validate_and_round_trip(preset):
    p = preset()
    p.validate()
    assert from_dict(P.StyleTalkParams, to_dict(p), "train_styletalk") == p


def test_published_values_are_the_papers():
    p = P.published_params()
    # eq. 8-9: mu 0.1, weights 88 / 1 / 1 / 1 / 1, margin 5; w = 5, K = 8, L = 64, d 256, Adam 1e-4
    assert (p.loss.mu, p.loss.rec, p.loss.trip, p.loss.sync, p.loss.tem, p.loss.style, p.loss.margin) == \
        (0.1, 88, 1, 1, 1, 1, 5)
    assert (p.model.window_size, p.model.dynamic_k, p.data.clip_len, p.model.d_model, p.loop.lr) == (11, 8, 64, 256, 1e-4)


def test_params_yaml_blocks_are_the_demo_presets():
    assert registry.load("train_styletalk", ROOT / "params.yaml") == P.demo_params()
    assert registry.load("train_styletalk_disc", ROOT / "params.yaml") == P.demo_disc_params()
    assert registry.load("generate_styletalk", ROOT / "params.yaml") == P.GenerateStyleTalkParams()


def test_bad_values_name_the_key():
    with pytest.raises(ConfigError, match="dynamic_k"):
        from_dict(P.StyleTalkParams, {"model": {"dynamic_k": 0}}, "train_styletalk")
    with pytest.raises(ConfigError, match="discriminators"):
        from_dict(P.StyleTalkParams, {"discriminators": "none"}, "train_styletalk")   # sync/style weights are 1
