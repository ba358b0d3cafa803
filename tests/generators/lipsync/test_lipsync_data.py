"""Windows, reference selection, masks and the image operations of the lip-sync family."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from headflow.generators.lipsync import data


# ---------------------------------------------------------------------------------------------- windows

def test_window_starts_needs_valid_faces_and_a_full_mel_window_for_the_last_frame():
    # Frame f's mel window starts at int(80 f / 25) = int(3.2 f) and has 16 frames. With 60 mel frames,
    # frame 14 starts at 44 (44 + 16 = 60 fits) and frame 15 at 48 (64 > 60): the last usable frame is
    # 14, so a 5-frame window may start at 0..10. An invalid frame 3 removes starts -1..3.
    valid = np.ones(20, bool)
    assert data.window_starts(valid, 60).tolist() == list(range(11))
    valid[3] = False
    assert data.window_starts(valid, 60).tolist() == list(range(4, 11))
    assert data.window_starts(np.ones(4, bool), 1000).size == 0


def test_generated_range_ends_at_the_last_frame_with_a_full_mel_window():
    assert data.generated_range(np.ones(20, bool), 60) == (0, 15)        # frames 0..14, see above
    assert data.generated_range(np.ones(20, bool), 10) == (0, 0)


def test_frame_mels_slices_each_frames_window_and_never_pads():
    mel = np.arange(60 * 80, dtype=np.float32).reshape(60, 80)
    out = data.frame_mels(mel, np.array([0, 14]))
    assert out.shape == (2, 1, 80, 16)
    np.testing.assert_array_equal(out[1, 0], mel[44:60].T)               # frame 14 starts at mel frame 44
    with pytest.raises(IndexError, match="frame 15"):
        data.frame_mels(mel, np.array([15]))


# ------------------------------------------------------------------------------------------- references

def test_kmeans_references_cover_every_cluster_and_never_the_target_window(three_shape_clip):
    lm, valid, shapes = three_shape_clip
    clusters = data.cluster_frames(lm, valid, k=10, seed=0)
    assert len(clusters.ranked) == 10                                     # noisy landmarks: 10 distinct clusters
    for members in clusters.ranked:                                       # none mixes two mouth shapes
        assert len(set(shapes[members])) == 1
    for start in data.window_starts(valid, 10_000):
        frames, augmented = data.select_references(clusters, int(start))
        assert frames.shape == (10,) and augmented.shape == (10,)
        assert not np.any((frames >= start) & (frames < start + 5)), f"reference in target window at {start}"
        outside = [c for c, m in enumerate(clusters.ranked) if np.any((m < start) | (m >= start + 5))]
        chosen = frames[~augmented]
        assert sorted(clusters.labels[chosen].tolist()) == outside        # exactly one frame per available cluster
        assert augmented.sum() == 10 - len(outside)


def test_fewer_distinct_shapes_than_k_gives_fewer_clusters_and_augmented_fills():
    from tests.generators.lipsync.conftest import template_landmarks

    lm = np.stack([template_landmarks(o) for o in [0.0] * 8 + [5.0] * 8 + [10.0] * 8])
    clusters = data.cluster_frames(lm, np.ones(24, bool), k=10)
    assert len(clusters.ranked) == 3 and clusters.n_slots == 10
    frames, augmented = data.select_references(clusters, 0)
    assert sorted(set(clusters.labels[frames[:3]].tolist())) == [0, 1, 2]
    assert augmented.tolist() == [False] * 3 + [True] * 7 and set(frames[3:]) <= set(frames[:3])


def test_a_cluster_inside_the_target_window_is_filled_with_augmented_copies(three_shape_clip):
    lm, valid, shapes = three_shape_clip
    clusters = data.cluster_frames(lm, valid, k=3, seed=0)
    frames, augmented = data.select_references(clusters, 19)              # window 19..23 holds all of shape 2
    assert set(shapes[frames]) == {0, 1}
    assert augmented.tolist() == [False, False, True]
    assert frames[2] in frames[:2]
    frames, augmented = data.select_references(clusters, 19, augment=False)
    assert not augmented.any()


def test_the_same_references_serve_every_window_that_does_not_contain_them(three_shape_clip):
    lm, valid, _ = three_shape_clip
    clusters = data.cluster_frames(lm, valid, k=3, seed=0)
    nearest = [int(m[0]) for m in clusters.ranked]                        # each cluster's frame nearest its centroid
    for start in (0, 10, 30, 33):
        if not any(start <= f < start + 5 for f in nearest):
            assert data.select_references(clusters, start)[0].tolist() == nearest
    # A window over one of them takes that cluster's next-nearest frame outside the window instead.
    start = nearest[1] - 2
    frames, aug = data.select_references(clusters, start)
    assert frames[1] != nearest[1] and not aug.any() and clusters.labels[frames[1]] == 1
    assert frames[1] == next(f for f in clusters.ranked[1] if not start <= f < start + 5)


def test_too_short_clip_is_a_reason_code_not_a_crash():
    from tests.generators.lipsync.conftest import template_landmarks

    lm = np.stack([template_landmarks(o) for o in range(5)])
    clusters = data.cluster_frames(lm, np.ones(5, bool), k=10)
    with pytest.raises(data.ReferenceError) as err:
        data.select_references(clusters, 0)
    assert err.value.reason_code == "no_reference_frames"
    with pytest.raises(data.ReferenceError) as err:
        data.cluster_frames(lm, np.zeros(5, bool))
    assert err.value.reason_code == "no_landmarks"


def test_random_references_stay_outside_the_window_and_inside_the_neighbourhood():
    rng = np.random.default_rng(0)
    valid = np.ones(200, bool)
    valid[::7] = False
    for _ in range(50):
        start = int(rng.integers(0, 195))
        frames, aug = data.random_references(valid, start, 3, rng, neighbourhood=30)
        assert not np.any((frames >= start) & (frames < start + 5))
        assert np.all((frames >= start - 30) & (frames < start + 35)) and valid[frames].all()
        assert len(set(frames.tolist())) == 3 and not aug.any()
    frames, aug = data.random_references(np.array([1, 0, 0, 0, 0, 0], bool), 1, 2, rng)
    assert frames.tolist() == [0, 0] and aug.tolist() == [False, True]   # one frame available: a flagged copy


# ------------------------------------------------------------------------------------------------ masks

def test_mask_lower_half_zeroes_exactly_the_lower_half():
    x = torch.rand(2, 3, 96, 96) + 0.1
    out = data.mask_lower_half(x)
    assert torch.equal(out[..., :48, :], x[..., :48, :]) and out[..., 48:, :].abs().sum() == 0
    assert data.lower_half_mask().sum() == 48 * 96


def test_hull_mask_is_the_dilated_convex_hull_of_jaw_and_nose_tip():
    lm = np.zeros((68, 2))
    # Jaw points on a rectangle x 30..66, y 60..80; nose tip above at (48, 50): a pentagon.
    lm[list(data.HULL_JAW_POINTS)] = [[30, 60], [66, 60], [66, 80], [30, 80]] * 3 + [[30, 80]]
    lm[data.NOSE_TIP] = [48, 50]
    plain = data.hull_mask(lm, dilation=1)
    assert plain[70, 48] == 1 and plain[52, 48] == 1 and plain[70, 20] == 0 and plain[30, 48] == 0
    # Area: rectangle 37 x 21 px (inclusive) plus a triangle of base 36, height 10 (~180 px).
    assert 37 * 21 + 150 < plain.sum() < 37 * 21 + 220
    wide = data.hull_mask(lm, dilation=11)                               # grows by 5 px each way
    assert wide[70, 25] == 1 and wide[70, 23] == 0 and wide[85, 48] == 1 and wide[87, 48] == 0


def test_hull_mask_covers_the_mouth_and_not_the_eyes():
    from tests.generators.lipsync.conftest import template_landmarks

    lm = template_landmarks(8.0)
    m = data.hull_mask(lm)
    mouth = np.round(lm[48:68]).astype(int)
    assert m[mouth[:, 1], mouth[:, 0]].all()
    eyes = np.round(lm[36:48]).astype(int)
    assert not m[eyes[:, 1], eyes[:, 0]].any()
    masks = data.hull_masks(np.stack([lm, lm]), np.array([True, False]))
    assert masks[0].sum() > 0 and masks[1].sum() == 0


# ------------------------------------------------------------------------------ torch image operations

def test_prepare_references_augments_only_flagged_copies_blurs_and_crops():
    torch.manual_seed(0)
    refs = torch.rand(2, 3, 3, 96, 96)
    flags = torch.tensor([[False, True, False], [False, False, False]])
    gen = torch.Generator().manual_seed(0)
    out = data.prepare_references(refs, flags, gen, blur_sigma=0.0)
    assert torch.equal(out[~flags], refs[~flags]) and not torch.allclose(out[0, 1], refs[0, 1])
    blurred = data.prepare_references(refs, torch.zeros(2, 3, dtype=torch.bool), gen, blur_sigma=1.0)
    assert blurred.std() < 0.6 * refs.std()                               # white noise loses most variance
    assert torch.allclose(blurred.mean(), refs.mean(), atol=0.01)          # a blur keeps the mean
    half = data.prepare_references(refs, torch.zeros(2, 3, dtype=torch.bool), gen, 0.0, "lower_half")
    assert half[..., :48, :].abs().sum() == 0 and torch.equal(half[..., 48:, :], refs[..., 48:, :])


def test_affine_augment_with_zero_ranges_is_the_identity():
    x = torch.rand(3, 3, 96, 96)
    out = data.affine_augment(x, torch.Generator().manual_seed(1), 0.0, 0.0, 0.0)
    torch.testing.assert_close(out, x, atol=1e-4, rtol=0)


def test_blend_uses_the_detached_blurred_mask():
    gen, frame = torch.ones(1, 3, 96, 96), torch.zeros(1, 3, 96, 96)
    mask = torch.zeros(1, 1, 96, 96)
    mask[..., 48:, :] = 1
    mask.requires_grad_(True)
    out = data.blend(gen, frame, mask)
    assert out[0, 0, 10, 10] == 0 and out[0, 0, 90, 10] == 1               # far from the edge: unchanged
    assert 0 < out[0, 0, 47, 10] < 1 and 0 < out[0, 0, 48, 10] < 1         # the edge is feathered
    assert not out.requires_grad                                           # sg(M): no gradient to the mask
    assert data.blend(gen, frame, None) is gen


# ------------------------------------------------------------------------------------ training windows

def test_window_samples_are_seeded_per_epoch_and_index_and_keep_references_out_of_the_window():
    from tests.generators.lipsync.conftest import synthetic_clip
    from headflow.generators.lipsync.params import DataParams

    p = DataParams(n_references=4)
    clip = synthetic_clip(40)
    ds = data.LipsyncWindows([data.index_clip(clip, p)], p, samples_per_epoch=6, seed=3)
    a = ds[2]
    assert a["faces_u8"].shape == (5, 96, 96, 3) and a["mels"].shape == (5, 1, 80, 16)
    assert a["references_u8"].shape == (4, 96, 96, 3) and a["hull_u8"].shape == (5, 96, 96)
    assert a["expert_mel"].shape == (1, 80, 16) and a["mouth_reference"].shape == (48, 96, 3)
    np.testing.assert_array_equal(ds[2]["faces_u8"], a["faces_u8"])                 # same (seed, epoch, i)
    _, start, _ = ds.locate(2)
    np.testing.assert_array_equal(a["faces_u8"], clip.faces[start:start + 5])
    np.testing.assert_array_equal(a["expert_mel"], a["mels"][0])                    # no separate expert mel
    starts = [ds.locate(i)[1] for i in range(6)]
    ds.set_epoch(1)
    assert [ds.locate(i)[1] for i in range(6)] != starts                            # epochs differ
    for i in range(6):
        c, start, rng = ds.locate(i)
        refs, _ = data.select_references(ds.indexes[c].clusters, start)
        assert not np.any((refs >= start) & (refs < start + 5))


def test_random_reference_sampling_draws_from_the_clip(three_shape_clip):
    from tests.generators.lipsync.conftest import synthetic_clip
    from headflow.generators.lipsync.params import DataParams

    p = DataParams(n_references=1, reference_sampling="neighbourhood", neighbourhood=3)
    clip = synthetic_clip(40)
    ix = data.index_clip(clip, p)
    s = data.window_sample(ix, 20, p, np.random.default_rng(0))
    frame = [f for f in range(40) if np.array_equal(clip.faces[f], s["references_u8"][0])]
    assert frame and all(17 <= f < 20 or 25 <= f < 28 for f in frame)


def test_clips_that_cannot_train_raise_reason_codes():
    from tests.generators.lipsync.conftest import synthetic_clip
    from headflow.generators.lipsync.params import DataParams

    p = DataParams()
    short = synthetic_clip(5)
    with pytest.raises(data.ReferenceError) as err:
        data.index_clip(short, p)
    assert err.value.reason_code == "no_reference_frames"
    clip = synthetic_clip(20)
    clip.valid[:] = False
    with pytest.raises(data.ReferenceError) as err:
        data.index_clip(clip, p)
    assert err.value.reason_code == "no_landmarks"
    clip = synthetic_clip(20)
    clip.valid[::4] = False                                         # no 5 consecutive valid frames
    with pytest.raises(data.ReferenceError) as err:
        data.index_clip(clip, p)
    assert err.value.reason_code == "too_short"


def test_prepare_batch_gives_float_images_in_the_steps_layout(tiny_batch):
    assert tiny_batch["faces"].shape == (2, 5, 3, 96, 96) and tiny_batch["faces"].dtype == torch.float32
    assert tiny_batch["references"].shape == (2, 2, 3, 96, 96) and tiny_batch["hull"].shape == (2, 5, 1, 96, 96)
    assert 0 <= tiny_batch["faces"].min() and tiny_batch["faces"].max() <= 1
    assert set(tiny_batch["hull"].unique().tolist()) == {0.0, 1.0}


def test_expert_mel_is_the_experts_own_cmvn():
    from headflow.sync.data import cmvn_mel

    mel = np.random.default_rng(0).uniform(-4, 4, (90, 80)).astype(np.float32)
    np.testing.assert_array_equal(data.expert_mel(mel, "clip"), cmvn_mel(mel))
    assert data.expert_mel(mel, "none") is mel
    with pytest.raises(ValueError, match="audio_centre"):
        data.expert_mel(mel, "utterance")
