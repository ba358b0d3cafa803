"""Per-clip training arrays for the expert: Wav2Lip mouth crops of every frame plus the cached mel.

The crops are cut from ingest's canonical video with the `faces` stage's per-frame boxes through
`headflow.faces.crops.crop_transform_for` / `mouth_crop`, the same functions the generators and the
sync scorer use, so train-time and inference-time crops follow one rule. Each clip becomes one
`.npz` shard (mouths uint8 (T, 48, 96, 3), valid (T,), mel (T_mel, 80)); decoding happens once here,
never inside a DataLoader.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from headflow.manifest import Rejected, atomic_output
from headflow.sync.data import ClipArrays


def mouth_crops(video_path: Path, boxes: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(T, 48, 96, 3) uint8 Wav2Lip lower-half crops of every frame (zeros where `valid` is False)."""
    from headflow.faces.crops import crop_transform_for, mouth_crop
    from headflow.media import read_frames

    out = np.zeros((len(boxes), 48, 96, 3), np.uint8)
    n = 0
    for f, frame in enumerate(read_frames(video_path)):
        if f >= len(boxes):
            break
        n += 1
        if valid[f]:
            out[f] = mouth_crop(frame, crop_transform_for(tuple(boxes[f]), frame.shape[:2]))
    if n < len(boxes):
        raise Rejected("frame_count_mismatch", f"{video_path}: decoded {n} frames, landmarks cover {len(boxes)}")
    return out


def build_shard(clip_id: str, video_path: Path, mel_path: Path, frames: pd.DataFrame, out_path: Path) -> int:
    """Write one clip's shard; returns the number of valid frames. `frames`: its landmarks.parquet rows."""
    frames = frames.sort_values("frame")
    boxes = np.stack(frames["box"].to_numpy()).astype(np.float64)
    valid = frames["valid"].to_numpy(bool)
    mouths = mouth_crops(video_path, boxes, valid)
    mel = np.load(mel_path)
    with atomic_output(out_path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, mouths=mouths, valid=valid, mel=mel)
    return int(valid.sum())


def load_shard(path: Path, clip_id: str, fps: float = 25.0, speaker: str | None = None) -> ClipArrays:
    with np.load(path) as z:
        return ClipArrays(clip_id, z["mouths"], z["mel"], z["valid"], fps, speaker)
