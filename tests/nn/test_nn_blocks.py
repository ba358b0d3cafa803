from __future__ import annotations

import pytest
import torch

from headflow.nn.blocks import AdaIN, ConvNormAct, DownBlock, ResBlock, SameBlock, UpBlock, adain_to_instance_norm


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("norm", ["batch", "instance", "adain", "none"])
@pytest.mark.parametrize("sample", ["none", "down", "up"])
def test_conv_norm_act_shapes(dims, norm, sample):
    torch.manual_seed(0)
    block = ConvNormAct(4, 6, 3, norm=norm, act="leaky_relu", sample=sample, dims=dims,
                        style_dim=5 if norm == "adain" else None)
    x = torch.randn(2, 4, *((3, 8, 8) if dims == 3 else (8, 8)))
    y = block(x, torch.randn(2, 5) if norm == "adain" else None)
    hw = {"none": 8, "down": 4, "up": 16}[sample]
    # 3D sampling is spatial only (face-vid2vid pools (1, 2, 2)): depth 3 stays 3
    assert y.shape == ((2, 6, 3, hw, hw) if dims == 3 else (2, 6, hw, hw))


def test_conv_norm_act_style_rules():
    with pytest.raises(ValueError, match="style_dim"):
        ConvNormAct(3, 3, norm="adain")
    with pytest.raises(ValueError, match="norm must be one of"):
        ConvNormAct(3, 3, norm="group")
    plain, adain = ConvNormAct(3, 3, norm="instance"), ConvNormAct(3, 3, norm="adain", style_dim=2)
    x = torch.randn(1, 3, 4, 4)
    with pytest.raises(ValueError, match="not accepted"):
        plain(x, torch.randn(1, 2))
    with pytest.raises(ValueError, match="required"):
        adain(x)


def test_adain_sets_the_statistics_predicted_from_the_style():
    torch.manual_seed(0)
    layer = AdaIN(3, style_dim=2)
    with torch.no_grad():  # gamma(s) = s_0 + 1 (bias 1), beta(s) = 2 s_1 for every channel
        layer.to_gamma.weight.zero_()
        layer.to_gamma.weight[:, 0] = 1.0
        layer.to_beta.weight.zero_()
        layer.to_beta.weight[:, 1] = 2.0
    x = 5 * torch.randn(2, 3, 16, 16) + 7
    style = torch.tensor([[2.0, -1.0], [0.5, 3.0]])
    y = layer(x, style)
    # instance norm gives mean 0, std 1 per (sample, channel); then std = gamma, mean = beta:
    # sample 0: gamma 3, beta -2; sample 1: gamma 1.5, beta 6
    torch.testing.assert_close(y.mean(dim=(2, 3)), torch.tensor([[-2.0] * 3, [6.0] * 3]), atol=1e-4, rtol=0)
    torch.testing.assert_close(y.std(dim=(2, 3), unbiased=False), torch.tensor([[3.0] * 3, [1.5] * 3]),
                               atol=1e-3, rtol=0)


def test_adain_to_instance_norm_matches_for_the_fixed_style():
    torch.manual_seed(1)
    layer = AdaIN(4, style_dim=6, dims=3)
    style = torch.randn(6)
    x = torch.randn(1, 4, 2, 5, 5)
    frozen = layer.to_instance_norm(style)
    torch.testing.assert_close(frozen(x), layer(x, style[None]), atol=1e-5, rtol=1e-5)
    assert frozen.weight.requires_grad  # fine-tuning trains gamma, beta directly (Head2HeadFS)


def test_adain_network_converts_to_instance_norm_for_fine_tuning():
    torch.manual_seed(2)
    net = torch.nn.ModuleList([ConvNormAct(3, 4, norm="adain", style_dim=5), ResBlock(4, norm="adain", style_dim=5)])
    net.eval()
    h_new, x = torch.randn(5), torch.randn(1, 3, 6, 6)
    with torch.no_grad():
        before = net[1](net[0](x, h_new[None]), h_new[None])
    assert adain_to_instance_norm(net, h_new) == 3
    after = net[1](net[0](x))  # no style any more
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)


def test_resblock_skip_is_the_identity_when_the_residual_branch_is_zero():
    torch.manual_seed(0)
    block = ResBlock(5, norm="none")
    with torch.no_grad():
        block.conv2.conv.weight.zero_()
        block.conv2.conv.bias.zero_()
    x = torch.randn(2, 5, 6, 6)
    torch.testing.assert_close(block(x), x)
    wider = ResBlock(5, 8, norm="adain", style_dim=3)
    assert wider(x, torch.randn(2, 3)).shape == (2, 8, 6, 6)


def test_face_vid2vid_presets():
    x2, x3 = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 2, 8, 8)
    assert SameBlock(4, 6)(x2).shape == (1, 6, 8, 8)
    assert DownBlock(4, 6)(x2).shape == (1, 6, 4, 4)
    assert UpBlock(4, 6, dims=3)(x3).shape == (1, 6, 2, 16, 16)
    assert DownBlock(4, 6, dims=3)(x3).shape == (1, 6, 2, 4, 4)
    assert isinstance(UpBlock(4, 6).norm, torch.nn.BatchNorm2d)
