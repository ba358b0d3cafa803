from __future__ import annotations

import pytest
import torch

from headflow.losses.image import image_gradient_l1, masked_l1


def test_masked_l1_averages_only_inside_the_mask():
    pred = torch.zeros(2, 3, 4, 4)
    target = torch.full((2, 3, 4, 4), 5.0)
    mask = torch.zeros(2, 1, 4, 4)
    mask[:, :, 2:, :] = 1.0  # lower half
    target[:, :, 2:, :] = 1.0  # error 1 inside the mask, 5 outside
    assert masked_l1(pred, target, mask).item() == pytest.approx(1.0)
    # per-channel mask: only channel 0 of sample 0, where the error is 2
    target[0, 0] = 2.0
    mask_c = torch.zeros(2, 3, 4, 4)
    mask_c[0, 0] = 1.0
    assert masked_l1(pred, target, mask_c).item() == pytest.approx(2.0)


def test_masked_l1_soft_and_empty_masks():
    pred, target = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 2.0)
    # a uniform soft mask 0.5: (0.5 * 2 * N) / (0.5 * N) = 2
    assert masked_l1(pred, target, torch.full((1, 1, 4, 4), 0.5)).item() == pytest.approx(2.0)
    assert masked_l1(pred, target, torch.zeros(1, 1, 4, 4)).item() == 0.0


def test_masked_l1_weighs_samples_by_their_mask_area():
    pred = torch.zeros(2, 1, 2, 2)
    target = torch.stack([torch.full((1, 2, 2), 1.0), torch.full((1, 2, 2), 4.0)])
    mask = torch.zeros(2, 1, 2, 2)
    mask[0] = 1.0  # 4 pixels with error 1
    mask[1, 0, 0, 0] = 1.0  # 1 pixel with error 4
    assert masked_l1(pred, target, mask).item() == pytest.approx((4 * 1 + 1 * 4) / 5)


def test_masked_l1_shape_errors():
    with pytest.raises(ValueError, match="mask must be"):
        masked_l1(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 4, 4))


def test_gradient_l1_ignores_offsets_and_measures_ramps():
    torch.manual_seed(0)
    target = torch.rand(2, 3, 6, 7)
    assert image_gradient_l1(target + 3.0, target).item() == pytest.approx(0.0, abs=1e-6)
    # pred = horizontal ramp x (dx = 1, dy = 0), target = 0: mean|1| + mean|0| = 1
    ramp = torch.arange(7.0).expand(2, 3, 6, 7)
    assert image_gradient_l1(ramp, torch.zeros(2, 3, 6, 7)).item() == pytest.approx(1.0)
    # a vertical ramp with step 2 adds 2 through dy
    vramp = 2 * torch.arange(6.0).view(6, 1).expand(2, 3, 6, 7)
    assert image_gradient_l1(ramp + vramp, torch.zeros(2, 3, 6, 7)).item() == pytest.approx(3.0)
    with pytest.raises(ValueError, match="H, W >= 2"):
        image_gradient_l1(torch.zeros(1, 1, 1, 5), torch.zeros(1, 1, 1, 5))
