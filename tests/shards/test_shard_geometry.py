"""Shard geometry: crop resizing, landmarks in crop pixels, region boxes (known answers derived in comments)."""

import cv2
import numpy as np
import pytest

from headflow.faces.crops import apply, warp
from headflow.shards.geometry import cut_regions, map_landmarks, region_boxes, resize_transform, translate


def test_resize_transform_follows_pixel_centres_and_matches_cv2_resize():
    M = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    half = resize_transform(M, 256, 128)
    # k = 0.5: x' = (x + 0.5) * 0.5 - 0.5, so source (1, 1) -> (0.25, 0.25) and (3, 5) -> (1.25, 2.25)
    np.testing.assert_allclose(apply(half, [[1, 1], [3, 5]]), [[0.25, 0.25], [1.25, 2.25]])
    yy, xx = np.mgrid[0:300, 0:300]
    smooth = 128 + 100 * np.sin(xx / 20) * np.cos(yy / 25)
    frame = np.repeat(smooth[..., None], 3, -1).astype(np.uint8)
    rot = cv2.getRotationMatrix2D((150, 150), 10, 1.2)
    # on a smooth image, a 2x INTER_LINEAR downscale (the mean of two crop pixels, centred between them)
    # equals warping straight to 128 px when the pixel centres line up; a half-pixel error would show as
    # a shift of the pattern (~5 grey levels per pixel here)
    direct = warp(frame, resize_transform(rot, 256, 128), 128).astype(int)
    resized = cv2.resize(warp(frame, rot, 256), (128, 128), interpolation=cv2.INTER_LINEAR).astype(int)
    assert np.abs(direct - resized)[4:-4, 4:-4].max() <= 2
    np.testing.assert_array_equal(resize_transform(rot, 256, 256), rot)


def test_map_landmarks_and_translate():
    M = np.array([[[2.0, 0.0, 10.0], [0.0, 2.0, -4.0]]])
    lm = np.zeros((1, 68, 2), np.float32)
    lm[0, 0] = (3, 4)
    lm[0, 1] = np.nan
    out = map_landmarks(M, lm)
    assert out.dtype == np.float32 and tuple(out[0, 0]) == (16.0, 4.0)        # 2*3+10, 2*4-4
    assert np.isnan(out[0, 1]).all()
    moved = translate(M, np.array([[6.0, 1.0]]))
    assert tuple(apply(moved[0], [[3, 4]])[0]) == (10.0, 3.0)                 # 16-6, 4-1


def test_region_boxes_centre_round_clamp_and_leave_invalid_frames_empty():
    lm = np.zeros((3, 68, 2))
    pts = (0, 1)
    lm[0, [0, 1]] = [[100.0, 190.0], [100.6, 191.2]]      # centre (100.3, 190.6)
    lm[1, [0, 1]] = [[250.0, 10.0], [250.0, 10.0]]        # near the top-right corner
    boxes = region_boxes(lm, np.array([True, True, False]), pts, 96, 96)
    # x0 = round(100.3 - 47.5) = 53, y0 = round(190.6 - 47.5) = 143
    assert boxes[0].tolist() == [53, 143, 149, 239]
    # x0 = round(202.5) = 202 -> clamped to 256 - 96 = 160; y0 = round(-37.5) -> 0
    assert boxes[1].tolist() == [160, 0, 256, 96]
    assert boxes[2].tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="does not fit"):
        region_boxes(lm, np.ones(3, bool), pts, 300, 10)


def test_cut_regions_are_crop_slices():
    crop = np.random.default_rng(1).integers(0, 255, (2, 256, 256, 3), np.uint8)
    boxes = np.array([[10, 20, 42, 36], [0, 0, 0, 0]], np.int16)
    out = cut_regions(crop, boxes, 16, 32)
    np.testing.assert_array_equal(out[0], crop[0, 20:36, 10:42])
    assert not out[1].any()
