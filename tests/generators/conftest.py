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


def _stylemap_smoke(params, out_dir: Path) -> dict:
    """Two optimiser steps (tiny params: 4 pairs per epoch, batch 2) on synthetic turning faces."""
    from headflow.generators.stylemap.train import train_stylemap
    from headflow.losses.perceptual import PerceptualLoss
    from tests.generators.stylemap.conftest import synthetic_clip

    size = params.model.image_size
    clips = [synthetic_clip(12, "a", size, seed=1), synthetic_clip(12, "b", size, seed=2)]
    out = train_stylemap(clips, [synthetic_clip(6, "v", size, seed=3)], params, out_dir,
                         perceptual=PerceptualLoss("weight_free"), accelerator="cpu", progress=False)
    return {"steps": int(out["history"][-1]["step"]), "rows": out["history"],
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


"""Family name -> smoke(params, out_dir) -> {"steps", "rows" (history rows), "checkpoint_sha256"}."""


# --- styletalk (issue 18) ---
def _styletalk_smoke(params, out_dir: Path) -> dict:
    """Tiny discriminators (2 steps) then the tiny generator (2 steps: 4 clips per epoch, batch 2) on synthetic clips."""
    from headflow.generators.styletalk.params import tiny_disc_params
    from headflow.generators.styletalk.train import load_discriminators, train_discriminators, train_styletalk
    from tests.generators.styletalk.conftest import LOWER, N_EXP, UPPER, mouth_geometry, synthetic_clips

    clips = synthetic_clips(4)
    dp = tiny_disc_params()
    disc = train_discriminators(clips, [], dp, out_dir / "disc", *mouth_geometry(dp.sync.n_points), "synthetic",
                                accelerator="cpu", progress=False)
    d_sync, d_style, _ = load_discriminators(disc["path"])
    out = train_styletalk(clips[:3], clips[3:], params, out_dir / "gen", "synthetic", N_EXP, LOWER, UPPER, d_sync,
                          d_style, disc["sha256"], accelerator="cpu", progress=False)
    return {"steps": int(out["history"][-1]["step"]), "rows": out["history"], "checkpoint_sha256": out["sha256"]}


# --- end styletalk ---


@pytest.fixture(scope="session")
def family_smoke():
    return SMOKE


def _discohead_smoke(params, out_dir: Path) -> dict:
    """Two steps of DisCoHead's tiny params (4 frames per epoch, batch 2, weight-free perceptual) on synthetic clips."""
    from headflow.generators.discohead.train import train_discohead
    from headflow.losses.perceptual import PerceptualLoss
    from tests.generators.discohead.conftest import synthetic_clip

    clips = [synthetic_clip(30, "a", seed=1), synthetic_clip(30, "b", seed=2)]
    out = train_discohead(clips, [synthetic_clip(25, "v", seed=3)], params, out_dir,
                          perceptual=PerceptualLoss("weight_free"), accelerator="cpu", progress=False)
    return {"steps": int(out["history"][-1]["step"]), "rows": out["history"],
            "checkpoint_sha256": out["generator_sha256"]}


SMOKE = {"lipsync": _lipsync_smoke, "discohead": _discohead_smoke, "styletalk": _styletalk_smoke,
         "stylemap": _stylemap_smoke, "head2headfs": _head2headfs_smoke}
