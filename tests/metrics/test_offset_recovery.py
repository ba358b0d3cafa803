"""The GRID offset-recovery path (bench/sync_grid.py) on one real clip: structure and errors, not accuracy."""

import numpy as np
import pytest
import torch

from headflow.sync.data import ClipArrays
from dataclasses import replace

from headflow.nn.expert import PUBLISHED_EXPERT, SyncExpert
from headflow.metrics.offset_recovery import offset_recovery, prepare_clip, summarise
from headflow.metrics.lse import ClipTooShort, score_clip, shift_audio


@pytest.mark.shared
def test_grid_clip_scoring_path_and_too_short_error(grid_dir, tmp_path):
    clip = prepare_clip(grid_dir / "bbaf2n.mpg", tmp_path)
    assert clip.mouths.shape == (75, 48, 96, 3) and clip.valid.all()
    assert clip.mouths.std() > 10                             # real crops, not the zeros of invalid frames
    assert abs(len(clip.mel) - 75 * 80 / 25) <= 2
    torch.manual_seed(0)
    model = SyncExpert(replace(PUBLISHED_EXPERT, width=0.125, depth=1)).eval()   # untrained: the path, not the accuracy
    rows = offset_recovery(model, clip, shifts=(-5, 5), max_offset=15)
    assert list(rows.applied_shift) == [0, -5, 5]
    # Each row is what the scorer says about the clip with that shift applied (recomputed here), and
    # `recovered` compares the offset with the shift of its own row.
    for r in rows.itertuples():
        s = score_clip(model, shift_audio(clip, r.applied_shift) if r.applied_shift else clip, max_offset=15)
        assert r.recovered_offset == s.offset and r.recovered == (s.offset == r.applied_shift)
        np.testing.assert_allclose([r.lse_d, r.lse_c, r.dist_at_zero], [s.lse_d, s.lse_c, s.mean_dist[15]], rtol=1e-6)
    overall = summarise(rows)
    shifted = rows[rows.applied_shift != 0]
    assert overall["clips"] == 1 and set(overall["recovery_by_shift"]) == {-5, 5}
    # the rates count the shifted rows only; the relative rate subtracts the clip's unshifted offset
    assert overall["recovery_rate"] == round(float((shifted.recovered_offset == shifted.applied_shift).mean()), 4)
    base = int(rows.recovered_offset[0])
    relative = shifted.recovered_offset - base == shifted.applied_shift
    assert overall["relative_recovery_rate"] == round(float(relative.mean()), 4)
    assert overall["unshifted_offset_zero"] == float(base == 0)
    assert overall["lse_c_unshifted"] == round(float(rows.lse_c[0]), 4)
    short = ClipArrays("bbaf2n_cut", clip.mouths[:20], clip.mel[:80], clip.valid[:20])
    with pytest.raises(ClipTooShort, match=r"bbaf2n_cut \(20 frames\).*offset"):
        offset_recovery(model, short, shifts=(5,), max_offset=15)
    assert np.isfinite(rows.dist_at_zero).all()
