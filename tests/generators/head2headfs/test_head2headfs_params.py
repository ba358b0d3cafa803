"""Head2HeadFS params: the params.yaml blocks are the demo presets; presets validate; sizes are consistent."""

from __future__ import annotations

import pytest

from headflow import params as P
from headflow.config import ConfigError, from_dict, to_dict
from headflow.generators.head2headfs import params as hp


def test_params_yaml_blocks_are_the_demo_presets():
    assert P.load("train_head2headfs") == hp.demo_params()
    assert P.load("finetune_head2headfs") == hp.demo_finetune_params()
    assert P.load("generate_head2headfs") == hp.GenerateHead2HeadFSParams(max_clips=3)


@pytest.mark.parametrize("preset", [hp.tiny_params, hp.demo_params, hp.quality_params, hp.published_params])
def test_presets_round_trip_and_span(preset):
    p = preset()
    assert from_dict(hp.Head2HeadFSParams, to_dict(p), "train_head2headfs") == p
    d = p.discriminator
    # D^V's coarsest scale spans (K - 1) * 2^(S - 1) + 1 frames
    assert d.frames_needed == (d.window - 1) * 2 ** (d.time_scales - 1) + 1


def test_published_is_the_papers_configuration():
    p = hp.published_params()
    assert (p.model.image_size, p.model.n_f, p.model.ngf, p.discriminator.time_scales) == (256, 512, 64, 3)
    assert (p.loss.vgg, p.loss.feat, p.loss.mask, p.loss.match) == (10, 10, 10, 10) and p.loop.epochs == 20
    assert hp.FinetuneHead2HeadFSParams().loop.epochs == 15


def test_bad_values_name_the_key():
    raw = to_dict(hp.demo_params())
    raw["model"]["image_size"] = 50                      # not divisible by 2^n_downsample = 4
    with pytest.raises(ConfigError, match="image_size"):
        from_dict(hp.Head2HeadFSParams, raw, "train_head2headfs")
    with pytest.raises(ConfigError, match="frames"):
        from_dict(hp.FinetuneHead2HeadFSParams, {"frames": 10, "min_frames": 50}, "finetune_head2headfs")
