"""The one Euler convention: what the angles mean in the image, the y-down relation, and the demo's
rotations unchanged bit for bit (the Deep3D relation is tested in tests/expressions/test_export.py)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from headflow.demo.animation import rotation_matrix
from headflow.rotations import euler_factors, euler_to_matrix, flip_y, matrix_to_euler

NOSE, TOP, RIGHT_OF_IMAGE = np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0])


def _image(p: np.ndarray) -> np.ndarray:
    """Camera point -> image offset (u right, v down), as the fitter's cameras project (v = -y)."""
    return np.array([p[0], -p[1]])


def test_angles_mean_what_the_docstring_says_in_the_image():
    # yaw > 0: the nose (0, 0, 1) goes to the image's right: Ry(30) @ nose = (sin 30, 0, cos 30)
    np.testing.assert_allclose(euler_to_matrix([30, 0, 0]) @ NOSE, [0.5, 0, np.sqrt(3) / 2], atol=1e-15)
    assert _image(euler_to_matrix([30, 0, 0]) @ NOSE)[0] > 0
    # pitch > 0: the nose goes down in the image, the top of the head comes towards the camera
    assert _image(euler_to_matrix([0, 20, 0]) @ NOSE)[1] > 0 and (euler_to_matrix([0, 20, 0]) @ TOP)[2] > 0
    # roll > 0: counter-clockwise on screen: the point on the image's right goes up (v < 0)
    assert _image(euler_to_matrix([0, 0, 10]) @ RIGHT_OF_IMAGE)[1] < 0


def test_order_round_trip_and_factors():
    rng = np.random.default_rng(0)
    ang = rng.uniform([-170, -85, -170], [170, 85, 170], size=(200, 3))
    R = euler_to_matrix(ang)
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(matrix_to_euler(R), ang, atol=1e-9)
    yaw, pitch, roll = (euler_to_matrix(a) for a in ([40, 0, 0], [0, 25, 0], [0, 0, -15]))
    np.testing.assert_allclose(euler_to_matrix([40, 25, -15]), roll @ pitch @ yaw, atol=1e-15)   # Rz Rx Ry
    ry, rx, rz = euler_factors(np.deg2rad([40, 25, -15]))
    np.testing.assert_array_equal(rz @ rx @ ry, euler_to_matrix([40, 25, -15]))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        euler_to_matrix([1.0, 2.0])


def test_y_down_frames_negate_pitch_and_roll():
    rng = np.random.default_rng(1)
    ang = rng.uniform(-60, 60, size=(50, 3))
    np.testing.assert_allclose(flip_y(euler_to_matrix(ang)), euler_to_matrix(ang * [1, -1, -1]), atol=1e-14)
    # the demo's frame has y down: there the same formula with pitch > 0 raises the nose on screen
    nose_y_down = rotation_matrix(0.0, 20.0, 0.0) @ NOSE
    assert nose_y_down[1] < 0                                # y down: negative y is up on screen


def _demo_rotation_before(yaw_deg, pitch_deg, roll_deg):
    """headflow.demo.animation.rotation_matrix as it was written before headflow.rotations existed."""
    y, p, r = np.deg2rad([yaw_deg, pitch_deg, roll_deg])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_demo_rotations_are_bit_identical_to_before(dtype):
    # The demo's pose tracks are float32 (its sines in float32, then float64 products): the demo
    # corpus's bytes depend on every bit of these matrices.
    grid = np.linspace(-12.0, 12.0, 9)
    rng = np.random.default_rng(2)
    angles = list(itertools.product(grid, grid, grid)) + list(rng.uniform(-90, 90, (200, 3)))
    for a in np.asarray(angles, dtype):
        new, old = rotation_matrix(*a), _demo_rotation_before(*a)
        assert new.dtype == old.dtype == np.float64
        np.testing.assert_array_equal(new, old)
