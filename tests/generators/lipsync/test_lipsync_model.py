"""The lip-sync U-Net: attention, shapes, gradients, reference grouping, architecture checks."""

from __future__ import annotations

import math

import pytest
import torch

from headflow.generators.lipsync.model import (LipsyncGenerator, architecture, attention_weights,
                                               check_architecture, coord_channels)
from headflow.generators.lipsync.params import ModelParams

TINY = ModelParams(width=0.0625)


def test_paper_attention_known_answer():
    # Scores a . r = (0, 1e4): sigmoid gives (0.5, 1), so w = softmax(-0.5, -1) = (1, e^-0.5) / (1 + e^-0.5);
    # w_0 = 1 / (1 + e^-0.5) = 0.6225. Eq. 5 as printed gives the *less* similar reference more weight.
    audio = torch.tensor([[1.0, 0.0]])
    refs = torch.tensor([[[0.0, 5.0], [1e4, 0.0]]])
    w = attention_weights(audio, refs, "paper")
    torch.testing.assert_close(w, torch.tensor([[1 / (1 + math.exp(-0.5)), 1 - 1 / (1 + math.exp(-0.5))]]))
    # Scaled dot product, d = 2: softmax(0, 2 / sqrt 2) -> w_1 = 1 / (1 + e^-sqrt2) = 0.8044.
    refs = torch.tensor([[[0.0, 5.0], [2.0, 0.0]]])
    torch.testing.assert_close(attention_weights(audio, refs, "dot")[0, 1], torch.tensor(1 / (1 + math.exp(-math.sqrt(2)))))
    torch.testing.assert_close(attention_weights(audio, refs, "mean"), torch.full((1, 2), 0.5))
    with pytest.raises(ValueError, match="kind"):
        attention_weights(audio, refs, "softmax")


@pytest.mark.parametrize("kind", ["paper", "dot", "mean"])
def test_attention_weights_are_non_negative_and_sum_to_one(kind):
    torch.manual_seed(0)
    w = attention_weights(torch.randn(7, 16) * 3, torch.randn(7, 5, 16) * 3, kind)
    assert w.shape == (7, 5) and (w >= 0).all()
    torch.testing.assert_close(w.sum(1), torch.ones(7))


def test_coord_channels_span_minus_one_to_one_along_each_axis():
    c = coord_channels(2, 80, 16)
    assert c.shape == (2, 2, 80, 16)
    assert c[0, 0, 0, 5] == -1 and c[0, 0, -1, 5] == 1 and c[0, 1, 7, 0] == -1 and c[0, 1, 7, -1] == 1
    torch.testing.assert_close(c[0, 0, :, 3], torch.linspace(-1, 1, 80))


def test_tiny_forward_backward_shapes_and_every_part_gets_gradients():
    torch.manual_seed(0)
    g = LipsyncGenerator(TINY)
    masked, mel, refs = torch.rand(10, 3, 96, 96), torch.randn(10, 1, 80, 16), torch.rand(2, 3, 3, 96, 96)
    out = g(masked, mel, refs)
    assert out.image.shape == (10, 3, 96, 96) and out.mask.shape == (10, 1, 96, 96)
    assert out.attention.shape == (10, 3)
    torch.testing.assert_close(out.attention.sum(1), torch.ones(10))
    assert 0 <= out.image.min() and out.image.max() <= 1 and 0 <= out.mask.min() and out.mask.max() <= 1
    (out.image.mean() + out.mask.mean()).backward()
    for name in ("identity_encoder", "reference_encoder", "audio_encoder", "levels", "image_head", "mask_head"):
        grads = [p.grad for p in getattr(g, name).parameters()]
        assert all(gr is not None for gr in grads) and any(gr.abs().sum() > 0 for gr in grads), name


def test_frames_use_only_their_own_reference_set():
    torch.manual_seed(0)
    g = LipsyncGenerator(TINY).eval()
    masked, mel, refs = torch.rand(10, 3, 96, 96), torch.randn(10, 1, 80, 16), torch.rand(2, 3, 3, 96, 96)
    with torch.no_grad():
        a = g(masked, mel, refs).image
        refs2 = refs.clone()
        refs2[1] = torch.rand(3, 3, 96, 96)
        b = g(masked, mel, refs2).image
    torch.testing.assert_close(a[:5], b[:5])                             # frames 0-4 use reference set 0
    assert (a[5:] - b[5:]).abs().max() > 1e-4                            # frames 5-9 use set 1


def test_ablation_switches_change_the_network():
    masked, mel, refs = torch.rand(5, 3, 96, 96), torch.randn(5, 1, 80, 16), torch.rand(1, 2, 3, 96, 96)
    no_mask = LipsyncGenerator(ModelParams(width=0.0625, mask_head=False, audio_skips=False, residual=False))
    out = no_mask(masked, mel, refs)
    assert out.mask is None and out.image.shape == (5, 3, 96, 96)
    full = LipsyncGenerator(TINY)
    assert sum(p.numel() for p in no_mask.parameters()) < sum(p.numel() for p in full.parameters())
    all_skipless = LipsyncGenerator(ModelParams(width=0.0625, skipless_levels=6))
    assert all_skipless(masked, mel, refs).image.shape == (5, 3, 96, 96)


def test_bad_shapes_are_named():
    g = LipsyncGenerator(TINY)
    with pytest.raises(ValueError, match="multiple"):
        g(torch.rand(5, 3, 96, 96), torch.randn(5, 1, 80, 16), torch.rand(2, 2, 3, 96, 96))
    with pytest.raises(ValueError, match="references must be"):
        g(torch.rand(5, 3, 96, 96), torch.randn(5, 1, 80, 16), torch.rand(2, 3, 96, 96))
    with pytest.raises(ValueError, match="mel must be"):
        g(torch.rand(5, 3, 96, 96), torch.randn(5, 1, 80, 12), torch.rand(1, 2, 3, 96, 96))


def test_architecture_mismatch_names_both():
    saved = architecture(ModelParams(width=0.25))
    check_architecture(saved, ModelParams(width=0.25))
    with pytest.raises(ValueError, match=r"'width': \(0.25, 0.125\)"):
        check_architecture(saved, ModelParams(width=0.125))
