"""Word onsets after a pause snap to the first loud frame near them (builtin.snap_onsets, issue 16):
known answers on hand-built segmentations."""

import numpy as np
import pytest

from headflow.align.builtin import GARBAGE, snap_onsets
from headflow.align.params import BuiltinAlignerParams
from headflow.align.phones import PHONE_INDEX

SIL, AH, T = PHONE_INDEX["SIL"], PHONE_INDEX["AH"], PHONE_INDEX["T"]


def _loud(n, frames):
    out = np.zeros(n, bool)
    out[list(frames)] = True
    return out


def test_an_early_onset_moves_to_where_the_energy_starts():
    # SIL 0-9, AH 10-19, T 20-29; speech becomes loud at frame 12: the onset moves 2 frames later
    units, change = np.array([SIL, AH, T]), np.array([0, 10, 20])
    assert snap_onsets(units, change, _loud(30, range(12, 28)), 3).tolist() == [0, 12, 20]


def test_a_late_onset_moves_back_and_only_within_the_window():
    units, change = np.array([SIL, AH]), np.array([0, 10])
    assert snap_onsets(units, change, _loud(20, range(8, 20)), 3).tolist() == [0, 8]
    assert snap_onsets(units, change, _loud(20, range(5, 20)), 3).tolist() == [0, 7]   # first loud in [7, 13]
    assert snap_onsets(units, change, _loud(20, range(15, 20)), 3).tolist() == [0, 10]  # none within 3: kept


def test_only_pause_to_speech_boundaries_move_and_segments_keep_a_frame():
    # AH -> T (inside speech) and T -> SIL (a word end) never move; SIL 0-1 keeps its frame 0
    units, change = np.array([SIL, AH, T, SIL, GARBAGE]), np.array([0, 2, 6, 10, 14])
    loud = _loud(18, [0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17])
    assert snap_onsets(units, change, loud, 3).tolist() == [0, 1, 6, 10, 16]
    # a one-frame speech segment cannot be pushed past its end
    assert snap_onsets(np.array([SIL, AH, T]), np.array([0, 5, 6]), _loud(10, [8, 9]), 3).tolist() == [0, 5, 6]


def test_off_changes_nothing():
    units, change = np.array([SIL, AH]), np.array([0, 10])
    assert snap_onsets(units, change, _loud(20, [12]), 0).tolist() == [0, 10]
    with pytest.raises(ValueError, match="onset_snap_ms"):
        BuiltinAlignerParams(onset_snap_ms=-1).validate()


@pytest.mark.parametrize("ms, frames", [(30.0, 3), (35.0, 3), (25.0, 2), (15.0, 1), (9.0, 0), (0.0, 0)])
def test_the_window_is_whole_frames_never_wider_than_onset_snap_ms(ms, frames):
    # 10 ms frames: +-35 ms is 3 frames, not round(3.5) = 4 (40 ms); +-9 ms snaps nothing
    from headflow.align.builtin import onset_snap_frames

    assert onset_snap_frames(BuiltinAlignerParams(onset_snap_ms=ms, shift_ms=10.0)) == frames


def test_a_loud_array_longer_than_the_alignment_never_moves_an_onset_past_its_end():
    # 12 frames aligned (SIL 0-9, AH 10-11), loud frames from 13 on (beyond the path): nothing to snap to
    units, change = np.array([SIL, AH]), np.array([0, 10])
    assert snap_onsets(units, change, _loud(20, range(13, 20)), 3, n_frames=12).tolist() == [0, 10]
    assert snap_onsets(units, change, _loud(20, range(11, 20)), 3, n_frames=12).tolist() == [0, 11]
