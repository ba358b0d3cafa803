"""StyleTalk's samples, mode split, geometry and generation helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from headflow.generators.styletalk.data import DiscSamples, StyleTalkSamples
from headflow.generators.styletalk.generate import choose_style_clip, middle_style
from headflow.generators.styletalk.geometry import BFM_LOWER, mode_subsets, mouth_vertices, project
from tests.generators.styletalk.conftest import synthetic_clips


def test_samples_are_reproducible_and_triplets_follow_the_styles():
    clips = synthetic_clips(4)
    ds = StyleTalkSamples(clips, ["calm", "lively"], 16, 8, 2, "silence", 20, seed=3)
    a, b = ds[5], ds[5]
    assert all(torch.equal(a[k], b[k]) for k in a)
    ds.set_epoch(1)
    assert not torch.equal(ds[5]["exp"], a["exp"])                     # another epoch, another draw
    s = ds[0]
    assert s["phones"].shape == (16, 5) and s["exp"].shape == (16, 5) and s["style"].shape == (8, 5)
    assert s["style_pad"].dtype == torch.bool and not s["style_pad"].any()     # 40-frame clips fill 8 slots


def test_triplet_clips_have_the_same_and_another_style():
    clips = synthetic_clips(4)              # c0, c2 calm; c1, c3 lively: upper modes scale with the style's gain
    ds = StyleTalkSamples(clips, ["calm", "lively"], 16, 40, 2, "silence", 30, seed=0)
    for i in range(30):
        s = ds[i]
        amp = lambda x: float(x[:, 2:].max())      # noqa: E731 - calm <= 0.3 x 0.5 x 2 = 0.3, lively up to 0.9
        anchor_calm = int(s["style_label"]) == 0
        assert (amp(s["pos_style"]) <= 0.31) == anchor_calm
        assert (amp(s["neg_style"]) <= 0.31) != anchor_calm


def test_disc_pairs_in_sync_take_the_window_of_the_middle_frame():
    clips = synthetic_clips(4)
    ds = DiscSamples(clips, ["calm", "lively"], 2, 3, 16, 5, "silence", 40, seed=1)
    labels = []
    for i in range(40):
        s = ds[i]
        labels.append(float(s["sync_label"]))
        assert s["sync_phones"].shape == (5,) and s["sync_exp"].shape == (3, 5) and s["style_exp"].shape == (16, 5)
        if s["sync_label"] == 1:
            # mouth modes 0-1 are a function of the phone: the middle frame's shape matches its window's middle phone
            shape = np.random.default_rng(99).uniform(0, 1, (41, 2))
            ph = int(s["sync_phones"][2])
            ratio = s["sync_exp"][1, :2].numpy() / shape[ph]
            assert np.allclose(ratio, ratio[0], rtol=1e-4)
    assert 0 < np.mean(labels) < 1


def test_mode_split_per_morphable_model():
    lower, upper = mode_subsets("bfm_deep3d", (), 64)
    assert lower == BFM_LOWER and len(lower) == 13 and len(upper) == 51
    names = ("jawOpen", "eyeBlink_L", "mouthSmile_L", "browInnerUp", "cheekPuff")
    assert mode_subsets("builtin_demo", names, 5) == ((0, 2, 4), (1, 3))
    with pytest.raises(ValueError, match="64-d"):
        mode_subsets("bfm_x", (), 80)
    with pytest.raises(ValueError, match="empty"):
        mode_subsets("ict", ("eyeBlink_L", "browDown_R"), 2)


def test_builtin_model_split_and_mouth_points():
    from headflow.morphable.builtin import builtin_model

    m = builtin_model()
    lower, upper = mode_subsets(m.name, m.exp_names, m.n_exp)
    assert {m.exp_names[i] for i in lower} >= {"jawOpen", "mouthFunnel", "cheekPuff"}
    assert all(m.exp_names[i].startswith(("eye", "brow")) for i in upper)
    ids = mouth_vertices(m, 32)
    assert len(set(ids.tolist())) == 32
    # every chosen vertex is nearer the mouth landmarks than the eye landmarks
    mean = m.mean[ids]
    mouth, eyes = m.mean[m.landmarks68[48:68]], m.mean[m.landmarks68[36:48]]
    d = lambda a, b: np.linalg.norm(a[:, None] - b[None], axis=-1).min(1)   # noqa: E731
    assert (d(mean, mouth) < d(mean, eyes)).all()


def test_projection_is_the_scaled_orthographic_camera():
    from headflow.morphable.builtin import builtin_model

    m = builtin_model()
    R = np.eye(3)[None]
    # identity rotation, scale 2, translation (10, 20): u = 2x + 10, v = -2y + 20, depth = 2z
    uvz = project(m, np.zeros(3), np.zeros((1, 2)), R, np.array([2.0]), np.array([[10.0, 20.0]]), np.array([0, 5]))
    X = m.mean[[0, 5]]
    assert np.allclose(uvz[0], np.c_[2 * X[:, 0] + 10, -2 * X[:, 1] + 20, 2 * X[:, 2]], atol=1e-4)


def test_middle_style_and_style_clip_choice():
    exp = np.arange(10, dtype=np.float32)[:, None].repeat(2, 1)
    cut, pad = middle_style(exp, 4)
    assert cut[:, 0].tolist() == [3, 4, 5, 6] and not pad.any()       # start (10 - 4 + 1) // 2 = 3
    short, pad = middle_style(exp[:3], 5)
    assert pad.tolist() == [False, False, False, True, True] and (short[3:] == 0).all()
    table = pd.DataFrame({"clip_id": ["a", "b", "c", "d"], "speaker_id": ["s", "s", "s", "t"],
                          "style": ["x", "y", "x", "x"]})
    assert choose_style_clip("a", table, "same_style") == "c" and choose_style_clip("c", table, "same_style") == "a"
    assert choose_style_clip("b", table, "same_style") == "b"          # no other clip of that style: itself
    assert choose_style_clip("d", table, "same_style") == "d" and choose_style_clip("a", table, "self") == "a"


def test_released_sample_format_reads_and_resamples_30_to_25_fps(tmp_path):
    import json

    from scipy.io import savemat

    from headflow.generators.styletalk.data import ClipRejected
    from headflow.generators.styletalk.samples import read_styletalk_sample

    T = 30                                           # one second at 30 fps -> 25 frames at 25 fps
    coeff = np.zeros((T, 257))
    coeff[:, 80] = np.arange(T)                      # exp mode 0 = the 30 fps frame index (a ramp)
    coeff[:, 143] = 7.0                              # the last exp mode; id / tex / pose stay outside
    coeff[:, 0] = 99.0
    savemat(tmp_path / "clip.mat", {"coeff": coeff, "transform_params": np.zeros((T, 5))})
    (tmp_path / "clip_seq.json").write_text(json.dumps(list(range(T))))
    clip = read_styletalk_sample(tmp_path / "clip.mat", tmp_path / "clip_seq.json", style="x")
    assert clip.exp.shape == (25, 64) and clip.phones.shape == (25,) and clip.clip_id == "clip"
    # 25 fps frame t centre (t + 0.5)/25 s = 30 fps position 1.2 t + 0.1 (centres at i + 0.5): linear ramp value
    assert np.allclose(clip.exp[:, 0], 1.2 * np.arange(25) + 0.1, atol=1e-5) and np.allclose(clip.exp[:, 63], 7.0)
    # the phone active at the centre: floor(30 (t + 0.5) / 25) = floor((6 t + 3) / 5), in exact integers
    assert clip.phones.tolist() == [(6 * t + 3) // 5 for t in range(25)]
    (tmp_path / "short_seq.json").write_text(json.dumps(list(range(T - 2))))
    with pytest.raises(ClipRejected, match="28 phoneme frames.*30 coefficient frames"):
        read_styletalk_sample(tmp_path / "clip.mat", tmp_path / "short_seq.json")
    (tmp_path / "bad_seq.json").write_text(json.dumps([41] * T))
    with pytest.raises(ClipRejected) as err:
        read_styletalk_sample(tmp_path / "clip.mat", tmp_path / "bad_seq.json")
    assert err.value.reason_code == "unknown_phone"
