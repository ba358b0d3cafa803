"""NMFC clip files (`*.nmfc.zip`) and the NMFC preview picture for reports.

File layout: a plain zip (readable by any unzip tool), written with fixed timestamps and attributes
so the same frames always give the same bytes:

    meta.json              {"format": "headflow-nmfc", "version": 1, "frames": T, "height": H,
                            "width": W, "codec": "png", "png_level": 4, "png_strategy": "rle"}
    mask.bin               np.packbits of the (T, H, W) bool mask (deflated zip entry)
    frames/000000.png ...  one lossless RGB PNG per frame (stored: PNG is already compressed)

Why PNG frames: NMFC images are smooth colour ramps, which PNG's per-row predictors and deflate
compress ~8-12x (`bench/morph_render.py`, 140-frame ICT clip at 256x256 in FFHQ-aligned crops,
50% of the pixels covered: 22.6 KiB per frame against 192 KiB raw, ~6.5 ms to write and ~2.5 ms to
read a frame on the shared 2-core machine), every frame decodes on its own (a data loader reads a
window without decoding the clip), and the bytes are deterministic. Alternatives measured on a
28%-coverage clip: horizontal-delta + zlib arrays 15-21 KiB (opaque, whole-clip decode), PNG level 6
15.3 KiB at twice the encode time, FFV1 in Matroska 14.2 KiB but not byte-identical between two
runs through PyAV, so not used.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from headflow.manifest.io import atomic_output

FORMAT = "headflow-nmfc"
VERSION = 1
PNG_LEVEL = 4
"""zlib level of the PNG frames (Pillow-encoded, 28%-coverage clip: 16.3 KiB/frame at 3.6 ms; level 6:
15.3 KiB at 7.5 ms; 1: 19.7 at 2.2). Our own encoder (`_png_bytes`) on a demo clip: 23.2 KiB/frame at
2.3 ms vs Pillow's 20.5 KiB at 1.9 ms: 13% larger, for bytes that depend only on the pixels."""
PNG_STRATEGY = "rle"
"""zlib strategy: run-length matches only. NMFC frames are smooth gradients on a black background, so
RLE finds nearly every match the default search finds (builtin demo clip at level 4: 19.1 vs 19.3
KiB/frame) in ~0.75x the time (1.8 vs 2.5 ms/frame)."""


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_bytes(rgb: np.ndarray) -> bytes:
    """Lossless 8-bit RGB PNG (filter Sub or Up per row, deflate by the standard library's zlib).

    Written by hand, not by Pillow or cv2, so that the bytes depend only on the pixels: Pillow's
    deflate output changed between processes (a `dvc repro` and a Prefect flow wrote the same frames
    to different bytes: another zlib build loaded with PyAV is the likely cause), and OpenCV's bundled
    libpng fails once PyAV has decoded media in a process. Any PNG reader decodes these files.

    Args:
        rgb: (H, W, 3) uint8.
    Returns:
        The PNG file's bytes (signature, IHDR, one IDAT, IEND; PNG spec sections 5, 9.2, 11.2).
    """
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    rows = rgb.reshape(h, w * 3).astype(np.int16)
    sub = rows.copy()
    sub[:, 3:] -= rows[:, :-3]                       # Sub (1): each byte minus the byte one pixel to its left
    up = rows.copy()
    up[1:] -= rows[:-1]                              # Up (2): each byte minus the byte above
    # per row the filter with the smaller sum of |signed residual| (the PNG spec's suggested heuristic)
    cost = lambda r: np.abs(((r + 128) % 256) - 128).sum(axis=1)    # noqa: E731
    use_up = cost(up) < cost(sub)
    raw = np.empty((h, 1 + w * 3), np.uint8)
    raw[:, 0] = np.where(use_up, 2, 1)
    raw[:, 1:] = (np.where(use_up[:, None], up, sub) % 256).astype(np.uint8)
    z = zlib.compressobj(PNG_LEVEL, zlib.DEFLATED, 15, 8, zlib.Z_RLE)
    idat = z.compress(raw.tobytes()) + z.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)   # 8-bit truecolour, deflate, adaptive filters, no interlace
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _png_array(data: bytes) -> np.ndarray | None:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB")) if im.mode != "RGB" else np.asarray(im)
    except Exception:  # noqa: BLE001 - reported by the caller with the file and frame
        return None
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _entry(name: str, compress: bool) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.create_system = 3
    info.external_attr = 0o644 << 16
    return info


def write_nmfc(path: str | Path, nmfc: np.ndarray, mask: np.ndarray) -> None:
    """Write a clip's NMFC frames (T, H, W, 3) uint8 and mask (T, H, W) bool (atomic, deterministic)."""
    nmfc, mask = np.asarray(nmfc), np.asarray(mask)
    if nmfc.dtype != np.uint8 or nmfc.ndim != 4 or nmfc.shape[3] != 3:
        raise ValueError(f"nmfc must be (T, H, W, 3) uint8, got {nmfc.shape} {nmfc.dtype}")
    if mask.shape != nmfc.shape[:3]:
        raise ValueError(f"mask must be {nmfc.shape[:3]} (T, H, W), got {mask.shape}")
    T, H, W = mask.shape
    meta = {"format": FORMAT, "version": VERSION, "frames": T, "height": H, "width": W,
            "codec": "png", "png_level": PNG_LEVEL, "png_strategy": PNG_STRATEGY}
    with atomic_output(path, suffix=".tmp") as tmp:
        with zipfile.ZipFile(tmp, "w") as zf:
            zf.writestr(_entry("meta.json", True), json.dumps(meta, sort_keys=True), compresslevel=6)
            zf.writestr(_entry("mask.bin", True), np.packbits(mask.astype(bool).ravel()).tobytes(),
                        compresslevel=6)
            for t in range(T):
                zf.writestr(_entry(f"frames/{t:06d}.png", False), _png_bytes(nmfc[t]))


def _open(path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise FileNotFoundError(f"NMFC file {path} not found")
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise ValueError(f"{path} is not an NMFC file (not a zip: {e})") from None


def _meta(zf: zipfile.ZipFile, path: Path) -> dict:
    try:
        meta = json.loads(zf.read("meta.json"))
    except KeyError:
        raise ValueError(f"{path} is not an NMFC file (no meta.json)") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(f"{path}: format {meta.get('format')!r} version {meta.get('version')!r}, "
                         f"this code reads {FORMAT!r} version {VERSION}; re-run the stage that wrote it")
    return meta


def nmfc_meta(path: str | Path) -> dict:
    """The header of `write_nmfc`'s file without decoding a frame: {"frames": T, "height": H, "width": W, ...}.

    Raises:
        FileNotFoundError, ValueError: as `read_nmfc`.
    """
    path = Path(path)
    with _open(path) as zf:
        return _meta(zf, path)


def read_nmfc(path: str | Path, frames: slice | list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read `write_nmfc`'s file: nmfc (T, H, W, 3) uint8 and mask (T, H, W) bool.

    Args:
        frames: optional frame indices or slice; only those PNGs are decoded.
    """
    path = Path(path)
    with _open(path) as zf:
        meta = _meta(zf, path)
        T, H, W = int(meta["frames"]), int(meta["height"]), int(meta["width"])
        idx = np.arange(T)
        idx = idx[frames] if frames is not None else idx
        bits = np.frombuffer(zf.read("mask.bin"), np.uint8)
        mask = np.unpackbits(bits, count=T * H * W).reshape(T, H, W).astype(bool)[idx]
        nmfc = np.zeros((len(idx), H, W, 3), np.uint8)
        for i, t in enumerate(idx):
            img = _png_array(zf.read(f"frames/{t:06d}.png"))
            if img is None or img.shape != (H, W, 3):
                raise ValueError(f"{path}: frame {t} is not a {W}x{H} RGB PNG")
            nmfc[i] = img
    return nmfc, mask


def nmfc_preview(crops: np.ndarray | None, nmfc: np.ndarray, shaded: np.ndarray | None, path: str | Path,
                 n: int = 4, mask: np.ndarray | None = None, labels: list[str] | None = None) -> Path:
    """A PNG grid of `n` evenly spaced frames (columns): crop, NMFC, crop with NMFC overlaid, shaded.

    Args:
        crops: (T, h, w, 3) RGB uint8 face crops (resized to the NMFC size when different), or None.
        nmfc: (T, H, W, 3) uint8.
        shaded: (T, H, W) uint8 grey renders (`render_shaded`), or None.
        mask: (T, H, W) bool covered pixels for the overlay; None: pixels where nmfc is not black.
        labels: one column title per input frame (default `frame <t>`).

    Returns the path written (atomically).
    """
    nmfc = np.asarray(nmfc)
    T, H, W = nmfc.shape[:3]
    if T == 0:
        raise ValueError("nmfc_preview needs at least one frame")
    cols = np.unique(np.linspace(0, T - 1, max(1, min(n, T))).round().astype(int))
    covered = (nmfc.max(axis=-1) > 0) if mask is None else np.asarray(mask, bool)
    rows: list[tuple[str, list[np.ndarray]]] = []
    crop_tiles = None
    if crops is not None:
        crop_tiles = [_rgb(cv2.resize(np.asarray(crops[t]), (W, H), interpolation=cv2.INTER_AREA)
                           if np.asarray(crops[t]).shape[:2] != (H, W) else np.asarray(crops[t])) for t in cols]
        rows.append(("crop", crop_tiles))
    rows.append(("nmfc", [nmfc[t] for t in cols]))
    if crop_tiles is not None:
        over = []
        for tile, t in zip(crop_tiles, cols):
            blend = tile.copy()
            m = covered[t]
            blend[m] = ((tile[m].astype(np.uint16) + nmfc[t][m]) // 2).astype(np.uint8)
            over.append(blend)
        rows.append(("overlay", over))
    if shaded is not None:
        rows.append(("shaded", [_rgb(np.asarray(shaded)[t]) for t in cols]))
    label_w, gap = 70, 2
    grid = np.full((len(rows) * (H + gap) + 18, label_w + len(cols) * (W + gap), 3), 255, np.uint8)
    for j, t in enumerate(cols):
        title = labels[t] if labels is not None else f"frame {t}"
        cv2.putText(grid, title, (label_w + j * (W + gap) + 4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1, cv2.LINE_AA)
    for i, (name, tiles) in enumerate(rows):
        y = 18 + i * (H + gap)
        cv2.putText(grid, name, (4, y + H // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        for j, tile in enumerate(tiles):
            x = label_w + j * (W + gap)
            grid[y:y + H, x:x + W] = tile
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_bytes(_png_bytes(grid))
    return path


def _rgb(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img[:, :, :3]
