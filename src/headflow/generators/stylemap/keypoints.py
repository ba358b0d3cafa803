"""3D keypoints of the Style Mapping module: the keypoint extractor, the pose-expression network, the
66-bin angle decoding and the rotation convention (supplement tables 1-2; face-vid2vid section 3).

Keypoints live in the normalised (x, y, z) coordinates of `headflow.nn.warp` (x to the image's right,
y DOWN the image rows, z along the volume's depth axis, each in [-1, 1]). Rotations follow the one
Euler convention of the project (`headflow.rotations`: R = Rz(roll) Rx(pitch) Ry(yaw) in a y-UP camera
frame, angles in degrees as fit3dmm writes them); in the y-down keypoint frame the same physical
rotation is F R F with F = diag(1, -1, 1) (`headflow.rotations.flip_y`), so the fitted angles of
`fit3dmm` supervise the 66-bin heads directly. Deviation: face-vid2vid's public code multiplies its
elementary rotations in the order pitch @ yaw @ roll with its own signs; we use the project's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from headflow.generators.stylemap.params import NUM_BINS, ModelParams
from headflow.nn.blocks import DownBlock, UpBlock
from headflow.nn.warp import make_coordinate_grid, transform_keypoints

BIN_DEGREES = 3.0
"""Width of one head-pose bin (Hopenet, Ruiz et al. 2018: 66 bins of 3 degrees)."""
BIN_OFFSET = -99.0
"""Angle of bin 0: bin b stands for b * 3 - 99 degrees (Hopenet's decoding; 66 bins span [-99, 96])."""


def scaled(channels: int, width: float) -> int:
    """round(width * channels), at least 4."""
    return max(4, int(round(channels * width)))


# ------------------------------------------------------------------------------------------ soft-argmax

def soft_argmax(heatmaps: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Expected (x, y, z) of each heatmap under its spatial softmax (face-vid2vid `KPDetector.gaussian2kp`).

    Args:
        heatmaps: (B, K, D, H, W) raw scores, D, H, W >= 2.
        temperature: the scores are divided by it before the softmax over D*H*W (face-vid2vid: 0.1).

    Returns:
        (B, K, 3) normalised (x, y, z) in [-1, 1] (x from W, y from H, z from D; `make_coordinate_grid`).

    Raises:
        ValueError: heatmaps not 5-D.
    """
    if heatmaps.dim() != 5:
        raise ValueError(f"soft_argmax: heatmaps must be (B, K, D, H, W), got {tuple(heatmaps.shape)}")
    b, k = heatmaps.shape[:2]
    prob = F.softmax(heatmaps.reshape(b, k, -1) / temperature, dim=-1).view_as(heatmaps)
    grid = make_coordinate_grid(tuple(heatmaps.shape[2:]), like=heatmaps)          # (D, H, W, 3)
    return torch.einsum("bkdhw,dhwc->bkc", prob, grid)


class AntiAliasInterpolation2d(nn.Module):
    """Gaussian blur then subsampling by an integer factor (FOMM `modules/util.py`; table 1's first layer).

    sigma = (1 / scale - 1) / 2, kernel 2 round(4 sigma) + 1, then every (1 / scale)-th pixel.
    Shapes: (B, C, H, W) -> (B, C, H * scale, W * scale). scale = 1 is the identity.
    """

    def __init__(self, channels: int, scale: float):
        super().__init__()
        inv = round(1 / scale)
        if abs(inv * scale - 1) > 1e-6:
            raise ValueError(f"AntiAliasInterpolation2d: scale must be 1 / an integer, got {scale}")
        self.step = inv
        sigma = (inv - 1) / 2
        size = 2 * round(sigma * 4) + 1
        self.pad = size // 2
        if inv == 1:
            kernel = torch.ones(1, 1)
        else:
            ax = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
            g = torch.exp(-ax ** 2 / (2 * sigma ** 2))
            kernel = torch.outer(g, g) / torch.outer(g, g).sum()
        self.register_buffer("weight", kernel.expand(channels, 1, *kernel.shape).clone(), persistent=False)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.step == 1:
            return x
        out = F.conv2d(F.pad(x, (self.pad,) * 4, mode="reflect"), self.weight.to(x), groups=self.channels)
        return out[:, :, ::self.step, ::self.step]


class KeypointExtractor(nn.Module):
    """Table 1: anti-aliased downsampling to `kp_input_size`, DownBlock2d x `kp_blocks`, a 1x1 conv reshaped
    to a 3D volume of depth `kp_depth`, UpBlock3d x `kp_blocks`, Conv3d (k 3) to K heatmaps, soft-argmax.

    Published (width 1): 3x64x64 -> 64, 128, 256, 512, 1024 channels at 32..2 px -> 1x1 conv to 16384 =
    1024 x 16 -> [1024, 16, 2, 2] -> 512, 256, 128, 64, 32 channels at 4..64 px (depth 16 kept) -> 15
    heatmaps [15, 16, 64, 64] -> 15 canonical keypoints x_c. No skips (the table's single Sequential).

    Shapes: image (B, 3, S, S) in [0, 1] -> (B, K, 3) canonical keypoints in [-1, 1].
    """

    def __init__(self, p: ModelParams):
        super().__init__()
        self.params = p
        self.down = AntiAliasInterpolation2d(3, p.kp_input_size / p.image_size)
        enc = [scaled(min(1024, 32 * 2 ** (i + 1)), p.width) for i in range(p.kp_blocks)]
        self.encoder = nn.Sequential(*[DownBlock(3 if i == 0 else enc[i - 1], enc[i]) for i in range(p.kp_blocks)])
        self.volume_channels = enc[-1]
        self.to_volume = nn.Conv2d(enc[-1], enc[-1] * p.kp_depth, 1)
        dec = [scaled(min(1024, 32 * 2 ** (p.kp_blocks - 1 - j)), p.width) for j in range(p.kp_blocks)]
        self.decoder = nn.Sequential(*[UpBlock(enc[-1] if j == 0 else dec[j - 1], dec[j], dims=3)
                                       for j in range(p.kp_blocks)])
        self.heatmaps = nn.Conv3d(dec[-1], p.num_kp, 3, padding=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.encoder(self.down(image))                                   # (B, C, s, s)
        b, c, h, w = x.shape
        vol = self.to_volume(x).view(b, self.volume_channels, self.params.kp_depth, h, w)
        return soft_argmax(self.heatmaps(self.decoder(vol)), self.params.kp_temperature)


# ------------------------------------------------------------------------------- pose and expression

class ResBottleneck(nn.Module):
    """ResNet-50 bottleneck (face-vid2vid `ResBottleneck`): 1x1 C -> C/4, 3x3 (stride s), 1x1 C/4 -> C, each
    with BatchNorm, ReLU after the sum; the shortcut is a strided 1x1 conv + BN when s = 2.
    Shapes: (B, C, H, W) -> (B, C, H / s, W / s)."""

    def __init__(self, channels: int, stride: int = 1):
        super().__init__()
        mid = max(1, channels // 4)
        self.body = nn.Sequential(
            nn.Conv2d(channels, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
            nn.Conv2d(mid, mid, 3, stride, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
            nn.Conv2d(mid, channels, 1, bias=False), nn.BatchNorm2d(channels))
        self.skip = nn.Identity() if stride == 1 else nn.Sequential(
            nn.Conv2d(channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.skip(x))


@dataclass
class HeadPose:
    """The pose-expression network's outputs for a batch of images."""

    logits: torch.Tensor
    """(B, 3, 66) bin scores of yaw, pitch, roll."""
    translation: torch.Tensor
    """(B, 3) t in normalised keypoint units."""
    deformation: torch.Tensor
    """(B, K, 3) expression deformations delta."""

    @property
    def angles(self) -> torch.Tensor:
        """(B, 3) yaw, pitch, roll in degrees (`decode_angles`)."""
        return decode_angles(self.logits)


class PoseExpressionNet(nn.Module):
    """Table 2 (Hopenet-style ResNet-50 trunk): conv 7x7 s2 + BN + ReLU, max-pool, then four stages of
    bottlenecks, each behind a 1x1 conv + BN that widens the channels (64 -> 256, 512, 1024, 2048), the
    first bottleneck of stages 2-4 striding 2; global average pooling (the supplement's "global pooling";
    face-vid2vid's code pools a 7x7 window) to 2048; linear heads yaw, pitch, roll (66 bins each),
    translation (3) and expression (3K = 45).

    Shapes: image (B, 3, S, S) in [0, 1] -> `HeadPose`.
    """

    def __init__(self, p: ModelParams):
        super().__init__()
        self.num_kp = p.num_kp
        ch = [scaled(c, p.width) for c in (64, 256, 512, 1024, 2048)]
        layers: list[nn.Module] = [nn.Conv2d(3, ch[0], 7, 2, 3, bias=False), nn.BatchNorm2d(ch[0]), nn.ReLU(),
                                   nn.MaxPool2d(3, 2, 1)]
        cin = ch[0]
        for stage, (cout, depth) in enumerate(zip(ch[1:], p.pose_blocks)):
            layers += [nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout)]
            if stage > 0:
                layers.append(ResBottleneck(cout, stride=2))
            layers += [ResBottleneck(cout) for _ in range(depth)]
            cin = cout
        self.trunk = nn.Sequential(*layers)
        self.yaw, self.pitch, self.roll = (nn.Linear(cin, NUM_BINS) for _ in range(3))
        self.translation = nn.Linear(cin, 3)
        self.expression = nn.Linear(cin, 3 * p.num_kp)

    def forward(self, image: torch.Tensor) -> HeadPose:
        h = self.trunk(image).mean(dim=(2, 3))
        logits = torch.stack([self.yaw(h), self.pitch(h), self.roll(h)], dim=1)
        return HeadPose(logits, self.translation(h), self.expression(h).view(-1, self.num_kp, 3))


def decode_angles(logits: torch.Tensor) -> torch.Tensor:
    """Hopenet's soft expectation over the bins: angle = sum_b softmax(logits)_b (3 b - 99) degrees.

    Args:
        logits: (..., 66) bin scores.

    Returns:
        (...) angles in degrees, in [-99, 96].
    """
    if logits.shape[-1] != NUM_BINS:
        raise ValueError(f"decode_angles: logits must end with {NUM_BINS} bins, got {tuple(logits.shape)}")
    centres = torch.arange(NUM_BINS, device=logits.device, dtype=logits.dtype) * BIN_DEGREES + BIN_OFFSET
    return (F.softmax(logits, dim=-1) * centres).sum(-1)


def angle_bins(angles_deg: torch.Tensor) -> torch.Tensor:
    """The bin of each angle: floor((angle + 99) / 3), clamped to 0..65 (Hopenet's binning)."""
    return ((angles_deg - BIN_OFFSET) / BIN_DEGREES).floor().clamp(0, NUM_BINS - 1).long()


def rotation_matrix(angles_deg: torch.Tensor) -> torch.Tensor:
    """Rotations of (yaw, pitch, roll) in the y-down keypoint frame: F Rz(roll) Rx(pitch) Ry(yaw) F.

    Equal to `headflow.rotations.flip_y(headflow.rotations.euler_to_matrix(angles))` (tested), in torch
    and differentiable.

    Args:
        angles_deg: (..., 3) yaw, pitch, roll in degrees.

    Returns:
        (..., 3, 3) rotations (head -> camera, column vectors) of the angles' dtype.
    """
    if angles_deg.shape[-1] != 3:
        raise ValueError(f"rotation_matrix: angles must be (..., 3) yaw, pitch, roll, got {tuple(angles_deg.shape)}")
    y, p, r = torch.deg2rad(angles_deg).unbind(-1)
    o, z = torch.ones_like(y), torch.zeros_like(y)

    def mat(rows: list[list[torch.Tensor]]) -> torch.Tensor:
        return torch.stack([torch.stack(row, -1) for row in rows], -2)

    ry = mat([[y.cos(), z, y.sin()], [z, o, z], [-y.sin(), z, y.cos()]])
    rx = mat([[o, z, z], [z, p.cos(), -p.sin()], [z, p.sin(), p.cos()]])
    rz = mat([[r.cos(), -r.sin(), z], [r.sin(), r.cos(), z], [z, z, o]])
    flip = torch.diag(torch.tensor([1.0, -1.0, 1.0], dtype=angles_deg.dtype, device=angles_deg.device))
    return flip @ rz @ rx @ ry @ flip


def posed_keypoints(canonical: torch.Tensor, pose: HeadPose) -> tuple[torch.Tensor, torch.Tensor]:
    """x = R x_c + t + delta (face-vid2vid eq. 1-2; the deformation added after the rotation, as its public
    implementations do; the supplement refers to these equations without printing them).

    Args:
        canonical: (B, K, 3) canonical keypoints of the source identity.
        pose: the image's `HeadPose`.

    Returns:
        (keypoints (B, K, 3), rotation (B, 3, 3)).
    """
    rot = rotation_matrix(pose.angles)
    return transform_keypoints(canonical, rot, pose.translation, pose.deformation), rot


__all__ = ["AntiAliasInterpolation2d", "BIN_DEGREES", "BIN_OFFSET", "HeadPose", "KeypointExtractor",
           "PoseExpressionNet", "ResBottleneck", "angle_bins", "decode_angles", "posed_keypoints",
           "rotation_matrix", "scaled", "soft_argmax"]
