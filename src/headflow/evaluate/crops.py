"""The crops every system is scored in, as per-frame 2x3 transforms from its frames.

Three crops, each re-derived per frame from the `faces` stage's stored geometry of the real clip
(DESIGN, "Crops"), so ground truth, baselines and generated outputs are cut by one rule:

- `face96`: Wav2Lip's 96x96 face crop of the faces box (`headflow.faces.crops.crop_transform_for`);
  its lower half (rows 48-95) is the mouth region the lip-sync U-Net regenerates, the masked
  metrics' mask and what the sync experts see.
- `aligned256`: the faces stage's FFHQ-style 256x256 aligned crop (`crop_transform` of
  landmarks.parquet): CPBD, landmarks and face descriptors.
- `syncnet224`: syncnet_python's crop (`run_pipeline.py::crop_video`): box half-size
  s = max(w, h) / 2 and centre median-filtered over 13 frames (`scipy.signal.medfilt`, zero-padded
  at the ends as there), the region [cx - s(1 + c), cx + s(1 + c)) x [cy - s, cy + s(1 + 2c)) with
  crop_scale c = 0.4, outside the frame grey 110, resized to 224x224. Our face track's box replaces
  syncnet_python's S3FD track.

A generated video is either in the source clip's frame geometry (full frames, the face pasted back)
or in the 256x256 aligned-crop geometry; for the latter each transform is composed with the inverse of
the aligned crop's (`from_aligned`).
"""

from __future__ import annotations

import cv2
import numpy as np

FACE_SIZE = 96
ALIGNED_SIZE = 256
SYNCNET_SIZE = 224
SYNCNET_CROP_SCALE = 0.4
SYNCNET_MEDFILT = 13
SYNCNET_PAD_VALUE = 110


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The 2x3 affine `a` after `b` (x -> a(b(x))); both (2, 3) or stacked (T, 2, 3)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    lin = a[..., :, :2] @ b[..., :, :2]
    t = (a[..., :, :2] @ b[..., :, 2:])[..., 0] + a[..., :, 2]
    return np.concatenate([lin, t[..., None]], axis=-1)


def invert_all(m: np.ndarray) -> np.ndarray:
    """Inverse of every 2x3 affine in (T, 2, 3)."""
    return np.stack([cv2.invertAffineTransform(x) for x in np.asarray(m, np.float64)])


def face96_transforms(boxes: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
    """(T, 2, 3) Wav2Lip face-crop transforms of per-frame boxes (T, 4) (l, t, r, b source pixels)."""
    from headflow.faces.crops import crop_transform_for

    return np.stack([crop_transform_for(tuple(b), frame_hw) for b in np.asarray(boxes, np.float64)])


def box_transform(x0: float, y0: float, x1: float, y1: float, size: int) -> np.ndarray:
    """2x3 mapping the pixel region [x0, x1) x [y0, y1) onto a size x size image, as cv2.resize does.

    Pixel centres are integers (OpenCV): dst = (src - x0 + 0.5) * size / (x1 - x0) - 0.5.
    """
    sx, sy = size / (x1 - x0), size / (y1 - y0)
    return np.array([[sx, 0.0, (0.5 - x0) * sx - 0.5], [0.0, sy, (0.5 - y0) * sy - 0.5]])


def syncnet_transforms(boxes: np.ndarray, crop_scale: float = SYNCNET_CROP_SCALE) -> np.ndarray:
    """(T, 2, 3) syncnet_python crop transforms of a face track's boxes (T, 4); see the module docstring."""
    from scipy.signal import medfilt

    b = np.asarray(boxes, np.float64)
    s = np.maximum(b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]) / 2
    x = (b[:, 0] + b[:, 2]) / 2
    y = (b[:, 1] + b[:, 3]) / 2
    if len(b) >= SYNCNET_MEDFILT:
        s, x, y = (medfilt(v, SYNCNET_MEDFILT) for v in (s, x, y))
    out = []
    for si, xi, yi in zip(s, x, y):
        # syncnet_python pads the frame by bsi = int(s (1 + 2c)) and slices with int() of padded
        # coordinates; the same region in unpadded pixels:
        pad = int(si * (1 + 2 * crop_scale))
        y0 = int(yi + pad - si) - pad
        y1 = int(yi + pad + si * (1 + 2 * crop_scale)) - pad
        x0 = int(xi + pad - si * (1 + crop_scale)) - pad
        x1 = int(xi + pad + si * (1 + crop_scale)) - pad
        out.append(box_transform(x0, y0, x1, y1, SYNCNET_SIZE))
    return np.stack(out) if out else np.zeros((0, 2, 3))


def cut(frame: np.ndarray, m: np.ndarray, size: int, border_value: int | None = None) -> np.ndarray:
    """The size x size crop of `frame` under the 2x3 `m` (bilinear; edges replicated, or a constant)."""
    if border_value is None:
        return cv2.warpAffine(frame, np.asarray(m, np.float64), (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    return cv2.warpAffine(frame, np.asarray(m, np.float64), (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(border_value,) * 3)


def paste_lower_half(frame: np.ndarray, lower: np.ndarray, m96: np.ndarray) -> np.ndarray:
    """`frame` with the lower half of its 96x96 face crop replaced by `lower` (48, 96, 3), pasted back.

    What a Wav2Lip-style pipeline outputs: the generated crop is resized back into the face box
    (`cv2.warpAffine` with the inverse map, bilinear) and only the pixels whose crop position lies in
    rows 48-95 are replaced.
    """
    h, w = frame.shape[:2]
    half = FACE_SIZE // 2
    crop = np.zeros((FACE_SIZE, FACE_SIZE, 3), np.uint8)
    crop[half:] = lower
    mask = np.zeros((FACE_SIZE, FACE_SIZE), np.uint8)
    mask[half:] = 1
    m = np.asarray(m96, np.float64)
    pasted = cv2.warpAffine(crop, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_CONSTANT)
    inside = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_CONSTANT).astype(bool)
    out = frame.copy()
    out[inside] = pasted[inside]
    return out


def box_in_crop(box: np.ndarray, m: np.ndarray) -> tuple[float, float, float, float]:
    """A source box (l, t, r, b) seen in a crop: centre mapped by the 2x3 `m`, sides scaled by its scale.

    The aligned crop rotates by the head's roll; an axis-aligned box keeps the detector's convention
    (a centre and a size) instead of growing to the rotated box's bounding box.
    """
    b = np.asarray(box, np.float64)
    m = np.asarray(m, np.float64)
    centre = m[:, :2] @ np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2]) + m[:, 2]
    k = np.sqrt(abs(np.linalg.det(m[:, :2])))
    hw, hh = (b[2] - b[0]) * k / 2, (b[3] - b[1]) * k / 2
    return (float(centre[0] - hw), float(centre[1] - hh), float(centre[0] + hw), float(centre[1] + hh))
