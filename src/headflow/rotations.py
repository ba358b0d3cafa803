"""Head pose as Euler angles: the one convention headflow uses (numpy only).

Frame: right-handed, x to the image's right (the subject's left when the face looks at the camera),
y UP, z towards the camera. A rotation R maps head (model) coordinates to camera coordinates,
column vectors: X_cam = R @ X_head. The cameras of `headflow.fit3dmm` then project
u = s (R X)_x + t_x, v = -s (R X)_y + t_y (image v points down).

Angles (yaw, pitch, roll) in DEGREES (radians in `euler_factors`), and

    R = Rz(roll) @ Rx(pitch) @ Ry(yaw)

with the right-handed elementary rotations Ry (about y), Rx (about x), Rz (about z): yaw is applied
first, then pitch, then roll, all about the fixed camera axes. In image terms:

- yaw > 0: the nose moves towards the image's right (the subject turns to their own left);
- pitch > 0: the nose moves down in the image (the head nods down; the top of the head comes forward);
- roll > 0: the face turns counter-clockwise as seen on the screen.

`matrix_to_euler` inverts it with pitch in [-90, 90]; at pitch = +-90 yaw and roll are not
separable (gimbal lock).

Frames with y DOWN (image-like face coordinates, e.g. `headflow.demo.animation`): the same formula
applied there is another physical rotation. With F = diag(1, -1, 1), F R(yaw, pitch, roll) F =
R(yaw, -pitch, -roll) (`flip_y`): angles used in a y-down frame are (yaw, -pitch, -roll) here.

Deep3DFaceRecon (`headflow.expressions.stage.deep3d_rotation`) uses the same axes and signs in
radians but the factor order Rz(z) @ Ry(y) @ Rx(x): its (x, y, z) equals this (pitch, yaw, roll)
exactly when yaw or pitch is 0 and to first order otherwise; convert through the matrix.

Precision: the sines and cosines are evaluated in the angles' own floating type (float32 angles
give float32 sines) and the matrices are float64.
"""

from __future__ import annotations

import numpy as np

F_FLIP_Y = np.diag([1.0, -1.0, 1.0])
"""F: flips the y axis (y up <-> y down); its own inverse."""


def euler_factors(angles_rad: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The elementary rotations Ry(yaw), Rx(pitch), Rz(roll), so that R = Rz @ Rx @ Ry.

    Args:
        angles_rad: (..., 3) yaw, pitch, roll in radians (integers are taken as float64).

    Returns:
        (Ry, Rx, Rz), each (..., 3, 3) float64.
    """
    a = np.asarray(angles_rad)
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    if a.shape[-1:] != (3,):
        raise ValueError(f"angles must be (..., 3) yaw, pitch, roll, got shape {a.shape}")
    y, p, r = np.moveaxis(a, -1, 0)

    def cos_sin(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.cos(x).astype(np.float64), np.sin(x).astype(np.float64)

    (cy, sy), (cp, sp), (cr, sr) = cos_sin(y), cos_sin(p), cos_sin(r)
    o, z = np.ones_like(cy), np.zeros_like(cy)
    ry = np.stack([np.stack([cy, z, sy], -1), np.stack([z, o, z], -1), np.stack([-sy, z, cy], -1)], -2)
    rx = np.stack([np.stack([o, z, z], -1), np.stack([z, cp, -sp], -1), np.stack([z, sp, cp], -1)], -2)
    rz = np.stack([np.stack([cr, -sr, z], -1), np.stack([sr, cr, z], -1), np.stack([z, z, o], -1)], -2)
    return ry, rx, rz


def euler_to_matrix(angles_deg: np.ndarray) -> np.ndarray:
    """Rotation matrices of Euler angles: R = Rz(roll) @ Rx(pitch) @ Ry(yaw) (module docstring).

    Args:
        angles_deg: (..., 3) yaw, pitch, roll in degrees.

    Returns:
        (..., 3, 3) float64 rotations, head -> camera, column vectors.
    """
    ry, rx, rz = euler_factors(np.deg2rad(angles_deg))
    return rz @ rx @ ry


def matrix_to_euler(R: np.ndarray) -> np.ndarray:
    """Inverse of `euler_to_matrix`: (..., 3, 3) rotations -> (..., 3) yaw, pitch, roll in degrees.

    Pitch is in [-90, 90], yaw and roll in [-180, 180]. From the third row of Rz Rx Ry,
    (-cos p sin y, sin p, cos p cos y), and R[0, 1] = -sin r cos p, R[1, 1] = cos r cos p.
    """
    R = np.asarray(R, np.float64)
    pitch = np.arcsin(np.clip(R[..., 2, 1], -1.0, 1.0))
    yaw = np.arctan2(-R[..., 2, 0], R[..., 2, 2])
    roll = np.arctan2(-R[..., 0, 1], R[..., 1, 1])
    return np.rad2deg(np.stack([yaw, pitch, roll], -1))


def flip_y(R: np.ndarray) -> np.ndarray:
    """F R F with F = diag(1, -1, 1): a rotation of a y-up frame written in the y-down frame (or back).

    `flip_y(euler_to_matrix([yaw, pitch, roll])) == euler_to_matrix([yaw, -pitch, -roll])`.

    Args:
        R: (..., 3, 3) rotations.

    Returns:
        (..., 3, 3) float64.
    """
    return F_FLIP_Y @ np.asarray(R, np.float64) @ F_FLIP_Y


__all__ = ["F_FLIP_Y", "euler_factors", "euler_to_matrix", "flip_y", "matrix_to_euler"]
