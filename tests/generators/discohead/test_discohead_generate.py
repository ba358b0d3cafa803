"""Generation: the transfer triples, the generated range, and the bad inputs the issue lists."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from headflow.generators.discohead.data import DataError, resize_clip
from headflow.generators.discohead.generate import generate_frames, to_output_size, transfer_triples
from headflow.generators.discohead.model import DisCoHeadGenerator
from headflow.generators.discohead.params import tiny_params
from tests.generators.discohead.conftest import synthetic_clip


@pytest.fixture(scope="module")
def generator():
    return DisCoHeadGenerator(tiny_params().model).eval()


def test_transfer_triples_use_three_other_clips_with_the_shortest_as_audio():
    n = {"a": 50, "b": 40, "c": 60, "d": 30, "e": 70}
    t = transfer_triples(list(n), n)
    for src, (head, audio, eyes) in t.items():
        assert len({src, head, audio, eyes}) == 4
        assert n[audio] == min(n[head], n[audio], n[eyes])
    assert t["a"] == ("b", "d", "c")          # a draws on b, c, d; d (30 frames) is the shortest
    assert transfer_triples(["a", "b", "c"], {"a": 1, "b": 1, "c": 1}) == {}


def test_reconstruction_covers_the_audio_range_of_the_clip(generator):
    clip = synthetic_clip(30, "a", seed=0)
    out = generate_frames(generator, clip, clip, clip, clip, eye_margin=0.3, batch_frames=7)
    # 30 frames, int(80 * 30 / 25) + 1 = 97 mel frames: frames 5 .. 25 (int(3.2 * 25) + 16 = 96 <= 97)
    assert (out.frame_start, out.frame_end) == (5, 26)
    assert out.frames.shape == (21, 32, 32, 3) and out.source_warp.shape == (21, 32, 32, 3)
    assert to_output_size(out.frames).shape == (21, 256, 256, 3)


def test_transfer_with_a_driver_shorter_than_the_audio_is_refused(generator):
    src, audio = synthetic_clip(30, "s", seed=0), synthetic_clip(60, "long", seed=1)
    short = synthetic_clip(20, "short", seed=2)
    with pytest.raises(DataError, match="head driver short has 20 frames") as err:
        generate_frames(generator, src, short, src, audio, eye_margin=0.3)
    assert err.value.reason_code == "driver_shorter_than_audio"


def test_frames_without_eye_landmarks_are_refused_naming_the_clip_and_frame(generator):
    clip = synthetic_clip(30, "a", seed=0)
    eyes = dataclasses.replace(clip, clip_id="eyes", landmarks=clip.landmarks.copy())
    eyes.landmarks[9, 44] = np.nan
    with pytest.raises(DataError, match=r"eye driver eyes: frame\(s\) \[9\]") as err:
        generate_frames(generator, clip, clip, eyes, clip, eye_margin=0.3)
    assert err.value.reason_code == "no_eye_landmarks"


def test_source_and_driver_of_different_sizes_are_refused(generator):
    clip = synthetic_clip(30, "a", seed=0)
    frames, lm = resize_clip(clip.frames, clip.landmarks, 64)
    big = dataclasses.replace(clip, clip_id="big", frames=frames, landmarks=lm)
    with pytest.raises(DataError, match="head driver big: crops of \\(64, 64\\)") as err:
        generate_frames(generator, clip, big, clip, clip, eye_margin=0.3)
    assert err.value.reason_code == "size_mismatch"


def test_an_audio_too_short_for_one_window_is_refused(generator):
    clip = synthetic_clip(30, "a", seed=0)
    audio = dataclasses.replace(clip, clip_id="au", mel=clip.mel[:30])
    with pytest.raises(DataError) as err:
        generate_frames(generator, clip, clip, clip, audio, eye_margin=0.3)
    assert err.value.reason_code == "audio_too_short"      # 30 mel frames: frame 5 needs mel [0, 32)
