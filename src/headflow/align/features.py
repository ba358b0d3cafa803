"""Acoustic features for the builtin aligner: MFCCs with deltas, normalised per utterance (CMVN)."""

from __future__ import annotations

import functools

import numpy as np
from scipy.fft import dct
from scipy.signal import butter, sosfiltfilt

SAMPLE_RATE = 16000
DIGITAL_SILENCE_DB = -100.0
"""Frames whose mean power is below this (dB re full scale 1.0) are digital silence (samples ~0)."""


def mfcc_features(wav: np.ndarray, shift_ms: float = 10.0, win_ms: float = 25.0, n_mfcc: int = 13,
                  sample_rate: int = SAMPLE_RATE, n_mels: int = 40, dither_seed: int = 0) -> np.ndarray:
    """(T, 3 * n_mfcc) float32: MFCC (c0 included) + delta + delta-delta, per-utterance mean/variance
    normalised. Frame t is centred at t * shift (reflect-padded like librosa's centred STFT), so it
    stands for the span [(t - 0.5) * shift, (t + 0.5) * shift); T = 1 + len(wav) // hop.

    Plain numpy (Hamming window, HTK-style triangular mel filters 120 Hz - 7.8 kHz, log, DCT-II): importing
    librosa alone costs ~2.5 s, more than aligning a minute of speech.
    """
    hop = int(round(sample_rate * shift_ms / 1000))
    win = int(round(sample_rate * win_ms / 1000))
    x = highpass(np.asarray(wav, dtype=np.float64), sample_rate)
    x = np.append(x[:1], x[1:] - 0.97 * x[:-1])  # pre-emphasis
    x = x + np.random.default_rng(dither_seed).normal(0, 1e-4, len(x))  # dither: digital silence is not a spectrum
    n_frames = 1 + len(x) // hop
    half = win // 2
    x = np.pad(x, (half, half + win), mode="reflect" if len(x) > half + win else "constant")
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop][:n_frames]
    n_fft = 1 << (win - 1).bit_length()
    power = np.abs(np.fft.rfft(frames * np.hamming(win), n=n_fft)) ** 2
    logmel = np.log(power @ _mel_filters(sample_rate, n_fft, n_mels).T + 1e-8)
    mfcc = dct(logmel, type=2, norm="ortho", axis=1)[:, :n_mfcc].T
    feats = np.concatenate([mfcc, _delta(mfcc), _delta(_delta(mfcc))], axis=0).T
    mu, sd = feats.mean(0), feats.std(0)
    return ((feats - mu) / np.maximum(sd, 1e-3)).astype(np.float32)


def highpass(x: np.ndarray, sample_rate: int = SAMPLE_RATE, cutoff_hz: float = 120.0) -> np.ndarray:
    """Zero-phase 4th-order Butterworth high-pass: mains hum and rumble (often louder than the speech in
    real recordings' pauses) would otherwise make silence look like speech."""
    if len(x) < 64:
        return x
    return sosfiltfilt(_highpass_sos(sample_rate, cutoff_hz), x)


@functools.lru_cache(maxsize=4)
def _highpass_sos(sample_rate: int, cutoff_hz: float) -> np.ndarray:
    return butter(4, cutoff_hz, "highpass", fs=sample_rate, output="sos")


@functools.lru_cache(maxsize=8)
def _mel_filters(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 120.0, fmax: float = 7800.0) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters equally spaced on the HTK mel scale."""
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    hz = 700 * (10 ** (np.linspace(mel(fmin), mel(min(fmax, sample_rate / 2)), n_mels + 2) / 2595) - 1)
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    lo, mid, hi = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    return np.maximum(0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))


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


def frame_levels(wav: np.ndarray, n: int, shift_ms: float = 10.0,
                 sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, float, float]:
    """(db (n,), floor, top): each frame's high-passed energy in dB (a 2-hop window starting half a hop
    before the frame's span) and the recording's floor and top, the 5th and 95th percentiles of the
    frames that are not digital silence (floor = top = -inf when every frame is)."""
    hop = int(round(sample_rate * shift_ms / 1000))
    x = np.pad(highpass(np.asarray(wav, np.float64), sample_rate), (hop, 3 * hop))
    frames = np.lib.stride_tricks.sliding_window_view(x, 2 * hop)[::hop][:n]
    db = 10 * np.log10(np.mean(frames ** 2, 1) + 1e-12)
    live = db[db > DIGITAL_SILENCE_DB]
    if len(live) == 0:
        return db, -np.inf, -np.inf
    # digital silence (exact zeros, as editors insert) is quiet but must not set the floor: the floor is the
    # recording's own background, else the room tone between words would count as speech
    return db, float(np.percentile(live, 5)), float(np.percentile(live, 95))


def quiet_frames(wav: np.ndarray, n: int, shift_ms: float = 10.0, sample_rate: int = 16000) -> np.ndarray:
    """(n,) bool: frames whose high-passed energy is in the bottom 30% of the utterance's dB range (the range
    between the 5th and 95th percentiles of the frames that are not digital silence; digital silence is quiet)."""
    db, floor, top = frame_levels(wav, n, shift_ms, sample_rate)
    if not np.isfinite(floor):
        return np.ones(len(db), bool)
    return db < floor + 0.3 * (top - floor)


def loud_frames(wav: np.ndarray, n: int, shift_ms: float = 10.0, level: float = 0.6,
                sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(n,) bool: frames whose high-passed energy is above `level` (0-1) of the way from the recording's
    floor to its top (frame_levels): clearly speech, never a pause. None when every frame is digital silence."""
    db, floor, top = frame_levels(wav, n, shift_ms, sample_rate)
    if not np.isfinite(floor):
        return np.zeros(len(db), bool)
    return db > floor + level * (top - floor)


def pause_frames(wav: np.ndarray, n: int, shift_ms: float = 10.0, min_ms: float = 150.0, gap_ms: float = 0.0,
                 long_ms: float = 500.0, long_weight: float = 1.0, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(n,) float weights of voice-activity detection for the silence model: 0 for speech; 1 for frames in
    runs of quiet frames (`quiet_frames`) lasting at least `min_ms`, `long_weight` in runs of at least
    `long_ms`. Louder blips of at most `gap_ms` between quiet frames (clicks, lip smacks, breath peaks in
    a pause) are bridged first. Shorter quiet stretches stay 0: stop closures and weak consonants inside
    words are quiet for 30-120 ms."""
    q = quiet_frames(wav, n, shift_ms, sample_rate)
    gap = int(gap_ms // shift_ms)
    if gap > 0:
        loud = np.r_[False, ~q, False]
        edges = np.flatnonzero(loud[1:] != loud[:-1]).reshape(-1, 2)
        for a, b in edges:
            if b - a <= gap and a > 0 and b < n:
                q[a:b] = True
    q = np.r_[False, q, False]
    edges = np.flatnonzero(q[1:] != q[:-1]).reshape(-1, 2)
    out = np.zeros(n, np.float64)
    for a, b in edges:
        if (b - a) * shift_ms >= min_ms:
            out[a:b] = long_weight if (b - a) * shift_ms >= long_ms else 1.0
    return out
