"""Mel spectrogram: known answers for shape, window indexing, normalisation; an independent reference."""

import numpy as np
import pytest

from headflow.audio.mel import WAV2LIP, mel_spectrogram, mel_window, mel_window_start, valid_window_frames


def _reference_mel(wav):
    """Wav2Lip's recipe written out with plain numpy (hann window, reflect-padded centred frames)."""
    import librosa

    y = np.append(wav[0], wav[1:] - 0.97 * wav[:-1])              # pre-emphasis, lfilter([1, -k], [1])
    pad = 400
    yp = np.pad(y, pad, mode="reflect")
    n = 1 + len(y) // 200
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(800) / 800)  # periodic hann, as scipy/librosa
    frames = np.stack([yp[i * 200:i * 200 + 800] * window for i in range(n)])
    spec = np.abs(np.fft.rfft(frames, axis=1)).T                    # (401, n)
    basis = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    db = 20 * np.log10(np.maximum(1e-5, basis @ spec)) - 20
    return np.clip(8 * (db + 100) / 100 - 4, -4, 4).T


def test_shape_is_80_frames_per_second_plus_one():
    mel = mel_spectrogram(np.zeros(16000, np.float32))
    assert mel.shape == (81, 80) and mel.dtype == np.float32     # 1 + 16000 // 200


def test_silence_is_the_floor_and_a_full_scale_tone_stays_in_range():
    assert np.all(mel_spectrogram(np.zeros(8000)) == -4.0)       # -120 dB -> -5.6 -> clipped at -4
    tone = np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000)
    mel = mel_spectrogram(tone)
    assert 2.5 < mel.max() <= 4.0 and mel.min() >= -4.0        # full-scale 1 kHz: ~3.07
    import librosa

    centres = librosa.mel_frequencies(n_mels=82, fmin=55, fmax=7600)[1:-1]
    assert abs(centres[mel[40].argmax()] - 1000) < 60              # energy lands in the 1 kHz band


def test_matches_an_independent_implementation():
    rng = np.random.default_rng(0)
    t = np.arange(12000) / 16000
    wav = 0.05 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.003 * rng.normal(size=len(t))
    np.testing.assert_allclose(mel_spectrogram(wav), _reference_mel(wav), atol=2e-4)


def test_window_indexing_follows_wav2lip():
    # int(80 * f / 25): frames 0, 1, 2, 5, 25 start at mel frames 0, 3, 6, 16, 80.
    assert [mel_window_start(f) for f in (0, 1, 2, 5, 25)] == [0, 3, 6, 16, 80]
    mel = np.arange(100 * 80, dtype=np.float32).reshape(100, 80)
    np.testing.assert_array_equal(mel_window(mel, 1), mel[3:19])
    assert mel_window(mel, 1).shape == (WAV2LIP.window_frames, 80)


def test_edge_windows_are_an_error_not_zero_padding():
    mel = np.zeros((81, 80), np.float32)                           # 1 s of audio, 25 video frames
    assert valid_window_frames(81, 25) == 21                       # frame 20 starts at 64: 64 + 16 = 80 <= 81
    mel_window(mel, 20)
    with pytest.raises(IndexError, match="valid_window_frames"):
        mel_window(mel, 21)
    with pytest.raises(IndexError):
        mel_window(mel, -1)
