"""The Style Mapping network: appearance volume, warping network, intermediate generator (supplement
tables 3-4; face-vid2vid's `AppearanceFeatureExtractor`, `DenseMotionNetwork`, `OcclusionAwareSPADEGenerator`
layout without SPADE, as the supplement's table 4 has none).

* Appearance feature extractor (table 4, rows 1-6): conv 3x3 + BN + ReLU, DownBlock2d x2, a 1x1 conv to
  C x D channels reshaped to the 3D volume F_s [C, D, S/4, S/4] ([32, 16, 64, 64] published), ResBlock3d x6.
* Warping network (table 3): F_s compressed to 4 channels (1x1x1 conv + BN), warped by each keypoint's
  first-order motion w_k (eq. 1) and by the identity (face-vid2vid's background motion; the table's 16 masks
  = 15 keypoints + 1), each with the keypoint's Gaussian heatmap difference (driving - source) as one more
  channel -> (K + 1) x 5 = 80 channels -> 3D hourglass (+ its input: 80 + 32 = 112 channels) -> Conv3d k7 ->
  K + 1 composition masks (softmax over the masks at each voxel, eq. 2) and, from the 112 x D channels
  reshaped to 2D, Conv2d k7 (both kernels `mask_kernel`: 3 at CPU sizes) + sigmoid -> the 2D occlusion mask o.
* Intermediate generator (table 4, after the warping network): the warped volume reshaped to C x D
  channels (projected to 2D), conv 3x3 + BN + ReLU to 256, 1x1 conv 256 -> 256, times o, ResBlock2d x6,
  UpBlock2d 256 -> 128 -> 64, conv 3x3 -> 3, sigmoid. Deviation: table 4's printed channels after the
  occlusion do not chain (a [256, 512, 3, 3] conv, then upsampling to 512 and 256 channels, then a
  [64, 3, 3, 3] conv); we use face-vid2vid's 256 -> 128 -> 64.

Deviations in the blocks: ResBlock3d/2d are the project's post-norm `headflow.nn.blocks.ResBlock`
(face-vid2vid's are pre-activation); BatchNorm stands for the tables' SynchronizedBatchNorm (one process).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from headflow.config import to_dict
from headflow.generators.stylemap.keypoints import (HeadPose, KeypointExtractor, PoseExpressionNet, posed_keypoints,
                                                    scaled)
from headflow.generators.stylemap.params import ModelParams, StylemapParams
from headflow.nn.blocks import DownBlock, ResBlock, SameBlock, UpBlock
from headflow.nn.warp import keypoint_warp_grids, make_coordinate_grid, warp_volume
from headflow.training.checkpoint import load_export, save_export
from headflow.manifest.hashing import file_sha256  # noqa: F401  (re-exported: callers import it from here)

KP_VARIANCE = 0.01
"""Variance of the Gaussian keypoint heatmaps the warping network sees (FOMM / face-vid2vid: 0.01)."""
GENERATOR_FORMAT = "headflow.stylemap.generator/1"


def check_images(images: torch.Tensor, size: int, name: str = "image") -> None:
    """Raise unless `images` is (B, 3, size, size): a network of this family never resizes silently.

    Raises:
        ValueError: naming the input, its shape and the model's size, and what to do.
    """
    if images.dim() != 4 or images.shape[1] != 3 or tuple(images.shape[2:]) != (size, size):
        raise ValueError(f"{name}: expected (B, 3, {size}, {size}) images (the model's image_size), got "
                         f"{tuple(images.shape)}; resize square crops to {size} first (a different aspect ratio "
                         "is not accepted)")


class AppearanceEncoder(nn.Module):
    """Table 4 rows 1-6: (B, 3, S, S) in [0, 1] -> F_s (B, C, D, S/4, S/4)."""

    def __init__(self, p: ModelParams):
        super().__init__()
        c1, c2, c3 = (scaled(c, p.width) for c in (64, 128, 256))
        self.channels, self.depth = scaled(p.volume_channels, p.width), p.volume_depth
        self.encoder = nn.Sequential(SameBlock(3, c1), DownBlock(c1, c2), DownBlock(c2, c3),
                                     nn.Conv2d(c3, self.channels * self.depth, 1))
        self.res3d = nn.Sequential(*[ResBlock(self.channels, dims=3) for _ in range(p.res3d_blocks)])

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.encoder(image)
        b, _, h, w = x.shape
        return self.res3d(x.view(b, self.channels, self.depth, h, w))


class Hourglass3d(nn.Module):
    """FOMM/face-vid2vid 3D hourglass: DownBlock3d x n (H, W halved; D kept), UpBlock3d x n with skip
    concatenation; the output is [input, last decoder features]: in_channels + block_expansion channels.
    Shapes: (B, C_in, D, H, W) -> (B, C_in + expansion, D, H, W); H, W divisible by 2^n."""

    def __init__(self, in_channels: int, expansion: int, blocks: int, max_features: int = 1024):
        super().__init__()
        chans = [min(max_features, expansion * 2 ** (i + 1)) for i in range(blocks)]
        self.down = nn.ModuleList(DownBlock(in_channels if i == 0 else chans[i - 1], chans[i], dims=3)
                                  for i in range(blocks))
        ups = []
        for i in reversed(range(blocks)):
            cin = chans[i] * (1 if i == blocks - 1 else 2)
            ups.append(UpBlock(cin, min(max_features, expansion * 2 ** i), dims=3))
        self.up = nn.ModuleList(ups)
        self.out_channels = in_channels + expansion

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [x]
        for block in self.down:
            skips.append(block(skips[-1]))
        out = skips.pop()
        for block in self.up:
            out = torch.cat([block(out), skips.pop()], dim=1)
        return out


def keypoint_heatmaps(kp_src: torch.Tensor, kp_drv: torch.Tensor, spatial_size: tuple[int, int, int]) -> torch.Tensor:
    """Gaussian heatmap differences, driving minus source, with a zero map for the background motion
    first (FOMM `create_heatmap_representations`): (B, K + 1, 1, D, H, W)."""
    grid = make_coordinate_grid(spatial_size, like=kp_drv)                      # (D, H, W, 3)

    def gauss(kp: torch.Tensor) -> torch.Tensor:
        d2 = (grid[None, None] - kp[:, :, None, None, None, :]).pow(2).sum(-1)
        return torch.exp(-0.5 * d2 / KP_VARIANCE)

    heat = gauss(kp_drv) - gauss(kp_src)                                          # (B, K, D, H, W)
    return torch.cat([torch.zeros_like(heat[:, :1]), heat], dim=1).unsqueeze(2)


@dataclass
class Warped:
    """The warping network's outputs."""

    volume: torch.Tensor
    """(B, C, D, H, W) w(F_s)."""
    masks: torch.Tensor
    """(B, K + 1, D, H, W) composition masks (index 0: the identity/background motion), summing to 1."""
    occlusion: torch.Tensor
    """(B, 1, H, W) in (0, 1)."""


class WarpingNetwork(nn.Module):
    """Table 3 (face-vid2vid `DenseMotionNetwork`): see the module docstring.

    forward(F_s, kp_src, kp_drv, rot_src, rot_drv) -> `Warped`; keypoints (B, K, 3) posed (`posed_keypoints`),
    rotations (B, 3, 3).
    """

    def __init__(self, p: ModelParams):
        super().__init__()
        channels = scaled(p.volume_channels, p.width)
        self.composition = p.composition
        self.compress = nn.Sequential(nn.Conv3d(channels, p.compress_channels, 1, bias=False),
                                      nn.BatchNorm3d(p.compress_channels))
        n = p.num_kp + 1
        self.hourglass = Hourglass3d(n * (p.compress_channels + 1), scaled(p.hourglass_channels, p.width),
                                     p.hourglass_blocks)
        k = p.mask_kernel
        self.mask = nn.Conv3d(self.hourglass.out_channels, n, k, padding=k // 2)
        self.occlusion = nn.Conv2d(self.hourglass.out_channels * p.volume_depth, 1, k, padding=k // 2)

    def forward(self, volume: torch.Tensor, kp_src: torch.Tensor, kp_drv: torch.Tensor, rot_src: torch.Tensor,
                rot_drv: torch.Tensor) -> Warped:
        b, c, d, h, w = volume.shape
        grids = keypoint_warp_grids(kp_src, kp_drv, rot_src, rot_drv, (d, h, w))   # (B, K+1, D, H, W, 3)
        small = warp_volume(self.compress(volume), grids)                            # (B, K+1, c', D, H, W)
        heat = keypoint_heatmaps(kp_src, kp_drv, (d, h, w))
        feats = self.hourglass(torch.cat([heat, small], dim=2).flatten(1, 2))
        masks = F.softmax(self.mask(feats), dim=1)                                   # (B, K+1, D, H, W)
        occlusion = torch.sigmoid(self.occlusion(feats.flatten(1, 2)))
        return Warped(compose(volume, grids, masks, self.composition), masks, occlusion)


def compose(volume: torch.Tensor, grids: torch.Tensor, masks: torch.Tensor, how: str = "volumes") -> torch.Tensor:
    """w(F_s) from the per-motion grids and composition masks.

    Args:
        volume: (B, C, D, H, W) F_s.
        grids: (B, N, D, H, W, 3) backward sampling grids (N = K + 1 motions).
        masks: (B, N, D, H, W), summing to 1 over N.
        how: "volumes": sum_n m_n w_n(F_s) (the supplement, after eq. 2); "flows": F_s sampled at
            sum_n m_n w_n(p) (face-vid2vid's code).

    Returns:
        (B, C, D, H, W).
    """
    if how == "volumes":
        return (warp_volume(volume, grids) * masks.unsqueeze(2)).sum(1)
    if how == "flows":
        return warp_volume(volume, (grids * masks.unsqueeze(-1)).sum(1))
    raise ValueError(f"compose: how must be 'volumes' or 'flows', got {how!r}")


class IntermediateGenerator(nn.Module):
    """Table 4 after the warping network: (w(F_s) (B, C, D, h, w), o (B, 1, h, w)) -> (B, 3, 4h, 4w) in (0, 1)."""

    def __init__(self, p: ModelParams):
        super().__init__()
        channels = scaled(p.volume_channels, p.width) * p.volume_depth
        c256, c128, c64 = (scaled(c, p.width) for c in (256, 128, 64))
        self.project = nn.Sequential(SameBlock(channels, c256), nn.Conv2d(c256, c256, 1))
        self.res2d = nn.Sequential(*[ResBlock(c256) for _ in range(p.res2d_blocks)])
        self.up = nn.Sequential(UpBlock(c256, c128), UpBlock(c128, c64))
        self.out = nn.Conv2d(c64, 3, 3, padding=1)

    def forward(self, volume: torch.Tensor, occlusion: torch.Tensor) -> torch.Tensor:
        x = self.project(volume.flatten(1, 2)) * occlusion
        return torch.sigmoid(self.out(self.up(self.res2d(x))))


@dataclass
class StylemapOutput:
    """One pass of the Style Mapping module."""

    image: torch.Tensor
    """(B, 3, S, S) I_o in (0, 1)."""
    kp_canonical: torch.Tensor
    """(B, K, 3) x_c of the source."""
    kp_source: torch.Tensor
    """(B, K, 3) C: the source's posed keypoints."""
    kp_driving: torch.Tensor
    """(B, K, 3) C-bar: the driver's (style reference's) keypoints on the source's canonical keypoints."""
    pose_source: HeadPose
    pose_driving: HeadPose
    warped: Warped


class StylemapGenerator(nn.Module):
    """The Style Mapping module: neutral image I_s + style reference (driving) image -> I_o.

    x_c = KeypointExtractor(I_s); (R, t, delta) = PoseExpressionNet(image) for both images;
    C = R_s x_c + t_s + delta_s, C-bar = R_d x_c + t_d + delta_d; F_s = AppearanceEncoder(I_s);
    w(F_s), o = WarpingNetwork(F_s, C, C-bar, R_s, R_d); I_o = IntermediateGenerator(w(F_s), o).

    Shapes: source, driving (B, 3, S, S) in [0, 1], S = params.image_size -> `StylemapOutput`.
    """

    def __init__(self, params: ModelParams = ModelParams()):
        super().__init__()
        params.validate()
        self.params = params
        self.keypoints = KeypointExtractor(params)
        self.pose = PoseExpressionNet(params)
        self.appearance = AppearanceEncoder(params)
        self.warping = WarpingNetwork(params)
        self.generator = IntermediateGenerator(params)

    def encode_source(self, source: torch.Tensor) -> tuple[torch.Tensor, HeadPose, torch.Tensor]:
        """(x_c, the source's HeadPose, F_s) of the neutral images; reused for every driving frame at generation."""
        check_images(source, self.params.image_size, "source")
        return self.keypoints(source), self.pose(source), self.appearance(source)

    def animate(self, canonical: torch.Tensor, pose_source: HeadPose, volume: torch.Tensor,
                driving: torch.Tensor) -> StylemapOutput:
        """I_o for driving images from an encoded source (`encode_source`, batch sizes equal)."""
        check_images(driving, self.params.image_size, "driving")
        pose_driving = self.pose(driving)
        kp_s, rot_s = posed_keypoints(canonical, pose_source)
        kp_d, rot_d = posed_keypoints(canonical, pose_driving)
        warped = self.warping(volume, kp_s, kp_d, rot_s, rot_d)
        image = self.generator(warped.volume, warped.occlusion)
        return StylemapOutput(image, canonical, kp_s, kp_d, pose_source, pose_driving, warped)

    def forward(self, source: torch.Tensor, driving: torch.Tensor) -> StylemapOutput:
        canonical, pose_source, volume = self.encode_source(source)
        return self.animate(canonical, pose_source, volume, driving)


def volume_bytes(params: ModelParams, batch: int = 1, bytes_per_value: int = 4) -> dict[str, int]:
    """Memory of the 3D activations of one forward pass, computed from the sizes (no allocation).

    Returns {"feature_volume": F_s, "warped_volumes": the K + 1 warped copies of F_s ("volumes" composition;
    0 for "flows"), "hourglass_input": the (K + 1) x (c' + 1)-channel input, "keypoint_volume": the
    extractor's last 3D activation}, in bytes.
    """
    side = params.image_size // 4
    c = scaled(params.volume_channels, params.width)
    vox = params.volume_depth * side * side
    n = params.num_kp + 1
    kp_vox = params.kp_depth * params.kp_input_size ** 2
    return {"feature_volume": batch * c * vox * bytes_per_value,
            "warped_volumes": batch * n * c * vox * bytes_per_value if params.composition == "volumes" else 0,
            "hourglass_input": batch * n * (params.compress_channels + 1) * vox * bytes_per_value,
            "keypoint_volume": batch * scaled(32, params.width) * kp_vox * bytes_per_value}


# ------------------------------------------------------------------------------------------ the file

def architecture(params: ModelParams) -> dict:
    """The fields that decide the weights' shapes (a checkpoint of other values cannot load)."""
    return to_dict(params)


def check_architecture(saved: dict, params: ModelParams, where: str = "checkpoint") -> None:
    """Raise when a saved architecture differs from `params`, naming each differing field and both values."""
    want = architecture(params)
    diff = {k: (saved.get(k), v) for k, v in want.items() if saved.get(k) != v and k != "composition"}
    if diff:
        parts = ", ".join(f"{k}: checkpoint {a!r} vs expected {b!r}" for k, (a, b) in sorted(diff.items()))
        raise ValueError(f"{where} holds a stylemap generator of another architecture ({parts}); train one with "
                         "these params (`dvc repro train_stylemap`) or use the params it was trained with")


def save_generator(generator: StylemapGenerator, params: StylemapParams, path: Path, extra: dict | None = None) -> str:
    """Write the exported generator (architecture, params, weights, extras) atomically; returns its sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": GENERATOR_FORMAT, "architecture": architecture(params.model), "params": to_dict(params),
             "state_dict": {k: v.detach().cpu() for k, v in generator.state_dict().items()}, **(extra or {})}
    return save_export(state, path)



def load_generator(path: Path, model: ModelParams | None = None,
                   device: str | torch.device = "cpu") -> tuple[StylemapGenerator, dict[str, Any]]:
    """Load an exported generator in eval mode.

    Args:
        path: a `generator.pt` written by `save_generator`.
        model: the architecture the caller expects (None: whatever the file holds).

    Returns:
        (generator, the file's whole state without the weights: params, extras).

    Raises:
        FileNotFoundError: no file (the message says how to make one).
        ValueError: not a stylemap generator file, or of another architecture or width than `model`.
    """
    from headflow.config import from_dict

    state = load_export(path, GENERATOR_FORMAT, "stylemap generator", "train one with `dvc repro train_stylemap` "
                        "(or `python -m stages.train_stylemap`)")
    saved = from_dict(StylemapParams, state["params"], "generator.params")
    check_architecture(state["architecture"], saved.model, str(path))
    if model is not None:
        check_architecture(state["architecture"], model, str(path))
    generator = StylemapGenerator(saved.model)
    generator.load_state_dict(state["state_dict"])
    meta = {k: v for k, v in state.items() if k != "state_dict"}
    return generator.to(device).eval(), meta
