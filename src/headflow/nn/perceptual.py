"""VGG19 feature network for perceptual losses, laid out like torchvision's `vgg19().features`.

The module's state_dict keys are exactly torchvision's `features.{i}.weight|bias` (i = 0, 2, 5, ..., 34),
so the user-provided ImageNet file `vgg19-dcbb9e9d.pth` loads strictly (its `classifier.*` keys are
ignored). There is no way to build it without weights: the constructor takes the state_dict, because a
perceptual loss from random weights is not a perceptual loss (docs/DESIGN.md, "Pretrained weights").
`headflow.perceptual_weights.load_vgg19` finds and checks the file.

Layer indices of torchvision's `features` (Simonyan & Zisserman 2015, configuration E):
relu1_1 = 1, relu2_1 = 6, relu3_1 = 11, relu4_1 = 20, relu5_1 = 29, the layers pix2pixHD's `VGGLoss`
(`models/networks.py`) compares. Inputs are normalised with the ImageNet mean and std inside.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from torch import nn

# torchvision `vgg.py` cfgs["E"]: channel counts, "M" = 2x2 max-pool
_CFG_E: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                           512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
LAYERS: dict[str, int] = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 20, "relu5_1": 29}
"""Output name -> index in `features` (the ReLU after the first conv of each block)."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
InputRange = Literal["[0,1]", "[-1,1]"]


def _features() -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = 3
    for v in _CFG_E:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(cin, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            cin = int(v)
    return nn.Sequential(*layers)


def vgg19_feature_shapes() -> dict[str, tuple[int, ...]]:
    """The `features.*` parameter names and shapes of torchvision's vgg19 (what a weights file must hold)."""
    shapes: dict[str, tuple[int, ...]] = {}
    index, cin = 0, 3
    for v in _CFG_E:
        if v == "M":
            index += 1
        else:
            shapes[f"features.{index}.weight"] = (int(v), cin, 3, 3)
            shapes[f"features.{index}.bias"] = (int(v),)
            index, cin = index + 2, int(v)  # conv, ReLU
    return shapes


class VGG19Features(nn.Module):
    """Frozen VGG19 returning relu1_1 ... relu5_1 activations of an RGB image.

    Args:
        state_dict: torchvision vgg19 weights (`torch.load("vgg19-dcbb9e9d.pth")`); keys outside
            `features.*` (the classifier) are ignored, every `features.*` key must be present with
            torchvision's shape.
        input_range: value range of the images given to forward: "[0,1]" or "[-1,1]" (mapped to [0, 1]
            before the ImageNet normalisation).

    Forward: x (B, 3, H, W) RGB in `input_range`, H, W >= 16 for relu5_1 -> dict name -> (B, C, H/2^n, W/2^n)
        for the requested `layers` (default all five; relu1_1 64 ch, relu2_1 128, relu3_1 256, relu4_1 and
        relu5_1 512). Only the layers up to the deepest requested one are computed.

    Raises:
        ValueError: the state_dict lacks a `features.*` key, has an extra one or a wrong shape (e.g. a
            vgg19_bn file); an unknown input_range or layer name; x not (B, 3, H, W).
    """

    def __init__(self, state_dict: Mapping[str, torch.Tensor], input_range: InputRange = "[0,1]"):
        super().__init__()
        if input_range not in InputRange.__args__:
            raise ValueError(f"VGG19Features: input_range must be one of {InputRange.__args__}, got {input_range!r}")
        self.input_range = input_range
        with torch.device("meta"):  # no random initialisation: every parameter comes from state_dict
            self.features = _features()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        weights = {k: v.detach().to(torch.float32) for k, v in state_dict.items() if k.startswith("features.")}
        expected = vgg19_feature_shapes()
        missing = sorted(set(expected) - set(weights))
        extra = sorted(set(weights) - set(expected))
        wrong = sorted(k for k in set(expected) & set(weights) if tuple(weights[k].shape) != expected[k])
        if missing or extra or wrong:
            raise ValueError(
                "VGG19Features: the state_dict is not torchvision's vgg19 `features` layout "
                f"(missing {missing[:4]}, unexpected {extra[:4]}, wrong shape {wrong[:4]}); "
                "give the weights of torchvision's vgg19 (vgg19-dcbb9e9d.pth), not vgg19_bn or another net")
        self.load_state_dict(weights, strict=True, assign=True)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor, layers: Sequence[str] = tuple(LAYERS)) -> dict[str, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"VGG19Features: x must be RGB (B, 3, H, W), got {tuple(x.shape)}")
        unknown = [name for name in layers if name not in LAYERS]
        if unknown:
            raise ValueError(f"VGG19Features: unknown layers {unknown}; known: {list(LAYERS)}")
        if self.input_range == "[-1,1]":
            x = (x + 1.0) * 0.5
        x = (x - self.mean) / self.std
        wanted = {LAYERS[name]: name for name in layers}
        out: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.features[: max(wanted) + 1]):
            x = layer(x)
            if i in wanted:
                out[wanted[i]] = x
        return {name: out[name] for name in layers}
