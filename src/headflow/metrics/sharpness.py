"""No-reference sharpness of generated frames: variance of the Laplacian and CPBD.

Both take gray frames, `(H, W)` or `(T, H, W)` uint8 (`rgb_to_gray` converts RGB frames the way
`cv2.cvtColor(..., cv2.COLOR_RGB2GRAY)` does, as the ViCo `evaluations/compute_cpbd.py` reads
its frames). Both are costly enough per frame that clips are usually scored on
`headflow.metrics.sampling.frame_sample` frames.
"""

from __future__ import annotations

import importlib
import sys
from typing import Literal

import cv2
import numpy as np


def rgb_to_gray(frames: np.ndarray) -> np.ndarray:
    """RGB uint8 frames (H, W, 3) or (T, H, W, 3) -> gray (H, W) or (T, H, W) uint8 (ITU-R BT.601 weights)."""
    f = np.asarray(frames)
    if f.ndim not in (3, 4) or f.shape[-1] != 3 or f.dtype != np.uint8:
        raise ValueError(f"rgb_to_gray: expected uint8 RGB frames (H, W, 3) or (T, H, W, 3), got {f.dtype} {f.shape}")
    if f.ndim == 3:
        return cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)
    return np.stack([cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in f])


def _gray(gray: np.ndarray, fn: str) -> tuple[np.ndarray, bool]:
    g = np.asarray(gray)
    if g.ndim == 2:
        return g[None], True
    if g.ndim == 3 and g.shape[-1] != 3:
        return g, False
    raise ValueError(f"{fn}: expected gray frames (H, W) or (T, H, W), got shape {g.shape}; "
                     "convert RGB frames with headflow.metrics.sharpness.rgb_to_gray")


def lap_var(gray: np.ndarray, mask: np.ndarray | None = None, ksize: Literal[1, 3] = 1) -> float | np.ndarray:
    """Variance of the Laplacian (vL), a sharpness measure: higher is sharper.

    The Laplacian is `cv2.Laplacian(gray, cv2.CV_64F, ksize=ksize)` with no pre-blur (the lip-sync
    paper skips the usual Gaussian pre-filter "because our images are already quite blurry",
    papers/lipsync_coursework.txt, Sec. 4.1, "Laplacian variance (vL)"); the variance is the
    population variance (`.var()`, ddof 0) over all pixels, or over the masked pixels only ("we also
    use the masked version ... computing the variance only for the values inside the mask").

    Kernel: `ksize=1` (default) is the 4-neighbour kernel [[0, 1, 0], [1, -4, 1], [0, 1, 0]], the common
    blur measure (`cv2.Laplacian(gray, cv2.CV_64F).var()`); `ksize=3` sums Sobel second derivatives,
    kernel [[2, 0, 2], [0, -8, 0], [2, 0, 2]], closer to the paper's wording "Sobel filter twice";
    its response to smooth content is about 4x larger (the Sobel smoothing [1, 2, 1] sums to 4), so
    its variance about 16x. Borders use OpenCV's default
    BORDER_REFLECT_101. The paper reports vL on 96x96 mouth-region crops (real 198.3, Wav2Lip 73.4),
    so values depend on crop size and region: compare only like with like.

    Args:
        gray: (H, W) or (T, H, W) gray frames, uint8 (or floats on the 0-255 scale).
        mask: optional (H, W) for every frame or (T, H, W); nonzero = inside.
        ksize: 1 or 3, see above.

    Returns:
        vL in (gray levels)^2, >= 0; a float for one frame or a (T,) array. 0 for a flat frame.

    Raises:
        ValueError: bad shapes, a `ksize` other than 1 or 3, or an empty mask in some frame.
    """
    if ksize not in (1, 3):
        raise ValueError(f"lap_var: ksize must be 1 (4-neighbour kernel) or 3 (Sobel-based), got {ksize}")
    g, single = _gray(gray, "lap_var")
    t, h, w = g.shape
    if mask is not None:
        m = np.asarray(mask)
        if m.shape == (h, w):
            m = np.broadcast_to(m, (t, h, w))
        elif m.shape != (t, h, w):
            raise ValueError(f"lap_var: mask must be (H, W) = {(h, w)} or (T, H, W) = {(t, h, w)}, got {m.shape}")
        m = m > 0
    out = np.empty(t)
    for i in range(t):
        lap = cv2.Laplacian(g[i].astype(np.float64), cv2.CV_64F, ksize=ksize)
        if mask is None:
            out[i] = lap.var()
        else:
            vals = lap[m[i]]
            if vals.size == 0:
                raise ValueError(f"lap_var: the mask is empty in frame {i}; drop the frame or enlarge the mask")
            out[i] = vals.var()
    return float(out[0]) if single else out


def _removed_imread(*_args, **_kwargs):
    raise RuntimeError("scipy.ndimage.imread was removed from SciPy; headflow only provides a placeholder "
                       "so that the cpbd package imports. Read images with cv2 or imageio.")


def _load_cpbd():
    """Import the `cpbd` package (1.0.7), whose module does `from scipy.ndimage import imread` at import.

    That function left SciPy in 1.2; the shim puts a placeholder on `scipy.ndimage` only for the
    duration of the import and removes it again, so nothing else sees a fake `imread`. cpbd uses
    `imread` only in its command-line `__main__`.
    """
    if sys.modules.get("cpbd") is not None:
        return sys.modules["cpbd"]
    import scipy.ndimage as ndi

    added = not hasattr(ndi, "imread")
    if added:
        ndi.imread = _removed_imread
    try:
        return importlib.import_module("cpbd")
    except ModuleNotFoundError as e:
        if e.name != "cpbd":
            raise
        raise ImportError("the CPBD metric needs the `cpbd` package (pip install cpbd==1.0.7); "
                          "report CPBD as null with this reason if it cannot be installed") from e
    finally:
        if added:
            del ndi.imread


CPBD_BLOCK = 64
"""cpbd's block size: frames smaller than this in either dimension have no blocks to score."""


def cpbd(gray: np.ndarray, backend: Literal["vectorised", "package"] = "vectorised") -> float | np.ndarray:
    """Cumulative probability of blur detection (CPBD; Narvekar & Karam 2009), as the `cpbd` package computes it.

    Per frame, `cpbd.compute` (cpbd 1.0.7, `cpbd/compute.py`): Canny edges decide which 64x64 blocks
    are edge blocks (> 0.2% edge pixels); at each Sobel edge pixel of those blocks the Marziliano edge
    width w is measured along the row; with the block's just-noticeable width w_JNB (5 when the
    block contrast max-min is <= 50, else 3) the probability of detecting blur is
    `1 - exp(-|w / w_JNB|^3.6)`; CPBD is the fraction of edges whose probability (rounded to a
    percent) is below 64%. Used by StyleTalk (papers/styletalk.txt, Table 1: GT 0.222 on MEAD) and the
    ViCo `evaluations/compute_cpbd.py` (gray frames from cv2, mean over frames).

    Backends: "package" calls `cpbd.compute` (pure Python loops: ~0.1-0.3 s per 256x256 frame);
    "vectorised" (default) is `cpbd_frame`, the same computation with the per-pixel loops replaced by
    array operations (the package's own Canny and Sobel calls are kept), equal to the package's value on
    every frame tested (tests/metrics/test_sharpness.py) and ~10-30x faster (bench/metrics.py).

    Args:
        gray: (H, W) or (T, H, W) uint8 gray frames, H and W >= 64 (`rgb_to_gray` for RGB). uint8 is
            required because cpbd indexes its w_JNB table by the block contrast in gray levels.
        backend: "vectorised" or "package".

    Returns:
        CPBD in [0, 1], higher is sharper; a float or a (T,) array. A frame without any edge block
        (flat, or only faint texture) scores 0, the package's convention: 0 means "no sharp edge
        found", not necessarily "blurred".

    Raises:
        ImportError: `cpbd` is not installed (the message says how to install it).
        ValueError: not uint8 gray frames, frames smaller than 64x64, or an unknown backend.
    """
    if backend not in ("vectorised", "package"):
        raise ValueError(f"cpbd: backend must be 'vectorised' or 'package', got {backend!r}")
    g, single = _gray(gray, "cpbd")
    if g.dtype != np.uint8:
        raise ValueError(f"cpbd: expected uint8 gray frames, got {g.dtype}; convert with rgb_to_gray or "
                         "np.clip(x, 0, 255).astype(np.uint8)")
    if g.shape[1] < CPBD_BLOCK or g.shape[2] < CPBD_BLOCK:
        raise ValueError(f"cpbd: frames must be at least {CPBD_BLOCK}x{CPBD_BLOCK} (cpbd's block size), "
                         f"got {g.shape[1]}x{g.shape[2]}; score a larger crop")
    module = _load_cpbd()
    fn = module.compute if backend == "package" else cpbd_frame
    out = np.array([float(fn(frame)) for frame in g])
    return float(out[0]) if single else out


_MAX_MARGIN = 100
"""cpbd's edge-width search stops after 101 steps to each side (`for margin in range(100 + 1)`)."""


def _runs(flags: np.ndarray, reverse: bool) -> np.ndarray:
    """Per position, the number of consecutive True values of `flags` (rows of booleans) ending there,
    counted leftwards (`reverse=False`: flags[k], flags[k-1], ...) or rightwards (`reverse=True`)."""
    f = flags[:, ::-1] if reverse else flags
    idx = np.arange(f.shape[1], dtype=np.int32)
    last_false = np.maximum.accumulate(np.where(f, np.int32(-1), idx), axis=1)
    run = np.where(f, idx - last_false, 0)
    return run[:, ::-1] if reverse else run


def marziliano_widths(edges: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Marziliano edge widths along rows, vectorised; equal to `cpbd.compute.marziliano_method`.

    At each edge pixel (rows and columns 1..N-2) whose gradient angle (`np.gradient`, atan2 in degrees,
    0 where the horizontal gradient is 0) quantised to 45 degrees is 0 (rising to the right) or +-180
    (falling), the width is the number of steps to the left and to the right over which the intensity
    keeps moving away from the edge monotonically (strictly), each side capped at 101, plus 2 for the two
    first steps. Other pixels get 0, and every pixel does when no pixel of the image has a non-zero angle
    (the package's `if np.any(edge_angles)`).

    Args:
        edges: (H, W) Sobel edge map (nonzero = edge), `cpbd.octave.sobel`.
        image: (H, W) float64 gray image.

    Returns:
        (H, W) float64 widths (0 = no edge, else 2..202 pixels).
    """
    h, w = image.shape
    out = np.zeros((h, w))
    rows, cols = np.nonzero(edges[1:h - 1, 1:w - 1] == 1)
    rows, cols = rows + 1, cols + 1
    # np.gradient's interior values, at the edge pixels only: (f[i + 1] - f[i - 1]) / 2
    gx = (image[rows, cols + 1] - image[rows, cols - 1]) / 2.0
    gy = (image[rows + 1, cols] - image[rows - 1, cols]) / 2.0
    angles = np.where(gx != 0, np.degrees(np.arctan2(gy, gx)), 0.0)
    # cpbd's third branch (gx == 0 and gy == pi / 2 -> 90) cannot fire on gradients of a uint8 image
    # (multiples of 0.5), and 90 is not measured anyway: only 0 and +-180 are.
    if not np.any(angles):
        gy_all, gx_all = np.gradient(image)        # the package's test runs over every pixel
        if not np.any((gx_all != 0) & ((gy_all != 0) | (gx_all < 0))):   # atan2(gy, gx) != 0 somewhere
            return out
    q = 45 * np.round(angles / 45)
    diff = np.diff(image, axis=1)                  # diff[:, k] = image[:, k + 1] - image[:, k]
    false = np.zeros((h, 1), bool)
    up, down = diff > 0, diff < 0
    cap = _MAX_MARGIN
    # going left from col - 1: a step k -> k - 1 continues while image[k - 1] < image[k] (angle 0) or > (180);
    # going right from col + 1: a step k -> k + 1 continues while image[k + 1] > image[k] (angle 0) or < (180)
    zero, flat = q == 0, (q == 180) | (q == -180)
    width = np.zeros(len(rows))
    for sel, left_flags, right_flags in ((zero, up, up), (flat, down, down)):
        if not sel.any():
            continue
        left = _runs(np.concatenate([false, left_flags], 1), False)
        right = _runs(np.concatenate([right_flags, false], 1), True)
        r, c = rows[sel], cols[sel]
        width[sel] = np.minimum(left[r, c - 1], cap) + 1 + np.minimum(right[r, c + 1], cap) + 1
    out[rows, cols] = width
    return out


def cpbd_frame(image: np.ndarray) -> float:
    """CPBD of one (H, W) gray frame, vectorised; equal to `cpbd.compute.compute` (see `cpbd`)."""
    _load_cpbd()
    from skimage.feature import canny

    module = importlib.import_module("cpbd.compute")   # the module (the package's `compute` is the function)
    from cpbd.octave import sobel

    img = np.asarray(image).astype(np.float64)
    canny_edges = canny(img)
    widths = marziliano_widths(sobel(img), img)
    h, w = img.shape
    bh, bw = module.BLOCK_HEIGHT, module.BLOCK_WIDTH
    nv, nh = h // bh, w // bw
    if nv == 0 or nh == 0:
        return 0.0
    crop = (slice(0, nv * bh), slice(0, nh * bw))
    blocks = lambda a: a[crop].reshape(nv, bh, nh, bw).transpose(0, 2, 1, 3).reshape(nv * nh, bh * bw)  # noqa: E731
    edge_count = np.count_nonzero(blocks(canny_edges), axis=1)
    is_edge = edge_count > bh * bw * module.THRESHOLD
    img_b, w_b = blocks(img), blocks(widths)
    contrast = (img_b.max(1) - img_b.min(1)).astype(int)
    jnb = module.WIDTH_JNB[contrast]
    sel = is_edge[:, None] & (w_b != 0)
    wid = w_b[sel]
    jnb_px = np.broadcast_to(jnb[:, None], w_b.shape)[sel]
    if wid.size == 0:
        return 0.0
    p = 1 - np.exp(-np.abs(wid / jnb_px) ** module.BETA)
    buckets = np.round(p * 100).astype(int)
    hist = np.bincount(buckets, minlength=101) / wid.size
    return float(np.sum(hist[:64]))
