"""DisCoHead leaves the edge smear of tight sources (crop256's validity mask) out of its reconstruction losses."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import default_collate

from headflow.generators.discohead.data import DisCoHeadFrames, clip_from_shard, prepare_batch
from headflow.generators.discohead.losses import DisCoHeadStep
from headflow.generators.discohead.model import DisCoHeadGenerator, DisCoHeadOutput
from headflow.generators.discohead.params import tiny_params
from headflow.losses.perceptual import PerceptualLoss
from headflow.shards import read_clip
from tests.generators.conftest import TIGHT_SMEAR_COLUMNS, write_tight_shard
from tests.generators.discohead.conftest import synthetic_clip


def _batch(n: int = 2, size: int = 32) -> dict:
    clip = synthetic_clip(30, "a", seed=1, size=size)
    ds = DisCoHeadFrames([clip], tiny_params().data, n, seed=0)
    return prepare_batch(default_collate([ds[i] for i in range(n)]))


class _Fixed(nn.Module):
    """A 'generator' whose output is a given image (to test the step's loss wiring alone)."""

    def __init__(self, image: torch.Tensor):
        super().__init__()
        self.image = nn.Parameter(image.clone())

    def forward(self, source, driver, eyes, mel):
        return DisCoHeadOutput(self.image, self.image, {}, None)


def test_a_prediction_wrong_only_in_invalid_pixels_has_zero_reconstruction_loss():
    b = _batch()
    inside = torch.ones_like(b["driver"][:, :1], dtype=torch.bool)
    inside[..., :8] = False                                            # left 8 columns: smear
    wrong = b["driver"].clone()
    wrong[..., :8] = 1.0 - wrong[..., :8]                              # differs only there
    step = DisCoHeadStep(tiny_params(), _Fixed(wrong), PerceptualLoss("weight_free"))
    masked = step.g_losses({**b, "inside": inside})
    assert masked["l1"].item() == 0.0 and masked["perceptual"].item() == 0.0
    plain = step.g_losses(b)                                           # no mask: the smear columns count
    assert plain["l1"].item() > 0.01 and plain["perceptual"].item() > 0.0
    # known answer: one wrong valid pixel of |error| 0.5 in one channel -> 0.5 / (3 channels * 2 * 32 * 24 valid)
    wrong2 = b["driver"].clone()
    wrong2[0, 0, 5, 20] += 0.5
    step2 = DisCoHeadStep(tiny_params(), _Fixed(wrong2), None)
    assert torch.isclose(step2.g_losses({**b, "inside": inside})["l1"], torch.tensor(0.5 / (3 * 2 * 32 * 24)))


def test_an_all_true_mask_gives_bit_identical_losses_and_gradients():
    b = _batch()
    torch.manual_seed(0)
    gen = DisCoHeadGenerator(tiny_params().model)
    step = DisCoHeadStep(tiny_params(), gen, PerceptualLoss("weight_free"))
    out = {}
    for name, batch in (("none", b), ("ones", {**b, "inside": torch.ones_like(b["driver"][:, :1], dtype=torch.bool)})):
        gen.zero_grad()
        terms = step.g_losses(batch)
        (terms["l1"] + terms["perceptual"]).backward()
        out[name] = (terms, [p.grad.clone() for p in gen.parameters() if p.grad is not None])
    assert all(torch.equal(out["none"][0][k], out["ones"][0][k]) for k in ("l1", "perceptual"))
    assert all(torch.equal(x, y) for x, y in zip(out["none"][1], out["ones"][1]))


def test_the_shards_mask_reaches_the_batch(tmp_path):
    shards, _ = write_tight_shard(tmp_path)
    clip = clip_from_shard(read_clip("tight", ("crop256", "mel"), root=shards), 32)
    assert clip.inside.shape == (16, 32, 32)
    ds = DisCoHeadFrames([clip], tiny_params().data, 3, seed=0)
    batch = prepare_batch(default_collate([ds[i] for i in range(3)]))
    assert batch["inside"].shape == (3, 1, 32, 32) and batch["inside"].dtype == torch.bool
    k = TIGHT_SMEAR_COLUMNS * 32 // 256                                # 8: 256 -> 32 is an exact 8x8 area
    assert not batch["inside"][..., :k].any() and batch["inside"][..., k:].all()
    # an old shard (no crop256_inside): no mask on the clip, an all-True one in the batch
    old, _ = write_tight_shard(tmp_path / "old", with_mask=False)
    clip = clip_from_shard(read_clip("tight", ("crop256", "mel"), root=old), 32)
    assert clip.inside is None
    assert DisCoHeadFrames([clip], tiny_params().data, 1, seed=0)[0]["inside"].all()


def test_demo_size_losses_are_bit_identical_with_an_all_true_mask():
    from headflow.generators.discohead.params import demo_params

    p = demo_params()
    b = _batch(p.loop.batch_size, p.model.image_size)
    g = torch.Generator().manual_seed(0)
    step = DisCoHeadStep(p, _Fixed(torch.rand(b["driver"].shape, generator=g)), PerceptualLoss("weight_free"))
    none = step.g_losses(b)
    ones = step.g_losses({**b, "inside": torch.ones_like(b["driver"][:, :1], dtype=torch.bool)})
    assert all(torch.equal(none[k], ones[k]) for k in ("l1", "perceptual"))


def test_fingerprint_sees_a_mask_only_when_it_leaves_pixels_out():
    import dataclasses

    from headflow.generators.discohead.train import data_fingerprint

    clip = synthetic_clip(30, "a", seed=0)
    ones = np.ones(clip.frames.shape[:3], bool)
    part = ones.copy()
    part[:, :, :3] = False
    fp = data_fingerprint([clip])
    assert data_fingerprint([dataclasses.replace(clip, inside=ones)]) == fp
    assert data_fingerprint([dataclasses.replace(clip, inside=part)]) != fp
