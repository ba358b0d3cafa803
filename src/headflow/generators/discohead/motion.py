"""DisCoHead's head-motion predictor (papers/discohead.txt, section 2.1): one geometric transformation.

Two variants, each a network run separately on the source S and the head driver D (figure 1):

* affine (MRAA's PCA-based region predictor with one region, Siarohin et al. 2021, section 3.2): an
  hourglass predicts one heatmap H (softmax over the pixel grid Z); t = sum_z H(z) z (eq. 1);
  U S V = SVD(sum_z H(z)(z - t)(z - t)^T) (eq. 2); A_{X<-R} = [U S^(1/2), t];
  A_{S<-D} = A_{S<-R} A_{D<-R}^-1 (eq. 3), as homogeneous 3x3 matrices;
* TPS (TPSMM's keypoint detector, Zhao & Zhang 2022): a ResNet-18 predicts N keypoints; the thin-plate
  spline T with T(P^D_i) = P^S_i (eq. 4-5, Bookstein's solve: `headflow.nn.warp.fit_tps`).

Both give a backward map driver -> source in the normalised coordinates of `headflow.nn.warp`
(x, y in [-1, 1], align_corners=True): `coarse_grid` samples the source at T(p) for each driver point p,
so `warp(S, grid)` = S_T shows the source in the driver's head pose.

Deviation (written in docs/families/discohead.md): the SVD leaves the sign of U's columns free (MRAA takes whatever
torch.svd returns), so a source and a driver could land on different signs and A_{S<-D} would rotate
by 180 degrees. Here U is the eigenbasis in closed form for the 2x2 covariance, its first column (the
major axis, largest singular value first as SVD orders them) pointing to +y (down the face) and
det U = +1; the covariance's eigen-gap is regularised by `eps` so the gradient stays finite when the
heatmap is isotropic (torch.linalg.svd's gradient is infinite there).
"""

from __future__ import annotations

import torch
from kornia.geometry.transform import warp_points_tps
from torch import nn
from torch.nn import functional as F

from headflow.generators.discohead.params import ModelParams
from headflow.nn.blocks import ConvNormAct, DownBlock, UpBlock
from headflow.nn.warp import fit_tps, make_coordinate_grid


# ------------------------------------------------------------------------------------- the affine variant

def heatmap_moments(heatmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (eq. 1) and covariance (eq. 2's matrix) of a heatmap over the normalised pixel grid.

    Args:
        heatmap: (B, H, W) non-negative, summing to 1 over (H, W) (a softmax).

    Returns:
        (t (B, 2) as (x, y), covariance (B, 2, 2)), normalised coordinates (`headflow.nn.warp`).
    """
    grid = make_coordinate_grid(tuple(heatmap.shape[1:]), like=heatmap)           # (H, W, 2)
    t = torch.einsum("bhw,hwc->bc", heatmap, grid)
    centred = grid[None] - t[:, None, None, :]                                    # (B, H, W, 2)
    cov = torch.einsum("bhw,bhwi,bhwj->bij", heatmap, centred, centred)
    return t, cov


def principal_axes(cov: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """U and the singular values of a batch of symmetric 2x2 PSD matrices (eq. 2), in closed form.

    For C = [[a, b], [b, c]]: r = sqrt(((a - c) / 2)^2 + b^2 + eps^2), s = ((a + c) / 2 + r, (a + c) / 2 - r)
    (descending, as SVD), the major axis u1 ~ (b, r - (a - c) / 2) (pointing to +y), u2 = u1 rotated by
    +90 degrees, so U = [u1, u2] is a rotation (det +1). U diag(s) U^T = C up to eps.

    Args:
        cov: (B, 2, 2).
        eps: regularises the eigen-gap (normalised units^2; keeps gradients finite for isotropic C).

    Returns:
        (U (B, 2, 2), s (B, 2) >= 0).
    """
    a, b, c = cov[:, 0, 0], cov[:, 0, 1], cov[:, 1, 1]
    half = (a - c) / 2
    r = torch.sqrt(half * half + b * b + eps * eps)
    mean = (a + c) / 2
    s = torch.stack([mean + r, (mean - r).clamp_min(0.0)], dim=-1)
    vx, vy = b, r - half                                                          # r - half >= 0
    norm = torch.sqrt(vx * vx + vy * vy + eps * eps)
    vx, vy = vx / norm, vy / norm
    u = torch.stack([torch.stack([vx, -vy], -1), torch.stack([vy, vx], -1)], dim=-2)   # rows (x, y)
    return u, s


def affine_from_heatmap(heatmap: torch.Tensor) -> torch.Tensor:
    """A_{X<-R} = [U S^(1/2), t] of one heatmap (eq. 1-2; MRAA `region2affine`, PCA-based).

    Args:
        heatmap: (B, H, W) summing to 1.

    Returns:
        (B, 2, 3): maps the reference frame R to the image X (normalised coordinates).
    """
    t, cov = heatmap_moments(heatmap)
    u, s = principal_axes(cov)
    lin = u * torch.sqrt(s + 1e-12)[:, None, :]                                   # U diag(s^1/2)
    return torch.cat([lin, t[:, :, None]], dim=-1)


def _homogeneous(a: torch.Tensor) -> torch.Tensor:
    bottom = a.new_tensor([0.0, 0.0, 1.0]).expand(a.shape[0], 1, 3)
    return torch.cat([a, bottom], dim=1)


def source_from_driver(a_src: torch.Tensor, a_drv: torch.Tensor) -> torch.Tensor:
    """A_{S<-D} = A_{S<-R} A_{D<-R}^-1 (eq. 3), the backward map of the affine warp (`affine_warp`'s theta).

    Args:
        a_src, a_drv: (B, 2, 3) from `affine_from_heatmap`.

    Returns:
        (B, 2, 3) driver -> source.
    """
    return (_homogeneous(a_src) @ torch.linalg.inv(_homogeneous(a_drv)))[:, :2]


class Hourglass(nn.Module):
    """FOMM/MRAA's hourglass (Newell et al. 2016 lineage): `levels` DownBlocks, then UpBlocks with skip
    concatenation; channels min(max_channels, base * 2^(i+1)). (B, C_in, H, W) -> (B, base + C_in, H, W)."""

    def __init__(self, in_channels: int, base: int, levels: int, max_channels: int = 1024):
        super().__init__()
        chans = [in_channels] + [min(max_channels, base * 2 ** (i + 1)) for i in range(levels)]
        self.down = nn.ModuleList(DownBlock(chans[i], chans[i + 1]) for i in range(levels))
        ups = []
        for i in reversed(range(levels)):
            cin = chans[i + 1] * (1 if i == levels - 1 else 2)
            ups.append(UpBlock(cin, chans[i] if i > 0 else base))
        self.up = nn.ModuleList(ups)
        self.out_channels = base + in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [x]
        for block in self.down:
            skips.append(block(skips[-1]))
        out = skips.pop()
        for block in self.up:
            out = torch.cat([block(out), skips.pop()], dim=1)
        return out


class AffinePredictor(nn.Module):
    """Image -> one heatmap (hourglass + 7x7 conv + spatial softmax at temperature T) -> A_{X<-R}.

    Shapes: image (B, 3, S, S) in [0, 1] -> {"affine": (B, 2, 3), "heatmap": (B, h, w)}, h = S * scale.
    """

    def __init__(self, p: ModelParams):
        super().__init__()
        self.scale, self.temperature = p.predictor_scale, p.heatmap_temperature
        self.hourglass = Hourglass(3, p.channels(p.hourglass_channels), p.hourglass_levels)
        self.head = nn.Conv2d(self.hourglass.out_channels, 1, 7, padding=3)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        x = image
        if self.scale != 1:
            x = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False, antialias=True)
        logits = self.head(self.hourglass(x))[:, 0]
        b, h, w = logits.shape
        heatmap = F.softmax(logits.reshape(b, -1) / self.temperature, dim=-1).reshape(b, h, w)
        return {"affine": affine_from_heatmap(heatmap), "heatmap": heatmap}


# ---------------------------------------------------------------------------------------- the TPS variant

class _BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 conv-BN (ReLU between), identity or 1x1-strided shortcut, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = ConvNormAct(cin, cout, 3, stride=stride)
        self.conv2 = ConvNormAct(cout, cout, 3, act="none")
        self.skip = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.skip(x) + self.conv2(self.conv1(x)))


class KeypointPredictor(nn.Module):
    """ResNet-18 (He et al. 2016: 7x7/2 stem, max-pool, [2, 2, 2, 2] basic blocks, global pool, FC) with
    N x 2 outputs mapped to [-1, 1] by 2 sigmoid - 1 (TPSMM `KPDetector`).

    Shapes: image (B, 3, S, S) -> {"keypoints": (B, N, 2) (x, y) normalised}.
    """

    def __init__(self, p: ModelParams):
        super().__init__()
        c = [p.channels(p.resnet_channels * 2 ** i) for i in range(4)]
        self.stem = nn.Sequential(ConvNormAct(3, c[0], 7, stride=2), nn.MaxPool2d(3, 2, 1))
        layers, cin = [], c[0]
        for i, cout in enumerate(c):
            layers += [_BasicBlock(cin, cout, 1 if i == 0 else 2), _BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, p.tps_keypoints * 2)
        self.n = p.tps_keypoints

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.layers(self.stem(image)).mean(dim=(2, 3))
        return {"keypoints": (torch.sigmoid(self.fc(x)) * 2 - 1).view(-1, self.n, 2)}


def tps_grid(kp_src: torch.Tensor, kp_drv: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The TPS sampling grid T(p) for every driver point p of an (H, W) grid, with T(kp_drv_i) = kp_src_i.

    Eq. 4-5 (Bookstein's minimum-bending-energy spline, kernels centred on the driver keypoints P^D;
    `headflow.nn.warp.fit_tps`, evaluated with kornia's `warp_points_tps`); the same map as
    `headflow.nn.warp.tps_warp(img, kp_src, kp_drv)`.

    Args:
        kp_src, kp_drv: (B, N, 2) normalised (x, y), the driver's distinct and not collinear.
        size: (H, W) of the grid.

    Returns:
        (B, H, W, 2) normalised source coordinates (a `grid_sample` grid).
    """
    kernel_w, affine_w = fit_tps(kp_drv, kp_src)
    b = kp_src.shape[0]
    grid = make_coordinate_grid(size, like=kp_src).reshape(1, -1, 2).expand(b, -1, -1)
    return warp_points_tps(grid, kp_drv, kernel_w, affine_w).reshape(b, *size, 2)


# ------------------------------------------------------------------------------------------ the predictor

class HeadMotionPredictor(nn.Module):
    """Section 2.1: `transform(source, driver)` -> the driver -> source map, as parameters and grids."""

    def __init__(self, p: ModelParams):
        super().__init__()
        self.kind = p.head_motion
        self.net = AffinePredictor(p) if p.head_motion == "affine" else KeypointPredictor(p)

    def forward(self, source: torch.Tensor, driver: torch.Tensor) -> dict[str, torch.Tensor]:
        """source, driver: (B, 3, S, S) in [0, 1]. Returns {"theta": (B, 2, 3)} (affine: A_{S<-D}) plus the
        per-frame outputs ("heatmap_source/driver" or "kp_source/driver"); both frames in one batch."""
        out = self.net(torch.cat([source, driver]))
        b = source.shape[0]
        if self.kind == "affine":
            a_src, a_drv = out["affine"][:b], out["affine"][b:]
            return {"theta": source_from_driver(a_src, a_drv), "affine_source": a_src, "affine_driver": a_drv,
                    "heatmap_source": out["heatmap"][:b], "heatmap_driver": out["heatmap"][b:]}
        return {"kp_source": out["keypoints"][:b], "kp_driver": out["keypoints"][b:]}

    def coarse_grid(self, motion: dict[str, torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        """O_T: (B, H, W, 2) grid of the transformation at resolution `size` (driver -> source)."""
        if self.kind == "affine":
            theta = motion["theta"]
            return F.affine_grid(theta, [theta.shape[0], 1, *size], align_corners=True)
        return tps_grid(motion["kp_source"], motion["kp_driver"], size)
