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


def cpbd(gray: np.ndarray) -> float | np.ndarray:
    """Cumulative probability of blur detection (CPBD; Narvekar & Karam 2009), through the `cpbd` package.

    Per frame, `cpbd.compute` (cpbd 1.0.7, `cpbd/compute.py`): Canny edges decide which 64x64 blocks
    are edge blocks (> 0.2% edge pixels); at each Sobel edge pixel of those blocks the Marziliano edge
    width w is measured along the row; with the block's just-noticeable width w_JNB (5 when the
    block contrast max-min is <= 50, else 3) the probability of detecting blur is
    `1 - exp(-|w / w_JNB|^3.6)`; CPBD is the fraction of edges whose probability (rounded to a
    percent) is below 64%. Used by StyleTalk (papers/styletalk.txt, Table 1: GT 0.222 on MEAD) and the
    ViCo `evaluations/compute_cpbd.py` (gray frames from cv2, mean over frames).

    The reference is pure Python (a few hundred ms to seconds per 256x256 frame, see bench/metrics.py):
    score `frame_sample` frames, not every frame.

    Args:
        gray: (H, W) or (T, H, W) uint8 gray frames, H and W >= 64 (`rgb_to_gray` for RGB). uint8 is
            required because cpbd indexes its w_JNB table by the block contrast in gray levels.

    Returns:
        CPBD in [0, 1], higher is sharper; a float or a (T,) array. A frame without any edge block
        (flat, or only faint texture) scores 0, the package's convention: 0 means "no sharp edge
        found", not necessarily "blurred".

    Raises:
        ImportError: `cpbd` is not installed (the message says how to install it).
        ValueError: not uint8 gray frames, or frames smaller than 64x64.
    """
    g, single = _gray(gray, "cpbd")
    if g.dtype != np.uint8:
        raise ValueError(f"cpbd: expected uint8 gray frames, got {g.dtype}; convert with rgb_to_gray or "
                         "np.clip(x, 0, 255).astype(np.uint8)")
    if g.shape[1] < CPBD_BLOCK or g.shape[2] < CPBD_BLOCK:
        raise ValueError(f"cpbd: frames must be at least {CPBD_BLOCK}x{CPBD_BLOCK} (cpbd's block size), "
                         f"got {g.shape[1]}x{g.shape[2]}; score a larger crop")
    module = _load_cpbd()
    out = np.array([float(module.compute(frame)) for frame in g])
    return float(out[0]) if single else out
