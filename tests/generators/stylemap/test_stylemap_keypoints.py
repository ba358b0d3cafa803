"""Keypoints of the stylemap family: soft-argmax, the 66-bin angle decoding, the rotation convention."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from headflow.generators.stylemap.data import crop_angles
from headflow.generators.stylemap.keypoints import (AntiAliasInterpolation2d, KeypointExtractor, PoseExpressionNet,
                                                    angle_bins, decode_angles, rotation_matrix, soft_argmax)
from headflow.generators.stylemap.params import NUM_BINS, tiny_params
from headflow.rotations import euler_to_matrix, flip_y


def test_soft_argmax_of_a_peaked_heatmap_is_the_voxel_coordinate():
    # volume D=4, H=5, W=6; a peak at (d, h, w) = (1, 2, 5): x = 2*5/5 - 1 = 1, y = 2*2/4 - 1 = 0, z = 2*1/3 - 1 = -1/3
    heat = torch.zeros(1, 2, 4, 5, 6)
    heat[0, 0, 1, 2, 5] = 100.0
    heat[0, 1, 3, 0, 0] = 100.0        # (x, y, z) = (-1, -1, 1)
    kp = soft_argmax(heat, temperature=0.1)
    assert torch.allclose(kp[0, 0], torch.tensor([1.0, 0.0, -1 / 3]), atol=1e-5)
    assert torch.allclose(kp[0, 1], torch.tensor([-1.0, -1.0, 1.0]), atol=1e-5)


def test_soft_argmax_of_a_flat_heatmap_is_the_centre():
    # a uniform softmax averages a symmetric grid: (0, 0, 0)
    assert torch.allclose(soft_argmax(torch.zeros(2, 3, 4, 5, 6)), torch.zeros(2, 3, 3), atol=1e-6)


def test_keypoint_extractor_gives_k_points_in_the_unit_cube():
    p = tiny_params().model
    kp = KeypointExtractor(p)(torch.rand(2, 3, p.image_size, p.image_size))
    assert kp.shape == (2, p.num_kp, 3) and kp.abs().max() <= 1.0


def test_antialias_downsampling_keeps_a_constant_image():
    down = AntiAliasInterpolation2d(3, 0.25)
    out = down(torch.full((1, 3, 32, 32), 0.7))
    assert out.shape == (1, 3, 8, 8) and torch.allclose(out, torch.full_like(out, 0.7), atol=1e-6)


@pytest.mark.parametrize("bin_index, degrees", [(33, 0.0), (43, 30.0), (0, -99.0), (65, 96.0)])
def test_66_bin_decoding_of_a_certain_bin(bin_index, degrees):
    # bin b stands for 3 b - 99 degrees (Hopenet): 33 -> 0, 43 -> 30, 0 -> -99, 65 -> 96
    logits = torch.full((NUM_BINS,), -1e4)
    logits[bin_index] = 1e4
    assert float(decode_angles(logits)) == pytest.approx(degrees, abs=1e-4)


def test_66_bin_decoding_is_the_soft_expectation():
    # uniform: mean bin (0 + 65) / 2 = 32.5 -> 3 * 32.5 - 99 = -1.5; two equal bins 33 and 34 -> 1.5
    assert float(decode_angles(torch.zeros(NUM_BINS))) == pytest.approx(-1.5, abs=1e-5)
    logits = torch.full((NUM_BINS,), -1e4)
    logits[[33, 34]] = 0.0
    assert float(decode_angles(logits)) == pytest.approx(1.5, abs=1e-4)
    assert angle_bins(torch.tensor([-99.0, 0.0, 1.5, 95.9, 200.0])).tolist() == [0, 33, 33, 64, 65]


def test_pose_network_heads():
    p = tiny_params().model
    pose = PoseExpressionNet(p)(torch.rand(2, 3, p.image_size, p.image_size))
    assert pose.logits.shape == (2, 3, NUM_BINS) and pose.translation.shape == (2, 3)
    assert pose.deformation.shape == (2, p.num_kp, 3)
    assert pose.angles.shape == (2, 3) and (pose.angles.abs() <= 99).all()


def test_rotation_matrix_matches_the_project_convention_in_the_y_down_frame():
    rng = np.random.default_rng(0)
    angles = rng.uniform(-60, 60, (16, 3))
    expected = flip_y(euler_to_matrix(angles))
    got = rotation_matrix(torch.tensor(angles, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_rotation_signs_in_image_terms():
    # headflow.rotations: yaw > 0 moves the nose (towards the camera, +z) to the image's right (+x);
    # pitch > 0 moves it down the image (+y in the y-down keypoint frame); roll > 0 turns the face
    # counter-clockwise on screen, so a point right of centre (+x) goes up (-y in y-down).
    nose = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    right = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    r = lambda y, p, rl: rotation_matrix(torch.tensor([y, p, rl], dtype=torch.float64))  # noqa: E731
    assert (r(20, 0, 0) @ nose)[0] > 0.3
    assert (r(0, 20, 0) @ nose)[1] > 0.3
    assert (r(0, 0, 20) @ right)[1] < -0.3


def test_crop_angles_remove_the_crop_rotation_from_roll_only():
    # a crop that turns the image by a = +10 degrees (y-down matrix) undoes a roll of +10: roll 10 - 10 = 0
    a = np.deg2rad(10.0)
    m = np.array([[[2 * np.cos(a), -2 * np.sin(a), 5.0], [2 * np.sin(a), 2 * np.cos(a), -3.0]]])
    out = crop_angles(np.array([[15.0, -7.0, 10.0]]), m)
    np.testing.assert_allclose(out, [[15.0, -7.0, 0.0]], atol=1e-5)
    # and the rotation it stands for is Rz(-a) R: checked through the matrices
    r_src = euler_to_matrix(np.array([15.0, -7.0, 10.0]))
    rz = euler_to_matrix(np.array([0.0, 0.0, -10.0]))
    np.testing.assert_allclose(euler_to_matrix(out[0].astype(np.float64)), rz @ r_src, atol=1e-5)
