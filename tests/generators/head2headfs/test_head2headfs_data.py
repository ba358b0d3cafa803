"""Head2HeadFS masks, windows, flow, fine-tuning initialisation, reenacted NMFC and the rendering loop."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from headflow.generators.head2headfs.data import (ClipError, Head2HeadWindows, optical_flow, resize_clip,
                                                  synthetic_clip, usable_starts)
from headflow.generators.head2headfs.masks import clip_masks, grabcut_seed, mask_iou
from headflow.generators.head2headfs.params import MaskParams, tiny_params


def _head_scene(cx=64.0, cy=70.0, size=128, seed=0):
    """A textured 'head' (a disk, radius 30) over a 'hair' cap above it on a different, textured background.

    The head render (what the 3DMM covers) is the face disk only (radius 22): GrabCut must extend it to the
    rest of the disk and to the hair cap, and leave the background out."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    img = (rng.normal(0, 6, (size, size, 3)) + (40, 120, 200)).clip(0, 255).astype(np.uint8)   # blue-ish wall
    head = (xx - cx) ** 2 + (yy - cy) ** 2 <= 30 ** 2
    hair = ((xx - cx) ** 2 + (yy - (cy - 22)) ** 2 <= 26 ** 2) & (yy < cy - 10)
    img[head] = (rng.normal(0, 6, (head.sum(), 3)) + (210, 160, 130)).clip(0, 255)
    img[hair] = (rng.normal(0, 6, (hair.sum(), 3)) + (90, 60, 30)).clip(0, 255)
    render = (xx - cx) ** 2 + (yy - cy) ** 2 <= 22 ** 2
    lm = np.stack([np.linspace(cx - 20, cx + 20, 68), np.linspace(cy - 18, cy + 22, 68)], 1).astype(np.float32)
    return img, render, lm, head | hair


def test_grabcut_extends_the_head_render_to_hair_and_keeps_the_background_out():
    img, render, lm, truth = _head_scene()
    fg = grabcut_seed(img, render, lm, MaskParams(grabcut_size=128))
    # the head render alone misses the hair and the rim of the head: IoU with the truth ~0.4
    assert mask_iou(render, truth) < 0.5
    assert mask_iou(fg, truth) > 0.85
    assert fg[render].all()                  # the head render is always foreground
    assert not fg[:4].any()                  # the top border is sure background


def test_clip_masks_seed_once_and_follow_the_landmarks():
    frames, renders, lms, truths = [], [], [], []
    for dx in (0, 6, 12):                    # the head moves right by 6 px per frame
        img, render, lm, truth = _head_scene(cx=52.0 + dx)
        frames.append(img), renders.append(render), lms.append(lm), truths.append(truth)
    masks = clip_masks(np.stack(frames), np.stack(renders), np.stack(lms), np.ones(3, bool), MaskParams())
    for m, t in zip(masks, truths):
        assert mask_iou(m, t) > 0.85
    # the propagated mask is the seed mask shifted by the landmark motion (6 px per frame)
    assert mask_iou(np.roll(masks[0], 6, axis=1), masks[1]) > 0.95
    nmfc_only = clip_masks(np.stack(frames), np.stack(renders), np.stack(lms), np.array([True, False, True]),
                           MaskParams(backend="nmfc"))
    assert np.array_equal(nmfc_only[0], renders[0]) and not nmfc_only[1].any()
    with pytest.raises(ValueError, match="must agree on T"):
        clip_masks(np.stack(frames), np.stack(renders)[:2], np.stack(lms), np.ones(3, bool), MaskParams())


def test_usable_starts_need_span_plus_two_valid_frames():
    clip = synthetic_clip(10, "a", 32)
    clip.valid[5] = False
    # span 2: windows [t0-2, t0+2) all valid; t0 >= 2; frame 5 invalid excludes t0 in 4..7; t0 <= 8
    assert usable_starts(clip, 2).tolist() == [2, 3, 8]
    assert usable_starts(clip, 2, end=6).tolist() == [2, 3] and usable_starts(clip, 9).tolist() == []


def test_windows_shapes_identity_and_determinism():
    p = tiny_params()
    clips = [synthetic_clip(12, "b", 32, 1), synthetic_clip(12, "a", 32, 2)]
    ds = Head2HeadWindows(clips, ["a", "b"], p.discriminator, 2, 4, seed=0)
    item = ds[0]
    L = p.discriminator.frames_needed
    assert item["nmfc"].shape == (L + 2, 3, 32, 32) and item["previous"].shape == (2, 3, 32, 32)
    assert item["frames"].shape == (L, 3, 32, 32) and item["masks"].shape == (L, 1, 32, 32)
    assert item["identity_frames"].shape == (2, 3, 32, 32) and item["mouth"].shape == (L, 4)
    assert item["flow0"].shape == (1, 2, 32, 32) and item["flow1"].shape == (1, 2, 32, 32)
    # background removed: pixels outside the mask are black (-1)
    outside = item["masks"][:, 0] == 0
    assert torch.all(item["frames"].permute(1, 0, 2, 3)[:, outside] == -1)
    assert all(torch.equal(a, b) for a, b in zip(ds[3].values(), ds[3].values()))
    ds.set_epoch(1)
    assert not all(torch.equal(a, b) for a, b in zip(ds[0].values(), item.values()))
    with pytest.raises(ClipError, match="consecutive"):
        Head2HeadWindows([synthetic_clip(3, "a", 32)], ["a"], p.discriminator, 0, 1, 0)


def test_optical_flow_sees_a_rightward_shift():
    img = np.zeros((64, 64, 3), np.uint8)
    cv2.circle(img, (28, 32), 10, (255, 255, 255), -1)
    moved = np.roll(img, 2, axis=1)
    for method in ("dis", "farneback"):
        flow = optical_flow(img, moved, method)
        ring = cv2.dilate((img[..., 0] > 0).astype(np.uint8), np.ones((5, 5))) > 0
        # 2 px to the right in units of H/32 = 2 px: about +1 in x, about 0 in y on the disk's edges
        assert flow[0][ring].mean() > 0.4 and abs(flow[1][ring].mean()) < 0.2


def test_resize_clip_rejects_disagreeing_counts():
    c = synthetic_clip(6, "a", 32)
    with pytest.raises(ClipError) as err:
        resize_clip("x", "a", c.frames, c.nmfc[:5], c.masks, c.masks, c.landmarks, c.valid, 16)
    assert err.value.reason_code == "frame_count_mismatch"
    with pytest.raises(ClipError) as err:
        resize_clip("x", "a", c.frames, c.nmfc, np.zeros_like(c.masks), c.masks, c.landmarks, c.valid, 16)
    assert err.value.reason_code == "no_fit"
    small = resize_clip("x", "a", c.frames, c.nmfc, c.masks, c.masks, c.landmarks, c.valid, 16)
    assert small.frames.shape == (6, 16, 16, 3)
    # landmark scaling uses pixel centres: (x + 0.5) * 16/32 - 0.5
    assert np.allclose(small.landmarks, (c.landmarks + 0.5) * 0.5 - 0.5)


def test_finetune_initialisation_reproduces_the_embedder_conditioned_output():
    from headflow.generators.head2headfs.finetune import identity_of, personalise
    from headflow.generators.head2headfs.model import Discriminators, Renderer, generate_sequence

    torch.manual_seed(0)
    p = tiny_params()
    renderer, discs = Renderer(p.model), Discriminators(p, 2)
    clip = synthetic_clip(12, "new", 32, 5)
    h_new = identity_of(renderer, clip, 10)
    g, d = personalise(renderer, discs, h_new)
    ds = Head2HeadWindows([clip], ["new"], p.discriminator, 0, 1, 0, end=10)
    b = {k: v[None] for k, v in ds[0].items()}
    renderer.eval()
    want = generate_sequence(renderer.generator, b["nmfc"], h_new[None], b["previous"])
    got = generate_sequence(g.eval(), b["nmfc"], None, b["previous"])
    assert all(torch.allclose(x, y, atol=1e-5) for x, y in zip(got, want))
    assert torch.equal(d.image.W[0], h_new) and d.image.single and not discs.image.single
    # the originals are untouched (fine-tuning copies them)
    assert not renderer.generator.personalised


def test_reenacted_nmfc_projection_matches_fit3dmm_and_swaps_identity():
    from headflow.fit3dmm.fit import VideoFit
    from headflow.generators.head2headfs.reenact import project_with_identity, reenacted_nmfc
    from headflow.morphable.builtin import builtin_model

    model = builtin_model()
    rng = np.random.default_rng(0)
    T, k_id, k_exp = 3, 5, 4
    ang = np.deg2rad(rng.uniform(-10, 10, (T, 3)))
    R = np.stack([cv2.Rodrigues(a)[0] for a in ang]).astype(np.float32)
    fit = {"id_coeffs": rng.normal(0, 1, k_id).astype(np.float32),
           "exp_coeffs": rng.normal(0, 0.3, (T, k_exp)).astype(np.float32), "rotation": R,
           "scale": np.full(T, 2.0, np.float32), "translation": np.full((T, 2), 32, np.float32),
           "valid": np.ones(T, bool), "crop_transforms": np.tile(np.eye(2, 3), (T, 1, 1))}
    vf = VideoFit(model.name, fit["id_coeffs"], fit["exp_coeffs"], R, np.zeros((T, 3), np.float32),
                  fit["translation"], fit["scale"], fit["valid"], np.zeros(T), np.zeros(T))
    assert np.allclose(project_with_identity(model, fit["id_coeffs"], fit), vf.project(model), atol=1e-3)
    target = dict(fit, id_coeffs=rng.normal(0, 3, k_id).astype(np.float32))
    same, _ = reenacted_nmfc(model, fit, fit, 64, backend="numpy")
    swapped, mask = reenacted_nmfc(model, target, fit, 64, backend="numpy")
    assert mask.any() and (same != swapped).any()


def test_render_sequence_and_composite():
    from headflow.generators.head2headfs.generate import composite, render_sequence
    from headflow.generators.head2headfs.model import Head2HeadGenerator

    torch.manual_seed(0)
    p = tiny_params()
    g = Head2HeadGenerator(p.model)
    g.personalise(torch.randn(p.model.n_f))
    clip = synthetic_clip(7, "a", 32)
    a, ma = render_sequence(g.eval(), clip.nmfc, clip.frames[:2], chunk=3)
    b, mb = render_sequence(g, clip.nmfc, clip.frames[:2], chunk=100)     # chunking does not change the result
    assert a.shape == (7, 32, 32, 3) and a.dtype == np.uint8 and np.abs(a.astype(int) - b).max() <= 1
    assert np.allclose(ma, mb, atol=1e-5)
    bg = np.full((64, 64, 3), 200, np.uint8)
    out = composite(np.zeros((1, 32, 32, 3), np.uint8), np.full((1, 32, 32), 0.25, np.float32), bg, 64)
    assert out.shape == (1, 64, 64, 3) and np.all(out == 150)           # 0.25 * 0 + 0.75 * 200


def test_targets_and_reenactment_plan():
    import pandas as pd

    from headflow.generators.head2headfs.finetune import choose_targets
    from headflow.generators.head2headfs.generate import plan_tasks
    from headflow.generators.head2headfs.params import FinetuneHead2HeadFSParams

    rows = pd.DataFrame({"clip_id": ["b2", "a1", "b1", "a2", "c1", "t1"],
                         "speaker_id": ["b", "a", "b", "a", "c", "t"],
                         "split": ["test"] * 5 + ["train"]})
    assert choose_targets(rows, FinetuneHead2HeadFSParams()) == {"a": "a1", "b": "b1", "c": "c1"}
    assert choose_targets(rows, FinetuneHead2HeadFSParams(targets=["b"])) == {"b": "b1"}
    with pytest.raises(ValueError, match=r"\['t'\] are not speakers of the test split"):
        choose_targets(rows, FinetuneHead2HeadFSParams(targets=["t"]))
    test = rows[rows.split == "test"]
    tasks = plan_tasks(test, [{"speaker": "a", "clip_id": "a1"}], ["self", "cross"], None)
    # self: a's clips but the fine-tuning one; cross: every clip of the other speakers
    assert [(t["driver"], t["kind"]) for t in tasks] == [("a2", "self"), ("b1", "cross"), ("b2", "cross"),
                                                          ("c1", "cross")]
    alone = plan_tasks(test[test.speaker_id == "a"], [{"speaker": "a", "clip_id": "a1"}], ["cross"], 1)
    assert [(t["driver"], t["kind"]) for t in alone] == [("a2", "cross")]     # one speaker: own clips drive
