"""The frame-level phone recogniser on a synthetic task: each phone lights its own mel band."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_cmvn_matches_the_sync_experts_definition_and_removes_band_offsets_and_gain():
    import torch

    from headflow.generators.styletalk.recognizer import cmvn_mel
    from headflow.sync.data import cmvn_mel as sync_cmvn

    mel = np.random.default_rng(0).normal(0, 1, (50, 80)).astype(np.float32)
    np.testing.assert_allclose(cmvn_mel(mel), sync_cmvn(mel), atol=1e-6)
    # a recording's level and spectral tilt: a per-band offset and a gain; CMVN (x - mean_band) / std cancels both
    # (up to the 1e-3 in the denominator)
    shifted = 1.7 * mel + np.linspace(-2, 2, 80, dtype=np.float32)[None]
    np.testing.assert_allclose(cmvn_mel(shifted), cmvn_mel(mel), atol=2e-3)
    torch.manual_seed(0)
    net = train_recognizer([_clip(0)], steps=1, batch=4, width=8, cmvn=True)
    a, _ = recognise(net, mel, 10)
    b, _ = recognise(net, shifted, 10)
    assert np.array_equal(a, b)


def test_spec_augment_masks_one_band_and_one_span_with_the_window_mean():
    import torch

    from headflow.generators.styletalk.recognizer import spec_augment

    x = torch.arange(2 * 80 * 16, dtype=torch.float32).reshape(2, 80, 16)
    assert spec_augment(x, 0, 0, np.random.default_rng(0)) is x
    y = spec_augment(x, 10, 4, np.random.default_rng(1))
    for b in range(2):
        changed = y[b] != x[b]
        mean = x[b].mean()
        assert torch.all(y[b][changed] == mean)
        rows = changed.all(1).nonzero().flatten().tolist()      # masked bands span all 16 frames
        cols = changed.all(0).nonzero().flatten().tolist()      # masked frames span all 80 bands
        assert len(rows) <= 10 and len(cols) <= 4
        assert rows == list(range(rows[0], rows[0] + len(rows))) if rows else True
        # every changed cell lies in the masked band or the masked span
        assert torch.all(changed == (changed.all(1, keepdim=True) | changed.all(0, keepdim=True)))
    assert torch.equal(x, torch.arange(2 * 80 * 16, dtype=torch.float32).reshape(2, 80, 16))   # input untouched


def test_exported_recogniser_loads_and_labels_the_same(tmp_path):
    import pytest
    import torch

    from headflow.generators.styletalk.recognizer import load_recognizer, save_recognizer

    net = train_recognizer([_clip(0)], steps=3, batch=8, width=8, cmvn=True)
    sha = save_recognizer(net, tmp_path / "recognizer.pt", {"train_frames": 60})
    back, meta = load_recognizer(tmp_path / "recognizer.pt")
    assert len(sha) == 64 and meta == {"train_frames": 60} and back.cmvn and back.width == 8
    clip = _clip(5)
    assert np.array_equal(recognise(net, clip.mel, 60)[0], recognise(back, clip.mel, 60)[0])
    torch.save({"format": "other"}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a phone recogniser"):
        load_recognizer(tmp_path / "x.pt")
    with pytest.raises(FileNotFoundError, match="train_styletalk_disc"):
        load_recognizer(tmp_path / "missing.pt")


def test_noise_floor_adds_in_power_known_answers():
    from headflow.generators.styletalk.recognizer import add_noise_floor, noisy_copies

    rng = np.random.default_rng(0)
    mel = np.array([[-4.0, -2.0, 4.0]] * 2, np.float32)
    out = add_noise_floor(mel, level=-2.0, tilt=0.0, rng=rng, jitter=0.0)
    # digital silence (-4 = -100 dB) under a -2 floor (-75 dB) reads the floor: 10 log10(10^-10 + 10^-7.5) dB
    np.testing.assert_allclose(out[:, 0], -2.0 + 10 * np.log10(1 + 10 ** -2.5) / 12.5, atol=1e-5)
    # equal amplitudes add to +3.01 dB (power doubles): -2 + 10 log10(2) / 12.5 = -1.7592
    np.testing.assert_allclose(out[:, 1], -2.0 + 10 * np.log10(2) / 12.5, atol=1e-5)
    np.testing.assert_allclose(out[:, 2], 4.0, atol=1e-6)        # 75 dB above the floor: unchanged (clipped at 4)
    tilted = add_noise_floor(np.full((1, 80), -4.0, np.float32), -2.0, 1.0, rng, jitter=0.0)[0]
    # tilt 1: the floor runs from -2.5 (band 0) to -1.5 (band 79); -4 beneath adds 10 log10(1 + 10^(-12.5 d / 10)) dB
    floor = lambda f: f + 10 * np.log10(1 + 10 ** (-12.5 * (f + 4) / 10)) / 12.5  # noqa: E731
    assert tilted[0] == pytest.approx(floor(-2.5), abs=1e-5) and tilted[-1] == pytest.approx(floor(-1.5), abs=1e-5)
    clips = noisy_copies([_clip(0)], 2, (-3.0, -1.5), np.random.default_rng(1))
    assert len(clips) == 2 and all(c.mel.min() >= -3.6 for c in clips) and clips[0].phones is not None
