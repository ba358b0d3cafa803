"""DisCoHead's params: the params.yaml block is the demo configuration; the presets are consistent."""

from __future__ import annotations

import pytest

from headflow import params as P
from headflow.config import ConfigError, from_dict, to_dict
from headflow.generators.discohead.params import (DisCoHeadParams, GenerateDisCoHeadParams, demo_params,
                                                  published_params, quality_params, tiny_params)


def test_params_yaml_block_is_the_demo_configuration():
    assert P.load("train_discohead") == demo_params()
    assert P.load("generate_discohead") == GenerateDisCoHeadParams()


def test_published_configuration_is_the_papers():
    p = published_params()
    # section 3.2 / 3.1: 256x256 crops, Adam 1e-4, batch 16, 6 modulated residual blocks, VGG-19 perceptual loss
    assert (p.model.image_size, p.loop.lr, p.loop.batch_size, p.loop.optimizer) == (256, 1e-4, 16, "adam")
    assert p.model.mod_blocks == 6 and p.loss.perceptual_backend == "vgg19"


@pytest.mark.parametrize("preset", [tiny_params, demo_params, quality_params, published_params])
def test_presets_round_trip(preset):
    p = preset()
    assert from_dict(DisCoHeadParams, to_dict(p), "train_discohead") == p


def test_variant_names_and_bad_choices():
    p = demo_params()
    assert p.variant_name == "affine-DM"
    d = to_dict(p)
    d["model"]["head_motion"], d["model"]["encoder"] = "tps", "neural_mix"
    assert from_dict(DisCoHeadParams, d, "train_discohead").variant_name == "tps-NM"
    d["model"]["image_size"] = 48
    with pytest.raises(ConfigError, match="image_size"):
        from_dict(DisCoHeadParams, d, "train_discohead")
