from __future__ import annotations

import math

import pytest
import torch

from headflow.nn.warp import (affine_warp, keypoint_volume_warp, keypoint_warp_grids, make_coordinate_grid, tps_warp,
                              transform_keypoints, warp_volume)


def _dot_2d(h: int, w: int, row: int, col: int) -> torch.Tensor:
    img = torch.zeros(1, 1, h, w)
    img[0, 0, row, col] = 1.0
    return img


def _argmax_2d(img: torch.Tensor) -> tuple[int, int]:
    i = int(img[0, 0].argmax())
    return i // img.shape[-1], i % img.shape[-1]


def test_coordinate_grid_runs_from_minus_one_to_one_with_x_first():
    g = make_coordinate_grid((3, 5))
    assert g.shape == (3, 5, 2)
    torch.testing.assert_close(g[0, 0], torch.tensor([-1.0, -1.0]))
    torch.testing.assert_close(g[2, 4], torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(g[1, 1], torch.tensor([-0.5, 0.0]))  # x = 2 * 1/4 - 1, y = 2 * 1/2 - 1
    v = make_coordinate_grid((2, 3, 4))
    torch.testing.assert_close(v[1, 0, 0], torch.tensor([-1.0, -1.0, 1.0]))  # depth index 1 of 2 -> z = +1


def test_affine_identity_returns_the_input():
    img = torch.rand(2, 3, 9, 13)
    theta = torch.tensor([[1.0, 0, 0], [0, 1, 0]]).expand(2, 2, 3)
    torch.testing.assert_close(affine_warp(img, theta), img, atol=1e-5, rtol=0)


def test_affine_translation_moves_a_dot_by_the_known_pixels():
    # theta maps output -> input: tx = 2 * 3 / (W - 1) makes output column c read input column c + 3,
    # so the dot at column 10 appears at column 7; ty = -2 * 2 / (H - 1) moves it 2 rows down (8 -> 10).
    h, w = 17, 21
    img = _dot_2d(h, w, 8, 10)
    theta = torch.tensor([[[1.0, 0, 2 * 3 / (w - 1)], [0, 1.0, -2 * 2 / (h - 1)]]])
    out = affine_warp(img, theta)
    assert _argmax_2d(out) == (10, 7)
    assert out.max().item() == pytest.approx(1.0, abs=1e-5)


def test_tps_with_identical_keypoints_is_the_identity():
    torch.manual_seed(0)
    img = torch.rand(2, 3, 24, 20)
    kp = torch.rand(2, 6, 2) * 1.6 - 0.8
    torch.testing.assert_close(tps_warp(img, kp, kp), img, atol=1e-4, rtol=0)


def test_tps_carries_content_from_source_keypoints_to_destination_keypoints():
    # an affine correspondence (every keypoint moved 4 px right, 2 px down) makes the TPS a pure translation
    torch.manual_seed(0)
    h, w = 24, 32
    img = _dot_2d(h, w, 10, 12)
    kp_src = torch.rand(1, 7, 2) * 1.6 - 0.8
    kp_dst = kp_src + torch.tensor([2 * 4 / (w - 1), 2 * 2 / (h - 1)])
    out = tps_warp(img, kp_src, kp_dst)
    assert _argmax_2d(out) == (12, 16)
    assert out.max().item() == pytest.approx(1.0, abs=1e-3)


def test_tps_is_booksteins_spline_from_driver_to_source():
    # scipy's RBFInterpolator with the thin-plate kernel r^2 log r and a degree-1 polynomial is Bookstein's
    # TPS; warping an image of its own coordinates returns T(p) at every pixel (bilinear is exact on a ramp)
    interpolate = pytest.importorskip("scipy.interpolate")
    torch.manual_seed(4)
    h, w = 33, 41
    grid = make_coordinate_grid((h, w))
    coords = grid.permute(2, 0, 1)[None]  # (1, 2, H, W): channel 0 = x, 1 = y
    kp_dst = torch.rand(1, 8, 2) * 1.4 - 0.7
    kp_src = kp_dst + (torch.rand(1, 8, 2) - 0.5) * 0.15
    out = tps_warp(coords, kp_src, kp_dst, padding_mode="border")[0].permute(1, 2, 0)  # (H, W, 2) = T(p)
    ref = interpolate.RBFInterpolator(kp_dst[0].double().numpy(), kp_src[0].double().numpy(),
                                      kernel="thin_plate_spline", degree=1)(grid.reshape(-1, 2).double().numpy())
    ref = torch.from_numpy(ref).float().reshape(h, w, 2)
    inside = (ref.abs() <= 1).all(dim=-1)  # where T(p) leaves the image, border padding clips it
    assert inside.float().mean() > 0.8
    torch.testing.assert_close(out[inside], ref[inside], atol=2e-4, rtol=0)


def test_tps_rejects_mismatched_keypoints():
    with pytest.raises(ValueError, match="kp_src and kp_dst"):
        tps_warp(torch.rand(1, 1, 8, 8), torch.rand(1, 4, 2), torch.rand(1, 5, 2))


def _rot_z(deg: float) -> torch.Tensor:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def test_transform_keypoints_rotates_translates_and_deforms():
    canonical = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 0.5]]])
    kp = transform_keypoints(canonical, _rot_z(90)[None], torch.tensor([[0.1, 0.2, 0.3]]),
                             deformation=torch.full((1, 2, 3), 0.01))
    # R_z(90) (1, 0, 0) = (0, 1, 0); (0, 0, 0.5) is on the axis
    expected = torch.tensor([[[0.11, 1.21, 0.31], [0.11, 0.21, 0.81]]])
    torch.testing.assert_close(kp, expected, atol=1e-6, rtol=0)


def _dot_3d(d: int, h: int, w: int, z: int, y: int, x: int) -> torch.Tensor:
    vol = torch.zeros(1, 2, d, h, w)
    vol[0, :, z, y, x] = 1.0
    return vol


def _argmax_3d(vol: torch.Tensor) -> tuple[int, int, int]:
    d, h, w = vol.shape[-3:]
    i = int(vol[0, 0].argmax())
    return i // (h * w), (i // w) % h, i % w


def test_keypoint_grids_are_the_identity_for_the_same_pose():
    torch.manual_seed(0)
    kp = torch.rand(2, 4, 3) * 2 - 1
    rot = torch.linalg.qr(torch.randn(2, 3, 3)).Q  # any orthonormal rotation, the same for source and driving
    grids = keypoint_warp_grids(kp, kp, rot, rot, (3, 5, 6))
    assert grids.shape == (2, 5, 3, 5, 6, 3)
    identity = make_coordinate_grid((3, 5, 6))
    torch.testing.assert_close(grids, identity.expand_as(grids), atol=1e-5, rtol=0)
    vol = torch.rand(2, 4, 3, 5, 6)
    warped = warp_volume(vol, grids)
    assert warped.shape == (2, 5, 4, 3, 5, 6)
    torch.testing.assert_close(warped, vol[:, None].expand_as(warped), atol=1e-5, rtol=0)


def test_keypoint_translation_moves_a_voxel_by_the_known_amount():
    # w_k(p) = p - x_d + x_s = p + delta when x_s = x_d + delta and R_s = R_d: output(p) = vol(p + delta),
    # so content moves by -delta: delta = (+2 px in x, -1 px in y, +1 px in z) moves the dot from
    # (z, y, x) = (2, 4, 5) to (1, 5, 3)
    d, h, w = 4, 9, 11
    vol = _dot_3d(d, h, w, 2, 4, 5)
    delta = torch.tensor([2 * 2 / (w - 1), -2 * 1 / (h - 1), 2 * 1 / (d - 1)])
    kp_drv = torch.rand(1, 3, 3) - 0.5
    eye = torch.eye(3)[None]
    grids = keypoint_warp_grids(kp_drv + delta, kp_drv, eye, eye, (d, h, w), include_identity=False)
    out = warp_volume(vol, grids[:, 1])
    assert _argmax_3d(out) == (1, 5, 3)
    assert out.max().item() == pytest.approx(1.0, abs=1e-5)
    every = keypoint_volume_warp(vol, kp_drv + delta, kp_drv, eye, eye)  # identity + 3 keypoints
    assert every.shape == (1, 4, 2, d, h, w)
    torch.testing.assert_close(every[:, 0], vol)
    assert all(_argmax_3d(every[:, k]) == (1, 5, 3) for k in range(1, 4))


def test_keypoint_rotation_maps_through_the_relative_rotation():
    # keypoints at the origin, R_s = R_z(180), R_d = I: w(p) = R_z(180) p = (-x, -y, z), so the dot at
    # (z, y, x) = (1, 2, 3) in a 3x7x9 volume appears at (1, 7 - 1 - 2, 9 - 1 - 3) = (1, 4, 5)
    d, h, w = 3, 7, 9
    vol = _dot_3d(d, h, w, 1, 2, 3)
    zero = torch.zeros(1, 1, 3)
    grids = keypoint_warp_grids(zero, zero, _rot_z(180)[None], torch.eye(3)[None], (d, h, w))
    out = warp_volume(vol, grids)
    assert _argmax_3d(out[:, 1]) == (1, 4, 5)  # grid 0 is the identity (background)
    torch.testing.assert_close(out[:, 0], vol, atol=1e-5, rtol=0)


def test_warp_volume_rejects_bad_shapes():
    with pytest.raises(ValueError, match="warp_volume"):
        warp_volume(torch.rand(1, 2, 3, 4, 5), torch.rand(2, 3, 4, 5, 3))


def test_keypoint_grid_maps_each_canonical_offset_between_the_two_poses():
    # a point at canonical offset u around keypoint k sits at x_d + R_d u in the driving volume and at
    # x_s + R_s u in the source volume; w_k must send the first to the second (and J = R_s R_d^-1 is not
    # R_d^-1 R_s for these non-commuting rotations)
    torch.manual_seed(3)
    rot_s, rot_d = torch.linalg.qr(torch.randn(2, 3, 3)).Q
    rot_s, rot_d = rot_s * torch.sign(torch.det(rot_s)), rot_d * torch.sign(torch.det(rot_d))
    kp_s, kp_d = torch.rand(1, 2, 3) - 0.5, torch.rand(1, 2, 3) - 0.5
    grids = keypoint_warp_grids(kp_s, kp_d, rot_s[None], rot_d[None], (3, 4, 5), include_identity=False)
    p = make_coordinate_grid((3, 4, 5))
    for k in range(2):
        u = (p - kp_d[0, k]) @ torch.linalg.inv(rot_d).T  # R_d^-1 (p - x_d), row vectors
        torch.testing.assert_close(grids[0, k], kp_s[0, k] + u @ rot_s.T, atol=1e-5, rtol=0)


# ------------------------------------------------------------- grid_sample with second derivatives
from torch.nn import functional as F  # noqa: E402

from headflow.nn.warp import grid_sample  # noqa: E402

DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device (PyTorch's CUDA grid sampler lacks the second "
                                          "derivative this replaces)")])]


@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "nearest"])
def test_grid_sample_equals_torchs_with_its_first_derivatives(mode, padding):
    torch.manual_seed(0)
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    g = (torch.rand(2, 5, 6, 2, dtype=torch.float64) * 2.4 - 1.2).requires_grad_(True)   # some outside
    ours = grid_sample(x, g, mode=mode, padding_mode=padding)
    ref = F.grid_sample(x, g, mode=mode, padding_mode=padding, align_corners=True)
    assert torch.equal(ours, ref)
    u = torch.rand_like(ours)
    for a, b in zip(torch.autograd.grad((ours * u).sum(), (x, g)), torch.autograd.grad((ref * u).sum(), (x, g))):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    assert torch.autograd.gradgradcheck(lambda t: grid_sample(t, g.detach(), mode=mode, padding_mode=padding), (x,))


def r1_weight_grad(sample, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """d/dw of |d D(sample(x)) / dx|^2 for D(y) = sum((w_c y_c)^2): R1's double backward in miniature."""
    w.grad = None
    (gx,) = torch.autograd.grad((sample(x) * w.view(1, -1, 1, 1)).pow(2).sum(), x, create_graph=True)
    gx.pow(2).sum().backward()
    return w.grad.clone()


@pytest.mark.parametrize("device", DEVICES)
def test_grid_sample_r1_double_backward_equals_the_dense_operators(device):
    # PyTorch's own sampler has no second derivative on CUDA, nor on CPU in some versions (2.11 raises
    # "derivative for aten::grid_sampler_2d_backward is not implemented"; 2.13's CPU falls back to a
    # composite). The reference is version-free: the warp as a dense matrix A (A's columns = the warped
    # one-hot images), R1 through plain matrix products.
    torch.manual_seed(1)
    b, c, h, w = 2, 3, 12, 10
    x0 = torch.rand(b, c, h, w, dtype=torch.float64)
    theta = torch.tensor([[[0.9, 0.2, 0.1], [-0.15, 1.05, -0.05]]], dtype=torch.float64)
    grid0 = F.affine_grid(theta, [1, 1, h, w], align_corners=True)
    basis = torch.eye(h * w, dtype=torch.float64).view(h * w, 1, h, w)
    a = F.grid_sample(basis, grid0.expand(h * w, -1, -1, -1), padding_mode="reflection",
                      align_corners=True).view(h * w, h * w).T                       # out pixel x in pixel
    w0 = torch.rand(c, dtype=torch.float64)
    ref = r1_weight_grad(lambda t: (t.flatten(2) @ a.T).view(b, c, h, w), x0.clone().requires_grad_(True),
                         torch.nn.Parameter(w0.clone()))
    x, grid = x0.to(device).requires_grad_(True), grid0.expand(b, -1, -1, -1).to(device)
    ours = r1_weight_grad(lambda t: grid_sample(t, grid, padding_mode="reflection"), x,
                          torch.nn.Parameter(w0.to(device)))
    torch.testing.assert_close(ours.cpu(), ref, rtol=1e-9, atol=1e-12)


def test_grid_sample_refuses_a_second_derivative_through_the_grid_and_bad_arguments():
    x = torch.rand(1, 1, 4, 4, requires_grad=True)
    g = (torch.rand(1, 3, 3, 2) * 2 - 1).requires_grad_(True)
    (gx,) = torch.autograd.grad(grid_sample(x, g).sum(), x, create_graph=True)
    with pytest.raises(NotImplementedError, match="through the sampling grid"):
        gx.pow(2).sum().backward()
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        grid_sample(torch.rand(1, 1, 2, 4, 4), torch.rand(1, 2, 4, 4, 3))
    with pytest.raises(ValueError, match="padding"):
        grid_sample(x, g.detach(), padding_mode="mirror")
