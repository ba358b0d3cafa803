"""Full-reference image fidelity: PSNR, masked PSNR, SSIM, masked SSIM, average pixel distance.

Frames are RGB, `(H, W, 3)` for one image or `(T, H, W, 3)` for a clip, generated and ground truth
aligned frame by frame (the same crop of the same frame range). uint8 frames have a data range of
255; float frames must say their `data_range` (a [0, 1] float image scored as if it were 0-255
would give numbers that look plausible and mean nothing, so the range is never guessed).

Per-frame functions return a float for one image and a `(T,)` array for a clip: the caller
decides how to pool (the evaluation averages per-frame values over the clip, as the ViCo scripts
and piq's `reduction='none'` do).
"""

from __future__ import annotations

import cv2
import numpy as np

SSIM_WIN = 11
"""Gaussian window size of SSIM (Wang et al. 2004; piq, pytorch-msssim, skimage with gaussian_weights)."""
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
_SSIM_PAD = (SSIM_WIN - 1) // 2


def _frames(x: np.ndarray, name: str) -> tuple[np.ndarray, bool]:
    """`x` as (T, H, W, 3) and whether it was one image."""
    x = np.asarray(x)
    if x.ndim == 3 and x.shape[-1] == 3:
        return x[None], True
    if x.ndim == 4 and x.shape[-1] == 3:
        return x, False
    raise ValueError(f"{name}: expected RGB frames of shape (H, W, 3) or (T, H, W, 3), got {x.shape}; "
                     "convert gray frames with np.repeat(gray[..., None], 3, -1)")


def _pair(a: np.ndarray, b: np.ndarray, data_range: float | None, fn: str) -> tuple[np.ndarray, np.ndarray, bool, float]:
    fa, single = _frames(a, f"{fn}(a)")
    fb, _ = _frames(b, f"{fn}(b)")
    if fa.shape != fb.shape:
        raise ValueError(f"{fn}: a and b must have the same shape, got {fa.shape} and {fb.shape}; "
                         "score the same crop of the same frame range")
    if data_range is None:
        if fa.dtype != np.uint8 or fb.dtype != np.uint8:
            raise ValueError(f"{fn}: frames are {fa.dtype}/{fb.dtype}, not uint8; pass data_range= explicitly "
                             "(255 for 0-255 floats, 1.0 for 0-1 floats)")
        data_range = 255.0
    if data_range <= 0:
        raise ValueError(f"{fn}: data_range must be > 0, got {data_range}")
    return fa, fb, single, float(data_range)


def _mask(mask: np.ndarray, t: int, h: int, w: int, fn: str) -> np.ndarray:
    """`mask` as a (T, H, W) float64 weight in {0, 1} (one (H, W) mask is used for every frame)."""
    m = np.asarray(mask)
    if m.shape == (h, w):
        m = np.broadcast_to(m, (t, h, w))
    elif m.shape != (t, h, w):
        raise ValueError(f"{fn}: mask must be (H, W) = {(h, w)} or (T, H, W) = {(t, h, w)}, got {m.shape}")
    return (m > 0).astype(np.float64)


def _out(values: np.ndarray, single: bool) -> float | np.ndarray:
    return float(values[0]) if single else values


def lower_half_mask(height: int, width: int) -> np.ndarray:
    """The whole bottom half of a face crop: rows `height // 2` to the end, as a bool (H, W) mask.

    This is the region the lip-sync U-Net regenerates and in which its masked metrics are computed
    ("we use the whole bottom half of the image", papers/lipsync_coursework.txt, Sec. 3.5-3.6).
    """
    m = np.zeros((height, width), dtype=bool)
    m[height // 2:] = True
    return m


def psnr(a: np.ndarray, b: np.ndarray, data_range: float | None = None) -> float | np.ndarray:
    """Peak signal-to-noise ratio per frame, over all pixels and the three channels.

    `PSNR = 10 log10(R^2 / MSE)` with `MSE` the mean squared difference over H, W and the 3
    channels of one frame (skimage.metrics.peak_signal_noise_ratio, piq.psnr as called by the ViCo
    `evaluations/compute_base_metrics.py`).

    Args:
        a, b: (H, W, 3) or (T, H, W, 3) RGB frames of equal shape; uint8, or float with `data_range`.
        data_range: R, the peak value; None means 255 and requires uint8 frames.

    Returns:
        dB, a float for one image or a (T,) float64 array. Identical frames give `+inf` (MSE = 0),
        computed without a division warning; the caller decides how to pool infinities (e.g. report
        the fraction of identical frames, or clip). Typical generated-vs-real values: 20-35 dB.

    Raises:
        ValueError: shapes differ, are not RGB, or float frames come without `data_range`.
    """
    fa, fb, single, r = _pair(a, b, data_range, "psnr")
    mse = np.empty(fa.shape[0])
    for i in range(fa.shape[0]):  # per frame: a float64 copy of one frame at a time, a BLAS dot for the sum
        d = np.subtract(fa[i], fb[i], dtype=np.float64).ravel()
        mse[i] = (d @ d) / d.size
    out = np.full(mse.shape, np.inf)
    pos = mse > 0
    out[pos] = 10.0 * np.log10(r * r / mse[pos])
    return _out(out, single)


def psnr_masked(a: np.ndarray, b: np.ndarray, mask: np.ndarray, data_range: float | None = None) -> float | np.ndarray:
    """PSNR inside a mask, per RGB channel, averaged over the three channels (lip-sync U-Net metric).

    papers/lipsync_coursework.txt, Sec. 4.1, Eqs. (15)-(16): for each channel c,
    `MSE_c = sum_ij M(i,j) (f_c(i,j) - g_c(i,j))^2 / sum_ij M(i,j)` and
    `PSNR_c = 20 log10(MAX / sqrt(MSE_c))`; "we compared each channel in RGB space and average the
    final value", so the result is `mean_c PSNR_c` (not the PSNR of the pooled MSE: the mean of
    logs is at most the log of the mean, so this is >= `psnr` restricted to the same pixels).
    The paper's mask is the whole lower half of the crop (`lower_half_mask`).

    Args:
        a, b: (H, W, 3) or (T, H, W, 3) RGB frames; uint8, or float with `data_range`.
        mask: (H, W) used for every frame, or (T, H, W); nonzero = inside.
        data_range: MAX; None means 255 and requires uint8 frames.

    Returns:
        dB, a float or a (T,) array; `+inf` when a channel is identical inside the mask.

    Raises:
        ValueError: bad shapes, float frames without `data_range`, or a frame whose mask is empty.
    """
    fa, fb, single, r = _pair(a, b, data_range, "psnr_masked")
    t, h, w, _ = fa.shape
    m = _mask(mask, t, h, w, "psnr_masked")
    count = m.sum(axis=(1, 2))
    if np.any(count == 0):
        raise ValueError(f"psnr_masked: the mask is empty in frame(s) {np.flatnonzero(count == 0)[:10].tolist()}; "
                         "drop those frames or pass a mask with pixels inside")
    diff = fa.astype(np.float64) - fb.astype(np.float64)
    mse_c = np.einsum("thw,thwc->tc", m, diff * diff) / count[:, None]  # (T, 3)
    per_channel = np.full(mse_c.shape, np.inf)
    pos = mse_c > 0
    per_channel[pos] = 20.0 * np.log10(r / np.sqrt(mse_c[pos]))
    return _out(per_channel.mean(axis=1), single)


def _gaussian_window() -> np.ndarray:
    k = cv2.getGaussianKernel(SSIM_WIN, SSIM_SIGMA, cv2.CV_64F)  # normalised, like skimage / pytorch-msssim
    return k


def ssim_map(a: np.ndarray, b: np.ndarray, data_range: float | None = None) -> np.ndarray:
    """The SSIM map of each frame, averaged over RGB channels, on the valid region.

    Gaussian-window SSIM of Wang et al. (2004): 11x11 window, sigma 1.5, K1 0.01, K2 0.03, local
    statistics as weighted population moments (no n/(n-1) correction), computed per channel. Only
    positions whose whole window lies inside the image are kept (a border of 5 pixels is dropped),
    as `pytorch_msssim/ssim.py` (valid convolution), piq's `ssim` and skimage's
    `_structural_similarity.py` (filter, then crop `(win_size - 1) // 2`) do.

    Args:
        a, b: (H, W, 3) or (T, H, W, 3) RGB frames, H and W >= 11; uint8, or float with `data_range`.
        data_range: L in C1 = (K1 L)^2, C2 = (K2 L)^2; None means 255 and requires uint8.

    Returns:
        (T, H - 10, W - 10) float64 map in [-1, 1] (T = 1 for one image).
    """
    fa, fb, _, r = _pair(a, b, data_range, "ssim")
    t, h, w, _ = fa.shape
    if h < SSIM_WIN or w < SSIM_WIN:
        raise ValueError(f"ssim: frames must be at least {SSIM_WIN}x{SSIM_WIN} for the Gaussian window, got {h}x{w}")
    c1 = (SSIM_K1 * r) ** 2
    c2 = (SSIM_K2 * r) ** 2
    k = _gaussian_window()
    p = _SSIM_PAD

    def blur(img: np.ndarray) -> np.ndarray:
        # Separable 11-tap Gaussian; the border rule is irrelevant because the border is cropped.
        return cv2.sepFilter2D(img, cv2.CV_64F, k, k, borderType=cv2.BORDER_REFLECT)[p:h - p, p:w - p]

    out = np.empty((t, h - 2 * p, w - 2 * p))
    for i in range(t):  # one frame at a time keeps memory at a few frames' worth
        x = fa[i].astype(np.float64)
        y = fb[i].astype(np.float64)
        mx, my = blur(x), blur(y)
        sxx = blur(x * x) - mx * mx
        syy = blur(y * y) - my * my
        sxy = blur(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        out[i] = s.mean(axis=-1)
    return out


def ssim(a: np.ndarray, b: np.ndarray, data_range: float | None = None) -> float | np.ndarray:
    """Mean SSIM per frame (Gaussian 11x11, sigma 1.5; the convention of piq, pytorch-msssim, ViCo).

    The mean of `ssim_map` over the valid region and the three channels. Equal, to float precision,
    to `skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, channel_axis=-1)` and to
    `pytorch_msssim.ssim(..., data_range=255, size_average=False)`. skimage's *defaults* (7x7 uniform
    window, sample covariance) give a different number: state the convention with any SSIM reported.
    The ViCo `evaluations/compute_base_metrics.py` calls `piq.ssim(data_range=1.)`, which is this
    SSIM for 256x256 frames (piq first average-pools frames larger than ~384 px by round(min(H, W)/256)).

    Args:
        a, b: (H, W, 3) or (T, H, W, 3) RGB frames, H and W >= 11; uint8, or float with `data_range`.
        data_range: None means 255 and requires uint8 frames.

    Returns:
        A float in [-1, 1] for one image, or a (T,) array; 1 for identical frames.
    """
    single = np.asarray(a).ndim == 3
    vals = ssim_map(a, b, data_range).mean(axis=(1, 2))
    return _out(vals, single)


def ssim_masked(a: np.ndarray, b: np.ndarray, mask: np.ndarray, data_range: float | None = None) -> float | np.ndarray:
    """Mean of the SSIM map inside a mask, per frame.

    The map is `ssim_map` (valid region, channel mean); the mask is cropped by the same 5-pixel
    border so that each kept map value is the SSIM of the window centred on a masked pixel.

    Args:
        a, b: (H, W, 3) or (T, H, W, 3) RGB frames; uint8, or float with `data_range`.
        mask: (H, W) for every frame, or (T, H, W); nonzero = inside.

    Returns:
        A float in [-1, 1] or a (T,) array.

    Raises:
        ValueError: bad shapes, or a frame whose mask is empty once the 5-pixel border is dropped.
    """
    single = np.asarray(a).ndim == 3
    smap = ssim_map(a, b, data_range)
    t = smap.shape[0]
    h, w = smap.shape[1] + 2 * _SSIM_PAD, smap.shape[2] + 2 * _SSIM_PAD
    m = _mask(mask, t, h, w, "ssim_masked")[:, _SSIM_PAD:h - _SSIM_PAD, _SSIM_PAD:w - _SSIM_PAD]
    count = m.sum(axis=(1, 2))
    if np.any(count == 0):
        raise ValueError(f"ssim_masked: no masked pixel at least {_SSIM_PAD} px from the border in frame(s) "
                         f"{np.flatnonzero(count == 0)[:10].tolist()}; enlarge the mask")
    return _out((smap * m).sum(axis=(1, 2)) / count, single)


def apd(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Average pixel distance (APD) of Head2HeadFS: the mean RGB Euclidean distance per pixel.

    For each pixel, `||a(i,j) - b(i,j)||_2` over the three channels in 0-255 units; summed over all
    (masked) pixels of all frames and divided by the number of those pixels, pooled over the clip
    (papers/head2headfs.txt, "Evaluation Metrics", Tables 1-3; the reference is
    `get_pixel_distance` in head2head's `util/util.py`, used by `preprocessing/compute_pixel_distance.py`,
    whose mask is the NMFC foreground: NMFC channel sum > 0.01).

    Args:
        a, b: (H, W, 3) or (T, H, W, 3) uint8 RGB frames (or floats in 0-255).
        mask: optional (H, W) or (T, H, W); nonzero = counted. None: every pixel.

    Returns:
        Distance in [0, 255 * sqrt(3) ~ 441.7]; 0 for identical frames. Head2HeadFS reports 13-36.

    Raises:
        ValueError: bad shapes or an empty mask.
    """
    fa, _ = _frames(a, "apd(a)")
    fb, _ = _frames(b, "apd(b)")
    if fa.shape != fb.shape:
        raise ValueError(f"apd: a and b must have the same shape, got {fa.shape} and {fb.shape}")
    t, h, w, _ = fa.shape
    dist = np.linalg.norm(fa.astype(np.float64) - fb.astype(np.float64), axis=-1)  # (T, H, W)
    if mask is None:
        return float(dist.mean())
    m = _mask(mask, t, h, w, "apd")
    n = m.sum()
    if n == 0:
        raise ValueError("apd: the mask is empty in every frame; pass mask=None for the whole frame")
    return float((dist * m).sum() / n)
