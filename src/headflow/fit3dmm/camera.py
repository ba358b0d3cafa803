"""Scaled orthographic cameras for the fitter: Euler angles, projection, initialisation, pose step.

Conventions (see `headflow.fit3dmm.fit`): R = Rz(roll) @ Rx(pitch) @ Ry(yaw), model -> camera, the
one Euler convention of `headflow.rotations` (axes, signs and image meaning are documented there);
u = s (R X)_x + tx, v = -s (R X)_y + ty (model y up, image y down), depth = s (R X)_z.

The pose of frame t is the 6-vector p_t = (yaw, pitch, roll [rad], tx / d, ty / d, log s), d the
clip's reference inter-ocular distance in pixels, so every component is dimensionless and of similar
size; the pose step is Gauss-Newton on p jointly over all frames, with the second temporal difference
of p penalised (a banded system, `headflow.fit3dmm.banded`).
"""

from __future__ import annotations

import numpy as np

from headflow.fit3dmm.banded import BandedSolver, assemble, smooth_apply
from headflow.landmarks68 import RIGID
from headflow.rotations import euler_factors, matrix_to_euler

FLIP = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
"""Pi: keeps x, flips y (model up = image up), drops z."""



def rotation_and_derivatives(angles_rad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R (T, 3, 3) and dR / d(yaw, pitch, roll) (T, 3, 3, 3) (derivative index second)."""
    ry, rx, rz = euler_factors(np.asarray(angles_rad, np.float64))
    y, p, r = np.moveaxis(angles_rad, -1, 0)
    o, z = np.ones_like(y), np.zeros_like(y)
    dry = np.stack([np.stack([-np.sin(y), z, np.cos(y)], -1), np.stack([z, z, z], -1),
                    np.stack([-np.cos(y), z, -np.sin(y)], -1)], -2)
    drx = np.stack([np.stack([z, z, z], -1), np.stack([z, -np.sin(p), -np.cos(p)], -1),
                    np.stack([z, np.cos(p), -np.sin(p)], -1)], -2)
    drz = np.stack([np.stack([-np.sin(r), -np.cos(r), z], -1), np.stack([np.cos(r), -np.sin(r), z], -1),
                    np.stack([z, z, z], -1)], -2)
    del o
    R = rz @ rx @ ry
    dR = np.stack([rz @ rx @ dry, rz @ drx @ ry, drz @ rx @ ry], axis=1)
    return R, dR


def pose_to_camera(pose: np.ndarray, d: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """p (T, 6) -> R (T, 3, 3), translation (T, 2) pixels, scale (T,)."""
    ry, rx, rz = euler_factors(np.asarray(pose[:, :3], np.float64))
    return rz @ rx @ ry, pose[:, 3:5] * d, np.exp(pose[:, 5])


def projection(R: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """P_t = s_t Pi R_t, (T, 2, 3): image offset (pixels) of a model point relative to the translation."""
    return scale[:, None, None] * (FLIP @ R)


def init_pose(shape: np.ndarray, landmarks: np.ndarray, valid: np.ndarray, d: float,
              points: np.ndarray = RIGID) -> np.ndarray:
    """Per-frame closed-form scaled-orthographic fit of one 3D shape (68, 3) to landmarks (T, 68, 2).

    An affine camera (2x3 M, t) is fitted by linear least squares on `points` (the shape's pseudo-
    inverse is shared by all frames), then M's rows are made orthonormal (nearest orthonormal 2x3 by
    SVD), s = mean row norm, third row = cross product. Frames that are not valid get the pose
    interpolated (per component) from the valid ones.

    Returns:
        p (T, 6) pose vectors (see module docstring).
    """
    X = shape[points].astype(np.float64)
    Xc = X - X.mean(0)
    pinv = np.linalg.pinv(Xc)                                  # (3, n)
    Y = landmarks[:, points].astype(np.float64)
    Yc = Y - Y.mean(1, keepdims=True)
    M = np.einsum("kn,tnj->tjk", pinv, np.nan_to_num(Yc))      # (T, 2, 3): Yc^T ~ M Xc^T
    rows = M * np.array([1.0, -1.0])[None, :, None]            # undo the y flip: rows of s R
    U, S, Vt = np.linalg.svd(rows, full_matrices=False)
    r12 = U @ Vt                                               # (T, 2, 3) orthonormal rows
    s = S.mean(-1)
    R = np.concatenate([r12, np.cross(r12[:, 0], r12[:, 1])[:, None]], axis=1)
    t = Y.mean(1) - np.einsum("tjk,k->tj", s[:, None, None] * (FLIP @ R), X.mean(0))
    angles = np.deg2rad(matrix_to_euler(R))
    pose = np.concatenate([angles, t / d, np.log(np.maximum(s, 1e-12))[:, None]], axis=1)
    return interpolate_invalid(pose, valid)


def interpolate_invalid(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Replace rows of (T, C) `values` on invalid frames by linear interpolation (held at the ends)."""
    if valid.all():
        return values
    t = np.arange(len(values))
    good = np.flatnonzero(valid)
    out = values.copy()
    for c in range(values.shape[1]):
        out[~valid, c] = np.interp(t[~valid], good, values[good, c])
    return out


def pose_jacobian(pose: np.ndarray, shapes: np.ndarray, landmarks: np.ndarray, d: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Residuals proj_t(X_ti) - y_ti (T, 68, 2) and their Jacobian in the pose vector (T, 68, 2, 6)."""
    T = len(pose)
    R, dR = rotation_and_derivatives(pose[:, :3])
    s = np.exp(pose[:, 5])
    offset = np.matmul(shapes, projection(R, s).transpose(0, 2, 1))   # (T, 68, 2)
    resid = offset + (pose[:, None, 3:5] * d) - landmarks
    J = np.zeros((T, shapes.shape[1], 2, 6))
    M = (s[:, None, None, None] * (FLIP @ dR)).reshape(T, 6, 3)      # rows (k, a)
    J[..., :3] = np.matmul(shapes, M.transpose(0, 2, 1)).reshape(T, -1, 3, 2).transpose(0, 1, 3, 2)
    J[..., 0, 3] = d
    J[..., 1, 4] = d
    J[..., 5] = offset
    return resid, J


def pose_step(pose: np.ndarray, shapes: np.ndarray, landmarks: np.ndarray, weights: np.ndarray, d: float,
              smooth: float, steps: int = 2, damping: float = 1e-6) -> np.ndarray:
    """Gauss-Newton on the poses of all frames jointly, shapes fixed.

    Minimises sum_ti weights_ti ||proj_t(X_ti) - y_ti||^2 + smooth * sum_t ||p_{t-1} - 2 p_t + p_{t+1}||^2
    (weights (T, 68), zero on invalid frames, which the smoothness term bridges; a small Levenberg
    damping keeps the system definite where neither fixes a frame).

    Args:
        pose: (T, 6) current poses; shapes: (T, 68, 3) model landmarks; landmarks (T, 68, 2) pixels
            (finite wherever weights > 0).
    """
    pose = pose.copy()
    sm = np.full(6, smooth) if smooth > 0 else None
    for _ in range(steps):
        resid, J = pose_jacobian(pose, shapes, landmarks, d)
        Jw = J * weights[:, :, None, None]
        T = len(pose)
        Jw2 = Jw.reshape(T, -1, 6)
        H = np.matmul(Jw2.transpose(0, 2, 1), J.reshape(T, -1, 6))
        g = -np.matmul(resid.reshape(T, 1, -1), Jw2)[:, 0]
        if sm is not None:
            g -= smooth_apply(pose, sm)
        lm = damping * (np.trace(H, axis1=1, axis2=2).mean() / 6 + 1e-12)
        H = H + lm * np.eye(6)
        step = BandedSolver(assemble(H, sm), 6).solve(g)
        pose += step
    return pose
