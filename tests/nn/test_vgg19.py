"""VGG19Features loading and shapes. The random state_dict here only tests loading and shapes; the
network is never used with random weights outside these tests."""

from __future__ import annotations

import pytest
import torch

from headflow.nn.perceptual import LAYERS, VGG19Features, vgg19_feature_shapes


_RANDOM: dict[str, torch.Tensor] = {}


def random_vgg19_state_dict() -> dict[str, torch.Tensor]:
    """torchvision vgg19 `features.*` names and shapes with random values, plus stand-in classifier keys.

    A new dict each call (callers replace entries), sharing tensors made once per session."""
    if not _RANDOM:
        g = torch.Generator().manual_seed(0)
        _RANDOM.update({k: torch.randn(s, generator=g) * 0.05 for k, s in vgg19_feature_shapes().items()})
        _RANDOM["classifier.0.weight"] = torch.zeros(4, 4)  # the real file's classifier keys must be ignored
        _RANDOM["classifier.6.bias"] = torch.zeros(4)
    return dict(_RANDOM)


def test_state_dict_keys_follow_torchvision_vgg19_features():
    # torchvision cfg "E": conv layers at these indices of `features` (ReLU after each, max-pools at 4, 9,
    # 18, 27, 36)
    convs = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    shapes = vgg19_feature_shapes()
    assert sorted(shapes) == sorted(f"features.{i}.{p}" for i in convs for p in ("weight", "bias"))
    assert shapes["features.0.weight"] == (64, 3, 3, 3)
    assert shapes["features.34.weight"] == (512, 512, 3, 3)
    assert LAYERS == {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 20, "relu5_1": 29}


def test_loads_strictly_and_returns_the_five_relu_outputs():
    vgg = VGG19Features(random_vgg19_state_dict())
    out = vgg(torch.rand(2, 3, 32, 32))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "relu1_1": (2, 64, 32, 32), "relu2_1": (2, 128, 16, 16), "relu3_1": (2, 256, 8, 8),
        "relu4_1": (2, 512, 4, 4), "relu5_1": (2, 512, 2, 2)}
    assert all((v >= 0).all() for v in out.values())
    assert not any(p.requires_grad for p in vgg.parameters())
    assert list(vgg(torch.rand(1, 3, 32, 32), ["relu2_1"])) == ["relu2_1"]


def test_cannot_be_built_without_weights():
    with pytest.raises(TypeError):
        VGG19Features()  # type: ignore[call-arg]


def test_rejects_a_state_dict_of_another_layout():
    sd = random_vgg19_state_dict()
    del sd["features.34.bias"]
    with pytest.raises(ValueError, match=r"missing \['features.34.bias'\]"):
        VGG19Features(sd)
    sd = random_vgg19_state_dict()
    sd["features.1.weight"] = torch.ones(64)  # vgg19_bn puts BatchNorm at index 1
    with pytest.raises(ValueError, match="unexpected"):
        VGG19Features(sd)


@pytest.mark.parametrize(("input_range", "value"), [("[0,1]", 0.5), ("[-1,1]", 0.0)])
def test_imagenet_normalisation_happens_inside(input_range, value):
    sd = random_vgg19_state_dict()
    sd["features.0.weight"] = torch.zeros(64, 3, 3, 3)
    sd["features.0.weight"][0, 0, 1, 1] = 1.0  # channel 0 of relu1_1 = relu(normalised red), centre tap
    sd["features.0.bias"] = torch.zeros(64)
    vgg = VGG19Features(sd, input_range=input_range)
    x = torch.full((1, 3, 8, 8), value, requires_grad=True)
    out = vgg(x, ["relu1_1"])["relu1_1"]
    # 0.5 in [0, 1] (or 0.0 in [-1, 1]) -> (0.5 - 0.485) / 0.229
    assert out[0, 0, 4, 4].item() == pytest.approx((0.5 - 0.485) / 0.229, rel=1e-5)
    out[0, 0].sum().backward()
    assert x.grad.abs().sum() > 0  # frozen weights, but gradients reach the image (the loss needs them)
