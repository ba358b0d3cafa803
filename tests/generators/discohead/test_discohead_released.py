"""The released DisCoHead checkpoint's layout loads strictly (tested on a random state dict; no weights here)."""

from __future__ import annotations

import pytest
import torch

from headflow.generators.discohead.released import ReleasedDisCoHead, load_released

# Names and shapes read off the authors' code (deepbrainai-research/discohead, config_grid.py: one affine,
# no scale, 6 modulated blocks, no Gaussian input): each wrapper (conv2d, linear, lstm) keeps its torch
# layer under .conv / .linear / .lstm; the blur kernels and coordinate grids are buffers.
RELEASED = {
    "down_sampler.weight": (3, 1, 13, 13),                        # sigma 1.5, kernel 2 round(6) + 1
    "head_predictor.extractor.encoder.down_blocks.0.conv.conv.conv.weight": (64, 3, 3, 3),
    "head_predictor.extractor.encoder.down_blocks.4.conv.conv.conv.weight": (1024, 512, 3, 3),
    "head_predictor.extractor.decoder.up_blocks.0.conv.conv.conv.weight": (512, 1024, 3, 3),
    "head_predictor.extractor.decoder.up_blocks.4.conv.conv.conv.weight": (32, 128, 3, 3),
    "head_predictor.predictor.conv.weight": (1, 35, 7, 7),        # out_filters = 32 + 3
    "head_predictor.grid": (64, 64, 2),
    "head_predictor.identity": (3, 3),
    "eyes_encoder.down.weight": (3, 1, 5, 5),                     # sigma 0.5, kernel 5
    "eyes_encoder.encoder.4.conv.bn.running_var": (64,),
    "eyes_encoder.predictor.2.linear.weight": (8, 32),
    "audio_encoder.encoder.0.conv.weight": (512, 192, 3),
    "audio_encoder.rnn.lstm.weight_hh_l0": (2048, 512),
    "audio_encoder.decoder.2.linear.weight": (256, 256),
    "generator.encoder.0.conv.conv.weight": (64, 6, 7, 7),
    "generator.encoder.3.conv.conv.conv.weight": (512, 256, 3, 3),
    "generator.mask_predictor.conv.weight": (2, 512, 5, 5),
    "generator.feature_predictor.conv.weight": (512, 512, 5, 5),
    "generator.occlusion_predictor.conv.weight": (1, 512, 5, 5),
    "generator.bottleneck.5.block.1.weight": (1, 512, 512, 3, 3),
    "generator.bottleneck.0.block.0.mod.linear.weight": (512, 264),   # 8 eye + 256 audio
    "generator.decoder.3.conv.weight": (3, 64, 7, 7),
    "generator.homo_full_grid": (256, 256, 3),
    "generator.homo_grid": (32, 32, 3),
}


def test_layout_has_the_released_names_and_shapes():
    own = {k: tuple(v.shape) for k, v in ReleasedDisCoHead().state_dict().items()}
    assert {k: own.get(k) for k in RELEASED} == RELEASED
    assert sum(k.endswith(".block.0.weight") or k.endswith(".block.1.weight") for k in own) == 12


@pytest.mark.slow      # saves and loads the full-size state dict twice
def test_a_random_state_dict_with_released_names_loads_strictly(tmp_path):
    g = torch.Generator().manual_seed(0)
    state = {k: (torch.randn(v.shape, generator=g) if v.is_floating_point() else v)
             for k, v in ReleasedDisCoHead().state_dict().items()}
    torch.save({"model": state}, tmp_path / "grid.pt")
    net = load_released(tmp_path / "grid.pt")
    assert torch.equal(net.state_dict()["generator.bottleneck.5.block.1.weight"],
                       state["generator.bottleneck.5.block.1.weight"])
    state["generator.mask_predictor.conv.weight"] = torch.zeros(3, 512, 5, 5)      # e.g. two affines
    del state["audio_encoder.decoder.2.linear.bias"]
    torch.save(state, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"missing \['audio_encoder.decoder.2.linear.bias'\].*mask_predictor"):
        load_released(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        load_released(tmp_path / "absent.pt")


@pytest.mark.slow      # one 256x256 frame through the 512-channel network
def test_released_network_runs_on_a_256_frame():
    torch.manual_seed(0)
    net = ReleasedDisCoHead().eval()
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        out = net(x, x, x, torch.randn(1, 192, 16))
    assert out.shape == (1, 3, 256, 256) and 0 < out.min() and out.max() < 1
    with pytest.raises(ValueError, match="192"):
        net(x, x, x, torch.randn(1, 80, 16))
