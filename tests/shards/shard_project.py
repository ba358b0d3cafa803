"""A tiny project on disk with the manifests the shards stage reads (ingest, faces, audio_features).

Videos are small (64x64), smooth and moving (a gradient plus a bright disc that travels), so crops
differ from frame to frame; landmarks are a toy 68-point face that drifts and opens its mouth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from headflow.faces.crops import align_transforms

SIZE = 64
N_MEL = 80


def toy_landmarks(cx: float, cy: float, s: float, mouth_open: float = 0.0) -> np.ndarray:
    """(68, 2) points in iBUG order around centre (cx, cy) with scale s (half the face width)."""
    p = np.zeros((68, 2))
    a = np.linspace(np.pi, 0, 17)
    p[0:17] = np.c_[cx + s * np.cos(a), cy + 0.2 * s + s * np.sin(a)]                 # jaw
    p[17:22] = np.c_[np.linspace(cx - 0.8 * s, cx - 0.2 * s, 5), np.full(5, cy - 0.55 * s)]   # brows
    p[22:27] = np.c_[np.linspace(cx + 0.2 * s, cx + 0.8 * s, 5), np.full(5, cy - 0.55 * s)]
    p[27:31] = np.c_[np.full(4, cx), np.linspace(cy - 0.35 * s, cy + 0.1 * s, 4)]     # nose bridge
    p[31:36] = np.c_[np.linspace(cx - 0.2 * s, cx + 0.2 * s, 5), np.full(5, cy + 0.2 * s)]
    t = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    for k, ex in ((36, cx - 0.45 * s), (42, cx + 0.45 * s)):                          # eyes
        p[k:k + 6] = np.c_[ex + 0.15 * s * np.cos(t), cy - 0.35 * s + 0.06 * s * np.sin(t)]
    t = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    p[48:60] = np.c_[cx + 0.35 * s * np.cos(t), cy + 0.55 * s + (0.12 + mouth_open) * s * np.sin(t)]  # lips
    t = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    p[60:68] = np.c_[cx + 0.25 * s * np.cos(t), cy + 0.55 * s + (0.04 + mouth_open) * s * np.sin(t)]
    return p


def frames(n: int, seed: int) -> np.ndarray:
    """(n, 64, 64, 3) uint8 frames: a colour gradient and a disc moving across it."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    base = np.stack([xx * 3, yy * 3, (xx + yy) * 2 + seed * 20], -1).clip(0, 255)
    out = np.empty((n, SIZE, SIZE, 3), np.uint8)
    for f in range(n):
        cx, cy = 20 + 24 * f / max(n - 1, 1), 32 + 6 * np.sin(f / 3)
        disc = ((xx - cx) ** 2 + (yy - cy) ** 2 < 60)[..., None]
        out[f] = np.where(disc, 240, base)
    return out


def write_project(root: Path, clips: dict[str, int], invalid: dict[str, list[int]] | None = None,
                  landmark_frames: dict[str, int] | None = None, unreadable: tuple[str, ...] = ()) -> None:
    """Write the ingest/faces/audio_features outputs of `clips` (clip_id -> n_frames) under `root`.

    invalid: frames of a clip without valid landmarks; landmark_frames: landmarks.parquet rows per
    clip when they should differ from the video's frames; unreadable: clips whose video is garbage.
    """
    from headflow.faces.faces import ClipFaces
    from headflow.faces.stage import frame_table
    from headflow.manifest import write_manifest
    from headflow.media import encode_video

    invalid, landmark_frames = invalid or {}, landmark_frames or {}
    rng = np.random.default_rng(0)
    rows, faces, audio, tables = [], [], [], []
    for k, (clip_id, n) in enumerate(clips.items()):
        video = f"data/interim/ingest/media/{clip_id}.mp4"
        (root / video).parent.mkdir(parents=True, exist_ok=True)
        if clip_id in unreadable:
            (root / video).write_bytes(b"not a video" * 10)
        else:
            encode_video(iter(frames(n, k)), root / video, preset="ultrafast", threads=1)
        crop = f"data/interim/faces/crops/{clip_id}.mp4"
        (root / crop).parent.mkdir(parents=True, exist_ok=True)
        encode_video(iter(np.zeros((2, 256, 256, 3), np.uint8)), root / crop, preset="ultrafast", threads=1)
        mel = f"data/interim/audio_features/mel/{clip_id}.npy"
        (root / mel).parent.mkdir(parents=True, exist_ok=True)
        np.save(root / mel, rng.uniform(-4, 4, (int(n * 3.2) + 16, N_MEL)).astype(np.float32))
        rows.append({"clip_id": clip_id, "source_path": f"src/{clip_id}.mp4", "video_path": video, "fps": 25,
                     "n_frames": n, "speaker_id": f"s{k % 2}", "split": "train" if k % 2 == 0 else "val"})
        faces.append({"clip_id": clip_id, "crop_path": crop, "n_frames": n})
        audio.append({"clip_id": clip_id, "mel_path": mel})
        T = landmark_frames.get(clip_id, n)
        lm = np.stack([toy_landmarks(30 + 4 * np.sin(f / 4), 30 + 2 * np.cos(f / 5), 14, 0.1 * (f % 3))
                       for f in range(T)]).astype(np.float32)
        valid = np.ones(T, bool)
        valid[invalid.get(clip_id, [])] = False
        transforms = align_transforms(lm.astype(np.float64), 256)
        boxes = np.c_[lm[:, :, 0].min(1), lm[:, :, 1].min(1), lm[:, :, 0].max(1), lm[:, :, 1].max(1)].astype(np.float32)
        lm_out = lm.copy()
        lm_out[~valid] = np.nan
        tables.append(frame_table(clip_id, ClipFaces({}, valid, valid, np.ones(T, np.float32), boxes, lm_out, lm_out,
                                                     transforms)))
    write_manifest(rows, root / "data/interim/ingest/clips.parquet", "clips")
    write_manifest(faces, root / "data/interim/faces/faces.parquet", "faces")
    write_manifest(pa.concat_tables(tables), root / "data/interim/faces/landmarks.parquet", "landmarks")
    write_manifest(audio, root / "data/interim/audio_features/audio_features.parquet", "audio_features")
