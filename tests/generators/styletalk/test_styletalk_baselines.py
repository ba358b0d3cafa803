"""StyleTalk's same-run baselines (issue 18): the replayed style clip and the neutral (mean) style code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from headflow.generators.styletalk.generate import (baseline_variant, middle_style, neutral_style_code, predict,
                                                    replay_expressions, style_code)
from headflow.generators.styletalk.model import StyleTalkNet
from headflow.generators.styletalk.params import tiny_params
from tests.generators.styletalk.conftest import LOWER, N_EXP, UPPER, synthetic_clip


def test_replay_reproduces_the_style_clips_coefficients_looped_from_its_frame_0():
    style = np.arange(7 * N_EXP, dtype=np.float64).reshape(7, N_EXP)
    # frames 0..6 are the style clip itself, exactly (and float32)
    same = replay_expressions(style, np.arange(7))
    assert same.dtype == np.float32 and np.array_equal(same, style.astype(np.float32))
    # a longer utterance loops: frame f shows style frame f mod 7 -> 0, 6, 0, 6, 0, 2
    out = replay_expressions(style, np.array([0, 6, 7, 13, 14, 23]))
    assert np.array_equal(out, style[[0, 6, 0, 6, 0, 2]].astype(np.float32))
    # a shorter one is cut: frames 1..3 of a clip scored from frame 1 are style frames 1..3
    assert np.array_equal(replay_expressions(style, np.arange(1, 4)), style[1:4].astype(np.float32))
    with pytest.raises(ValueError, match="T_s >= 1"):
        replay_expressions(np.zeros((0, N_EXP)), np.arange(3))


def test_the_neutral_code_is_the_mean_of_the_training_clips_style_codes():
    torch.manual_seed(0)
    p = tiny_params()
    net = StyleTalkNet(p.model, N_EXP, LOWER, UPPER).eval()
    L = p.data.style_len
    exps = [synthetic_clip(f"c{i}", ("calm", "lively")[i % 2], n, seed=i).exp for i, n in enumerate((40, 12, 25))]
    neutral = neutral_style_code(net, exps, L)
    # by hand: each clip's middle L frames (the 12-frame clip masked after frame 12) through E_s, averaged
    codes = []
    for e in exps:
        style, pad = middle_style(e, L)
        with torch.no_grad():
            codes.append(net.style_encoder(torch.from_numpy(style)[None], torch.from_numpy(pad)[None]))
    expected = torch.stack(codes).mean(0)
    assert neutral.shape == (1, p.model.d_model) and torch.allclose(neutral, expected, atol=1e-6)
    assert not torch.allclose(neutral, style_code(net, exps[0], L), atol=1e-4)   # not one clip's code
    # the neutral baseline is the decoder with that code: differs from the style clip's own prediction
    frames = np.arange(1, 20)
    phones = synthetic_clip("d", "calm", 24).phones
    assert not np.allclose(predict(net, phones, frames, neutral), predict(net, phones, frames,
                                                                         style_code(net, exps[1], L)), atol=1e-5)
    with pytest.raises(ValueError, match="no training clip"):
        neutral_style_code(net, [], L)


def test_baseline_variants_are_named_after_the_system_variant():
    assert baseline_variant("default", "replay") == "default+replay"
    assert baseline_variant("k4", "neutral") == "k4+neutral"
    with pytest.raises(ValueError, match="expected one of"):
        baseline_variant("default", "static")
