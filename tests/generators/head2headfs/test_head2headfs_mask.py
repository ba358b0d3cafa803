"""Head2HeadFS leaves the edge smear of tight sources (crop256's validity mask) out of its vgg and mask terms."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import default_collate

from headflow.generators.head2headfs.data import Head2HeadWindows, synthetic_clip
from headflow.generators.head2headfs.losses import FinetuneStep, InitialisationStep
from headflow.generators.head2headfs.model import Discriminators, Renderer
from headflow.generators.head2headfs.params import MaskParams, tiny_params
from headflow.generators.head2headfs.train import load_clip
from headflow.losses.perceptual import PerceptualLoss
from tests.generators.conftest import TIGHT_SMEAR_COLUMNS, write_tight_shard


def _perceptual() -> PerceptualLoss:
    return PerceptualLoss("weight_free", input_range="[-1,1]")


def _batch(identity_frames: int, n: int = 2) -> dict:
    p = tiny_params()
    s = p.model.image_size
    ds = Head2HeadWindows([synthetic_clip(12, "a", s, seed=1)], ["a"], p.discriminator, identity_frames, n, seed=0)
    return default_collate([ds[i] for i in range(n)])


class _Fixed(nn.Module):
    """A sequence renderer whose output is given (to test the loss wiring alone)."""

    def __init__(self, frames: torch.Tensor, masks: torch.Tensor):
        super().__init__()
        self.frames, self.masks = frames, masks

    def forward(self, nmfc, previous):
        return self.frames, self.masks


def test_a_prediction_wrong_only_in_invalid_pixels_has_zero_vgg_and_mask_loss():
    p = tiny_params()
    b = _batch(0)
    inside = torch.ones_like(b["masks"], dtype=torch.bool)            # (B, L, 1, S, S)
    inside[..., :, :6] = False                                         # left 6 columns: smear
    frames, masks = b["frames"].clone(), b["masks"].clone()
    frames[..., :6] = -frames[..., :6] + 0.5
    masks[..., :6] = 1.0 - masks[..., :6]
    step = FinetuneStep(p, _Fixed(frames, masks), Discriminators(p, 1), _perceptual())
    masked = step.g_losses({**b, "inside": inside})
    assert masked["vgg"].item() == 0.0 and masked["mask"].item() == 0.0
    plain = step.g_losses(b)
    assert plain["vgg"].item() > 0.0 and plain["mask"].item() > 0.0
    # known answer: one valid mask pixel off by 1 -> 1 / (B * L * S * (S - 6)) valid values (one channel)
    masks2 = b["masks"].clone()
    masks2[0, 0, 0, 3, 10] = 1.0 - masks2[0, 0, 0, 3, 10]
    step.generator = _Fixed(b["frames"], masks2)
    B, L, _, S, _ = b["masks"].shape
    assert torch.isclose(step.g_losses({**b, "inside": inside})["mask"], torch.tensor(1.0 / (B * L * S * (S - 6))))


def test_an_all_true_mask_gives_bit_identical_losses():
    p = tiny_params()
    b = _batch(p.data.identity_frames)
    torch.manual_seed(0)
    step = InitialisationStep(p, Renderer(p.model), Discriminators(p, 1), _perceptual())
    step.generator.eval()                                              # E_id's BatchNorm: no running-stat drift
    none = step.g_losses(b)
    ones = step.g_losses({**b, "inside": torch.ones_like(b["masks"], dtype=torch.bool)})
    assert none.keys() == ones.keys() and all(torch.equal(none[k], ones[k]) for k in none)


def test_the_shards_mask_reaches_the_window(tmp_path):
    p = tiny_params()
    s = p.model.image_size
    shards, labels = write_tight_shard(tmp_path, nmfc_size=s)
    clip = load_clip("tight", s, MaskParams(backend="nmfc"), shards, labels)
    assert clip.inside.shape == (16, s, s)
    ds = Head2HeadWindows([clip], ["spk"], p.discriminator, p.data.identity_frames, 2, seed=0)
    batch = default_collate([ds[i] for i in range(2)])
    L = p.discriminator.frames_needed
    assert batch["inside"].shape == (2, L, 1, s, s) and batch["inside"].dtype == torch.bool
    k = TIGHT_SMEAR_COLUMNS * s // 256                                 # 256 -> s: an exact area factor
    assert not batch["inside"][..., :k].any() and batch["inside"][..., k:].all()


def test_a_clip_without_a_mask_gives_an_all_true_one():
    clip = synthetic_clip(12, "a", 32, seed=1)
    assert clip.inside is None
    p = tiny_params()
    assert Head2HeadWindows([clip], ["a"], p.discriminator, 0, 1, seed=0)[0]["inside"].all()
    with pytest.raises(ValueError, match="inside must be"):
        dataclasses.replace(clip, inside=np.ones((12, 8, 8), bool))


def test_demo_size_losses_are_bit_identical_with_an_all_true_mask():
    from headflow.generators.head2headfs.params import demo_params

    p = demo_params()
    s = p.model.image_size
    ds = Head2HeadWindows([synthetic_clip(12, "a", s, seed=1)], ["a"], p.discriminator, 0, p.loop.batch_size, seed=0)
    b = default_collate([ds[i] for i in range(p.loop.batch_size)])
    g = torch.Generator().manual_seed(0)
    fake = _Fixed(torch.rand(b["frames"].shape, generator=g) * 2 - 1, torch.rand(b["masks"].shape, generator=g))
    step = FinetuneStep(p, fake, Discriminators(p, 1), _perceptual())
    none = step.g_losses(b)
    ones = step.g_losses({**b, "inside": torch.ones_like(b["masks"], dtype=torch.bool)})
    assert none.keys() == ones.keys() and all(torch.equal(none[k], ones[k]) for k in none)


def test_fingerprint_sees_a_mask_only_when_it_leaves_pixels_out():
    from headflow.generators.head2headfs.train import data_fingerprint

    clip = synthetic_clip(12, "a", 16, seed=1)
    ones = np.ones(clip.frames.shape[:3], bool)
    part = ones.copy()
    part[:, 0] = False
    fp = data_fingerprint([clip])
    assert data_fingerprint([dataclasses.replace(clip, inside=ones)]) == fp
    assert data_fingerprint([dataclasses.replace(clip, inside=part)]) != fp
