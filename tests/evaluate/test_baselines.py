"""Evaluation tasks and the reference systems (static frame, reference fill, unedited)."""

import numpy as np
import pytest

from headflow.evaluate.baselines import BASELINES, canonical_tasks, reference_frames
from headflow.evaluate.crops import cut, face96_transforms


def test_canonical_tasks_share_ranges_and_pair_dubbing_deterministically():
    n_video = {"a": 40, "b": 30, "c": 40}
    n_mel = {"a": 128, "b": 10, "c": 140}     # b's audio is too short for any full window
    tasks, skipped = canonical_tasks(n_video, n_mel, ["reconstruction", "dubbing"])
    by = {(t.protocol, t.clip_id): t for t in tasks}
    assert by[("reconstruction", "a")].frame_start == 1 and by[("reconstruction", "a")].frame_end == 36
    assert by[("reconstruction", "a")].has_target and not by[("dubbing", "c")].has_target
    # dubbing: a <- b's audio (too short: skipped), b <- c's audio, c <- a's audio
    assert ("dubbing", "a") not in by and by[("dubbing", "b")].audio_clip == "c"
    assert by[("dubbing", "c")].audio_clip == "a" and by[("dubbing", "c")].frame_end == 36
    assert by[("dubbing", "b")].frame_end == 30                  # b's 30 frames end before c's audio
    assert [c for c, _ in skipped] == ["b", "a"] and ("reconstruction", "b") not in by
    with pytest.raises(ValueError, match="reenactment"):
        canonical_tasks(n_video, n_mel, ["reenactment"])


def test_reference_systems_build_the_frames_they_promise():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (100, 100, 3), np.uint8) for _ in range(4)]
    m96 = face96_transforms(np.tile([[20.0, 20.0, 80.0, 75.0]], (4, 1)), (100, 100))
    assert reference_frames("ground_truth", frames, m96)(2) is frames[2]
    assert reference_frames("baseline_unedited", frames, m96)(3) is frames[3]
    assert reference_frames("baseline_static_frame", frames, m96)(3) is frames[0]
    fill = reference_frames("baseline_reference_fill", frames, m96)(2)
    crop, ref = cut(fill, m96[2], 96), cut(frames[0], m96[0], 96)
    assert np.abs(crop[60:90, 10:86].astype(int) - ref[60:90, 10:86].astype(int)).mean() < \
        np.abs(cut(frames[2], m96[2], 96)[60:90, 10:86].astype(int) - ref[60:90, 10:86].astype(int)).mean() / 3
    assert np.array_equal(fill[:15], frames[2][:15])              # above the face box: the real frame
    with pytest.raises(ValueError, match="unknown reference system"):
        reference_frames("baseline_magic", frames, m96)
    assert BASELINES["reconstruction"][0] == "ground_truth"
