"""The frame-level phone recogniser on a synthetic task: each phone lights its own mel band."""

from __future__ import annotations

import numpy as np

from headflow.generators.styletalk.recognizer import LabelledAudio, frame_accuracy, mel_windows, recognise, \
    train_recognizer


def _clip(seed: int, n_frames: int = 60) -> LabelledAudio:
    rng = np.random.default_rng(seed)
    classes = np.array([2, 9, 17, 31, 40])
    phones = np.repeat(rng.choice(classes, n_frames), rng.integers(4, 8, n_frames))[:n_frames]
    n_mel = int(80 * n_frames / 25) + 16
    mel = rng.normal(0, 0.3, (n_mel, 80)).astype(np.float32)
    for m in range(n_mel):                      # mel frame m lies in video frame floor(m * 25 / 80)
        f = min(int(m * 25 / 80), n_frames - 1)
        band = int(np.flatnonzero(classes == phones[f])[0]) * 16
        mel[m, band:band + 16] += 2.0
    return LabelledAudio(mel, phones, np.ones(n_frames, bool))


def test_mel_windows_follow_the_wav2lip_rule_and_never_pad():
    mel = np.arange(100 * 80, dtype=np.float32).reshape(100, 80)
    x, f = mel_windows(mel, 40)
    # frame t starts at int(80 t / 25); the last full window starts <= 84: t <= 26
    assert f.tolist() == list(range(27))
    assert x.shape == (27, 80, 16) and np.array_equal(x[10][0], mel[32:48, 0])     # band 0 over time


def test_recogniser_learns_a_synthetic_phone_task():
    train = [_clip(s) for s in range(6)]
    held = [_clip(100 + s) for s in range(2)]
    net = train_recognizer(train, steps=150, batch=32, width=16)
    acc = frame_accuracy(net, held)
    assert acc > 0.8, acc                      # chance is 0.2 (5 phones); window edges mix neighbours
    labels, valid = recognise(net, held[0].mel, 60)
    assert valid.sum() == len(mel_windows(held[0].mel, 60)[1])
    assert (labels[valid] == held[0].phones[valid]).mean() > 0.8
