"""Generation helpers of the stylemap family: transfer pairs, invalid-frame handling, pose errors, animation."""

from __future__ import annotations

import numpy as np
import pytest

from headflow.generators.stylemap.data import PairError
from headflow.generators.stylemap.generate import animate, hold_invalid, pose_errors, style_pairs
from headflow.generators.stylemap.model import StylemapGenerator
from headflow.generators.stylemap.params import tiny_params
from tests.generators.stylemap.conftest import synthetic_clip


def test_style_pairs_cross_style_and_prefer_another_speaker():
    styles = {"a": "neutral", "b": "smiling", "c": "smiling", "d": "neutral"}
    speakers = {"a": "p1", "b": "p1", "c": "p2", "d": "p2"}
    pairs = style_pairs(list(styles), styles, speakers)
    # a (neutral, p1): b is smiling but p1, c is smiling and p2 -> c; b (smiling, p1): d (neutral, p2);
    # c (smiling, p2): d is p2, a is neutral and p1 -> a; d (neutral, p2): a is neutral, b smiling p1 -> b
    assert pairs == {"a": "c", "b": "d", "c": "a", "d": "b"}
    one_speaker = style_pairs(["x", "y", "z"], {"x": "n", "y": "n", "z": "s"}, {"x": "p", "y": "p", "z": "p"})
    assert one_speaker == {"x": "z", "y": "z", "z": "x"}          # another style of the same person
    assert style_pairs(["x", "y"], {"x": "n", "y": "n"}, {"x": "p", "y": "q"}) == {"x": None, "y": None}


def test_hold_invalid_repeats_the_last_frame_with_a_face():
    valid = np.array([False, True, False, False, True, False])
    assert hold_invalid(valid).tolist() == [1, 1, 1, 1, 4, 4]
    with pytest.raises(PairError, match="no frame") as err:
        hold_invalid(np.zeros(3, bool))
    assert err.value.reason_code == "no_face"


def test_pose_errors_against_the_mean_pose_baseline():
    fitted = np.array([[10.0, 0, 0], [-10.0, 0, 0], [99.0, 99, 99]], np.float32)
    predicted = np.array([[12.0, 0, 0], [-10.0, 0, 0], [0.0, 0, 0]], np.float32)
    valid = np.array([True, True, False])
    out = pose_errors(predicted, fitted, valid, np.zeros(3))
    # errors over 2 frames x 3 angles: [2, 0, 0, 0, 0, 0] -> median 0, p90 = 1.0 (numpy linear: 0.5 * 2);
    # baseline |0 - fitted|: [10, 0, 0, 10, 0, 0] -> median 0, p90 = 10
    assert out["pose_err_median_deg"] == 0.0 and out["pose_err_p90_deg"] == pytest.approx(1.0)
    assert out["baseline_pose_err_p90_deg"] == pytest.approx(10.0)


def test_animate_gives_one_256_frame_per_driving_frame_and_refuses_other_sizes():
    p = tiny_params().model
    g = StylemapGenerator(p).eval()
    clip = synthetic_clip(5, "d", p.image_size)
    out = animate(g, clip.frames[0], clip.frames, batch=2)
    assert out.frames.shape == (5, 256, 256, 3) and out.frames.dtype == np.uint8
    assert out.angles.shape == (5, 3)
    with pytest.raises(ValueError, match=f"{p.image_size}, {p.image_size}"):
        animate(g, clip.frames[0], synthetic_clip(2, "e", p.image_size * 2).frames)

