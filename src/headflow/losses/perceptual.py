"""Perceptual loss: VGG19 feature L1 when the weights are given, else a weight-free substitute.

docs/DESIGN.md ("Generators", perceptual loss): VGG19 from torchvision's file when the user provides it;
otherwise (1 - MS-SSIM) + L1 on image gradients, and the run records which one ran (`PerceptualLoss.name`).
`headflow.perceptual_weights.perceptual_from_params` picks the backend from the files on disk.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from torch import nn

from headflow.losses.image import image_gradient_l1
from headflow.losses.ssim import ms_ssim
from headflow.nn.perceptual import LAYERS, InputRange, VGG19Features

Backend = Literal["vgg19", "weight_free"]

PIX2PIXHD_LAYER_WEIGHTS: dict[str, float] = {"relu1_1": 1 / 32, "relu2_1": 1 / 16, "relu3_1": 1 / 8,
                                             "relu4_1": 1 / 4, "relu5_1": 1.0}
"""pix2pixHD `models/networks.py::VGGLoss` weights for relu1_1 ... relu5_1."""


class PerceptualLoss(nn.Module):
    """Perceptual distance between generated and target images.

    Backends:
        "vgg19": sum_l lambda_l * mean|phi_l(pred) - sg(phi_l(target))| over VGG19 layers l (Johnson et al.
            2016; the pix2pixHD `VGGLoss` form, target features detached), lambda from `layer_weights`.
        "weight_free": (1 - MS-SSIM(pred, target)) + image_gradient_l1(pred, target), the substitute used
            when no VGG19 weights are available. MS-SSIM is Wang et al. 2003 (`headflow.losses.ssim`), its
            scale count fitted to the crop size (96 px: 4 scales, 256 px: 5); both images are mapped to
            [0, 1] first. It needs no weights, so it is not a learned perceptual metric: runs must report
            which backend ran (`name`).

    Args:
        backend: "vgg19" | "weight_free".
        vgg: a loaded `VGG19Features` (required for "vgg19"; see `headflow.perceptual_weights.load_vgg19`).
            Its input_range must equal `input_range`.
        layer_weights: VGG layer name -> weight (default pix2pixHD's); layers with weight 0 are skipped.
        input_range: range of pred and target: "[0,1]" or "[-1,1]".

    Attributes:
        name: the backend that runs ("vgg19" or "weight_free"), for the run's metrics.

    Forward: pred, target (B, 3, H, W) in `input_range` (weight_free: any C, smaller side >= 11) -> scalar >= 0.

    Raises:
        ValueError: backend "vgg19" without a loaded `VGG19Features`; unknown backend, layer names or
            input_range; a vgg whose input_range differs; pred/target shapes that differ.
    """

    def __init__(self, backend: Backend, vgg: VGG19Features | None = None,
                 layer_weights: Mapping[str, float] | None = None, input_range: InputRange = "[0,1]"):
        super().__init__()
        if backend not in Backend.__args__:
            raise ValueError(f"PerceptualLoss: backend must be one of {Backend.__args__}, got {backend!r}")
        if input_range not in InputRange.__args__:
            raise ValueError(f"PerceptualLoss: input_range must be one of {InputRange.__args__}, got {input_range!r}")
        self.name: str = backend
        self.input_range = input_range
        self.layer_weights = dict(PIX2PIXHD_LAYER_WEIGHTS if layer_weights is None else layer_weights)
        if backend == "vgg19":
            if not isinstance(vgg, VGG19Features):
                raise ValueError(
                    "PerceptualLoss(backend='vgg19') needs a loaded VGG19Features (got "
                    f"{type(vgg).__name__}); load torchvision's vgg19-dcbb9e9d.pth with "
                    "headflow.perceptual_weights.load_vgg19(), or use backend='weight_free'")
            if vgg.input_range != input_range:
                raise ValueError(f"PerceptualLoss: vgg.input_range {vgg.input_range!r} differs from "
                                 f"input_range {input_range!r}; build both with the same range")
            unknown = sorted(set(self.layer_weights) - set(LAYERS))
            if unknown:
                raise ValueError(f"PerceptualLoss: unknown VGG layers {unknown}; known: {list(LAYERS)}")
        self.vgg = vgg if backend == "vgg19" else None

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"PerceptualLoss: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
        if self.vgg is not None:
            layers = [name for name, w in self.layer_weights.items() if w != 0]
            f_pred = self.vgg(pred, layers)
            with torch.no_grad():
                f_target = self.vgg(target, layers)
            return sum((self.layer_weights[n] * (f_pred[n] - f_target[n]).abs().mean() for n in layers),
                       pred.new_zeros(()))
        if self.input_range == "[-1,1]":
            pred, target = (pred + 1.0) * 0.5, (target + 1.0) * 0.5
        return (1.0 - ms_ssim(pred, target, data_range=1.0)) + image_gradient_l1(pred, target)
