"""The Wav2Lip-compatible mel spectrogram, and the window of it that belongs to each video frame.

Matches Wav2Lip's `audio.melspectrogram` with its `hparams` (sr 16000, n_fft 800, hop 200, win 800,
80 mels, fmin 55, fmax 7600, pre-emphasis 0.97, ref level 20 dB, min level -100 dB, symmetric
normalisation to [-4, 4] with clipping), so experts and generators trained on it are comparable
with the published ones. Wav2Lip used librosa 0.7, whose STFT padded by reflection; librosa 0.10+
pads with zeros by default, so the padding mode is set explicitly.

Why our own code: only librosa's STFT and mel basis are reused; the rest (pre-emphasis, dB with
Wav2Lip's reference level, its symmetric clipped normalisation) is Wav2Lip's own `audio.py` recipe,
which no library function reproduces, and any other mel would shift every input a Wav2Lip-style
expert or generator was trained on.

Frames: 16000 / 200 = 80 mel frames per second. Video frame f (at `fps`) owns
`mel[int(80 * f / fps) : int(80 * f / fps) + 16]`: 16 mel frames = 0.2 s starting at the frame.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter


@dataclass(frozen=True)
class MelConfig:
    sample_rate: int = 16000
    n_fft: int = 800
    hop: int = 200
    win: int = 800
    n_mels: int = 80
    fmin: float = 55.0
    fmax: float = 7600.0
    preemphasis: float = 0.97
    ref_level_db: float = 20.0
    min_level_db: float = -100.0
    max_abs_value: float = 4.0
    window_frames: int = 16   # mel frames per video-frame window (0.2 s)

    @property
    def mel_fps(self) -> float:
        return self.sample_rate / self.hop


WAV2LIP = MelConfig()


@functools.lru_cache(maxsize=4)
def _mel_basis(cfg: MelConfig) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax)


def mel_spectrogram(wav: np.ndarray, cfg: MelConfig = WAV2LIP) -> np.ndarray:
    """(T_mel, n_mels) float32 in [-max_abs_value, max_abs_value] from mono float audio at cfg.sample_rate.

    T_mel = 1 + len(wav) // hop (centred STFT).
    """
    import librosa

    wav = np.asarray(wav, dtype=np.float64)
    if wav.ndim != 1:
        raise ValueError(f"mel_spectrogram expects mono audio (n,), got shape {wav.shape}")
    emphasised = lfilter([1, -cfg.preemphasis], [1], wav)
    spec = np.abs(librosa.stft(y=emphasised, n_fft=cfg.n_fft, hop_length=cfg.hop, win_length=cfg.win,
                               center=True, pad_mode="reflect"))
    mel = _mel_basis(cfg) @ spec
    min_level = np.exp(cfg.min_level_db / 20 * np.log(10))
    db = 20 * np.log10(np.maximum(min_level, mel)) - cfg.ref_level_db
    m = cfg.max_abs_value
    norm = np.clip(2 * m * (db - cfg.min_level_db) / (-cfg.min_level_db) - m, -m, m)
    return norm.T.astype(np.float32)


def mel_window_start(frame: int, fps: float = 25.0, cfg: MelConfig = WAV2LIP) -> int:
    """First mel frame of video frame `frame`'s window: int(mel_fps * frame / fps)."""
    return int(cfg.mel_fps * frame / fps)


def valid_window_frames(n_mel: int, n_video_frames: int, fps: float = 25.0, cfg: MelConfig = WAV2LIP) -> int:
    """How many leading video frames have a complete window (the rest would run off the audio)."""
    n = 0
    while n < n_video_frames and mel_window_start(n, fps, cfg) + cfg.window_frames <= n_mel:
        n += 1
    return n


def mel_window(mel: np.ndarray, frame: int, fps: float = 25.0, cfg: MelConfig = WAV2LIP) -> np.ndarray:
    """The (window_frames, n_mels) window of video frame `frame`.

    Raises:
        IndexError: when the window runs off either end of the spectrogram. Edge windows are never
            zero-padded silently; callers decide (skip the frame, or pad explicitly and say so).
    """
    start = mel_window_start(frame, fps, cfg)
    if frame < 0 or start + cfg.window_frames > len(mel):
        raise IndexError(f"mel window of video frame {frame} is [{start}, {start + cfg.window_frames}) but the "
                         f"spectrogram has {len(mel)} frames; use valid_window_frames() to stay inside")
    return mel[start:start + cfg.window_frames]
