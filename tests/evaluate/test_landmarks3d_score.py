"""evaluate's m_lmd_3d: the 3D-landmark sidecar of a generated output scored over the task's frames."""

from __future__ import annotations

import numpy as np
import pytest

from headflow.evaluate.baselines import Task
from headflow.evaluate.stage import landmarks3d_score
from headflow.manifest.generated import landmarks3d_path


def _task(protocol="reconstruction", start=1, end=9):
    return Task(protocol, "c", "c", "c", "c", protocol == "reconstruction", start, end)


def test_m_lmd_3d_reads_the_sidecar_over_the_scored_frames(tmp_path):
    out = "data/interim/generate_x/videos/c.reconstruction.mp4"
    side = tmp_path / landmarks3d_path(out)
    assert side == tmp_path / "data/interim/generate_x/expressions/c.reconstruction.npz"
    side.parent.mkdir(parents=True)
    fit = np.random.default_rng(0).uniform(0, 256, (10, 68, 2)).astype(np.float32)
    gen = fit.copy()
    gen[:, 48:68, 1] += 3.0                       # mouth points 3 px lower in every frame
    gen[:, :48] += 50.0                           # the rest moves too, which M-LMD must ignore
    gen[0, 48:68] += 100.0                        # frame 0 (outside the scored range) far off
    np.savez(side, landmarks68=gen, landmarks68_fit=fit, frame_start=0, frame_end=10)
    assert landmarks3d_score(out, _task(), tmp_path) == pytest.approx(3.0)
    assert landmarks3d_score(out, _task("dubbing"), tmp_path) is None          # no ground truth there
    assert landmarks3d_score("data/interim/generate_x/videos/other.mp4", _task(), tmp_path) is None
    with pytest.raises(ValueError, match="do not cover"):
        landmarks3d_score(out, _task(end=12), tmp_path)
