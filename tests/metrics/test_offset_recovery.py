"""The GRID offset-recovery path (bench/sync_grid.py) on one real clip: structure and errors, not accuracy."""

import numpy as np
import pytest
import torch

from headflow.sync.data import ClipArrays
from dataclasses import replace

from headflow.nn.expert import PUBLISHED_EXPERT, SyncExpert
from headflow.metrics.offset_recovery import offset_recovery, prepare_clip, summarise
from headflow.metrics.lse import ClipTooShort


@pytest.mark.shared
def test_grid_clip_scoring_path_and_too_short_error(grid_dir, tmp_path):
    clip = prepare_clip(grid_dir / "bbaf2n.mpg", tmp_path)
    assert clip.mouths.shape == (75, 48, 96, 3) and clip.valid.all()
    assert clip.mouths.std() > 10                             # real crops, not the zeros of invalid frames
    assert abs(len(clip.mel) - 75 * 80 / 25) <= 2
    torch.manual_seed(0)
    model = SyncExpert(replace(PUBLISHED_EXPERT, width=0.125, depth=1)).eval()   # untrained: the path, not the accuracy
    rows = offset_recovery(model, clip, shifts=(-5, 5), max_offset=15)
    assert list(rows.applied_shift) == [0, -5, 5] and rows.recovered_offset.abs().max() <= 15
    assert (rows.lse_c >= 0).all() and rows.lse_d.between(0, 2).all()
    overall = summarise(rows)
    assert overall["clips"] == 1 and set(overall["recovery_by_shift"]) == {-5, 5}
    assert 0 <= overall["recovery_rate"] <= 1 and overall["scoring_frames_per_s"] > 0
    short = ClipArrays("bbaf2n_cut", clip.mouths[:20], clip.mel[:80], clip.valid[:20])
    with pytest.raises(ClipTooShort, match=r"bbaf2n_cut \(20 frames\).*offset"):
        offset_recovery(model, short, shifts=(5,), max_offset=15)
    assert np.isfinite(rows.dist_at_zero).all()
