"""The lip-sync family's params: presets, strict loading, validation."""

from __future__ import annotations

import pytest

from headflow.config import ConfigError, from_dict, to_dict
from headflow.generators.lipsync import params as P


@pytest.mark.parametrize("preset", [P.tiny_params, P.demo_params, P.quality_params, P.published_params])
def test_presets_validate_and_round_trip_through_the_strict_loader(preset):
    p = preset()
    p.validate()
    assert from_dict(P.LipsyncParams, to_dict(p), "train_lipsync") == p


def test_sizes_are_ordered_and_the_published_width_is_one():
    widths = [f().model.width for f in (P.tiny_params, P.demo_params, P.quality_params, P.published_params)]
    assert widths == sorted(widths) and widths[-1] == 1.0
    pub = P.published_params()
    # Section 3.7: L1 1, perceptual 0.5, expert 0.01 (stage 2: 0.1), mask 1, adv 0.01, R1 gamma 10, Adam 2e-4, batch 4.
    assert (pub.loss.l1_masked, pub.loss.perceptual, pub.loss.sync, pub.loss.sync_stage2, pub.loss.mask_bce,
            pub.loss.gan, pub.loss.r1_gamma, pub.loop.lr, pub.loop.batch_size) == (1, 0.5, 0.01, 0.1, 1, 0.01, 10, 2e-4, 4)
    assert pub.data.n_references == 10 and pub.data.hull_dilation == 11


def test_unknown_keys_and_bad_values_are_errors_that_name_the_key():
    with pytest.raises(ConfigError, match="model.widht: unknown key.*did you mean 'width'"):
        from_dict(P.LipsyncParams, {"model": {"widht": 0.5}}, "train_lipsync")
    with pytest.raises(ConfigError, match="attention"):
        from_dict(P.LipsyncParams, {"model": {"attention": "softmax"}}, "train_lipsync")
    with pytest.raises(ConfigError, match="hull_dilation: got 10; allowed: an odd kernel size"):
        from_dict(P.LipsyncParams, {"data": {"hull_dilation": 10}}, "train_lipsync")
    with pytest.raises(ConfigError, match="d_augment: got 'affine,flip'"):
        from_dict(P.LipsyncParams, {"loss": {"d_augment": "affine,flip"}}, "train_lipsync")
    loop = to_dict(P.lipsync_loop())
    with pytest.raises(ConfigError, match="samples_per_epoch"):
        from_dict(P.LipsyncParams, {"samples_per_epoch": 2, "loop": {**loop, "batch_size": 4}}, "train_lipsync")
    with pytest.raises(ValueError, match="loop.lr"):             # the harness's LoopConfig.validate
        from_dict(P.LipsyncParams, {"loop": {**loop, "lr": 0.0}}, "train_lipsync")


def test_params_yaml_block_is_the_demo_configuration(project_root):
    from headflow import params

    assert params.load("train_lipsync", project_root / "params.yaml") == P.demo_params()
