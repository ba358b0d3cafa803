"""Per-family smoke runs for the shared family test: each trains the family's tiny params set on synthetic
data it makes itself, for two optimiser steps, into a folder (a second call must resume, not retrain)."""

from __future__ import annotations

from pathlib import Path

import pytest


def _lipsync_smoke(params, out_dir: Path) -> dict:
    """Stage 1 one step + stage 2 one step (tiny params: 2 windows per epoch, batch 2) on synthetic clips."""
    from headflow.generators.lipsync.train import train_lipsync
    from headflow.losses.perceptual import PerceptualLoss
    from tests.generators.lipsync.conftest import synthetic_clip
    from tests.generators.lipsync.test_lipsync_losses import tiny_expert

    clips = [synthetic_clip(30, "a", seed=1), synthetic_clip(30, "b", seed=2)]
    out = train_lipsync(clips, [synthetic_clip(25, "v", seed=3)], params, out_dir, expert=tiny_expert(),
                        expert_sha="0" * 64, perceptual=PerceptualLoss("weight_free"), accelerator="cpu",
                        progress=False)
    rows = [r for stage in out["history"].values() for r in stage]
    return {"steps": sum(int(stage[-1]["step"]) for stage in out["history"].values()), "rows": rows,
            "checkpoint_sha256": out["generator_sha256"]}


def _head2headfs_smoke(params, out_dir: Path) -> dict:
    """Initialisation stage, two steps (tiny params: 2 windows per epoch, batch 1) on synthetic disk clips."""
    from headflow.generators.head2headfs.data import synthetic_clip
    from headflow.generators.head2headfs.train import train_head2headfs
    from headflow.losses.perceptual import PerceptualLoss

    s = params.model.image_size
    clips = [synthetic_clip(12, "a", s, seed=1), synthetic_clip(12, "b", s, seed=2)]
    out = train_head2headfs(clips, params, out_dir, PerceptualLoss("weight_free", input_range="[-1,1]"),
                            accelerator="cpu", progress=False)
    return {"steps": int(out["history"][-1]["step"]), "rows": out["history"], "checkpoint_sha256": out["weights_sha256"]}


SMOKE = {"lipsync": _lipsync_smoke, "head2headfs": _head2headfs_smoke}
"""Family name -> smoke(params, out_dir) -> {"steps", "rows" (history rows), "checkpoint_sha256"}."""


@pytest.fixture(scope="session")
def family_smoke():
    return SMOKE
