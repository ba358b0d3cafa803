"""The stylemap family's params: presets, the published sizes, strict loading, params.yaml = the demo."""

from __future__ import annotations

import pytest

from headflow.config import ConfigError, from_dict, to_dict
from headflow.generators.stylemap import params as P


@pytest.mark.parametrize("preset", [P.tiny_params, P.demo_params, P.quality_params, P.published_params])
def test_presets_validate_and_round_trip_through_the_strict_loader(preset):
    p = preset()
    p.validate()
    assert from_dict(P.StylemapParams, to_dict(p), "train_stylemap") == p


def test_published_sizes_are_the_supplement_tables():
    m = P.published_params().model
    # table 1: 256 -> 64 input, 5 down/up blocks, [1024, 16, 2, 2] volume, 15 keypoints; table 3/4: [32, 16, 64, 64]
    # volumes, 6 ResBlock3d, compressed to 4 channels, k7 masks; table 4: 6 ResBlock2d; width 1 = published widths
    assert (m.image_size, m.kp_input_size, m.kp_blocks, m.kp_depth, m.num_kp) == (256, 64, 5, 16, 15)
    assert (m.volume_channels, m.volume_depth, m.res3d_blocks, m.compress_channels, m.mask_kernel) == (32, 16, 6, 4, 7)
    assert (m.res2d_blocks, m.width, m.composition) == (6, 1.0, "volumes")
    widths = [f().model.width for f in (P.tiny_params, P.demo_params, P.quality_params, P.published_params)]
    assert widths == sorted(widths)


def test_bad_values_are_errors_that_name_the_key():
    with pytest.raises(ConfigError, match="kp_input_size"):
        from_dict(P.StylemapParams, {"model": {"kp_input_size": 60}}, "train_stylemap")
    with pytest.raises(ConfigError, match="composition"):
        from_dict(P.StylemapParams, {"model": {"composition": "average"}}, "train_stylemap")
    with pytest.raises(ConfigError, match="mask_kernel"):
        from_dict(P.StylemapParams, {"model": {"mask_kernel": 4}}, "train_stylemap")


def test_params_yaml_blocks_are_the_demo_configuration(project_root):
    from headflow import params

    assert params.load("train_stylemap", project_root / "params.yaml") == P.demo_params()
    assert params.load("generate_stylemap", project_root / "params.yaml") == P.GenerateStylemapParams()
