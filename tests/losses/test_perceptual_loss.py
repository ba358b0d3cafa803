from __future__ import annotations

import pytest
import torch

from headflow.losses.image import image_gradient_l1
from headflow.losses.perceptual import PIX2PIXHD_LAYER_WEIGHTS, PerceptualLoss
from headflow.losses.ssim import WANG_WEIGHTS, auto_scales, ms_ssim
from headflow.nn.perceptual import VGG19Features, vgg19_feature_shapes


@pytest.fixture(scope="module")
def test_only_vgg() -> VGG19Features:
    """Random weights with torchvision's names and shapes: for testing the plumbing only."""
    g = torch.Generator().manual_seed(0)
    return VGG19Features({k: torch.randn(s, generator=g) * 0.05 for k, s in vgg19_feature_shapes().items()})


@pytest.mark.parametrize(("size", "scales"), [(256, 5), (161, 5), (160, 4), (96, 4), (64, 3), (48, 3), (32, 2),
                                              (16, 1), (11, 1)])
def test_scale_count_fits_the_smaller_side(size, scales):
    # M scales need side > (11 - 1) * 2^(M - 1) (pytorch-msssim asserts side > 160 for its 5)
    assert auto_scales(size, 300) == scales


def test_too_small_images_are_rejected():
    with pytest.raises(ValueError, match="at least 11x11"):
        ms_ssim(torch.rand(1, 1, 10, 40), torch.rand(1, 1, 10, 40))
    with pytest.raises(ValueError, match="support 1..4 scales"):
        ms_ssim(torch.rand(1, 1, 96, 96), torch.rand(1, 1, 96, 96), scales=5)


def test_ms_ssim_is_one_for_equal_images_and_falls_with_noise():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 96, 96)
    assert ms_ssim(x, x).item() == pytest.approx(1.0, abs=1e-6)
    light = ms_ssim(x, (x + 0.02 * torch.randn_like(x)).clamp(0, 1)).item()
    heavy = ms_ssim(x, (x + 0.2 * torch.randn_like(x)).clamp(0, 1)).item()
    assert 0 < heavy < light < 1


def test_ms_ssim_matches_pytorch_msssim():
    pm = pytest.importorskip("pytorch_msssim")
    torch.manual_seed(0)
    x = torch.rand(2, 3, 176, 168)
    y = (0.7 * x + 0.3 * torch.rand_like(x)).clamp(0, 1)
    ref = pm.ms_ssim(x, y, data_range=1.0, size_average=False)
    torch.testing.assert_close(ms_ssim(x, y, reduction="none"), ref, atol=1e-5, rtol=0)
    # fewer scales = the first weights rescaled to sum 1
    w4 = torch.tensor(WANG_WEIGHTS[:4]) / sum(WANG_WEIGHTS[:4])
    ref4 = pm.ms_ssim(x, y, data_range=1.0, weights=w4.tolist())
    assert ms_ssim(x, y, scales=4).item() == pytest.approx(ref4.item(), abs=1e-5)


def test_weight_free_backend_is_one_minus_ms_ssim_plus_gradient_l1():
    torch.manual_seed(1)
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    loss = PerceptualLoss("weight_free")
    assert loss.name == "weight_free"
    expected = (1 - ms_ssim(x, y)) + image_gradient_l1(x, y)
    assert loss(x, y).item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
    # [-1, 1] inputs are mapped to [0, 1] first
    sym = PerceptualLoss("weight_free", input_range="[-1,1]")
    assert sym(2 * x - 1, 2 * y - 1).item() == pytest.approx(expected.item(), rel=1e-5)


def test_vgg19_backend_needs_a_loaded_network():
    with pytest.raises(ValueError, match="load_vgg19"):
        PerceptualLoss("vgg19")
    with pytest.raises(ValueError, match="backend must be one of"):
        PerceptualLoss("lpips")


def test_vgg19_backend_is_the_weighted_feature_l1(test_only_vgg):
    torch.manual_seed(2)
    loss = PerceptualLoss("vgg19", vgg=test_only_vgg)
    assert loss.name == "vgg19"
    pred = torch.rand(1, 3, 32, 32, requires_grad=True)
    target = torch.rand(1, 3, 32, 32, requires_grad=True)
    value = loss(pred, target)
    fp, ft = test_only_vgg(pred), test_only_vgg(target)
    expected = sum(PIX2PIXHD_LAYER_WEIGHTS[n] * (fp[n] - ft[n]).abs().mean() for n in fp)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    value.backward()
    assert pred.grad.abs().sum() > 0 and target.grad is None  # target features are detached
    assert loss(target.detach(), target.detach()).item() == 0.0


def test_vgg19_layer_weights_select_layers(test_only_vgg):
    torch.manual_seed(3)
    pred, target = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    only = PerceptualLoss("vgg19", vgg=test_only_vgg, layer_weights={"relu2_1": 2.0})
    fp, ft = test_only_vgg(pred, ["relu2_1"]), test_only_vgg(target, ["relu2_1"])
    assert only(pred, target).item() == pytest.approx(2 * (fp["relu2_1"] - ft["relu2_1"]).abs().mean().item(),
                                                      rel=1e-5)
    with pytest.raises(ValueError, match="unknown VGG layers"):
        PerceptualLoss("vgg19", vgg=test_only_vgg, layer_weights={"conv1_1": 1.0})
    with pytest.raises(ValueError, match="input_range"):
        PerceptualLoss("vgg19", vgg=test_only_vgg, input_range="[-1,1]")
