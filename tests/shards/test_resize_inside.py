"""`resize_inside`: crop256's validity mask at a trainer's image size (area + threshold)."""

from __future__ import annotations

import numpy as np
import pytest

from headflow.shards.geometry import resize_inside


def test_a_resized_pixel_is_valid_only_when_all_of_it_was_inside():
    m = np.ones((2, 256, 256), bool)
    m[:, :, :61] = False                                   # 61 columns outside: not a multiple of 4
    out = resize_inside(m, 64)                             # 4x4 areas: output column j covers columns 4j..4j+3
    # columns 0..14 cover source columns 0..59 (outside), column 15 covers 60..63 (one outside: a mixed
    # pixel, left out), columns 16.. are wholly inside
    assert out.shape == (2, 64, 64) and out.dtype == bool
    assert not out[:, :, :16].any() and out[:, :, 16:].all()
    # a non-integer factor (256 -> 96, 8/3 source pixels each): the first valid column is the first whose
    # area [8j/3, 8(j+1)/3) starts at or after 61, i.e. j >= 22.875 -> 23
    out96 = resize_inside(m, 96)
    assert not out96[:, :, :23].any() and out96[:, :, 23:].all()


def test_none_same_size_and_errors():
    assert resize_inside(None, 64) is None
    m = np.random.default_rng(0).random((3, 32, 32)) > 0.5
    same = resize_inside(m, 32)
    assert np.array_equal(same, m) and same is not m
    assert resize_inside(np.ones((0, 256, 256), bool), 32).shape == (0, 32, 32)
    with pytest.raises(ValueError, match=r"\(T, S, S\)"):
        resize_inside(np.ones((3, 32, 16), bool), 16)
