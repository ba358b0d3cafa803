"""Variance of the Laplacian and CPBD (through the cpbd package and its SciPy shim)."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest
import scipy.ndimage
from skimage.data import astronaut

from headflow.metrics import sharpness
from headflow.metrics.sharpness import cpbd, lap_var, rgb_to_gray


@pytest.fixture(scope="module")
def gray_face() -> np.ndarray:
    """A 128x128 gray crop of a real photo (skimage's astronaut)."""
    return rgb_to_gray(np.ascontiguousarray(astronaut()[40:296:2, 140:396:2]))


def impulse(value: float = 10.0) -> np.ndarray:
    g = np.zeros((9, 9), np.uint8)
    g[4, 4] = value
    return g


def test_lap_var_known_value_4_neighbour_kernel():
    # kernel [[0,1,0],[1,-4,1],[0,1,0]] on a single 10 in zeros: -40 at the centre, 10 at its 4
    # neighbours, 0 elsewhere -> mean 0, variance (40^2 + 4 * 10^2) / 81 = 2000 / 81
    assert lap_var(impulse()) == pytest.approx(2000 / 81, abs=1e-9)
    # inside the 3x3 block around the centre: -40, four 10s, four 0s -> variance 2000 / 9
    m = np.zeros((9, 9), bool)
    m[3:6, 3:6] = True
    assert lap_var(impulse(), mask=m) == pytest.approx(2000 / 9, abs=1e-9)


def test_lap_var_sobel_kernel():
    # ksize=3: kernel [[2,0,2],[0,-8,0],[2,0,2]] -> -80 at the centre, 20 at the 4 diagonals
    # -> variance (80^2 + 4 * 20^2) / 81 = 8000 / 81
    assert lap_var(impulse(), ksize=3) == pytest.approx(8000 / 81, abs=1e-9)
    with pytest.raises(ValueError, match="ksize"):
        lap_var(impulse(), ksize=5)


def test_lap_var_flat_blur_video_and_errors(gray_face):
    assert lap_var(np.full((16, 16), 90, np.uint8)) == 0.0
    blurred = cv2.GaussianBlur(gray_face, (0, 0), 1.5)
    out = lap_var(np.stack([gray_face, blurred]))
    assert out.shape == (2,) and out[1] < out[0] / 5  # blur removes most second-derivative energy
    with pytest.raises(ValueError, match="rgb_to_gray"):
        lap_var(np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        lap_var(gray_face, mask=np.zeros_like(gray_face, bool))


def test_cpbd_sharp_edge_is_one_blurred_edge_is_zero():
    # A 1-pixel transition 255 -> 128 -> 0 (decreasing left to right; cpbd's width code only runs when
    # some gradient angle is non-zero, so an edge rising left to right scores 0 for want of edges).
    # Marziliano width 2, block contrast 255 -> w_JNB 3, P(blur) = 1 - exp(-(2/3)^3.6) = 0.21 < 0.64:
    # every edge counts as sharp -> CPBD = 1.
    sharp = np.full((64, 64), 255, np.uint8)
    sharp[:, 32] = 128
    sharp[:, 33:] = 0
    assert cpbd(sharp) == pytest.approx(1.0)
    # the same edge blurred (sigma 3): the width spans ~15 px, P(blur) ~ 1 -> CPBD = 0
    step = np.full((64, 64), 255.0)
    step[:, 32:] = 0
    blurred = np.round(cv2.GaussianBlur(step, (0, 0), 3)).astype(np.uint8)
    assert cpbd(blurred) == pytest.approx(0.0)


def test_cpbd_real_photo_drops_with_blur(gray_face):
    out = cpbd(np.stack([gray_face, cv2.GaussianBlur(gray_face, (0, 0), 1.5)]))
    assert out.shape == (2,)
    assert 0.2 < out[0] <= 1.0 and out[1] < 0.5 * out[0]


def _cpbd_frames(gray_face) -> list[np.ndarray]:
    """Frames for the vectorised-vs-package check: a real photo sharp and blurred at two scales, crops whose
    sizes are not multiples of the 64 block, noise, a flat frame, and edges that only rise left to right
    (no non-zero gradient angle: the package measures no width at all)."""
    rng = np.random.default_rng(3)
    frames = [gray_face, cv2.GaussianBlur(gray_face, (0, 0), 1.0), cv2.GaussianBlur(gray_face, (0, 0), 2.5),
              np.ascontiguousarray(gray_face[:100, :77]), np.ascontiguousarray(gray_face[5:128, 3:128]),
              rng.integers(0, 256, (64, 128)).astype(np.uint8), np.full((64, 64), 90, np.uint8),
              np.tile(np.arange(64, dtype=np.uint8) * 3, (64, 1))]
    shaded = cv2.GaussianBlur(rng.integers(0, 2, (16, 16)).astype(np.float64) * 200, (0, 0), 0.8)
    frames.append(np.clip(cv2.resize(shaded, (96, 96), interpolation=cv2.INTER_NEAREST), 0, 255).astype(np.uint8))
    return frames


def test_cpbd_vectorised_equals_the_package(gray_face):
    # The default backend must give the package's value exactly (same Canny / Sobel calls, same rounding
    # into the 101 buckets), not approximately: a different edge count changes the figure in a report.
    for i, frame in enumerate(_cpbd_frames(gray_face)):
        assert cpbd(frame) == cpbd(frame, backend="package"), f"frame {i} {frame.shape}"


def test_marziliano_widths_equal_the_package(gray_face):
    sharpness._load_cpbd()
    from cpbd.compute import marziliano_method
    from cpbd.octave import sobel

    for frame in _cpbd_frames(gray_face)[:6]:
        img = frame.astype(np.float64)
        edges = sobel(img)
        np.testing.assert_array_equal(sharpness.marziliano_widths(edges, img), marziliano_method(edges, img))
    with pytest.raises(ValueError, match="backend"):
        cpbd(gray_face, backend="fast")


def test_cpbd_input_checks():
    with pytest.raises(ValueError, match="64x64"):
        cpbd(np.zeros((32, 80), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        cpbd(np.zeros((64, 64), np.float64))


def test_cpbd_shim_leaves_scipy_untouched():
    sharpness._load_cpbd()
    assert "cpbd" in sys.modules
    assert not hasattr(scipy.ndimage, "imread")  # the placeholder exists only during cpbd's import


def test_cpbd_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cpbd", None)  # makes `import cpbd` fail as if not installed
    with pytest.raises(ImportError, match="pip install cpbd"):
        cpbd(np.zeros((64, 64), np.uint8))
    assert not hasattr(scipy.ndimage, "imread")


def test_rgb_to_gray_matches_opencv():
    rgb = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    gray = rgb_to_gray(rgb)
    assert gray.shape == (2, 8, 8)
    # BT.601: 0.299 R + 0.587 G + 0.114 B
    ref = np.round(rgb.astype(np.float64) @ [0.299, 0.587, 0.114])
    assert np.abs(gray.astype(int) - ref).max() <= 1
