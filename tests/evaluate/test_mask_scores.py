"""evaluate's mask_iou and apd_masked: the mask sidecar of a generated output (head2headfs) scored over the task's frames."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from headflow.evaluate.baselines import Task
from headflow.evaluate.stage import mask_iou_frames, mask_scores
from headflow.manifest.generated import masks_path


def test_mask_iou_frames_known_answer():
    pred = np.zeros((3, 4, 4), bool)
    ref = np.zeros((3, 4, 4), bool)
    pred[0, :, :2] = True                          # left half: 8 px
    ref[0, :2, :] = True                           # top half: 8 px; intersection 4, union 12 -> 1/3
    # frame 1: both empty, IoU undefined -> left out
    pred[2, 1:3, 1:3] = ref[2, 1:3, 1:3] = True    # equal -> 1
    assert mask_iou_frames(pred, ref) == pytest.approx((1 / 3 + 1) / 2)
    assert mask_iou_frames(pred[1:2], ref[1:2]) is None


def _task(protocol="reenactment", has_target=True, start=1, end=4):
    return Task(protocol, "d.t.self", "d", "d", "d", has_target, start, end)


def test_mask_scores_reads_the_sidecar_over_the_scored_frames(tmp_path):
    T, S = 5, 256
    rng = np.random.default_rng(0)
    real = SimpleNamespace(frames=[rng.integers(0, 200, (S, S, 3), dtype=np.uint8) for _ in range(T)],
                           m256=np.broadcast_to(np.eye(3)[:2], (T, 2, 3)).copy())   # frames = aligned crops
    fake = [f.copy() for f in real.frames]
    for f in fake:
        f[:, :128, 0] += 30                      # red + 30 on the left half: Euclidean RGB distance 30 there
    fake[0][:] = 0                               # frame 0 (outside the scored range) entirely wrong
    ref = np.zeros((T, S, S), bool)
    ref[:, :128] = True                          # real foreground: the top half; half of it is in the left half
    pred = np.zeros((T, S, S), bool)
    pred[:, :, :128] = True                      # predicted: the left half -> IoU (128*128) / (3*128*128) = 1/3
    out = "data/interim/generate_head2headfs/videos/d.t.self.retrieval.mp4"
    side = tmp_path / masks_path(out)
    assert side == tmp_path / "data/interim/generate_head2headfs/masks/d.t.self.retrieval.npz"
    side.parent.mkdir(parents=True)
    np.savez_compressed(side, pred=pred, reference=ref, frame_start=0, frame_end=T)
    got = mask_scores(out, _task(), real, lambda f: fake[f], "aligned", tmp_path)
    # apd_masked = 30 on the foreground pixels in the left half (half of them), 0 on the rest -> 15
    assert got["apd_masked"] == pytest.approx(15.0)
    assert got["mask_iou"] == pytest.approx(1 / 3)
    # no ground truth (cross reenactment), no sidecar, or a sidecar without reference masks: nothing
    assert mask_scores(out, _task(has_target=False), real, lambda f: fake[f], "aligned", tmp_path) == {}
    assert mask_scores("data/interim/generate_head2headfs/videos/x.mp4", _task(), real, lambda f: fake[f],
                       "aligned", tmp_path) == {}
    np.savez_compressed(side, pred=pred, frame_start=0, frame_end=T)
    assert mask_scores(out, _task(), real, lambda f: fake[f], "aligned", tmp_path) == {}
    np.savez_compressed(side, pred=pred, reference=ref, frame_start=0, frame_end=T)
    with pytest.raises(ValueError, match="do not cover"):
        mask_scores(out, _task(end=7), real, lambda f: fake[f], "aligned", tmp_path)


def test_compare_pairs_a_variant_with_its_in_run_baselines():
    from headflow.evaluate.aggregate import compare
    from headflow.manifest.schemas import EVAL_METRICS, PER_CLIP

    rows = []
    for i in range(6):
        for variant, apd in (("default", 10.0 + i), ("default+retrieval", 14.0 + i), ("default+random_init", 10.0 + i)):
            row = {c: None for c in PER_CLIP.names}
            row.update({m: np.nan for m in EVAL_METRICS})
            row.update(system="head2headfs", family="head2headfs", variant=variant, protocol="reenactment",
                       clip_id=f"c{i}", seed=0, apd=apd, status="ok")
            rows.append(row)
    out = compare(pd.DataFrame(rows, columns=PER_CLIP.names), {}, n_boot=200)
    apd = out[out.metric == "apd"].set_index("opponent")
    assert sorted(apd.index) == ["head2headfs:default+random_init", "head2headfs:default+retrieval"]
    assert apd.loc["head2headfs:default+retrieval", "diff"] == pytest.approx(-4.0)   # 4 lower on every clip
    assert apd.loc["head2headfs:default+retrieval", "winner"] == "system"
    assert apd.loc["head2headfs:default+random_init", "winner"] == "none"            # equal on every clip
    assert set(out.variant) == {"default"}                                           # baselines are not paired
