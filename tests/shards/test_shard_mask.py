"""crop256's validity mask: the pixels of the aligned crop sampled inside the source frame (tight crops)."""

import numpy as np
import pytest

from headflow.media import encode_video
from headflow.shards import read_clip
from headflow.shards.cut import cut_views

A = "a-000000000a"


def test_cut_views_marks_the_crop_pixels_outside_a_tight_source(tmp_path):
    video = tmp_path / "tight.mp4"
    encode_video([np.full((64, 64, 3), 128, np.uint8)] * 3, video, fps=25, preset="ultrafast")
    # source -> 256 crop: shift by (+10, +20); the 64x64 frame covers crop x 10..73, y 20..83 (4096 pixels)
    M = np.tile(np.array([[1.0, 0.0, 10.0], [0.0, 1.0, 20.0]]), (3, 1, 1))
    boxes = np.tile([[8.0, 8.0, 56.0, 56.0]], (3, 1))
    valid = np.array([True, False, True])
    out = cut_views(video, boxes, valid, M)
    inside, outside = out["crop256_inside"], out["crop256_outside"]
    assert inside.shape == (3, 256, 256) and inside.dtype == np.uint8
    assert inside[0].sum() == 4096 and inside[0, 20:84, 10:74].all()
    assert outside[0] == pytest.approx(1 - 4096 / 256 ** 2) and np.isnan(outside[1]) and inside[1].sum() == 0
    # inside the mask the crop holds the source's grey; outside it, the edge smear holds it too (why the
    # mask is needed: the pixels alone cannot tell them apart)
    assert abs(int(out["crop256"][0, 50, 40, 0]) - 128) <= 2 and abs(int(out["crop256"][0, 200, 200, 0]) - 128) <= 2


def test_read_clip_carries_the_mask_on_crop256_and_its_regions(shard_project):
    root, _ = shard_project
    shard = read_clip(A, views=("crop256", "mouth"), project_root=root)
    crop, mouth = shard.crop256, shard.mouth
    assert crop.mask is not None and crop.mask.shape == crop.pixels.shape[:3] and crop.mask.dtype == bool
    assert not crop.mask[~shard.valid].any()                       # invalid frames: nothing sampled
    assert mouth.mask is not None and mouth.mask.shape == mouth.pixels.shape[:3]
