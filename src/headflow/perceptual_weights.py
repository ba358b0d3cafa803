"""Resolve the perceptual loss's weights through the registry (`headflow.models`, offline policy).

`headflow.nn` and `headflow.losses` import no other headflow module, so finding the VGG19 file on disk,
checking it and choosing the perceptual backend happens here, outside them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch

from headflow import models
from headflow.losses.perceptual import PerceptualLoss
from headflow.nn.perceptual import InputRange, VGG19Features

VGG19_NAME = "vgg19"
"""Registry key of torchvision's `vgg19-dcbb9e9d.pth`."""


def vgg19_path(models_dir: str | Path | None = None) -> Path:
    """Where the VGG19 file is (or would be): `models_dir` or the registry's folder (`$HEADFLOW_MODELS`)."""
    if models_dir is None:
        return models.model_path(VGG19_NAME)
    return Path(models_dir).expanduser() / models.REGISTRY[VGG19_NAME].filename


def load_vgg19(models_dir: str | Path | None = None, input_range: InputRange = "[0,1]",
               verify_hash: bool = True) -> VGG19Features:
    """Load torchvision's VGG19 ImageNet weights into a frozen `VGG19Features`.

    Args:
        models_dir: folder holding `vgg19-dcbb9e9d.pth`; None = the registry's (`$HEADFLOW_MODELS`,
            default ~/.cache/headflow/models).
        input_range: value range the network will be given ("[0,1]" or "[-1,1]").
        verify_hash: check the file's sha256 against the registry (torchvision's 8-hex-digit prefix
            "dcbb9e9d"; reading the 548 MB file takes a second or two).

    Returns:
        VGG19Features in eval mode, requires_grad False, on the CPU.

    Raises:
        headflow.models.MissingWeights: the file is absent (the message names the file, the official URL,
            the folder and `headflow models fetch vgg19`).
        headflow.models.WeightsHashMismatch: the file's sha256 does not start with the registered prefix.
        ValueError: the file does not hold torchvision's vgg19 `features.*` layout.
    """
    spec = models.REGISTRY[VGG19_NAME]
    path = vgg19_path(models_dir)
    if models_dir is None and verify_hash:
        path = models.require(VGG19_NAME)        # checks the sha256 (once per process and file)
    elif not path.is_file():
        raise models.MissingWeights(
            f"weights '{spec.filename}' for the VGG19 perceptual loss are missing: expected them in {path.parent}. "
            f"Nothing is downloaded at run time: run `headflow models fetch {spec.name}` where a network exists "
            f"(it writes to ${models.ENV_VAR}), or download {spec.url} and place it in {path.parent}/; "
            "or select the weight-free perceptual backend.")
    elif verify_hash:
        models.check_hash(spec, path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    return VGG19Features(state, input_range=input_range)


def perceptual_from_params(backend: Literal["auto", "vgg19", "weight_free"], models_dir: str | Path | None = None,
                           layer_weights: Mapping[str, float] | None = None,
                           input_range: InputRange = "[0,1]") -> PerceptualLoss:
    """The perceptual loss a family's params ask for.

    Args:
        backend: "vgg19" (the file must be present), "weight_free" ((1 - MS-SSIM) + gradient L1), or "auto"
            (vgg19 when `vgg19-dcbb9e9d.pth` is on disk, else weight_free). Record `loss.name` in the run's
            metrics: it says which one ran.
        models_dir: see `load_vgg19`.
        layer_weights: VGG layer weights (default pix2pixHD's); ignored by weight_free.
        input_range: value range of the images the loss will compare.

    Returns:
        PerceptualLoss.

    Raises:
        headflow.models.MissingWeights: backend "vgg19" and the file is absent.
        headflow.models.WeightsHashMismatch: the file is present but corrupt (also for "auto": a bad file
            is an error, not a silent fallback).
        ValueError: an unknown backend.
    """
    if backend not in ("auto", "vgg19", "weight_free"):
        raise ValueError(f"perceptual backend must be 'auto', 'vgg19' or 'weight_free', got {backend!r}")
    if backend == "weight_free" or (backend == "auto" and not vgg19_path(models_dir).is_file()):
        return PerceptualLoss("weight_free", input_range=input_range)
    vgg = load_vgg19(models_dir, input_range=input_range)
    return PerceptualLoss("vgg19", vgg=vgg, layer_weights=layer_weights, input_range=input_range)
