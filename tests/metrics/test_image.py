"""PSNR, masked PSNR, SSIM (against skimage and pytorch-msssim), masked SSIM and APD."""

from __future__ import annotations

import math
import warnings

import cv2
import numpy as np
import pytest
from skimage.data import astronaut
from skimage.metrics import structural_similarity

from headflow.metrics.image import apd, lower_half_mask, psnr, psnr_masked, ssim, ssim_map, ssim_masked


@pytest.fixture(scope="module")
def face_patch() -> np.ndarray:
    """A 64x64 RGB patch of a real photo (skimage's astronaut), so SSIM sees natural structure."""
    return np.ascontiguousarray(astronaut()[60:188:2, 170:298:2])


@pytest.fixture(scope="module")
def degraded(face_patch) -> np.ndarray:
    """The patch blurred and noised, as a generator output might be."""
    rng = np.random.default_rng(1)
    blurred = cv2.GaussianBlur(face_patch, (0, 0), 1.2).astype(np.int16)
    return np.clip(blurred + rng.integers(-12, 13, face_patch.shape), 0, 255).astype(np.uint8)


def test_psnr_known_value():
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 10, np.uint8)
    # MSE = 10^2 = 100 -> 10 log10(255^2 / 100) = 10 log10(650.25) = 28.1308 dB
    assert psnr(a, b) == pytest.approx(10 * math.log10(650.25), abs=1e-12)
    assert psnr(a, b) == pytest.approx(28.1308, abs=1e-4)


def test_psnr_identical_is_inf_without_warning():
    a = np.full((2, 8, 8, 3), 7, np.uint8)
    b = a.copy()
    b[1, 0, 0, 0] = 8  # frame 1: MSE = 1 / 192 -> 10 log10(255^2 * 192) = 100.94 dB
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = psnr(a, b)
    assert out.shape == (2,)
    assert math.isinf(out[0]) and out[0] > 0
    assert out[1] == pytest.approx(10 * math.log10(255**2 * 192), abs=1e-9)


def test_psnr_floats_need_data_range():
    a = np.zeros((8, 8, 3))
    b = np.full((8, 8, 3), 0.1)
    with pytest.raises(ValueError, match="data_range"):
        psnr(a, b)
    # data_range 1, MSE 0.01 -> 20 dB
    assert psnr(a, b, data_range=1.0) == pytest.approx(20.0)


def test_psnr_rejects_mismatched_or_gray():
    with pytest.raises(ValueError, match="same shape"):
        psnr(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        psnr(np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8))


def test_psnr_masked_per_channel_average_over_lower_half():
    a = np.zeros((4, 4, 3), np.uint8)
    b = np.full((4, 4, 3), 200, np.uint8)  # the upper half differs wildly: it must not count
    b[2:] = [10, 20, 40]
    mask = lower_half_mask(4, 4)
    assert mask[:2].sum() == 0 and mask[2:].all()
    # per channel: MSE 100, 400, 1600 -> 20 log10(255/10), 20 log10(255/20), 20 log10(255/40)
    # = 28.1308, 22.1102, 16.0896 (equally spaced by 20 log10 2) -> mean 22.1102 = 20 log10(255/20)
    expected = 20 * math.log10(255 / 20)
    assert psnr_masked(a, b, mask) == pytest.approx(expected, abs=1e-12)
    # the PSNR of the pooled MSE (700) would be 19.68 dB: the paper's per-channel average is not that
    pooled = 10 * math.log10(255**2 / 700)
    assert abs(psnr_masked(a, b, mask) - pooled) > 2.0


def test_psnr_masked_per_frame_masks_and_errors():
    a = np.zeros((2, 4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 10  # inside frame 0's mask
    b[1, 3, 3] = 10  # outside frame 1's mask
    m = np.zeros((2, 4, 4), bool)
    m[:, 0, 0] = True
    out = psnr_masked(a, b, m)
    assert out[0] == pytest.approx(20 * math.log10(25.5)) and math.isinf(out[1])
    with pytest.raises(ValueError, match="empty"):
        psnr_masked(a, b, np.zeros((4, 4), bool))


def test_ssim_matches_skimage_gaussian_convention(face_patch, degraded):
    ours = ssim(face_patch, degraded)
    ref = structural_similarity(face_patch, degraded, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                data_range=255, channel_axis=-1)
    assert abs(ours - ref) < 1e-4
    assert 0.3 < ours < 0.95  # a real degradation, not a trivial 1.0


def test_skimage_default_ssim_is_a_different_number(face_patch, degraded):
    # skimage's defaults: 7x7 uniform window, sample covariance (n / (n - 1)). Not the papers' SSIM.
    default = structural_similarity(face_patch, degraded, data_range=255, channel_axis=-1)
    assert abs(default - ssim(face_patch, degraded)) > 5e-3


def test_ssim_matches_pytorch_msssim(face_patch, degraded):
    torch = pytest.importorskip("torch")
    pm = pytest.importorskip("pytorch_msssim")
    x = torch.from_numpy(face_patch).permute(2, 0, 1)[None].double()
    y = torch.from_numpy(degraded).permute(2, 0, 1)[None].double()
    ref = float(pm.ssim(x, y, data_range=255, size_average=False)[0])
    # pytorch-msssim builds its Gaussian window in float32 (~1e-7 relative), hence ~1e-6 here
    assert abs(ssim(face_patch, degraded) - ref) < 1e-5


def test_ssim_identical_is_one_and_video_is_per_frame(face_patch, degraded):
    assert ssim(face_patch, face_patch) == pytest.approx(1.0, abs=1e-12)
    video_a = np.stack([face_patch, face_patch])
    video_b = np.stack([face_patch, degraded])
    out = ssim(video_a, video_b)
    assert out.shape == (2,)
    assert out[0] == pytest.approx(1.0) and out[1] == pytest.approx(ssim(face_patch, degraded), abs=1e-12)
    assert ssim_map(face_patch, degraded).shape == (1, 54, 54)  # 64 - 10 (valid region of the 11x11 window)


def test_ssim_too_small():
    with pytest.raises(ValueError, match="11x11"):
        ssim(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8))


def test_ssim_masked(face_patch, degraded):
    full = np.ones((64, 64), bool)
    assert ssim_masked(face_patch, degraded, full) == pytest.approx(ssim(face_patch, degraded), abs=1e-12)
    # b differs from a only in columns < 20; windows centred at column >= 25 see identical content
    b = face_patch.copy()
    b[:, :20] = degraded[:, :20]
    right = np.zeros((64, 64), bool)
    right[:, 40:] = True
    assert ssim_masked(face_patch, b, right) == pytest.approx(1.0, abs=1e-12)
    assert ssim(face_patch, b) < 0.95
    with pytest.raises(ValueError, match="border"):
        border_only = np.zeros((64, 64), bool)
        border_only[:3] = True
        ssim_masked(face_patch, b, border_only)


def test_apd_known_values():
    a = np.zeros((2, 4, 4, 3), np.uint8)
    b = np.zeros((2, 4, 4, 3), np.uint8)
    b[:, :2] = [30, 40, 0]  # top half: distance 50 per pixel
    b[:, 2:] = [3, 4, 0]  # bottom half: distance 5 per pixel
    assert apd(a, b) == pytest.approx(27.5)  # (8 * 50 + 8 * 5) / 16 per frame, pooled
    assert apd(a, b, mask=lower_half_mask(4, 4)) == pytest.approx(5.0)
    # per-frame masks pool over all masked pixels: frame 0 one top pixel (50), frame 1 three bottom pixels (5)
    m = np.zeros((2, 4, 4), bool)
    m[0, 0, 0] = True
    m[1, 3, :3] = True
    assert apd(a, b, mask=m) == pytest.approx((50 + 3 * 5) / 4)
    assert apd(a[0], a[0]) == 0.0
    with pytest.raises(ValueError, match="empty"):
        apd(a, b, mask=np.zeros((4, 4), bool))
