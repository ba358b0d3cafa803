"""One sequential decode of a clip's canonical video -> every crop the trainers read, with its transform.

Per frame, from the source frame:
- `face96`: Wav2Lip's 96x96 face crop, `crop_transform_for(box, frame_hw)` from the faces stage's box
  (`headflow.faces.crops`, the rule the expert was trained and scored with); rows 48-95 are the
  expert's mouth input.
- `crop256`: the FFHQ-style aligned crop under the faces stage's stored `crop_transform` (rescaled to
  256 px when faces.crop.size differs, `geometry.resize_transform`).
Both are warped straight from the source frame (one interpolation). The `mouth` and `eyes` regions are
integer boxes inside crop256 (`geometry.region_boxes`), so their pixels are crop256's and cost no disk.

Frames without valid landmarks get zero pixels, NaN transforms and NaN landmarks (never a copy of
another frame); the `valid` mask says which.

Tight source frames (VoxCeleb's 224x224 face crops) put part of the FFHQ framing outside the source;
`warp` fills it by repeating the edge. `crop256_inside` (T, S, S) uint8 marks the crop pixels sampled
inside the source frame (`faces.crops.inside_mask`; 0 on invalid frames) and `crop256_outside` (T,)
float32 the fraction outside (NaN on invalid frames), so trainers can mask the smear out of losses.

Kept apart from the stage module so worker processes import numpy, OpenCV and decord only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from headflow.manifest.quarantine import Rejected
from headflow.shards.geometry import CROP_SIZE, FACE_SIZE, REGION_POINTS, map_landmarks, region_boxes, resize_transform

IMAGE_ARRAYS = ("face96", "crop256")
"""Arrays stored with the temporal-delta filter."""


def cut_views(video_path: str | Path, boxes: np.ndarray, valid: np.ndarray,
              crop_transforms: np.ndarray | None = None, crop_size: int = CROP_SIZE,
              source_crop_size: int = CROP_SIZE) -> dict[str, np.ndarray]:
    """Decode `video_path` once and warp each frame into face96 (and crop256 when transforms are given).

    Args:
        boxes: (T, 4) face boxes l, t, r, b in source pixels (faces' landmarks.parquet `box`).
        valid: (T,) bool frames with valid landmarks; the others stay zeros.
        crop_transforms: (T, 2, 3) source -> aligned crop of `source_crop_size` px (landmarks.parquet
            `crop_transform`), or None for face96 only.
        crop_size: side of the crop256 view.
    Returns:
        {"face96": (T, 96, 96, 3) uint8, "face96_transform": (T, 2, 3) float64, and with transforms
        "crop256": (T, S, S, 3) uint8, "crop256_transform": (T, 2, 3) float64, "crop256_inside":
        (T, S, S) uint8 (1: sampled inside the source frame), "crop256_outside": (T,) float32}; NaN
        transforms (and outside fractions) on invalid frames.
    Raises:
        Rejected: `unreadable` when the video cannot be decoded, `frame_count_mismatch` when it has
            fewer frames than `boxes` (extra decoded frames are ignored, as the faces stage does).
    """
    from headflow.faces.crops import crop_transform_for, inside_mask, warp
    from headflow.media import MediaError, read_frames

    T = len(boxes)
    valid = np.asarray(valid, bool)
    boxes = np.asarray(boxes, np.float64)
    out = {"face96": np.zeros((T, FACE_SIZE, FACE_SIZE, 3), np.uint8),
           "face96_transform": np.full((T, 2, 3), np.nan)}
    if crop_transforms is not None:
        M256 = resize_transform(np.asarray(crop_transforms, np.float64).reshape(T, 2, 3), source_crop_size, crop_size)
        M256[~valid] = np.nan
        out["crop256"] = np.zeros((T, crop_size, crop_size, 3), np.uint8)
        out["crop256_transform"] = M256
        out["crop256_inside"] = np.zeros((T, crop_size, crop_size), np.uint8)
        out["crop256_outside"] = np.full(T, np.nan, np.float32)
    n = 0
    try:
        for f, frame in enumerate(read_frames(video_path)):
            if f >= T:
                break
            n += 1
            if not valid[f]:
                continue
            M = crop_transform_for(tuple(boxes[f]), frame.shape[:2])
            out["face96_transform"][f] = M
            out["face96"][f] = warp(frame, M, FACE_SIZE)
            if crop_transforms is not None:
                out["crop256"][f] = warp(frame, M256[f], crop_size)
                inside = inside_mask(M256[f], crop_size, frame.shape[:2])
                out["crop256_inside"][f] = inside
                out["crop256_outside"][f] = 1.0 - inside.mean()
    except MediaError as e:
        raise Rejected("unreadable", e.message) from None
    except Exception as e:  # noqa: BLE001 - decord's errors mid-stream (DECORDError) name no common base
        if type(e).__name__ != "DECORDError":
            raise
        raise Rejected("unreadable", f"{video_path}: decoding failed after {n} frames ({e})") from None
    if n < T:
        raise Rejected("frame_count_mismatch", f"{video_path}: decoded {n} frames, landmarks cover {T}")
    return out


@dataclass(frozen=True)
class ShardJob:
    """Everything one clip's shard needs (paths absolute; arrays from the faces stage's landmarks.parquet)."""

    clip_id: str
    video: str
    mel: str
    out: str
    boxes: np.ndarray              # (T, 4) float
    valid: np.ndarray              # (T,) bool
    landmarks: np.ndarray          # (T, 68, 2) float32 source pixels, NaN where invalid
    crop_transforms: np.ndarray    # (T, 2, 3) source -> faces crop
    source_crop_size: int          # faces.crop.size (the side crop_transform maps onto)
    meta: dict                     # clip facts stored in the file (speaker_id, split, fps, paths)
    regions: dict                  # name -> (height, width)
    codec: str
    level: int
    temporal_delta: bool


def shard_arrays(job: ShardJob) -> dict[str, np.ndarray]:
    """All arrays of one clip's shard (see the module docstring and README "Shards")."""
    views = cut_views(job.video, job.boxes, job.valid, job.crop_transforms, CROP_SIZE, job.source_crop_size)
    lm = np.where(job.valid[:, None, None], job.landmarks, np.nan)
    arrays = {"valid": job.valid.astype(bool), "landmarks": lm.astype(np.float32), **views}
    for name in IMAGE_ARRAYS:
        arrays[f"{name}_landmarks"] = map_landmarks(views[f"{name}_transform"], lm)
    for name, (h, w) in job.regions.items():
        arrays[f"{name}_box"] = region_boxes(arrays["crop256_landmarks"], job.valid, REGION_POINTS[name], h, w,
                                             CROP_SIZE)
    try:
        mel = np.load(job.mel, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise Rejected("unreadable", f"{job.mel}: cannot load the mel spectrogram ({e})") from None
    if mel.ndim != 2 or mel.dtype != np.float32:
        raise Rejected("unreadable", f"{job.mel}: expected a (T_mel, 80) float32 mel, got {mel.shape} {mel.dtype}")
    arrays["mel"] = mel
    return arrays


def shard_clip(job: ShardJob) -> tuple[str, dict | None, tuple[str, str] | None, float]:
    """Cut and write one clip's shard; returns (clip_id, facts for shards.parquet, rejection, seconds).

    A clip that cannot be cut is a result (`rejection` = (reason_code, message)), not an error.
    """
    from headflow.manifest.hashing import file_sha256
    from headflow.shards.store import write_shard

    t0 = time.perf_counter()
    try:
        arrays = shard_arrays(job)
    except Rejected as rej:
        return job.clip_id, None, (rej.reason_code, rej.message), time.perf_counter() - t0
    meta = {**job.meta, "clip_id": job.clip_id, "n_frames": int(len(job.valid)),
            "views": {"face96": [FACE_SIZE, FACE_SIZE], "crop256": [CROP_SIZE, CROP_SIZE],
                      **{name: [h, w] for name, (h, w) in job.regions.items()}}}
    delta = IMAGE_ARRAYS if job.temporal_delta else ()
    size = write_shard(job.out, arrays, meta, job.codec, job.level, delta)
    facts = {"n_frames": int(len(job.valid)), "n_valid": int(job.valid.sum()), "n_mel_frames": int(len(arrays["mel"])),
             "bytes": int(size), "sha256": file_sha256(job.out)}
    return job.clip_id, facts, None, time.perf_counter() - t0
