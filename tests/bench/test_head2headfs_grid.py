"""bench/head2headfs_grid.py: its scoring, tables and figure (fast), and its plumbing end to end on two GRID clips
with a tiny initialisation checkpoint (shared)."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from bench.head2headfs_grid import frame_scores, frames_figure, main, markdown, summarise


def test_frame_scores_known_answers():
    real = np.zeros((2, 8, 8, 3), np.uint8)
    fake = real.copy()
    fake[1, :4] = (3, 4, 0)            # frame 1: the top half off by (3, 4, 0): distance 5 per pixel
    mask = np.zeros((2, 8, 8), bool)
    mask[:, :4] = True                  # the real foreground: the top half
    pred = mask.copy()
    pred[1, 4:6] = True                 # frame 1 predicts 48 pixels where 32 are real: IoU 32/48
    s = frame_scores(fake, real, pred, mask)
    assert np.allclose(s["apd_whole"], [0.0, 2.5])                   # 5 over half of the pixels
    assert np.allclose(s["apd_masked"], [0.0, 5.0])            # 5 over every masked pixel
    assert np.allclose(s["mask_iou"], [1.0, 32 / 48])
    empty = np.zeros_like(mask)
    s = frame_scores(fake, real, empty, empty)                 # no real foreground: masked APD and IoU undefined
    assert np.isnan(s["apd_masked"]).all() and np.isnan(s["mask_iou"]).all()
    with pytest.raises(ValueError, match="must agree"):
        frame_scores(fake[:1], real, pred, mask)


def test_summarise_pairs_frames_and_names_the_winner():
    # the system is 1.0 worse (higher APD) than the baseline on every frame: the paired difference is exactly 1
    base = {"apd_whole": np.arange(10.0), "apd_masked": np.arange(10.0), "mask_iou": np.full(10, 0.5)}
    sys_ = {"apd_whole": base["apd_whole"] + 1, "apd_masked": base["apd_masked"] - 1, "mask_iou": np.full(10, 0.5)}
    aggs, comps = summarise({"head2headfs": sys_, "retrieval": base}, "head2headfs", 200, 0.95, 0)
    assert [(a["system"], a["metric"]) for a in aggs][:3] == [("head2headfs", "apd_whole"), ("head2headfs", "apd_masked"),
                                                                ("head2headfs", "mask_iou")]
    by = {c["metric"]: c for c in comps}
    assert by["apd_whole"]["diff"] == pytest.approx(1.0) and by["apd_whole"]["low"] == pytest.approx(1.0)
    assert by["apd_whole"]["winner"] == "opponent" and by["apd_masked"]["winner"] == "system"   # lower APD wins
    assert by["mask_iou"]["winner"] == "none" and by["apd_whole"]["n"] == 10
    text = markdown(aggs, comps, digits=1)
    assert "| head2headfs | 5.5 [" in text and "| head2headfs - retrieval | apd_whole | 1.0 [1.0, 1.0] | 10 | opponent |" in text


def _read_png(path) -> np.ndarray:
    """The figure as an RGB array, read with Pillow (the bench writes it with Pillow; see frames_figure)."""
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def test_frames_figure_layout(tmp_path):
    rows = [("a", np.full((3, 16, 16, 3), 255, np.uint8)), ("b\nsecond line", np.zeros((3, 300, 300, 3), np.uint8))]
    path = frames_figure(rows, ["f0", "f1", "f2"], tmp_path / "fig.png", tile=32)
    img = _read_png(path)
    assert img.shape == (22 + 2 * 32, 150 + 3 * 32, 3)
    assert (img[22 + 32:, 150:] == 0).all() and (img[22:22 + 32, 150:] == 255).all()   # tiles in their rows
    with pytest.raises(ValueError, match="do not have 3 frames"):
        frames_figure([("a", np.zeros((2, 8, 8, 3), np.uint8))], ["x", "y", "z"], tmp_path / "bad.png")


def test_reenacted_nmfc_at_is_the_256_render_at_another_size():
    from headflow.generators.head2headfs.reenact import reenacted_nmfc, reenacted_nmfc_at
    from headflow.morphable.builtin import builtin_model

    model = builtin_model()
    T = 2
    fit = {"id_coeffs": np.zeros(5, np.float32), "exp_coeffs": np.zeros((T, 4), np.float32),
           "rotation": np.tile(np.eye(3, dtype=np.float32), (T, 1, 1)), "scale": np.full(T, 6.0, np.float32),
           "translation": np.full((T, 2), 128, np.float32), "valid": np.array([True, False]),
           "crop_transforms": np.tile(np.eye(2, 3), (T, 1, 1)), "crop_size": np.int32(256)}
    full, mask256 = reenacted_nmfc(model, fit, fit, 256, backend="numpy")
    same, _ = reenacted_nmfc_at(model, fit, fit, 256)
    assert np.array_equal(same, full)                               # k = 1: the transforms are left as they are
    small, mask64 = reenacted_nmfc_at(model, fit, fit, 64)
    assert small.shape == (T, 64, 64, 3) and not mask64[1].any()   # a frame without a fit stays empty
    # the 64 render covers what the 256 one covers, shrunk by 4 (area-downsampled coverage > 0.5); the head
    # (the builtin mean shape, ~15 x 21 model units at scale 6) spans ~90 x 125 px of the 256 crop
    down = cv2.resize(mask256[0].astype(np.float32), (64, 64), interpolation=cv2.INTER_AREA) > 0.5
    assert (down & mask64[0]).sum() / (down | mask64[0]).sum() > 0.9


@pytest.mark.shared
@pytest.mark.e2e
@pytest.mark.slow   # 14-21 s on the shared 2-core machine: the real preprocessing of two clips dominates
def test_bench_runs_on_two_grid_clips(grid_dir, tmp_path):
    """The bench end to end on two GRID clips (real preprocessing) with a tiny checkpoint and two fine-tuning steps."""
    import torch

    from headflow.generators.head2headfs.model import Discriminators, Renderer
    from headflow.generators.head2headfs.params import tiny_params
    from headflow.generators.head2headfs.train import save_init

    clips = sorted(p.stem for p in grid_dir.glob("*.mpg"))[:2]
    if len(clips) < 2:
        pytest.skip(f"fewer than two GRID clips in {grid_dir}")
    torch.manual_seed(0)
    p = tiny_params()
    save_init(tmp_path / "init" / "init.pt", p, ["x", "y"], Renderer(p.model), Discriminators(p, 2), {})
    out = tmp_path / "r.json"
    assert main(["--init", str(tmp_path / "init"), "--grid", str(grid_dir), "--clips", *clips, "--frames", "20",
                 "--epochs", "1", "--samples", "2", "--columns", "3", "--out", str(out),
                 "--figure", str(tmp_path / "fig.png")]) == 0
    r = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert r["target"] == clips[0] and r["driver"] == clips[1]
    assert r["split"] == {"clip_frames": 75, "finetune_frames": [0, 20], "held_out_frames": [20, 75],
                          "held_out_scored": 55, "finetune_frames_with_fit": 20}
    assert r["finetune"]["head2headfs"]["steps"] == 2 and r["init"]["image_size"] == 32
    assert r["per_frame"]["frames"][0] == 20 and len(r["per_frame"]["retrieval"]["apd_whole"]) == 55
    systems = {a["system"] for a in r["aggregates"]}
    assert systems == {"head2headfs", "retrieval"}
    assert all(math.isfinite(a["mean"]) for a in r["aggregates"])
    assert {(c["opponent"], c["metric"]) for c in r["comparisons"]} == {("retrieval", m) for m in
                                                                         ("apd_whole", "apd_masked", "mask_iou")}
    assert r["inference"]["cross_nmfc_frames"] == 75 and r["inference"]["frames"] == 55 + 75
    img = _read_png(r["figure"])
    assert img.shape == (22 + 6 * 128, 150 + 3 * 128, 3)   # six rows (no random init), three columns
    assert out.with_suffix(".md").read_text().count("| head2headfs - retrieval |") == 3
