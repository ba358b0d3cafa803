from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from headflow.nn.modconv import ModulatedConv2d


def test_demodulation_gives_unit_output_std_for_unit_variance_input():
    # y_j = sum_{i,k} w''_jik x_ik with x i.i.d. N(0, 1): Var(y_j) = sum_{i,k} w''_jik^2, and demodulation
    # (StyleGAN2 eq. 3) makes that sum 1 - eps/(sum w'^2 + eps) ~ 1. Interior pixels only (zero padding at
    # the border removes terms); bias is zero at initialisation.
    torch.manual_seed(0)
    layer = ModulatedConv2d(16, 8, 3, style_dim=4, demodulate=True)
    x = torch.randn(3, 16, 64, 64)
    style = 3 * torch.randn(3, 4)  # strong, sample-specific modulation
    with torch.no_grad():
        y = layer(x, style)[:, :, 1:-1, 1:-1]
    std = y.flatten(2).std(dim=2)  # (B, C_out), each from 62 * 62 correlated samples
    assert torch.all((std - 1).abs() < 0.08), std


def test_without_demodulation_the_std_follows_the_modulated_weight_norm():
    torch.manual_seed(1)
    layer = ModulatedConv2d(16, 8, 3, style_dim=4, demodulate=False)
    x = torch.randn(2, 16, 64, 64)
    style = 3 * torch.randn(2, 4)
    with torch.no_grad():
        y = layer(x, style)[:, :, 1:-1, 1:-1]
        expected = layer.modulated_weight(style).pow(2).sum(dim=(2, 3, 4)).sqrt()  # sqrt(sum w'^2)
    std = y.flatten(2).std(dim=2)
    assert torch.all((std / expected - 1).abs() < 0.08)
    assert (expected - 1).abs().max() > 0.3  # so the demodulated test above is not passing by accident


@pytest.mark.parametrize("upsample", [False, True])
@pytest.mark.parametrize("demodulate", [False, True])
def test_grouped_convolution_equals_a_per_sample_loop(upsample, demodulate):
    torch.manual_seed(2)
    layer = ModulatedConv2d(5, 7, 3, style_dim=6, demodulate=demodulate, upsample=upsample)
    with torch.no_grad():
        layer.bias.normal_()
    x, style = torch.randn(4, 5, 9, 11), torch.randn(4, 6)
    out = layer(x, style)
    weights = layer.modulated_weight(style)
    for b in range(4):
        xb = F.interpolate(x[b:b + 1], scale_factor=2.0, mode="bilinear", align_corners=False) if upsample else x[b:b + 1]
        ref = F.conv2d(xb, weights[b], bias=layer.bias, padding=1)
        torch.testing.assert_close(out[b:b + 1], ref, atol=1e-5, rtol=1e-5)
    assert out.shape == ((4, 7, 18, 22) if upsample else (4, 7, 9, 11))


def test_shape_errors():
    layer = ModulatedConv2d(3, 3, 3, style_dim=2)
    with pytest.raises(ValueError, match="style must be"):
        layer(torch.randn(2, 3, 4, 4), torch.randn(3, 2))
    with pytest.raises(ValueError, match="odd"):
        ModulatedConv2d(3, 3, 4, style_dim=2)
