"""The warping network, the full generator, the equivariance term and the generator file of the stylemap family."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from headflow.generators.stylemap.data import RandomTransform
from headflow.generators.stylemap.keypoints import rotation_matrix
from headflow.generators.stylemap.losses import equivariance_loss, head_pose_loss, keypoint_prior
from headflow.generators.stylemap.model import (StylemapGenerator, WarpingNetwork, check_images, compose,
                                                load_generator, save_generator, volume_bytes)
from headflow.generators.stylemap.params import published_params, tiny_params
from headflow.nn.warp import keypoint_warp_grids, warp_volume


def _pose(b: int, k: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    kp = torch.rand(b, k, 3, generator=g) * 1.6 - 0.8
    rot = rotation_matrix(torch.rand(b, 3, generator=g) * 40 - 20)
    return kp, rot


@pytest.mark.parametrize("how", ["volumes", "flows"])
def test_identity_first_order_warp_returns_the_input_volume(how):
    # w_k(p) = R R^-1 (p - C_k) + C_k = p when source and driving keypoints and rotations are equal
    torch.manual_seed(0)
    volume = torch.rand(2, 3, 4, 8, 8)
    kp, rot = _pose(2, 5)
    grids = keypoint_warp_grids(kp, kp, rot, rot, (4, 8, 8))
    warped = warp_volume(volume, grids)                              # (B, K + 1, C, D, H, W)
    assert torch.allclose(warped, volume[:, None].expand_as(warped), atol=1e-5)
    masks = torch.softmax(torch.randn(2, 6, 4, 8, 8), dim=1)
    assert torch.allclose(compose(volume, grids, masks, how), volume, atol=1e-5)


def test_a_shifted_keypoint_moves_the_volume():
    # driving keypoint 1 voxel (2/7 normalised on W = 8) right of the source's, R = I: w(p) = p - shift,
    # so the warped volume at column x shows the source's column x - 1
    volume = torch.rand(1, 2, 2, 8, 8)
    eye = torch.eye(3)[None]
    src = torch.zeros(1, 1, 3)
    drv = src + torch.tensor([[[2 / 7, 0.0, 0.0]]])
    out = warp_volume(volume, keypoint_warp_grids(src, drv, eye, eye, (2, 8, 8), include_identity=False))[:, 0]
    assert torch.allclose(out[..., 1:], volume[..., :-1], atol=1e-5)


def test_warping_network_masks_sum_to_one_and_identity_pose_keeps_the_volume():
    p = tiny_params().model
    net = WarpingNetwork(p).eval()
    side = p.image_size // 4
    volume = torch.rand(2, 4, p.volume_depth, side, side)
    kp, rot = _pose(2, p.num_kp, seed=1)
    kp_d, rot_d = _pose(2, p.num_kp, seed=2)
    out = net(volume, kp, kp_d, rot, rot_d)
    assert out.masks.shape == (2, p.num_kp + 1, p.volume_depth, side, side)
    assert torch.allclose(out.masks.sum(1), torch.ones(2, p.volume_depth, side, side), atol=1e-5)
    assert out.masks.min() >= 0 and out.masks.max() <= 1
    assert out.occlusion.shape == (2, 1, side, side) and 0 < out.occlusion.min() and out.occlusion.max() < 1
    same = net(volume, kp, kp, rot, rot)
    assert torch.allclose(same.volume, volume, atol=1e-5)


def test_generator_end_to_end_shapes_and_range():
    p = tiny_params().model
    g = StylemapGenerator(p)
    s = p.image_size
    out = g(torch.rand(2, 3, s, s), torch.rand(2, 3, s, s))
    assert out.image.shape == (2, 3, s, s) and 0 <= out.image.min() and out.image.max() <= 1
    assert out.kp_source.shape == out.kp_driving.shape == (2, p.num_kp, 3)
    out.image.mean().backward()
    assert all(q.grad is not None for q in g.keypoints.parameters())


def test_images_of_another_size_are_refused_with_both_sizes():
    p = tiny_params().model
    g = StylemapGenerator(p)
    with pytest.raises(ValueError, match=rf"\(B, 3, {p.image_size}, {p.image_size}\).*\(1, 3, 40, 40\)"):
        g(torch.rand(1, 3, 40, 40), torch.rand(1, 3, 40, 40))
    with pytest.raises(ValueError, match="aspect"):
        check_images(torch.rand(1, 3, p.image_size, p.image_size + 4), p.image_size, "reference")


def _blob(q: torch.Tensor, size: int = 64, sigma: float = 0.05) -> torch.Tensor:
    ys = torch.linspace(-1, 1, size)
    gy, gx = torch.meshgrid(ys, ys, indexing="ij")
    return torch.exp(-((gx - q[0]) ** 2 + (gy - q[1]) ** 2) / (2 * sigma ** 2))[None, None]


def _centroid(img: torch.Tensor) -> torch.Tensor:
    size = img.shape[-1]
    ys = torch.linspace(-1, 1, size)
    gy, gx = torch.meshgrid(ys, ys, indexing="ij")
    w = img[0, 0] / img[0, 0].sum()
    return torch.stack([(w * gx).sum(), (w * gy).sum()])[None, None]      # (1, 1, 2)


def test_equivariance_is_zero_for_an_equivariant_detector_on_a_known_warp():
    # A blob at q; T = a rotation of 8 degrees, a shift of (0.15, -0.1) and small TPS weights. The blob
    # of warp(image) sits at T^-1(q), so its centroid c' satisfies T(c') = q: the term is ~0 (grid and
    # blob-shape error only); a detector that ignores the warp (c' = q) gets |q - T(q)| >= the shift.
    q = torch.tensor([0.1, -0.2])
    a = torch.deg2rad(torch.tensor(8.0))
    theta = torch.tensor([[[torch.cos(a), -torch.sin(a), 0.15], [torch.sin(a), torch.cos(a), -0.1]]])
    weights = 0.003 * torch.randn(1, 25, 2, generator=torch.Generator().manual_seed(0))
    t = RandomTransform.from_tensors(theta, weights)
    image = _blob(q)
    kp, kp_warped = _centroid(image), _centroid(t.warp(image))
    assert float(equivariance_loss(kp, kp_warped, t)) < 0.01
    assert float(equivariance_loss(kp, kp, t)) > 0.05


def test_identity_transform_is_the_identity():
    t = RandomTransform.from_tensors(torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]]), torch.zeros(1, 25, 2))
    img = torch.rand(1, 3, 16, 16)
    assert torch.allclose(t.warp(img), img, atol=1e-5)


def test_keypoint_prior_known_values():
    # two keypoints on top of each other at depth 0.33: 2 ordered pairs x (0.1 - 0) = 0.2, depth term 0
    same = torch.tensor([[[0.0, 0.0, 0.33], [0.0, 0.0, 0.33]]])
    assert float(keypoint_prior(same)) == pytest.approx(0.2, abs=1e-6)
    # far apart (squared distance 1 > 0.1) at mean depth 0.13: only |0.13 - 0.33| = 0.2
    far = torch.tensor([[[0.0, 0.0, 0.13], [1.0, 0.0, 0.13]]])
    assert float(keypoint_prior(far)) == pytest.approx(0.2, abs=1e-6)


def test_head_pose_loss_is_in_radians():
    # |30 - 0| degrees on one of three angles: mean 10 degrees = 0.17453 rad
    assert float(head_pose_loss(torch.tensor([[30.0, 0, 0]]), torch.zeros(1, 3))) == pytest.approx(0.174533, abs=1e-5)


def test_published_volume_memory():
    # F_s: 32 x 16 x 64 x 64 floats x 4 bytes = 8 MiB; the 16 warped copies ("volumes" composition) 128 MiB;
    # the hourglass input 16 x 5 x 16 x 64 x 64 x 4 = 20 MiB
    mem = volume_bytes(published_params().model)
    assert mem["feature_volume"] == 8 * 2 ** 20 and mem["warped_volumes"] == 128 * 2 ** 20
    assert mem["hourglass_input"] == 20 * 2 ** 20


def test_generator_file_round_trip_and_width_mismatch(tmp_path):
    params = tiny_params()
    g = StylemapGenerator(params.model)
    save_generator(g, params, tmp_path / "generator.pt", {"mean_pose": [1.0, 2.0, 3.0]})
    loaded, meta = load_generator(tmp_path / "generator.pt", params.model)
    assert meta["mean_pose"] == [1.0, 2.0, 3.0]
    for k, v in g.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    wider = dataclasses.replace(params.model, width=0.125)
    with pytest.raises(ValueError, match=r"width: checkpoint 0\.0625 vs expected 0\.125"):
        load_generator(tmp_path / "generator.pt", wider)
