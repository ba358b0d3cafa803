"""Audio-visual sync scores of a clip with a lip-sync expert: LSE-D, LSE-C and the offset.

Definitions follow syncnet_python (Chung & Zisserman 2016; as used by Wav2Lip's LSE metrics): embed
every video window and every audio window, compute for each audio-video offset k in [-K, K] the mean
distance between video window t and audio window t + k, then
    LSE-D  = min_k mean_dist(k)              (lower = better sync)
    LSE-C  = median_k mean_dist(k) - LSE-D   (confidence: higher = clearer sync)
    offset = argmin_k mean_dist(k)           (frames; > 0 means the audio lags the video)
    offset_subframe = offset + the vertex of the parabola through mean_dist at offset-1, offset, offset+1
                      (frames, in [offset - 0.5, offset + 0.5]; ours, not syncnet_python's: a clip
                      recorded 0.5 frame off lands on either integer offset, so comparing integer
                      offsets of a shifted copy and the original can be off by one for a correct expert)
Unlike syncnet_python, the audio is never zero-padded at the edges: each offset averages only the
pairs that exist, and a clip with fewer than `min_pairs` pairs at some offset is reported as too
short instead of being scored on padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from headflow.sync.data import ClipArrays, audio_window, face_window, prepare_clip
from headflow.nn.expert import SyncExpert


@dataclass(frozen=True)
class SyncScore:
    lse_d: float
    lse_c: float
    offset: int
    n_video_windows: int
    mean_dist: np.ndarray      # (2K+1,) mean distance per offset, offsets -K..K
    max_offset: int
    offset_subframe: float = float("nan")   # frames; see subframe_offset


def subframe_offset(mean_dist: np.ndarray, max_offset: int) -> float:
    """The offset of the minimum of `mean_dist` refined by parabolic interpolation, in frames.

    Args:
        mean_dist: (2K+1,) mean distance per offset -K..K (`offset_distances`).
        max_offset: K.

    Returns:
        argmin - K + delta with delta = (d[i-1] - d[i+1]) / (2 (d[i-1] - 2 d[i] + d[i+1])), the vertex
        of the parabola through the minimum and its two neighbours, so |delta| <= 0.5. At either end of
        the scan, or where the three points are collinear, delta = 0 (the integer offset).

    The standard three-point sub-sample peak estimate (as in time-delay estimation by
    cross-correlation); the distance curve of a real recording is near-parabolic within +-1 frame of
    its minimum, since each window spans 5 frames.
    """
    i = int(np.argmin(mean_dist))
    delta = 0.0
    if 0 < i < len(mean_dist) - 1:
        a, b, c = (float(x) for x in mean_dist[i - 1:i + 2])
        curvature = a - 2 * b + c
        if curvature > 0:
            delta = float(np.clip(0.5 * (a - c) / curvature, -0.5, 0.5))
    return i - max_offset + delta


class ClipTooShort(ValueError):
    """Not enough windows to score every offset."""


@torch.no_grad()
def embed_clip(model: SyncExpert, clip: ClipArrays, batch_size: int = 64,
               device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of every complete video window (T-4, E) and audio window (frames with a full mel window, E)."""
    from headflow.audio.mel import valid_window_frames

    model.eval()
    clip = prepare_clip(model, clip)   # whole-clip centring, exactly as in training
    n_video = max(len(clip.mouths) - 4, 0)
    n_audio = valid_window_frames(len(clip.mel), len(clip.mouths), clip.fps)

    def run(fn, items) -> np.ndarray:
        out = []
        for i in range(0, len(items), batch_size):
            out.append(fn(torch.from_numpy(np.stack(items[i:i + batch_size])).to(device)).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, model.embedding_size), np.float32)

    video = run(model.embed_face, [face_window(clip, f) for f in range(n_video)])
    audio = run(model.embed_audio, [audio_window(clip, f) for f in range(n_audio)])
    return video, audio


def offset_distances(video: np.ndarray, audio: np.ndarray, max_offset: int = 15,
                     min_pairs: int = 5) -> np.ndarray:
    """Mean Euclidean distance between video window t and audio window t + k, for k = -K..K.

    Raises:
        ClipTooShort: when some offset has fewer than `min_pairs` (t, t + k) pairs.
    """
    out = np.empty(2 * max_offset + 1)
    for i, k in enumerate(range(-max_offset, max_offset + 1)):
        t0, t1 = max(0, -k), min(len(video), len(audio) - k)
        if t1 - t0 < min_pairs:
            raise ClipTooShort(f"only {max(t1 - t0, 0)} video/audio window pairs at offset {k:+d} "
                               f"(need {min_pairs}); the clip is too short for a +-{max_offset} frame scan")
        out[i] = np.linalg.norm(video[t0:t1] - audio[t0 + k:t1 + k], axis=1).mean()
    return out


def score_distances(mean_dist: np.ndarray, n_video_windows: int, max_offset: int) -> SyncScore:
    best = int(np.argmin(mean_dist))
    lse_d = float(mean_dist[best])
    return SyncScore(lse_d=lse_d, lse_c=float(np.median(mean_dist) - lse_d), offset=best - max_offset,
                     n_video_windows=n_video_windows, mean_dist=mean_dist, max_offset=max_offset,
                     offset_subframe=subframe_offset(mean_dist, max_offset))


def score_clip(model: SyncExpert, clip: ClipArrays, max_offset: int = 15, min_pairs: int = 5,
               device: str = "cpu") -> SyncScore:
    """LSE-D, LSE-C and offset of one clip (see the module docstring)."""
    video, audio = embed_clip(model, clip, device=device)
    return score_distances(offset_distances(video, audio, max_offset, min_pairs), len(video), max_offset)


def shift_audio(clip: ClipArrays, frames: int) -> ClipArrays:
    """The same clip with its audio delayed by `frames` video frames (> 0: audio lags; < 0: leads).

    The spectrogram is shifted by whole mel frames (80/25 = 3.2 per video frame, rounded) and the
    vacated part is filled with the spectrogram's silence floor, not zeros of the normalised scale.
    """
    n = int(round(frames * 80 / clip.fps))
    floor = float(clip.mel.min())
    mel = np.full_like(clip.mel, floor)
    if n >= 0:
        mel[n:] = clip.mel[:len(mel) - n]
    else:
        mel[:n] = clip.mel[-n:]
    return ClipArrays(clip.clip_id, clip.mouths, mel, clip.valid, clip.fps)
