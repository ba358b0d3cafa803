"""Crop transforms: crop <-> source round trips, the Wav2Lip convention, crop motion."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from headflow.faces import crops
from headflow.landmarks68 import LEFT_EYE, MOUTH_CORNERS, RIGHT_EYE, eye_centres

# A plausible 68-point face: the template of the synthetic tracker tests is random; here the
# alignment needs real eye and mouth positions.
def face_landmarks(cx=150.0, cy=140.0, iod=60.0, roll_deg=10.0) -> np.ndarray:
    rng = np.random.default_rng(1)
    lm = rng.normal(0, 0.01, (68, 2))
    lm[RIGHT_EYE] += [-0.5, -0.3]   # the subject's right eye: image left
    lm[LEFT_EYE] += [0.5, -0.3]
    lm[MOUTH_CORNERS] += [[-0.3, 0.6], [0.3, 0.6]]
    a = np.deg2rad(roll_deg)
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (lm * iod) @ R.T + [cx, cy]


def blob_image(x: float, y: float, shape=(300, 320)) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = 255 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 3.0 ** 2))
    return np.repeat(img[..., None], 3, axis=2).astype(np.float32)


def centroid(img: np.ndarray) -> np.ndarray:
    g = img[..., 0].astype(np.float64)
    g = np.where(g > 0.05 * g.max(), g, 0)
    yy, xx = np.mgrid[: g.shape[0], : g.shape[1]]
    return np.array([(g * xx).sum(), (g * yy).sum()]) / g.sum()


def test_align_transform_is_a_similarity_that_levels_the_eyes():
    lm = face_landmarks(roll_deg=15)
    M = crops.align_transform(lm, 256)
    A = M[:, :2]
    assert np.allclose(A @ A.T, np.eye(2) * np.linalg.det(A), atol=1e-9)    # rotation x uniform scale
    eyes = crops.apply(M, np.stack(eye_centres(lm)))
    assert abs(eyes[0, 1] - eyes[1, 1]) < 1.0                               # level after alignment
    assert 0 < eyes[0, 0] < eyes[1, 0] < 256


@pytest.mark.parametrize("x,y", [(140.3, 130.7), (170.6, 151.2), (121.9, 160.4)])
def test_crop_to_source_round_trip_within_half_a_pixel(x, y):
    """A point rendered in the source, found in the warped crop, maps back through invert(M)."""
    M = crops.align_transform(face_landmarks(), 256)
    crop = crops.warp(blob_image(x, y), M, 256)
    back = crops.apply(crops.invert(M), centroid(crop))
    assert np.linalg.norm(back - [x, y]) < 0.5, back


def test_wav2lip_transform_matches_cv2_resize_of_the_padded_box():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (200, 240, 3), np.uint8)
    frame = cv2.GaussianBlur(frame, (0, 0), 2)
    box = (60.0, 40.0, 160.0, 140.0)
    M = crops.crop_transform_for(box, frame.shape[:2])
    x1, y1, x2, y2 = (int(v) for v in crops.wav2lip_box(box, frame.shape[:2]))
    assert (x1, y1, x2, y2) == (60, 40, 160, 150)          # 10% of the box height padded at the bottom
    expected = cv2.resize(frame[y1:y2, x1:x2], (96, 96))
    got = crops.face_crop(frame, M)
    assert np.abs(got.astype(int) - expected.astype(int)).mean() < 1.5
    mouth = crops.mouth_crop(frame, M)
    assert mouth.shape == (48, 96, 3) and np.array_equal(mouth, got[48:])


def test_wav2lip_box_is_clipped_to_the_frame():
    assert crops.wav2lip_box((-5.0, 10.0, 50.0, 95.0), (100, 100)) == (0.0, 10.0, 50.0, 100.0)


def test_crop_motion_measures_shift_in_crop_pixels():
    M = crops.align_transform(face_landmarks(), 256)
    shifted = M.copy()
    shifted[0, 2] += 2.0                                   # the crop content moves 2 px right
    assert np.allclose(crops.crop_motion(np.stack([M, M, shifted]), 256), [0.0, 2.0])
