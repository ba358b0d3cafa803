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


def test_outside_fraction_known_answers():
    from headflow.faces.crops import outside_fraction

    frame = (200, 200)
    inside = np.array([[1.0, 0, -50], [0, 1.0, -50]])     # the crop shows source [50, 150)^2
    half_left = np.array([[1.0, 0, 50], [0, 1.0, -50]])   # source x = u - 50: the left half lies at x < 0
    zoomed_out = np.array([[0.25, 0, 37.5], [0, 0.25, 37.5]])  # shows 400x400 around the frame: 3/4 outside
    got = outside_fraction(np.stack([inside, half_left, zoomed_out]), 100, frame)
    assert got[0] == 0.0 and got[1] == 0.5 and abs(got[2] - 0.75) <= 2 / 64
    assert outside_fraction(inside, 100, frame) == 0.0      # one transform -> a scalar


def test_tight_face_crops_report_and_gate_the_outside_share(tmp_path, portrait, clipkit):
    from headflow.faces.faces import process_clip
    from headflow.faces.params import FacesParams
    from headflow.manifest import Rejected

    # the face box is ~90 px in a 192 px portrait: a 120x120 window around it is a VoxCeleb-style tight crop
    tight = [np.ascontiguousarray(portrait[30:150, 36:156])] * 12
    video = clipkit.write(tmp_path / "tight.mp4", tight)
    r = process_clip(video, FacesParams(), None)
    assert 0.1 < r.summary["crop_outside_median"] <= r.summary["crop_outside_max"] < 0.9
    # per frame: recorded for every valid frame, its median is the clip's, NaN where invalid
    assert r.crop_outside.shape == (12,) and np.isnan(r.crop_outside[~r.valid]).all()
    assert np.median(r.crop_outside[r.valid]) == pytest.approx(r.summary["crop_outside_median"], abs=1e-6)
    wide = process_clip(clipkit.write(tmp_path / "wide.mp4", clipkit.moving(portrait, 12, canvas=(256, 320), dx=0)),
                        FacesParams(), None)
    assert wide.summary["crop_outside_median"] < r.summary["crop_outside_median"]
    params = FacesParams()
    params.crop.max_outside = 0.05
    with pytest.raises(Rejected) as err:
        process_clip(video, params, None)
    assert err.value.reason_code == "crop_outside_frame"


def test_inside_mask_known_answer():
    from headflow.faces.crops import inside_mask, outside_fraction

    # crop = source shifted by (+10, +20): crop pixel (x, y) samples source (x - 10, y - 20), inside a
    # 64x64 frame for x in 10..73 and y in 20..83: 64 x 64 = 4096 of the 100 x 100 crop pixels.
    M = np.array([[1.0, 0.0, 10.0], [0.0, 1.0, 20.0]])
    mask = inside_mask(M, 100, (64, 64))
    assert mask.shape == (100, 100) and mask.sum() == 4096
    assert mask[20, 10] and mask[83, 73] and not mask[19, 10] and not mask[20, 74]
    # the same rule as outside_fraction sampled at every pixel
    assert outside_fraction(M, 100, (64, 64), grid=100) == pytest.approx(1 - 4096 / 10000)
