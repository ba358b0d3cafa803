"""Crop transforms of the evaluation: composition, syncnet_python's crop rule, the reference-fill paste."""

import numpy as np

from headflow.evaluate.crops import (box_in_crop, box_transform, compose, cut, face96_transforms, invert_all,
                                     paste_lower_half, syncnet_transforms)
from headflow.metrics import psnr


def test_compose_applies_right_then_left():
    a = np.array([[2.0, 0, 1], [0, 2.0, -1]])       # x -> 2x + (1, -1)
    b = np.array([[0.0, -1, 0], [1, 0.0, 5]])       # rotate 90 degrees, then shift y by 5
    p = np.array([3.0, 4.0])
    # b(p) = (-4, 3 + 5) = (-4, 8); a(b(p)) = (-8 + 1, 16 - 1) = (-7, 15)
    ab = compose(a, b)
    assert np.allclose(ab[:, :2] @ p + ab[:, 2], [-7, 15])
    assert np.allclose(compose(b, invert_all(b[None])[0]), np.eye(3)[:2])


def test_box_transform_matches_cv2_resize_of_the_region():
    import cv2

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (80, 90, 3), np.uint8)
    m = box_transform(10, 20, 50, 60, 20)          # a 40x40 region -> 20x20
    want = cv2.resize(img[20:60, 10:50], (20, 20), interpolation=cv2.INTER_LINEAR)
    got = cut(img, m, 20)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_syncnet_crop_region_follows_syncnet_python():
    # box centred (100, 100), 100 px wide: s = 50, crop_scale 0.4 ->
    # rows [100 - 50, 100 + 50 * 1.8) = [50, 190), cols [100 - 70, 100 + 70) = [30, 170), resized to 224
    boxes = np.tile([[50.0, 50.0, 150.0, 150.0]], (20, 1))
    m = syncnet_transforms(boxes)[0]
    assert np.allclose(m, box_transform(30, 50, 170, 190, 224))
    # medfilt over 13 frames: a one-frame jump of the box leaves the middle frames' crop unchanged
    jump = boxes.copy()
    jump[10] += 40
    assert np.allclose(syncnet_transforms(jump)[10], m)


def test_reference_fill_paste_puts_the_lower_half_back_and_keeps_the_rest():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 255, (120, 120, 3), np.uint8)
    frame = np.ascontiguousarray(np.repeat(np.repeat(frame[::4, ::4], 4, 0), 4, 1))   # smooth enough to resample
    m96 = face96_transforms(np.array([[20.0, 20.0, 100.0, 92.0]]), (120, 120))[0]
    lower = np.full((48, 96, 3), 200, np.uint8)
    out = paste_lower_half(frame, lower, m96)
    crop = cut(out, m96, 96)
    assert psnr(crop[52:92, 4:92], np.full((40, 88, 3), 200, np.uint8)) > 40      # away from the seam: the patch
    assert np.array_equal(crop[:40], cut(frame, m96, 96)[:40])                     # upper half untouched
    assert np.array_equal(out[:40], frame[:40]) and np.array_equal(out[:, :18], frame[:, :18])


def test_box_in_crop_maps_the_centre_and_scales_the_sides():
    m = np.array([[2.0, 0, 10], [0, 2.0, 20]])
    assert box_in_crop(np.array([0, 0, 10, 20]), m) == (10.0, 20.0, 30.0, 60.0)
    rot = np.array([[0.0, -1, 100], [1, 0.0, 0]])      # rotation keeps the box's size, moves its centre
    l, t, r, b = box_in_crop(np.array([0, 0, 10, 20]), rot)
    assert (r - l, b - t) == (10.0, 20.0) and ((l + r) / 2, (t + b) / 2) == (90.0, 5.0)
