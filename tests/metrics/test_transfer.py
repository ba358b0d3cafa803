"""Pose and identity intervals of generated heads (headflow.metrics.transfer): pairing units and known answers."""

from __future__ import annotations

import numpy as np
import pytest

from headflow.metrics.transfer import identity_interval, landmark_box, pose_intervals, transfer_identity
from tests.generators.stylemap.conftest import face_frame


def test_landmark_box_is_the_points_extent():
    assert landmark_box(np.array([[3.0, 4.0], [10.0, 1.0], [5.0, 9.0]])).tolist() == [3.0, 1.0, 10.0, 9.0]


def test_pose_intervals_pair_by_clip_and_weigh_clips_equally():
    zero = np.zeros(3)
    # clip A: 10 frames, network off by 1 deg on every angle, baseline (mean pose 0) off by 5 (fitted yaw/pitch/roll 5)
    # clip B: 2 frames, network off by 3, baseline off by 5; one invalid frame with a huge error is left out
    fa = np.full((10, 3), 5.0)
    fb = np.full((3, 3), 5.0)
    pb = np.vstack([np.full((2, 3), 8.0), np.full((1, 3), 500.0)])
    out = pose_intervals([(fa + 1.0, fa, np.ones(10, bool)), (pb, fb, np.array([True, True, False]))], zero, 200)
    # per-clip MAE: network (1, 3) -> mean 2 (clips equally weighted; frames would give (10 + 6) / 12 = 1.33);
    # baseline (5, 5) -> 5; differences (-4, -2): every bootstrap mean lies in [-4, -2], so the network wins
    assert out["pose_mae_deg"] == 2.0 and out["baseline_pose_mae_deg"] == 5.0 and out["pose_mae_diff_deg"] == -3.0
    assert -4.0 <= out["pose_mae_diff_low"] <= out["pose_mae_diff_high"] <= -2.0
    assert out["pose_clips"] == 2 and out["pose_winner"] == "network"
    # a network no better than the constant on one clip and worse on the other: no win claimed for it
    tie = pose_intervals([(fa + 1.0, fa, np.ones(10, bool)), (fb + 9.0, fb, np.ones(3, bool))], zero, 200)
    assert tie["pose_mae_diff_low"] < 0 < tie["pose_mae_diff_high"] and tie["pose_winner"] == "none"
    assert pose_intervals([(fa, fa, np.zeros(10, bool))], zero) == {}


def test_identity_interval_and_transfer_identity_known_answers():
    out = identity_interval([(0.95, 0.80), (0.90, 0.85), (0.97, 0.82)], 200)
    # differences 0.15, 0.05, 0.15 -> mean 0.1167; all positive, so the interval is above 0: identity kept
    assert out["identity_csim_diff"] == pytest.approx(0.1167, abs=1e-4) and out["identity_winner"] == "source"
    assert 0.05 <= out["identity_csim_diff_low"] and out["identity_csim_diff_high"] <= 0.15
    src, ref = face_frame(256, seed=1), face_frame(256, yaw=25, roll=15, seed=7)
    lm = np.array([[70.0, 50.0], [186.0, 50.0], [128.0, 230.0]] * 23)[:68]    # a face-sized box in the crop
    # outputs identical to the source (same box): cos = 1 with it; identical to the references: cos = 1 with them
    cs, cr, k = transfer_identity(np.stack([src, src, src]), src, lm, np.stack([ref] * 3), np.stack([lm] * 3), k=2)
    assert cs == pytest.approx(1.0) and cr < 1.0 - 1e-6 and k == 2
    cs, cr, k = transfer_identity(np.stack([ref]), src, lm, np.stack([ref]), np.stack([lm]))
    assert cr == pytest.approx(1.0) and cs < 1.0 - 1e-6 and k == 1
    with pytest.raises(ValueError, match="same T"):
        transfer_identity(np.stack([src]), src, lm, np.stack([ref, ref]), np.stack([lm, lm]))
