"""Synthetic material for the StyleTalk tests: clips whose mouth modes follow the phonemes and whose
amplitude follows the style, and a small mouth mesh for D_sync."""

from __future__ import annotations

import numpy as np
import torch

N_EXP = 5
LOWER, UPPER = (0, 1), (2, 3, 4)


def synthetic_clip(clip_id: str, style: str, n_frames: int = 40, seed: int = 0):
    """A `StyleTalkClip`: phonemes held 3-6 frames; modes 0-1 = a per-phoneme shape x the style's gain,
    modes 2-4 = slow style-dependent upper-face motion."""
    from headflow.generators.styletalk.data import StyleTalkClip

    rng = np.random.default_rng(seed)
    phones = np.repeat(rng.integers(0, 41, n_frames), rng.integers(3, 7, n_frames))[:n_frames]
    gain = {"calm": 0.5, "lively": 1.5}.get(style, 1.0)
    shape = np.random.default_rng(99).uniform(0, 1, (41, 2))
    exp = np.zeros((n_frames, N_EXP), np.float32)
    exp[:, :2] = gain * shape[phones]
    t = np.arange(n_frames)
    exp[:, 2:] = gain * 0.3 * (1 + np.sin(t[:, None] * 0.2 + np.arange(3)))
    return StyleTalkClip(clip_id, phones.astype(np.int64), exp, np.ones(n_frames, bool), "synthetic", style, "spk")


def synthetic_clips(n: int = 4, n_frames: int = 40) -> list:
    return [synthetic_clip(f"c{i}", ("calm", "lively")[i % 2], n_frames, seed=i) for i in range(n)]


def mouth_geometry(n_points: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, 3) mean and (K, P, 3) basis of a random mouth patch (only modes 0-1 move it)."""
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(n_points, 3, generator=g)
    basis = torch.zeros(N_EXP, n_points, 3)
    basis[:2] = torch.randn(2, n_points, 3, generator=g)
    return mean, basis
