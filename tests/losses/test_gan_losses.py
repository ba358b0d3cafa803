from __future__ import annotations

import math

import pytest
import torch

from headflow.losses.gan import d_loss, feature_matching, g_loss, r1_penalty

REAL = torch.tensor([2.0, 0.5])
FAKE = torch.tensor([-2.0, 0.0])


def _softplus(t: float) -> float:
    return math.log1p(math.exp(t))


@pytest.mark.parametrize(("kind", "d_expected", "g_expected"), [
    # hinge: D = mean(relu(1 - [2, .5])) + mean(relu(1 + [-2, 0])) = 0.25 + 0.5; G = -mean([-2, 0]) = 1
    ("hinge", 0.75, 1.0),
    # non-saturating: D = mean(softplus(-real)) + mean(softplus(fake)); G = mean(softplus(-fake))
    ("non_saturating", (_softplus(-2) + _softplus(-0.5)) / 2 + (_softplus(-2) + _softplus(0)) / 2,
     (_softplus(2) + _softplus(0)) / 2),
    # least squares: D = mean([1, .25]) + mean([4, 0]) = 2.625; G = mean([9, 1]) = 5
    ("least_squares", 2.625, 5.0),
])
def test_known_values(kind, d_expected, g_expected):
    assert d_loss(REAL, FAKE, kind).item() == pytest.approx(d_expected, rel=1e-6)
    assert g_loss(FAKE, kind).item() == pytest.approx(g_expected, rel=1e-6)


@pytest.mark.parametrize("kind", ["hinge", "non_saturating", "least_squares"])
def test_multi_scale_lists_sum_the_scales(kind):
    torch.manual_seed(0)
    r = [torch.randn(2, 1, 4, 4), torch.randn(2, 1, 2, 2)]
    f = [torch.randn(2, 1, 4, 4), torch.randn(2, 1, 2, 2)]
    assert d_loss(r, f, kind).item() == pytest.approx((d_loss(r[0], f[0], kind) + d_loss(r[1], f[1], kind)).item())
    assert g_loss(f, kind).item() == pytest.approx((g_loss(f[0], kind) + g_loss(f[1], kind)).item())


def test_bad_kind_and_mismatched_scales():
    with pytest.raises(ValueError, match="unknown GAN loss kind"):
        d_loss(REAL, FAKE, "wasserstein")
    with pytest.raises(ValueError, match="1 real and 2 fake"):
        d_loss([REAL], [FAKE, FAKE], "hinge")


def test_r1_known_value_and_it_trains_the_discriminator():
    # D(x) = a * sum(x) per sample: grad_x D = a everywhere, ||grad||^2 = a^2 * C*H*W = 4 * 48 = 192, so
    # 0.5 * E||grad||^2 = 96; and d(penalty)/da = a * C*H*W = 96
    a = torch.tensor(2.0, requires_grad=True)
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    logits = a * x.sum(dim=(1, 2, 3))
    penalty = r1_penalty(logits, x)
    assert penalty.item() == pytest.approx(96.0)
    penalty.backward()
    assert a.grad.item() == pytest.approx(96.0)


def test_r1_sums_patch_maps_and_scales_per_sample():
    # D(x) = x^2 as a patch map, twice (two scales): the summed output has grad 4 x, so the penalty is
    # 0.5 * mean_b sum (4 x)^2 = 8 * mean_b sum x^2
    x = torch.randn(3, 1, 2, 2, requires_grad=True)
    penalty = r1_penalty([x.pow(2), x.pow(2)], x)
    expected = 8 * x.detach().pow(2).flatten(1).sum(1).mean()
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-6)


def test_r1_needs_images_that_require_grad():
    with pytest.raises(ValueError, match="requires_grad"):
        r1_penalty(torch.ones(1), torch.ones(1, 1, 2, 2))


def test_feature_matching_known_value_and_real_is_detached():
    real = [torch.ones(1, 2, 2, 2, requires_grad=True), torch.full((1, 1, 1, 1), 3.0, requires_grad=True)]
    fake = [torch.zeros(1, 2, 2, 2, requires_grad=True), torch.zeros(1, 1, 1, 1, requires_grad=True)]
    loss = feature_matching(real, fake)  # |0 - 1| + |0 - 3| = 4
    assert loss.item() == pytest.approx(4.0)
    loss.backward()
    assert real[0].grad is None and fake[0].grad is not None
    # two scales: the mean over scales (pix2pixHD's 1/num_D)
    two = feature_matching([[r.detach() for r in real], [torch.zeros(1, 1)]], [fake, [torch.ones(1, 1)]])
    assert two.item() == pytest.approx((4.0 + 1.0) / 2)


def test_feature_matching_structure_must_match():
    with pytest.raises(ValueError, match="same non-empty structure"):
        feature_matching([torch.zeros(1)], [torch.zeros(1), torch.zeros(1)])
