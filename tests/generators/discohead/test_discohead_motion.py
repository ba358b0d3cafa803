"""The head-motion predictor: affine from a heatmap (eq. 1-3) and the TPS of keypoints (eq. 4-5)."""

from __future__ import annotations

import math

import pytest
import torch

from headflow.generators.discohead.motion import (HeadMotionPredictor, affine_from_heatmap, heatmap_moments,
                                                  principal_axes, source_from_driver, tps_grid)
from headflow.generators.discohead.params import _with, tiny_params
from headflow.nn.warp import make_coordinate_grid, tps_warp


def rotation(deg: float) -> torch.Tensor:
    r = math.radians(deg)
    return torch.tensor([[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]], dtype=torch.float64)


def gaussian_heatmap(mean, cov, size: int = 97) -> torch.Tensor:
    """A sampled 2D Gaussian over the normalised grid, normalised to sum 1: (1, size, size) float64."""
    grid = make_coordinate_grid((size, size), like=torch.zeros((), dtype=torch.float64))
    d = grid - torch.as_tensor(mean, dtype=torch.float64)
    q = torch.einsum("hwi,ij,hwj->hw", d, torch.linalg.inv(cov), d)
    h = torch.exp(-0.5 * q)
    return (h / h.sum())[None]


def test_known_gaussian_gives_its_mean_covariance_and_axes():
    # Sigma = R(30 deg) diag(0.04, 0.01) R^T: std 0.2 / 0.1 in normalised units, so the tails beyond [-1, 1]
    # (> 4 sigma from the mean (0.2, -0.1)) are negligible and the grid spacing 2/96 adds only h^2/12 ~ 4e-5.
    cov = rotation(30) @ torch.diag(torch.tensor([0.04, 0.01], dtype=torch.float64)) @ rotation(30).T
    h = gaussian_heatmap((0.2, -0.1), cov)
    t, c = heatmap_moments(h)
    assert torch.allclose(t[0], torch.tensor([0.2, -0.1], dtype=torch.float64), atol=1e-4)
    assert torch.allclose(c[0], cov, atol=2e-4)
    u, s = principal_axes(c)
    assert torch.allclose(s[0], torch.tensor([0.04, 0.01], dtype=torch.float64), atol=2e-4)
    # the major axis is (cos 30, sin 30), already pointing to +y; U is a rotation (det +1)
    assert torch.allclose(u[0, :, 0], torch.tensor([math.cos(math.radians(30)), 0.5], dtype=torch.float64), atol=1e-3)
    assert torch.linalg.det(u[0]).item() == pytest.approx(1.0, abs=1e-6)   # 1 - eps^2 / |v|^2
    a = affine_from_heatmap(h)[0]
    assert torch.allclose(a[:, 2], t[0])                          # translation t (eq. 1)
    assert torch.allclose(a[:, :2] @ a[:, :2].T, cov, atol=2e-4)  # (U S^1/2)(U S^1/2)^T = U S U^T = Sigma


def test_source_from_driver_recovers_a_rotation_and_shift():
    # The driver shows the source's Gaussian rotated by 20 degrees about its mean and moved: a driver point
    # p_d corresponds to the source point R(-20)(p_d - t_d) + t_s, which A_{S<-D} (eq. 3) must return.
    base = rotation(30) @ torch.diag(torch.tensor([0.04, 0.01], dtype=torch.float64)) @ rotation(30).T
    t_s, t_d = torch.tensor([0.1, 0.05], dtype=torch.float64), torch.tensor([-0.15, 0.1], dtype=torch.float64)
    h_s = gaussian_heatmap(t_s, base)
    h_d = gaussian_heatmap(t_d, rotation(20) @ base @ rotation(20).T)
    theta = source_from_driver(affine_from_heatmap(h_s), affine_from_heatmap(h_d))[0]
    expect = torch.cat([rotation(-20), (t_s - rotation(-20) @ t_d)[:, None]], dim=1)
    assert torch.allclose(theta, expect, atol=5e-3)


def test_isotropic_heatmap_has_finite_gradients():
    # A uniform heatmap has equal singular values, where torch.linalg.svd's gradient is infinite.
    logits = torch.zeros(1, 16, 16, requires_grad=True)
    h = torch.softmax(logits.flatten(1), -1).view(1, 16, 16)
    affine_from_heatmap(h).sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_tps_interpolates_its_own_keypoints():
    # On a 9x9 grid the normalised coordinates are multiples of 0.25: put the driver keypoints on grid
    # points, so the grid's value there is T(P^D_i), which must be the source keypoint P^S_i (eq. 4).
    g = torch.Generator().manual_seed(0)
    ij = torch.tensor([[1, 1], [7, 2], [4, 4], [2, 6], [6, 7], [0, 8]])          # (x index, y index)
    kp_drv = (ij.double() * 0.25 - 1)[None]
    kp_src = (kp_drv + 0.15 * torch.randn(kp_drv.shape, generator=g, dtype=torch.float64)).clamp(-1, 1)
    grid = tps_grid(kp_src, kp_drv, (9, 9))
    at_kp = grid[0, ij[:, 1], ij[:, 0]]
    assert torch.allclose(at_kp, kp_src[0], atol=1e-6)
    same = tps_grid(kp_drv, kp_drv, (9, 9))                                         # identical sets: identity
    assert torch.allclose(same[0], make_coordinate_grid((9, 9), like=kp_drv), atol=1e-6)


def test_tps_grid_is_the_shared_tps_warp():
    g = torch.Generator().manual_seed(1)
    img = torch.rand(1, 3, 16, 16, generator=g)
    kp_drv = torch.tensor([[[-0.5, -0.5], [0.5, -0.4], [0.0, 0.1], [-0.4, 0.6], [0.6, 0.5]]])
    kp_src = kp_drv + 0.1 * torch.randn(kp_drv.shape, generator=g)
    grid = tps_grid(kp_src, kp_drv, (16, 16))
    ours = torch.nn.functional.grid_sample(img, grid, align_corners=True)
    assert torch.allclose(ours, tps_warp(img, kp_src, kp_drv), atol=1e-4)


@pytest.mark.parametrize("kind", ["affine", "tps"])
def test_predictor_gives_the_identity_for_one_frame(kind):
    # The same frame as source and driver: A_{S<-D} = A A^-1 = I, and the TPS of equal keypoints is the identity.
    p = _with(tiny_params(), model={"head_motion": kind})
    net = HeadMotionPredictor(p.model).eval()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        grid = net.coarse_grid(net(x, x), (8, 8))
    assert torch.allclose(grid, make_coordinate_grid((8, 8)).expand(2, 8, 8, 2), atol=1e-4)
