"""The generator: modulated convolution, DM vs NM wiring, shapes, the exported file."""

from __future__ import annotations

import pytest
import torch

from headflow.generators.discohead.model import (DisCoHeadGenerator, MotionAwareEncoder, ModulatedResBlock,
                                                 load_generator, save_generator)
from headflow.generators.discohead.params import _with, tiny_params
from headflow.nn.modconv import ModulatedConv2d


def test_demodulated_modconv_has_unit_output_variance():
    # Demodulation (eq. 11) makes sum_{i,k} w'_ijk^2 = 1 - eps/(...) ~ 1 for every output channel j, so an
    # input of i.i.d. N(0, 1) entries gives outputs of variance ~1 whatever the style; interior pixels only
    # (the zero padding lowers the border's variance). 4 x 28 x 28 = 3136 samples per channel: the
    # variance's standard error is ~sqrt(2 / 3136) = 0.025, so the channel mean is within ~0.01 of 1.
    torch.manual_seed(0)
    conv = ModulatedConv2d(64, 16, 3, style_dim=8, bias=False)
    with torch.no_grad():
        conv.affine.weight.mul_(5)                      # strong, varied styles: scales far from 1
        y = conv(torch.randn(4, 64, 30, 30), torch.randn(4, 8))[:, :, 1:-1, 1:-1]
    var = y.var(dim=(0, 2, 3))
    assert var.mean().item() == pytest.approx(1.0, abs=0.05)
    assert (var - 1).abs().max().item() < 0.15
    plain = ModulatedConv2d(64, 16, 3, style_dim=8, bias=False, demodulate=False)
    with torch.no_grad():
        plain.load_state_dict(conv.state_dict())
        y2 = plain(torch.randn(4, 64, 30, 30), torch.randn(4, 8))[:, :, 1:-1, 1:-1]
    assert abs(y2.var().item() - 1) > 0.5              # without demodulation the style's scale shows


def test_decoder_blocks_are_demodulated_modconvs():
    g = DisCoHeadGenerator(tiny_params().model)
    blocks = [b for b in g.decoder.blocks]
    assert len(blocks) == tiny_params().model.mod_blocks and all(isinstance(b, ModulatedResBlock) for b in blocks)
    assert all(b.conv1.demodulate and b.conv2.demodulate for b in blocks)
    assert len(DisCoHeadGenerator(_with(tiny_params(), model={"mod_blocks": 6}).model).decoder.blocks) == 6


def _encoder(kind: str) -> tuple[MotionAwareEncoder, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    enc = MotionAwareEncoder(_with(tiny_params(), model={"encoder": kind}).model).eval()
    s, st = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    theta = torch.tensor([[[0.9, 0.1, 0.1], [-0.1, 0.9, -0.05]]]).expand(2, 2, 3)
    coarse = torch.nn.functional.affine_grid(theta, [2, 1, 4, 4], align_corners=True)
    return enc, s, st, coarse


def test_neural_mix_is_confidence_times_feature():
    # NM (eq. 9-10): F_A = F, so E = C * F, and there is no motion-mask head.
    enc, s, st, coarse = _encoder("neural_mix")
    assert enc.motion_mask is None
    with torch.no_grad():
        out = enc(s, st, None)
    assert out["motion_mask"] is None and out["flow"] is None
    assert torch.equal(out["encoded"], out["confidence"] * out["feature"])


@pytest.mark.parametrize("mask_logit, expect", [(-30.0, "identity"), (30.0, "coarse")])
def test_dense_motion_mixes_identity_and_coarse_flow(mask_logit, expect):
    # DM (eq. 7-8): M = 0 gives O_P = O_I (F unwarped), M = 1 gives O_P = O_T (F warped by the transformation).
    enc, s, st, coarse = _encoder("dense_motion")
    with torch.no_grad():
        enc.motion_mask.weight.zero_()
        enc.motion_mask.bias.fill_(mask_logit)
        out = enc(s, st, coarse)
    f, c = out["feature"], out["confidence"]
    if expect == "identity":
        assert torch.allclose(out["encoded"], c * f, atol=1e-5)
    else:
        warped = torch.nn.functional.grid_sample(f, coarse, align_corners=True)
        assert torch.allclose(out["encoded"], c * warped, atol=1e-5)
        assert not torch.allclose(out["encoded"], c * f, atol=1e-3)


def test_dense_motion_uses_the_driver_pose_and_neural_mix_does_not_warp():
    dm = DisCoHeadGenerator(_with(tiny_params(), model={"encoder": "dense_motion"}).model)
    nm = DisCoHeadGenerator(_with(tiny_params(), model={"encoder": "neural_mix"}).model)
    assert "encoder.motion_mask.weight" in dm.state_dict() and "encoder.motion_mask.weight" not in nm.state_dict()


@pytest.mark.parametrize("kind", ["affine", "tps"])
def test_generator_shapes_and_gradients(kind):
    p = _with(tiny_params(), model={"head_motion": kind})
    g = DisCoHeadGenerator(p.model)
    x = torch.rand(2, 3, 32, 32)
    out = g(x, x.flip(0), x, torch.randn(2, 32, 80))
    assert out.image.shape == (2, 3, 32, 32) and out.transformed.shape == (2, 3, 32, 32)
    assert 0 <= out.image.min() and out.image.max() <= 1
    out.image.mean().backward()
    assert all(q.grad is not None for n, q in g.head_motion.named_parameters() if n.endswith("weight"))


def test_inputs_of_another_size_are_an_error():
    g = DisCoHeadGenerator(tiny_params().model)
    with pytest.raises(ValueError, match=r"driver must be \(B, 3, 32, 32\).*got \(1, 3, 64, 64\)"):
        g(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 64, 64), torch.rand(1, 3, 32, 32), torch.randn(1, 32, 80))
    with pytest.raises(ValueError, match="400 ms"):
        g(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), torch.randn(1, 16, 80))


def test_exported_generator_round_trip_and_width_mismatch(tmp_path):
    p = tiny_params()
    g = DisCoHeadGenerator(p.model)
    sha = save_generator(g, p, tmp_path / "generator.pt")
    assert len(sha) == 64
    loaded, saved = load_generator(tmp_path / "generator.pt")
    assert all(torch.equal(a, b) for a, b in zip(g.state_dict().values(), loaded.state_dict().values()))
    wider = _with(p, model={"width": 0.125}).model
    with pytest.raises(ValueError, match=r"width.*0\.0625.*0\.125"):
        load_generator(tmp_path / "generator.pt", model=wider)
    with pytest.raises(FileNotFoundError, match="dvc repro train_discohead"):
        load_generator(tmp_path / "missing.pt")
