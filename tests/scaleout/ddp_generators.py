"""The generator families' part of ddp_trainers.py: DisCoHead, Style Mapping and StyleTalk (its discriminator
pretraining `train_discriminators` and its generator `train_styletalk`) at tiny size on the families' own
synthetic clips (tests/generators/<family>/conftest.py), each writing into `<mine>/<family>/`.

Each trainer runs 3 epochs of 2 optimiser steps with the global batch `batch` (per process: batch / world),
so one process and two ranks take the same steps on the same samples (RankSampler's interleaved shares).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

EPOCHS = 3


def train_generators(mine: Path, batch: int, world: int) -> dict[str, list[dict]]:
    """Train the four at global batch `batch` (a multiple of 2 x world); returns {family: history rows}."""
    from headflow.losses.perceptual import PerceptualLoss

    per_rank, samples = batch // world, 2 * batch          # 2 steps per epoch
    histories: dict[str, list[dict]] = {}

    # DisCoHead: L1 + the weight-free perceptual term, no discriminator; its frame draws are a function of
    # (seed, epoch), no augmentation.
    from headflow.generators.discohead.params import _with as disco_with, tiny_params as disco_tiny
    from headflow.generators.discohead.train import train_discohead
    from tests.generators.discohead.conftest import synthetic_clip as disco_clip

    p = disco_with(disco_tiny(), loop={"epochs": EPOCHS, "batch_size": per_rank}, samples_per_epoch=samples)
    r = train_discohead([disco_clip(30, "a", seed=1), disco_clip(30, "b", seed=2)], [disco_clip(25, "v", seed=3)],
                        p, mine / "discohead", perceptual=PerceptualLoss("weight_free"), accelerator="cpu",
                        progress=False)
    histories["discohead"] = r["history"]

    # Style Mapping: every term, the multi-scale PatchGAN and the equivariance transform (drawn per rank
    # from (seed, step, rank), as the harness gives every family) included.
    from headflow.generators.stylemap.params import tiny_params as stylemap_tiny
    from headflow.generators.stylemap.train import train_stylemap
    from tests.generators.stylemap.conftest import synthetic_clip as stylemap_clip

    p = stylemap_tiny()
    p = replace(p, loop=replace(p.loop, epochs=EPOCHS, batch_size=per_rank), samples_per_epoch=samples)
    r = train_stylemap([stylemap_clip(10, "a", seed=1), stylemap_clip(10, "b", seed=2)],
                       [stylemap_clip(5, "v", seed=3)], p, mine / "stylemap", perceptual=PerceptualLoss("weight_free"),
                       accelerator="cpu", progress=False)
    histories["stylemap"] = r["history"]

    # StyleTalk: D_sync + D_style pretraining; then the generator and D_tem against frozen D_sync / D_style
    # drawn from a fixed seed (the same in both runs, so the generator's curve does not inherit the
    # pretraining runs' difference). Dropout off: its masks are drawn per rank.
    from headflow.generators.styletalk.params import _with as st_with, tiny_disc_params, tiny_params as st_tiny
    from headflow.generators.styletalk.train import build_discriminators, train_discriminators, train_styletalk
    from tests.generators.styletalk.conftest import LOWER, N_EXP, UPPER, mouth_geometry, synthetic_clips

    dp = st_with(tiny_disc_params(), loop={"epochs": EPOCHS, "batch_size": per_rank}, samples_per_epoch=samples)
    r = train_discriminators(synthetic_clips(4), [], dp, mine / "styletalk_disc", *mouth_geometry(dp.sync.n_points),
                             "synthetic", accelerator="cpu", progress=False)
    histories["styletalk_disc"] = r["history"]
    torch.manual_seed(0)
    nets = build_discriminators(dp, N_EXP, ["calm", "lively"])
    nets.sync.set_geometry(*mouth_geometry(dp.sync.n_points))
    d_sync, d_style = nets.sync.requires_grad_(False).eval(), nets.style.requires_grad_(False).eval()
    p = st_with(st_tiny(), model={"dropout": 0.0}, loop={"epochs": EPOCHS, "batch_size": per_rank},
                samples_per_epoch=samples)
    r = train_styletalk(synthetic_clips(4), [], p, mine / "styletalk", "synthetic", N_EXP, LOWER, UPPER, d_sync,
                        d_style, None, accelerator="cpu", progress=False)
    histories["styletalk"] = r["history"]
    return histories
