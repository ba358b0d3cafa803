"""Style Mapping leaves the edge smear of tight sources (crop256's validity mask) out of l1 and perceptual."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import default_collate

from headflow.generators.stylemap.data import PairDataset, prepare_batch
from headflow.generators.stylemap.losses import StylemapStep, build_discriminator
from headflow.generators.stylemap.model import StylemapGenerator
from headflow.generators.stylemap.params import tiny_params
from headflow.generators.stylemap.train import clip_from_shard
from headflow.losses.perceptual import PerceptualLoss
from headflow.shards import read_clip
from tests.generators.conftest import TIGHT_SMEAR_COLUMNS, write_tight_shard
from tests.generators.stylemap.conftest import synthetic_clip


def _batch(n: int = 2) -> dict:
    ds = PairDataset([synthetic_clip(12, "a", size=tiny_params().model.image_size)], n, seed=0)
    lp = tiny_params().loss
    return prepare_batch(default_collate([ds[i] for i in range(n)]), lp.sigma_affine, lp.sigma_tps, lp.tps_points,
                         torch.Generator().manual_seed(0))


class _Replaced(nn.Module):
    """The real generator with its output image replaced by a given one (to test the loss wiring alone)."""

    def __init__(self, inner: StylemapGenerator, image: torch.Tensor):
        super().__init__()
        self.inner, self.image = inner, image

    def forward(self, source, driving):
        return dataclasses.replace(self.inner(source, driving), image=self.image)

    def pose(self, image):
        return self.inner.pose(image)


def test_a_prediction_wrong_only_in_invalid_pixels_has_zero_reconstruction_loss():
    b = _batch()
    size = b["driving"].shape[-1]
    inside = torch.ones_like(b["driving"][:, :1], dtype=torch.bool)
    inside[..., size - 5:, :] = False                                  # bottom 5 rows: smear
    wrong = b["driving"].clone()
    wrong[..., size - 5:, :] = 1.0 - wrong[..., size - 5:, :]
    torch.manual_seed(0)
    step = StylemapStep(tiny_params(), _Replaced(StylemapGenerator(tiny_params().model), wrong), None,
                        PerceptualLoss("weight_free"))
    masked = step.g_losses({**b, "driving_inside": inside})
    assert masked["l1"].item() == 0.0 and masked["perceptual"].item() == 0.0
    plain = step.g_losses(b)
    assert plain["l1"].item() > 0.01 and plain["perceptual"].item() > 0.0
    # known answer: one valid pixel off by 0.25 in one channel -> 0.25 / (3 * B * size * (size - 5)) valid values
    wrong2 = b["driving"].clone()
    wrong2[1, 2, 0, 0] += 0.25
    step.generator.image = wrong2
    expect = 0.25 / (3 * 2 * size * (size - 5))
    assert torch.isclose(step.g_losses({**b, "driving_inside": inside})["l1"], torch.tensor(expect))


def test_an_all_true_mask_gives_bit_identical_losses():
    b = _batch()
    torch.manual_seed(0)
    step = StylemapStep(tiny_params(), StylemapGenerator(tiny_params().model), build_discriminator(tiny_params().loss),
                        PerceptualLoss("weight_free"))
    none = step.g_losses(b)
    ones = step.g_losses({**b, "driving_inside": torch.ones_like(b["driving"][:, :1], dtype=torch.bool)})
    assert none.keys() == ones.keys() and all(torch.equal(none[k], ones[k]) for k in none)


def test_the_shards_mask_reaches_the_batch(tmp_path):
    shards, labels = write_tight_shard(tmp_path)
    size = tiny_params().model.image_size
    shard = read_clip("tight", ("crop256", "expressions"), root=shards, labels_root=labels)
    clip = clip_from_shard(shard, size)
    assert clip.inside.shape == (16, size, size)
    b = _batch_of(clip, 3)
    assert b["driving_inside"].shape == (3, 1, size, size) and b["driving_inside"].dtype == torch.bool
    k = TIGHT_SMEAR_COLUMNS * size // 256                              # 256 -> size: an exact area factor
    assert not b["driving_inside"][..., :k].any() and b["driving_inside"][..., k:].all()


def _batch_of(clip, n: int) -> dict:
    ds = PairDataset([clip], n, seed=0)
    lp = tiny_params().loss
    return prepare_batch(default_collate([ds[i] for i in range(n)]), lp.sigma_affine, lp.sigma_tps, lp.tps_points,
                         torch.Generator().manual_seed(0))


def test_a_clip_without_a_mask_gives_an_all_true_one():
    clip = synthetic_clip(6, "old", size=16)
    assert clip.inside is None
    assert PairDataset([clip], 1, seed=0)[0]["driving_inside"].all()
    with pytest.raises(ValueError, match=r"inside must be \(6, 16, 16\)"):
        dataclasses.replace(clip, inside=np.ones((6, 8, 8), bool))


def test_demo_size_losses_are_bit_identical_with_an_all_true_mask():
    from headflow.generators.stylemap.params import demo_params

    p = demo_params()
    clip = synthetic_clip(6, "a", size=p.model.image_size)
    b = _batch_of(clip, p.loop.batch_size)
    torch.manual_seed(0)
    step = StylemapStep(p, StylemapGenerator(p.model), build_discriminator(p.loss), PerceptualLoss("weight_free"))
    none = step.g_losses(b)
    ones = step.g_losses({**b, "driving_inside": torch.ones_like(b["driving"][:, :1], dtype=torch.bool)})
    assert none.keys() == ones.keys() and all(torch.equal(none[k], ones[k]) for k in none)


def test_fingerprint_sees_a_mask_only_when_it_leaves_pixels_out():
    from headflow.generators.stylemap.data import data_fingerprint

    clip = synthetic_clip(6, "a", size=16)
    ones = np.ones(clip.frames.shape[:3], bool)
    part = ones.copy()
    part[:, -2:] = False
    fp = data_fingerprint([clip])
    assert data_fingerprint([dataclasses.replace(clip, inside=ones)]) == fp
    assert data_fingerprint([dataclasses.replace(clip, inside=part)]) != fp
