"""DisCoHead's inputs: clips from the shards, the 400 ms audio window, the eye-masked driver, training samples.

A training sample (section 3.1, FOMM/MRAA's self-supervised setting): a source frame and a driver
frame of one clip; the target is the driver frame, the head driver is the driver frame, the eye driver
is the driver frame with everything outside the eye regions zeroed, and the audio is the 400 ms of
mel spectrogram centred on the driver frame.

The audio window: 32 frames of the Wav2Lip mel (80 per second) centred on the frame's timestamp
f / fps, i.e. mel[int(80 f / fps) - 16 : int(80 f / fps) + 16]. This is the project's frame-to-mel
rule (`headflow.audio.mel.mel_window_start`, the Wav2Lip and syncnet convention that frame f's audio
starts at f / fps) with 200 ms added before it, so the last frame with a window is the same as for
every other system; the paper's "centred on each video frame" does not say whether the centre is the
frame's start or its middle (20 ms apart at 25 fps). Frames whose window runs off the mel (the first
five at 25 fps, and the last few) have none: they are outside the generated range, never padded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from headflow.generators.discohead.params import AUDIO_WINDOW_MEL, MEL_PER_SECOND, DataParams

EYE_POINTS = ((*range(17, 22), *range(36, 42)), (*range(22, 27), *range(42, 48)))
"""iBUG 68-point indices of each side's eye region: brow + eye (the subject's right side, then left)."""


class DataError(Exception):
    """A clip (or frame) that cannot be used; `reason_code` goes to the quarantine."""

    def __init__(self, reason_code: str, message: str):
        super().__init__(message)
        self.reason_code = reason_code


@dataclass
class DisCoHeadClip:
    """One clip's arrays at the model's image size."""

    clip_id: str
    frames: np.ndarray
    """(T, S, S, 3) uint8 aligned crops (the shards' crop256, resized to S)."""
    landmarks: np.ndarray
    """(T, 68, 2) float32 in crop pixels; NaN where unknown."""
    valid: np.ndarray
    """(T,) bool frames with a tracked face."""
    mel: np.ndarray
    """(T_mel, 80) float32 Wav2Lip mel of the clip's audio."""
    fps: float = 25.0
    speaker: str = ""
    inside: np.ndarray | None = None
    """(T, S, S) bool: pixels sampled inside the source frame (crop256's mask resized by
    `headflow.shards.geometry.resize_inside`); False is the edge smear of a tight source, left out of the
    reconstruction losses. None: every pixel is valid (shards written before the mask existed)."""

    def __post_init__(self) -> None:
        if self.inside is not None and self.inside.shape != self.frames.shape[:3]:
            raise ValueError(f"clip {self.clip_id}: inside must be {self.frames.shape[:3]} (T, S, S) like the frames, "
                             f"got {self.inside.shape}; resize it with headflow.shards.geometry.resize_inside")

    @property
    def n_frames(self) -> int:
        return len(self.frames)


def mel_centre(frame: int, fps: float) -> int:
    """The mel frame the window of video frame `frame` is centred on: int(80 frame / fps)."""
    return int(MEL_PER_SECOND * frame / fps)


def audio_window(mel: np.ndarray, frame: int, fps: float = 25.0, clip_id: str = "?") -> np.ndarray:
    """The (32, 80) mel window of 400 ms centred on video frame `frame` (module docstring).

    Raises:
        DataError("audio_window_off_clip"): the window runs off either end of the mel (never padded).
    """
    start = mel_centre(frame, fps) - AUDIO_WINDOW_MEL // 2
    if frame < 0 or start < 0 or start + AUDIO_WINDOW_MEL > len(mel):
        raise DataError("audio_window_off_clip", f"clip {clip_id}: the 400 ms audio window of frame {frame} is mel "
                        f"[{start}, {start + AUDIO_WINDOW_MEL}) but the mel has {len(mel)} frames; only frames in "
                        "audio_frame_range() have one")
    return mel[start:start + AUDIO_WINDOW_MEL]


def audio_frame_range(n_mel: int, fps: float = 25.0) -> tuple[int, int]:
    """[start, end): the video frames whose 400 ms window lies inside a mel of `n_mel` frames.

    Not capped by any video's length: the caller checks its drivers cover `end` (`frame_range`).
    """
    half = AUDIO_WINDOW_MEL // 2
    start = 0
    while mel_centre(start, fps) - half < 0:
        start += 1
    end = start
    while mel_centre(end, fps) + half <= n_mel:
        end += 1
    return start, max(start, end)


def frame_range(n_mel: int, n_driver: int, n_eyes: int, fps: float, audio_clip: str, driver_clip: str,
                eye_clip: str, own_audio: bool) -> tuple[int, int]:
    """The generated range [start, end) of one output: frames with a full audio window and both drivers.

    With the clip's own audio (reconstruction) the range stops at the clip's last frame, as every system's
    scored range does (`headflow.manifest.generated.scored_range`). With another clip's audio a head or eye
    driver shorter than the audio's range is an error, never a silent truncation.

    Raises:
        DataError("driver_shorter_than_audio" | "audio_too_short").
    """
    start, end = audio_frame_range(n_mel, fps)
    if own_audio:
        end = min(end, n_driver, n_eyes)
    else:
        for name, clip, n in (("head driver", driver_clip, n_driver), ("eye driver", eye_clip, n_eyes)):
            if n < end:
                raise DataError("driver_shorter_than_audio", f"{name} {clip} has {n} frames but the audio of "
                                f"{audio_clip} drives frames up to {end}; pick a longer driver or a shorter audio")
    if end <= start:
        raise DataError("audio_too_short", f"audio of {audio_clip}: {n_mel} mel frames give no frame a full 400 ms "
                        "window")
    return start, end


def eye_boxes(landmarks: np.ndarray, size: int, margin: float) -> np.ndarray:
    """Per side, the integer box [x0, y0, x1, y1) around the brow and eye landmarks, grown by `margin`.

    Args:
        landmarks: (68, 2) crop pixels.
        size: crop side (boxes are clipped to it).
        margin: fraction of the box's width/height added on every side.

    Returns:
        (2, 4) int64.

    Raises:
        DataError("no_eye_landmarks"): a brow or eye landmark is not finite.
    """
    boxes = np.zeros((2, 4), np.int64)
    for i, idx in enumerate(EYE_POINTS):
        pts = np.asarray(landmarks, np.float64)[list(idx)]
        if not np.isfinite(pts).all():
            raise DataError("no_eye_landmarks", "a brow or eye landmark is missing (NaN)")
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        pad = (hi - lo) * margin
        x0, y0 = np.floor(lo - pad).astype(np.int64)
        x1, y1 = np.ceil(hi + pad).astype(np.int64) + 1
        boxes[i] = np.clip([x0, y0, x1, y1], 0, size)
    return boxes


def mask_eyes(frame: np.ndarray, landmarks: np.ndarray, margin: float) -> np.ndarray:
    """The eye driver (section 2.3): `frame` with every pixel outside the two eye boxes set to 0.

    Args:
        frame: (S, S, 3) uint8.
        landmarks: (68, 2) in the frame's pixels.
        margin: see `eye_boxes`.

    Returns:
        (S, S, 3) uint8.

    Raises:
        DataError("no_eye_landmarks").
    """
    out = np.zeros_like(frame)
    for x0, y0, x1, y1 in eye_boxes(landmarks, frame.shape[0], margin):
        out[y0:y1, x0:x1] = frame[y0:y1, x0:x1]
    return out


def eyes_known(landmarks: np.ndarray) -> np.ndarray:
    """(T,) bool: frames whose brow and eye landmarks are all finite."""
    idx = [i for side in EYE_POINTS for i in side]
    return np.isfinite(np.asarray(landmarks)[:, idx]).all(axis=(1, 2))


def resize_clip(pixels: np.ndarray, landmarks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Crops resized to `size` (area interpolation) and their landmarks mapped with the same rule
    ((x + 0.5) k - 0.5, pixel centres at integers, as `headflow.shards.geometry.resize_transform`)."""
    import cv2

    from_size = pixels.shape[1]
    if from_size == size:
        return pixels, landmarks.astype(np.float32)
    frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in pixels]) if len(pixels) \
        else np.zeros((0, size, size, 3), np.uint8)
    k = size / from_size
    return frames, ((landmarks + 0.5) * k - 0.5).astype(np.float32)


def clip_from_shard(shard, image_size: int) -> DisCoHeadClip:
    """A `DisCoHeadClip` from a `headflow.shards.ClipShard` read with views ("crop256", "mel"), with crop256's
    validity mask (`resize_inside`: area + threshold) when the shard has one."""
    view = shard.crop256
    return clip_from_arrays(shard.clip_id, view.pixels, view.landmarks, shard.valid, shard.mel, image_size,
                            float(shard.fps), shard.speaker, view.mask)


def clip_from_arrays(clip_id: str, crop256: np.ndarray, landmarks: np.ndarray, valid: np.ndarray, mel: np.ndarray,
                     image_size: int, fps: float = 25.0, speaker: str = "", inside: np.ndarray | None = None
                     ) -> DisCoHeadClip:
    """A `DisCoHeadClip` from aligned crops cut outside the shards (e.g. `headflow.shards.cut.cut_views` on a
    video the faces stage tracked: the GRID bench), with the same rules as `clip_from_shard`.

    Args:
        crop256: (T, S0, S0, 3) uint8 aligned crops.
        landmarks: (T, 68, 2) in crop pixels (NaN where unknown).
        valid: (T,) bool frames with a tracked face; a frame with a non-finite landmark is made invalid.
        mel: (T_mel, 80) Wav2Lip mel of the clip's audio.
        image_size: the model's side (crops and landmarks resized by `resize_clip`).
        inside: (T, S0, S0) crop pixels sampled inside the source frame (`resize_inside`), or None (all valid).
    """
    from headflow.shards.geometry import resize_inside

    frames, lm = resize_clip(np.asarray(crop256), np.asarray(landmarks), image_size)
    valid = np.asarray(valid, bool) & np.isfinite(landmarks).all(axis=(1, 2))
    return DisCoHeadClip(clip_id, frames, lm, valid, np.asarray(mel, np.float32), float(fps), speaker,
                         resize_inside(None if inside is None else np.asarray(inside, bool), image_size))


def usable_frames(clip: DisCoHeadClip) -> np.ndarray:
    """Frames that can be a training driver: a face, eye landmarks and a full audio window."""
    start, end = audio_frame_range(len(clip.mel), clip.fps)
    ok = clip.valid & eyes_known(clip.landmarks)
    ok[:start] = False
    ok[min(end, len(ok)):] = False
    return np.flatnonzero(ok)


class DisCoHeadFrames(Dataset):
    """`samples_per_epoch` (source, driver) pairs drawn uniformly over the usable frames of the clips.

    The draw depends only on (seed, epoch) (`set_epoch`), so a resumed run sees the same samples.
    Items: {"source", "driver", "eyes": (S, S, 3) uint8, "mel": (32, 80) float32, "inside": (S, S) bool, the
    driver's (= target's) validity mask, all True for a clip without one}.

    Raises:
        DataError("no_usable_frames"): no clip has a usable frame.
    """

    def __init__(self, clips: list[DisCoHeadClip], params: DataParams, samples: int, seed: int = 0):
        self.clips, self.params, self.samples, self.seed = clips, params, samples, seed
        self.usable = [usable_frames(c) for c in clips]
        self.sources = [np.flatnonzero(c.valid) for c in clips]
        self.pairs = [(i, int(f)) for i, u in enumerate(self.usable) for f in u]
        if not self.pairs:
            raise DataError("no_usable_frames", f"none of {len(clips)} clips has a frame with a face, eye landmarks "
                            "and a full 400 ms audio window")
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        rng = np.random.default_rng([self.seed, epoch])
        picks = rng.integers(0, len(self.pairs), self.samples)
        self.draw = [(*self.pairs[k], float(rng.random())) for k in picks]

    def __len__(self) -> int:
        return self.samples

    def __getitem__(self, i: int) -> dict:
        ci, f, u = self.draw[i]
        clip = self.clips[ci]
        sources = self.sources[ci]
        s = int(sources[0]) if self.params.source == "first" else int(sources[min(int(u * len(sources)), len(sources) - 1)])
        return {"source": torch.from_numpy(clip.frames[s]), "driver": torch.from_numpy(clip.frames[f]),
                "eyes": torch.from_numpy(mask_eyes(clip.frames[f], clip.landmarks[f], self.params.eye_margin)),
                "mel": torch.from_numpy(np.ascontiguousarray(audio_window(clip.mel, f, clip.fps, clip.clip_id))),
                "inside": torch.from_numpy(clip.inside[f]) if clip.inside is not None
                else torch.ones(clip.frames.shape[1:3], dtype=torch.bool)}


def prepare_batch(batch: dict) -> dict:
    """A collated uint8 batch -> float images (B, 3, S, S) in [0, 1], the mel (B, 32, 80) and, when the batch
    has one, the driver's validity mask "inside" (B, 1, S, S) bool (absent: every pixel valid)."""
    out = {"source": to_tensor_t(batch["source"]), "driver": to_tensor_t(batch["driver"]),
           "eyes": to_tensor_t(batch["eyes"]), "mel": batch["mel"].float()}
    if "inside" in batch:
        out["inside"] = batch["inside"].bool().unsqueeze(-3)
    return out


def to_tensor_t(frames: torch.Tensor) -> torch.Tensor:
    """(..., S, S, 3) uint8 tensor -> (..., 3, S, S) float in [0, 1] (on its device)."""
    return frames.movedim(-1, -3).float().div(255.0)
