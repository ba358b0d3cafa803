"""Differentiable warps: affine, thin-plate spline (sampled by kornia), face-vid2vid's 3D keypoint volume warps.

Coordinate convention (one for every function here): normalised coordinates in [-1, 1] with
`align_corners=True`, i.e. x_norm = 2 x / (W - 1) - 1 for a pixel column x (the centre of the first
pixel is -1, of the last +1); points are (x, y) in 2D and (x, y, z) in 3D, z running along the depth
axis D of a (B, C, D, H, W) volume. This is the grid of FOMM / face-vid2vid's `make_coordinate_grid`.

All warps are backward (sampling) maps, as `torch.nn.functional.grid_sample`: the output at point p
takes the input at T(p). A dot at input position q therefore appears at output position T^-1(q).
"""

from __future__ import annotations

from typing import Literal

import torch
from kornia.geometry.transform import warp_image_tps
from torch.nn import functional as F

Padding = Literal["zeros", "border", "reflection"]


def make_coordinate_grid(spatial_size: tuple[int, ...], like: torch.Tensor | None = None) -> torch.Tensor:
    """The identity sampling grid in normalised coordinates.

    Args:
        spatial_size: (H, W) or (D, H, W), each >= 2.
        like: a tensor whose device and dtype the grid takes (default float32 on CPU).

    Returns:
        (H, W, 2) holding (x, y), or (D, H, W, 3) holding (x, y, z), each axis linspace(-1, 1).

    Raises:
        ValueError: not 2 or 3 sizes, or a size below 2.
    """
    if len(spatial_size) not in (2, 3) or min(spatial_size) < 2:
        raise ValueError(f"spatial_size must be (H, W) or (D, H, W) with every size >= 2, got {spatial_size}")
    kw = {"device": like.device, "dtype": like.dtype} if like is not None else {}
    axes = [torch.linspace(-1.0, 1.0, n, **kw) for n in spatial_size]
    mesh = torch.meshgrid(*axes, indexing="ij")  # (z,) y, x order of the array axes
    return torch.stack(mesh[::-1], dim=-1)  # last axis (x, y[, z])


def affine_warp(img: torch.Tensor, theta: torch.Tensor, padding_mode: Padding = "zeros") -> torch.Tensor:
    """Warp images by 2x3 affine matrices in normalised coordinates (`affine_grid` + `grid_sample`).

    The output at normalised point p = (x, y) is img sampled at theta @ [x, y, 1] (bilinear). Identity:
    theta = [[1, 0, 0], [0, 1, 0]]. Translating by theta[:, 0, 2] = 2 s / (W - 1) moves content s pixels
    to the LEFT (the output looks s pixels to the right). DisCoHead's affine head-motion variant
    (section 2.1, eq. 3) warps the source with A_{S<-D}, which maps driver coordinates to source coordinates.

    Args:
        img: (B, C, H, W), any value range.
        theta: (B, 2, 3), output -> input coordinates.
        padding_mode: grid_sample padding outside the input.

    Returns:
        (B, C, H, W); differentiable twice in `img` (sampled by `grid_sample` below, for R1 on warped reals).

    Raises:
        ValueError: theta not (B, 2, 3).
    """
    if theta.shape != (img.shape[0], 2, 3):
        raise ValueError(f"affine_warp: theta must be (B={img.shape[0]}, 2, 3), got {tuple(theta.shape)}")
    grid = F.affine_grid(theta.to(img.dtype), list(img.shape), align_corners=True)
    return grid_sample(img, grid, mode="bilinear", padding_mode=padding_mode, align_corners=True)


def fit_tps(domain: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bookstein's thin-plate spline f with f(domain_n) = values_n, radial kernels centred on `domain`.

    f(p) = a_0 + A p + sum_n w_n U(|p - domain_n|), U(r) = r^2 log r, with sum_n w_n = 0 and
    sum_n w_n domain_n = 0 (Bookstein 1989, section 2; the minimum-bending-energy interpolant). Solved as
    [[K, P], [P^T, 0]] [w; a] = [values; 0], K_nm = U(|domain_n - domain_m|), P_n = (1, x_n, y_n).

    Args:
        domain, values: (B, N, 2) points, N >= 3 and the domain points not collinear.

    Returns:
        (kernel_weights (B, N, 2), affine_weights (B, 3, 2)) in kornia's layout (`warp_points_tps`,
        `warp_image_tps` with kernel_centers = domain).
    """
    b, n, _ = domain.shape
    d2 = (domain[:, :, None, :] - domain[:, None, :, :]).pow(2).sum(-1)
    k = 0.5 * d2 * torch.log(d2 + 1e-8)  # r^2 log r = 0.5 r^2 log r^2 (kornia's kernel)
    p = torch.cat([domain.new_ones(b, n, 1), domain], dim=-1)
    top = torch.cat([k, p], dim=-1)
    bottom = torch.cat([p.transpose(1, 2), domain.new_zeros(b, 3, 3)], dim=-1)
    rhs = torch.cat([values, values.new_zeros(b, 3, 2)], dim=1)
    weights = torch.linalg.solve(torch.cat([top, bottom], dim=1), rhs)
    return weights[:, :n], weights[:, n:]


def tps_warp(img: torch.Tensor, kp_src: torch.Tensor, kp_dst: torch.Tensor,
             padding_mode: Padding = "zeros") -> torch.Tensor:
    """Thin-plate-spline warp that carries the image content at `kp_src` to `kp_dst`.

    Direction: the backward map T with T(kp_dst_n) = kp_src_n, kernels centred on kp_dst, is fitted by
    `fit_tps(kp_dst, kp_src)` and sampled with kornia's `warp_image_tps` (align_corners=True), so
    output(p) = img(T(p)): what was at kp_src appears at kp_dst. This is DisCoHead's TPS (section 2.1,
    eq. 4-5: T(p) = A [p; 1] + sum_i w_i phi(|P_i^D - p|), mapping driver to source coordinates; its
    phi = r^2 log r^2 is 2 U, absorbed by w, the same map): pass the source image, kp_src = source
    keypoints, kp_dst = driver keypoints.

    kornia's own `get_tps_transform` is not used: it centres the kernels on the other point set (the
    fitted values), which interpolates the keypoints but is not Bookstein's spline and swings far
    outside the keypoint displacements between them (kornia PR #2690 reports this as erratic warps).

    Args:
        img: (B, C, H, W).
        kp_src, kp_dst: (B, N, 2) (x, y) in normalised coordinates (module docstring), N >= 3, the
            kp_dst points distinct and not all collinear.
        padding_mode: grid_sample padding outside the input.

    Returns:
        (B, C, H, W). Identical kp_src and kp_dst give img back (up to solver round-off, ~1e-5).

    Raises:
        ValueError: keypoint tensors of another shape.
    """
    b = img.shape[0]
    if kp_src.dim() != 3 or kp_src.shape[0] != b or kp_src.shape[2] != 2 or kp_src.shape != kp_dst.shape:
        raise ValueError(f"tps_warp: kp_src and kp_dst must both be (B={b}, N, 2), got {tuple(kp_src.shape)} "
                         f"and {tuple(kp_dst.shape)}")
    kp_src, kp_dst = kp_src.to(img.dtype), kp_dst.to(img.dtype)
    kernel_w, affine_w = fit_tps(kp_dst, kp_src)
    return warp_image_tps(img, kp_dst, kernel_w, affine_w, align_corners=True, padding_mode=padding_mode)


def transform_keypoints(canonical: torch.Tensor, rotation: torch.Tensor, translation: torch.Tensor,
                        deformation: torch.Tensor | None = None) -> torch.Tensor:
    """face-vid2vid's keypoint transform x_k = R x_c,k + t + delta_k (Wang et al. 2021, CVPR, section 3).

    Args:
        canonical: (B, K, 3) canonical keypoints x_c (normalised (x, y, z)).
        rotation: (B, 3, 3) head rotation R.
        translation: (B, 3) translation t (normalised units).
        deformation: (B, K, 3) expression deformations delta, or None (zero).

    Returns:
        (B, K, 3) posed keypoints.

    Raises:
        ValueError: mismatched shapes.
    """
    b, k = canonical.shape[:2]
    if canonical.shape != (b, k, 3) or rotation.shape != (b, 3, 3) or translation.shape != (b, 3):
        raise ValueError(f"transform_keypoints: expected canonical (B, K, 3), rotation (B, 3, 3), translation "
                         f"(B, 3); got {tuple(canonical.shape)}, {tuple(rotation.shape)}, {tuple(translation.shape)}")
    kp = torch.einsum("bij,bkj->bki", rotation, canonical) + translation[:, None, :]
    if deformation is not None:
        if deformation.shape != canonical.shape:
            raise ValueError(f"transform_keypoints: deformation must be {tuple(canonical.shape)}, "
                             f"got {tuple(deformation.shape)}")
        kp = kp + deformation
    return kp


def keypoint_warp_grids(kp_src: torch.Tensor, kp_drv: torch.Tensor, rot_src: torch.Tensor, rot_drv: torch.Tensor,
                        spatial_size: tuple[int, int, int], include_identity: bool = True) -> torch.Tensor:
    """Per-keypoint first-order 3D warps w_k(p) = R_s R_d^-1 (p - x_d,k) + x_s,k (face-vid2vid).

    papers/styletransfer2d_supplement.txt, "Warping Network", eq. 1 (after FOMM's first-order
    approximation); Wang et al. 2021 (face-vid2vid), section 3.

    Each grid maps a point p of the driving volume to the source volume, so `warp_volume(f_s, grid)`
    moves source features to the driving pose around keypoint k (FOMM/face-vid2vid
    `create_sparse_motions`, with the Jacobian J_k = R_s R_d^-1).

    Args:
        kp_src, kp_drv: (B, K, 3) source and driving keypoints (normalised (x, y, z), e.g. from
            `transform_keypoints`).
        rot_src, rot_drv: (B, 3, 3) source and driving rotations (rot_drv invertible).
        spatial_size: (D, H, W) of the feature volume.
        include_identity: prepend the identity grid (face-vid2vid's background motion) as grid 0.

    Returns:
        (B, K + 1, D, H, W, 3) with include_identity, else (B, K, D, H, W, 3).

    Raises:
        ValueError: mismatched shapes.
    """
    b, k = kp_drv.shape[:2]
    if kp_src.shape != (b, k, 3) or kp_drv.shape != (b, k, 3) or rot_src.shape != (b, 3, 3) \
            or rot_drv.shape != (b, 3, 3):
        raise ValueError(f"keypoint_warp_grids: expected kp_src/kp_drv (B, K, 3) and rotations (B, 3, 3); got "
                         f"{tuple(kp_src.shape)}, {tuple(kp_drv.shape)}, {tuple(rot_src.shape)}, "
                         f"{tuple(rot_drv.shape)}")
    identity = make_coordinate_grid(tuple(spatial_size), like=kp_drv)  # (D, H, W, 3)
    jacobian = rot_src @ torch.linalg.inv(rot_drv)  # (B, 3, 3), same for every keypoint
    rel = identity[None, None] - kp_drv[:, :, None, None, None, :]  # (B, K, D, H, W, 3)
    grids = torch.einsum("bij,bkdhwj->bkdhwi", jacobian, rel) + kp_src[:, :, None, None, None, :]
    if include_identity:
        grids = torch.cat([identity.expand(b, 1, *identity.shape), grids], dim=1)
    return grids


def warp_volume(volume: torch.Tensor, grid: torch.Tensor, padding_mode: Padding = "zeros") -> torch.Tensor:
    """Sample a 3D feature volume at a grid of normalised (x, y, z) points (trilinear `grid_sample`).

    Args:
        volume: (B, C, D, H, W).
        grid: (B, D', H', W', 3) -> one warped volume; or (B, K, D', H', W', 3) -> the volume warped by
            each of K grids (as `keypoint_warp_grids` returns).

    Returns:
        (B, C, D', H', W') or (B, K, C, D', H', W').

    Raises:
        ValueError: wrong ranks or batch sizes.
    """
    if volume.dim() != 5 or grid.dim() not in (5, 6) or grid.shape[-1] != 3 or grid.shape[0] != volume.shape[0]:
        raise ValueError(f"warp_volume: volume must be (B, C, D, H, W) and grid (B, [K,] D, H, W, 3) with the "
                         f"same B; got {tuple(volume.shape)} and {tuple(grid.shape)}")
    if grid.dim() == 5:
        return F.grid_sample(volume, grid.to(volume.dtype), mode="bilinear", padding_mode=padding_mode,
                             align_corners=True)
    b, k = grid.shape[:2]
    vols = volume[:, None].expand(b, k, *volume.shape[1:]).reshape(b * k, *volume.shape[1:])
    out = F.grid_sample(vols, grid.reshape(b * k, *grid.shape[2:]).to(volume.dtype), mode="bilinear",
                        padding_mode=padding_mode, align_corners=True)
    return out.reshape(b, k, *out.shape[1:])


def keypoint_volume_warp(volume: torch.Tensor, kp_src: torch.Tensor, kp_drv: torch.Tensor, rot_src: torch.Tensor,
                         rot_drv: torch.Tensor, include_identity: bool = True) -> torch.Tensor:
    """The source feature volume warped by each keypoint's first-order motion (face-vid2vid's w_k(F_s)).

    `keypoint_warp_grids` at the volume's own size, then `warp_volume`; the warping network combines the
    results with its K (+1) composition masks: w(F_s) = sum_k m_k w_k(F_s).

    Args:
        volume: (B, C, D, H, W) source features F_s.
        kp_src, kp_drv, rot_src, rot_drv, include_identity: as `keypoint_warp_grids`.

    Returns:
        (B, K + 1, C, D, H, W) with include_identity (index 0 = F_s unwarped), else (B, K, C, D, H, W).
    """
    grids = keypoint_warp_grids(kp_src, kp_drv, rot_src, rot_drv, tuple(volume.shape[2:]), include_identity)
    return warp_volume(volume, grids)


# ----------------------------------------------------------------- grid_sample with second derivatives
_INTERPOLATION = {"bilinear": 0, "nearest": 1, "bicubic": 2}
_PADDING = {"zeros": 0, "border": 1, "reflection": 2}


class _GridSample2d(torch.autograd.Function):
    """`F.grid_sample` whose backward is itself differentiable in the incoming gradient (below)."""

    @staticmethod
    def forward(ctx, image, grid, mode, padding_mode, align_corners):  # noqa: D102 (autograd protocol)
        ctx.save_for_backward(image, grid)
        ctx.cfg = (mode, padding_mode, align_corners)
        return F.grid_sample(image, grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners)

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        image, grid = ctx.saved_tensors
        grad_image, grad_grid = _GridSample2dBackward.apply(grad_out, image, grid, ctx.cfg,
                                                            bool(ctx.needs_input_grad[1]))
        return (grad_image if ctx.needs_input_grad[0] else None), grad_grid, None, None, None


class _GridSample2dBackward(torch.autograd.Function):
    """aten's grid_sampler_2d_backward as a function of the incoming gradient. The image's gradient
    A(grid)^T g is linear in g, so its derivative applied to v is A(grid) v = grid_sample(v, grid); it does
    not depend on the image. Derivatives through the grid (of either output) are not implemented."""

    @staticmethod
    def forward(ctx, grad_out, image, grid, cfg, need_grid):  # noqa: D102
        mode, padding_mode, align_corners = cfg
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(grid)
        ctx.cfg = cfg
        grad_image, grad_grid = torch.ops.aten.grid_sampler_2d_backward(
            grad_out, image, grid, _INTERPOLATION[mode], _PADDING[padding_mode], align_corners, [True, need_grid])
        return grad_image, (grad_grid if need_grid else None)

    @staticmethod
    def backward(ctx, grad2_image, grad2_grid):  # noqa: D102
        (grid,) = ctx.saved_tensors
        if grad2_grid is not None or (ctx.needs_input_grad[2] and grad2_image is not None):
            raise NotImplementedError("grid_sample: a second derivative through the sampling grid is not "
                                      "implemented (only through the sampled image, as R1 needs)")
        if grad2_image is None or not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        return _GridSample2d.apply(grad2_image, grid, *ctx.cfg), None, None, None, None


def grid_sample(image: torch.Tensor, grid: torch.Tensor, mode: str = "bilinear", padding_mode: Padding = "zeros",
                align_corners: bool = True) -> torch.Tensor:
    """`torch.nn.functional.grid_sample` (2D) that also has second derivatives through the image.

    PyTorch's CUDA grid sampler (native and cuDNN) has no derivative for its backward, so a gradient
    penalty on a discriminator that sees warped images (R1 on augmented reals: the gradient of D's logits
    with respect to the real image, itself differentiated in D's weights) raises "derivative for
    aten::grid_sampler_2d_backward is not implemented" on CUDA; the CPU sampler falls back to a composite
    that has them, which is why it trained on CPU. This wraps aten's backward in an autograd function whose
    own derivative in the incoming gradient is the forward sampling again, as StyleGAN2-ADA's
    `torch_utils/ops/grid_sample_gradfix.py` does (ours keeps every mode, padding and `align_corners`).

    Args:
        image: (B, C, H, W) float.
        grid: (B, H_out, W_out, 2) normalised (x, y) sampling points, same dtype and device.
        mode: "bilinear", "nearest" or "bicubic".
        padding_mode: "zeros", "border" or "reflection".
        align_corners: as `F.grid_sample`.

    Returns:
        (B, C, H_out, W_out), equal to `F.grid_sample`'s; first derivatives equal its too.

    Raises:
        ValueError: not a 4-D image, or an unknown mode / padding.
        NotImplementedError: (at backward time) a second derivative through the grid is needed.
    """
    if image.dim() != 4:
        raise ValueError(f"grid_sample: a (B, C, H, W) image is needed, got {tuple(image.shape)}")
    if mode not in _INTERPOLATION or padding_mode not in _PADDING:
        raise ValueError(f"grid_sample: mode {mode!r} / padding {padding_mode!r} not in {list(_INTERPOLATION)} / "
                         f"{list(_PADDING)}")
    return _GridSample2d.apply(image, grid, mode, padding_mode, align_corners)
