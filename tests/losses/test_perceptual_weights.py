from __future__ import annotations

import pytest
import torch

from headflow import models
from headflow.nn.perceptual import vgg19_feature_shapes
from headflow.perceptual_weights import load_vgg19, perceptual_from_params


def test_registry_entry_is_torchvisions_file():
    spec = models.REGISTRY["vgg19"]
    assert spec.filename == "vgg19-dcbb9e9d.pth"
    assert spec.url == "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
    assert spec.sha256 == "dcbb9e9d"  # torchvision's sha256 prefix (the file name's suffix)


def test_missing_file_raises_the_policy_error(tmp_path):
    with pytest.raises(models.MissingWeights) as err:
        load_vgg19(tmp_path)
    message = str(err.value)
    assert "vgg19-dcbb9e9d.pth" in message and str(tmp_path) in message
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in message
    assert "headflow models fetch vgg19" in message


def test_missing_file_in_the_registry_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(models.ENV_VAR, str(tmp_path))
    with pytest.raises(models.MissingWeights, match="vgg19-dcbb9e9d.pth"):
        load_vgg19()
    with pytest.raises(models.MissingWeights):
        perceptual_from_params("vgg19")
    assert perceptual_from_params("auto").name == "weight_free"


def test_backend_selection_without_the_file(tmp_path):
    assert perceptual_from_params("auto", tmp_path).name == "weight_free"
    assert perceptual_from_params("weight_free", tmp_path).name == "weight_free"
    with pytest.raises(models.MissingWeights):
        perceptual_from_params("vgg19", tmp_path)
    with pytest.raises(ValueError, match="'auto', 'vgg19' or 'weight_free'"):
        perceptual_from_params("alexnet", tmp_path)


def test_a_corrupt_file_is_an_error_not_a_fallback(tmp_path):
    (tmp_path / "vgg19-dcbb9e9d.pth").write_bytes(b"not the weights")
    with pytest.raises(models.WeightsHashMismatch):
        perceptual_from_params("auto", tmp_path)


def test_a_file_in_torchvision_layout_loads(tmp_path):
    # random values in torchvision's layout, saved as torch.save does; the hash check is off because the
    # content is not torchvision's
    g = torch.Generator().manual_seed(0)
    state = {k: (torch.randn(s, generator=g) * 0.05).half() for k, s in vgg19_feature_shapes().items()}
    state["classifier.6.bias"] = torch.zeros(10)
    torch.save(state, tmp_path / "vgg19-dcbb9e9d.pth")
    vgg = load_vgg19(tmp_path, input_range="[-1,1]", verify_hash=False)
    assert vgg.input_range == "[-1,1]" and vgg.features[0].weight.dtype == torch.float32
    torch.testing.assert_close(vgg.features[34].bias, state["features.34.bias"].float())
