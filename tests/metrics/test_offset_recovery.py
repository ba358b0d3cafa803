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


def _smooth_signal(n: int, seed: int) -> np.ndarray:
    """A syllable-like random signal: white noise low-passed by a 5-frame moving average, 200 frames."""
    rng = np.random.default_rng(seed)
    return np.convolve(rng.normal(size=n + 4), np.ones(5) / 5, mode="valid")


@pytest.mark.parametrize("delay", [-3, 0, 2])
def test_envelope_offset_finds_an_integer_audio_delay(delay):
    from headflow.metrics.offset_recovery import envelope_offset

    x = _smooth_signal(220, seed=1)
    aperture = x[10:210]
    loudness = x[10 - delay:210 - delay]          # loudness[t] = aperture[t - delay]: the audio is `delay` late
    est, corr = envelope_offset(aperture, loudness, max_offset=4)
    assert corr.shape == (9,) and corr[4 + delay] == pytest.approx(1.0)
    assert est == pytest.approx(delay, abs=0.05)
    # scanning around another centre finds the same lag
    est2, _ = envelope_offset(aperture, loudness, max_offset=4, centre=delay + 2)
    assert est2 == pytest.approx(delay, abs=0.05)


def test_envelope_offset_half_frame_delay_and_nan_frames():
    from headflow.metrics.offset_recovery import envelope_offset

    x = _smooth_signal(220, seed=2)
    t = np.arange(10, 210, dtype=float)
    aperture = x[10:210].copy()
    loudness = np.interp(t - 0.5, np.arange(len(x)), x)    # half a frame late (linear interpolation)
    aperture[50:60] = np.nan                                 # frames without a face are skipped, not zeros
    est, _ = envelope_offset(aperture, loudness, max_offset=4)
    assert 0.3 < est < 0.7                                   # the parabola's vertex, not the integer 0 or 1
    with pytest.raises(ClipTooShort, match="need 500"):
        envelope_offset(aperture, loudness, max_offset=4, min_pairs=500)


def test_mel_loudness_averages_the_mel_frames_of_each_video_frame():
    from headflow.metrics.offset_recovery import mel_loudness

    # 80 mel frames per s at 25 fps: video frame t covers mel frames round(3.2 t)..round(3.2 (t + 1)) - 1
    mel = np.repeat(np.arange(16, dtype=np.float32)[:, None], 80, axis=1)   # mel frame i has value i in every band
    out = mel_loudness(mel, n_frames=6)
    assert out[0] == pytest.approx(np.mean([0, 1, 2]))      # frames 0-2 (0..round(3.2)=3)
    assert out[1] == pytest.approx(np.mean([3, 4, 5]))      # round(3.2)=3 .. round(6.4)=6
    assert out[4] == pytest.approx(np.mean([13, 14, 15]))   # round(12.8)=13 .. 16
    assert np.isnan(out[5])                                  # past the mel's end
