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


# ---------------------------------------------------------------- a tight-source shard (crop256 validity mask)

TIGHT_SMEAR_COLUMNS = 64
"""Columns 0..63 of the 256-pixel crop lie outside the source frame in `write_tight_shard`'s shard."""


def write_tight_shard(root: Path, clip_id: str = "tight", n_frames: int = 16, nmfc_size: int = 64,
                      with_mask: bool = True) -> tuple[Path, Path]:
    """A shard as the `shards` stage writes it (crop256 with `crop256_inside`: the left TIGHT_SMEAR_COLUMNS
    columns outside the source, the mel) and a shard_labels sidecar (expressions and an NMFC of a disk),
    for the reader-to-batch tests of the crop256 trainers.

    Returns:
        (shards root, labels root) to pass to `read_clip(root=..., labels_root=...)`.
    """
    import numpy as np

    from headflow.nmfc.io import write_nmfc
    from headflow.shards.store import write_shard
    from tests.generators.discohead.conftest import face_landmarks, render

    rng = np.random.default_rng(0)
    lm = np.stack([face_landmarks(256, rng.normal(0, 1), rng.normal(0, 1)) for _ in range(n_frames)])
    frames = np.stack([render(x, 256) for x in lm])
    inside = np.ones((n_frames, 256, 256), np.uint8)
    inside[:, :, :TIGHT_SMEAR_COLUMNS] = 0
    frames[:, :, :TIGHT_SMEAR_COLUMNS] = frames[:, :, TIGHT_SMEAR_COLUMNS:TIGHT_SMEAR_COLUMNS + 1]   # the smear
    arrays = {"valid": np.ones(n_frames, bool), "crop256": frames,
              "crop256_transform": np.tile(np.eye(2, 3), (n_frames, 1, 1)), "crop256_landmarks": lm,
              "mel": rng.uniform(-4, 4, (int(80 * n_frames / 25) + 1, 80)).astype(np.float32)}
    if with_mask:
        arrays["crop256_inside"] = inside
    shards, labels = Path(root) / "shards", Path(root) / "labels"
    write_shard(shards / "clips" / f"{clip_id}.npz", arrays,
                {"speaker_id": "spk", "split": "train", "fps": 25.0, "views": {}})
    yy, xx = np.mgrid[:nmfc_size, :nmfc_size]
    disk = (xx - nmfc_size / 2) ** 2 + (yy - nmfc_size / 2) ** 2 <= (0.3 * nmfc_size) ** 2
    nmfc = np.zeros((n_frames, nmfc_size, nmfc_size, 3), np.uint8)
    nmfc[:, disk] = (200, 120, 60)
    nmfc_path = (labels / f"{clip_id}.nmfc").resolve()
    labels.mkdir(parents=True, exist_ok=True)
    write_nmfc(nmfc_path, nmfc, np.repeat(disk[None], n_frames, 0))
    write_shard(labels / "clips" / f"{clip_id}.npz",
                {"exp": np.zeros((n_frames, 10), np.float32), "angles": np.zeros((n_frames, 3), np.float32),
                 "translation": np.zeros((n_frames, 2), np.float32), "scale": np.ones(n_frames, np.float32),
                 "expression_valid": np.ones(n_frames, bool)},
                {"has_phones": False, "has_expressions": True, "has_nmfc": True, "nmfc_path": str(nmfc_path),
                 "expression_model": "test"})
    return shards, labels
