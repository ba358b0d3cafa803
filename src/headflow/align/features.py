"""Acoustic features for the builtin aligner: MFCCs with deltas, normalised per utterance (CMVN)."""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000


def mfcc_features(wav: np.ndarray, shift_ms: float = 10.0, win_ms: float = 25.0, n_mfcc: int = 13,
                  sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(T, 3 * n_mfcc) float32: MFCC (c0 included) + delta + delta-delta, per-utterance mean/variance
    normalised. Frame t is centred at t * shift (librosa's centred STFT), so it stands for the span
    [(t - 0.5) * shift, (t + 0.5) * shift); T = 1 + len(wav) // hop.
    """
    import librosa

    hop = int(round(sample_rate * shift_ms / 1000))
    win = int(round(sample_rate * win_ms / 1000))
    wav = np.asarray(wav, dtype=np.float32)
    wav = np.append(wav[:1], wav[1:] - 0.97 * wav[:-1])  # pre-emphasis
    n_fft = 1 << (win - 1).bit_length()
    mfcc = librosa.feature.mfcc(y=wav, sr=sample_rate, n_mfcc=n_mfcc, n_fft=n_fft, hop_length=hop, win_length=win,
                                n_mels=40, fmin=20.0, fmax=sample_rate / 2 - 200, center=True, pad_mode="reflect")
    feats = [mfcc, _delta(mfcc), _delta(_delta(mfcc))]
    x = np.concatenate(feats, axis=0).T
    mu, sd = x.mean(0), x.std(0)
    return ((x - mu) / np.maximum(sd, 1e-3)).astype(np.float32)


def _delta(c: np.ndarray, width: int = 2) -> np.ndarray:
    """HTK-style regression deltas over +-width frames (edges repeated), shape kept: (D, T)."""
    padded = np.pad(c, ((0, 0), (width, width)), mode="edge")
    n = c.shape[1]
    num = sum(k * (padded[:, width + k:width + k + n] - padded[:, width - k:width - k + n]) for k in range(1, width + 1))
    return num / (2 * sum(k * k for k in range(1, width + 1)))


def speech_region(wav: np.ndarray, shift_ms: float = 10.0, n_frames: int | None = None,
                  sample_rate: int = SAMPLE_RATE, floor_db: float = 35.0) -> tuple[int, int]:
    """[first, last) frames whose energy is within `floor_db` of the loudest frame (a crude VAD, used only
    to place the flat start). Returns (0, n_frames) when nothing stands out."""
    hop = int(round(sample_rate * shift_ms / 1000))
    n = n_frames if n_frames is not None else 1 + len(wav) // hop
    pad = np.pad(np.asarray(wav, np.float64), (hop, hop + hop * 2))
    energy = np.array([np.mean(pad[t * hop:t * hop + 2 * hop] ** 2) for t in range(n)])
    db = 10 * np.log10(energy + 1e-12)
    loud = np.flatnonzero(db > db.max() - floor_db)
    if len(loud) == 0:
        return 0, n
    return int(loud[0]), int(loud[-1]) + 1
