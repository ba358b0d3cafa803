"""DisCoHead's inputs: the 400 ms audio window, the frame range, the eye mask, training samples."""

from __future__ import annotations

import numpy as np
import pytest

from headflow.audio.mel import valid_window_frames
from headflow.generators.discohead.data import (DataError, DisCoHeadFrames, audio_frame_range, audio_window,
                                                eye_boxes, frame_range, mask_eyes, usable_frames)
from headflow.generators.discohead.params import DataParams
from tests.generators.discohead.conftest import face_landmarks, render, synthetic_clip


def test_audio_window_is_400ms_centred_on_the_frame_time():
    mel = np.arange(200, dtype=np.float32)[:, None].repeat(80, 1)
    # frame 10 at 25 fps starts at 0.4 s = mel frame 32: the window is [32 - 16, 32 + 16)
    w = audio_window(mel, 10, 25.0)
    assert w.shape == (32, 80) and w[0, 0] == 16 and w[-1, 0] == 47
    # frame 4: centre int(12.8) = 12, the window would start at -4: never padded
    with pytest.raises(DataError, match="frame 4 is mel \\[-4, 28\\)") as err:
        audio_window(mel, 4, 25.0, "clipA")
    assert err.value.reason_code == "audio_window_off_clip" and "clipA" in str(err.value)


@pytest.mark.parametrize("n_mel", [33, 80, 161, 250])
def test_audio_frame_range_starts_at_frame_5_and_ends_with_the_projects_rule(n_mel):
    # int(3.2 f) >= 16 first holds at f = 5; the window ends where Wav2Lip's 16-frame window ends
    # (int(3.2 f) + 16 <= n_mel), so the last frame is every other system's (valid_window_frames).
    start, end = audio_frame_range(n_mel)
    assert start == 5
    assert end == max(5, valid_window_frames(n_mel, 10 ** 6))
    for f in range(start, end):
        audio_window(np.zeros((n_mel, 80), np.float32), f)


def test_frame_range_refuses_a_driver_shorter_than_the_audio():
    n_mel = 161         # 2 s of audio: frames [5, 46) (int(3.2 * 45) + 16 = 160 <= 161, frame 46 needs 163)
    assert frame_range(n_mel, 60, 60, 25.0, "a", "d", "e", own_audio=False) == (5, 46)
    assert frame_range(n_mel, 40, 60, 25.0, "a", "a", "a", own_audio=True) == (5, 40)   # own clip: its length
    with pytest.raises(DataError, match="head driver d has 40 frames.*up to 46") as err:
        frame_range(n_mel, 40, 60, 25.0, "a", "d", "e", own_audio=False)
    assert err.value.reason_code == "driver_shorter_than_audio"
    with pytest.raises(DataError) as err:
        frame_range(20, 60, 60, 25.0, "a", "d", "e", own_audio=False)
    assert err.value.reason_code == "audio_too_short"


def test_eye_mask_keeps_only_the_eye_regions():
    lm = face_landmarks(64)
    frame = np.full((64, 64, 3), 200, np.uint8)
    out = mask_eyes(frame, lm, margin=0.0)
    # right side: brow x 16..28, y 18; eye x 17..27, y 21.5..26.5 -> box [16, 18, 29, 28) (ceil + 1 exclusive)
    boxes = eye_boxes(lm, 64, 0.0)
    assert boxes[0].tolist() == [16, 18, 29, 28]
    assert (out[18:28, 16:29] == 200).all()
    kept = np.zeros((64, 64), bool)
    for x0, y0, x1, y1 in boxes:
        kept[y0:y1, x0:x1] = True
    assert (out[~kept] == 0).all() and kept.mean() < 0.1
    # the mouth and jaw are gone, so a different mouth gives the same eye driver
    other = render(face_landmarks(64), 64)
    other2 = other.copy()
    other2[40:52, 20:44] = 0
    assert np.array_equal(mask_eyes(other, lm, 0.3), mask_eyes(other2, lm, 0.3))


def test_missing_eye_landmarks_are_an_error_not_a_blank_mask():
    lm = face_landmarks(64)
    lm[40] = np.nan
    with pytest.raises(DataError) as err:
        mask_eyes(np.zeros((64, 64, 3), np.uint8), lm, 0.3)
    assert err.value.reason_code == "no_eye_landmarks"


def test_samples_use_only_usable_frames_and_repeat_per_epoch():
    clip = synthetic_clip(30, "a", seed=0)
    clip.landmarks[12, 37] = np.nan                                 # frame 12: no eye landmarks
    usable = usable_frames(clip)
    assert usable[0] == 5 and 12 not in usable and usable[-1] < 30
    ds = DisCoHeadFrames([clip], DataParams(), samples=20, seed=3)
    assert {f for _, f, _ in ds.draw} <= set(usable.tolist())
    first = [ds[i]["mel"].sum().item() for i in range(len(ds))]
    ds.set_epoch(1)
    ds.set_epoch(0)
    assert first == [ds[i]["mel"].sum().item() for i in range(len(ds))]
    item = ds[0]
    assert item["source"].shape == item["driver"].shape == item["eyes"].shape == (32, 32, 3)
    assert item["mel"].shape == (32, 80)


def test_a_clip_without_usable_frames_is_an_error_naming_the_reason():
    clip = synthetic_clip(30, "a", seed=0)
    clip.mel = clip.mel[:20]                                        # 250 ms of audio: no 400 ms window
    with pytest.raises(DataError) as err:
        DisCoHeadFrames([clip], DataParams(), samples=4)
    assert err.value.reason_code == "no_usable_frames"
