"""The style classifier trained on real sequences only (issue 18): features, speaker centring, accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from headflow.generators.styletalk.style_classifier import EPS, StyleClassifier, sequence_features


def test_sequence_features_known_answer():
    # mode 0 alternates 0, 1, 0, 1: mean 0.5, std 0.5, |change| 1 every frame; mode 1 is constant 2:
    # mean 2, std 0, change 0 -> log(EPS)
    exp = np.array([[0, 2], [1, 2], [0, 2], [1, 2]], np.float32)
    f = sequence_features(exp)
    assert np.allclose(f, [0.5, 2.0, np.log(0.5 + EPS), np.log(EPS), np.log(1 + EPS), np.log(EPS)])
    assert np.allclose(sequence_features(exp, modes=[0]), [0.5, np.log(0.5 + EPS), np.log(1 + EPS)])
    # invalid frames are left out: frames 0, 1 only -> mean 0.5, std 0.5, one change of 1
    assert np.allclose(sequence_features(exp, [0], np.array([1, 1, 0, 0], bool)),
                       [0.5, np.log(0.5 + EPS), np.log(1 + EPS)])
    with pytest.raises(ValueError, match="2 consecutive valid frames"):
        sequence_features(exp, [0], np.array([1, 0, 1, 0], bool))


def _clip(rng, amplitude: float, offset: float, n: int = 60) -> np.ndarray:
    """Mode 0: a speech-like oscillation of `amplitude` around `offset`; mode 1: small noise."""
    t = np.arange(n)
    x0 = offset + amplitude * np.sin(t * rng.uniform(0.5, 0.9) + rng.uniform(0, 6)) + 0.01 * rng.standard_normal(n)
    return np.stack([x0, 0.05 * rng.standard_normal(n)], 1)


def _speaker(rng, name: str, base: float, offset: float, per_style: int = 4):
    """"calm" clips articulate at 0.5 x the speaker's base amplitude, "lively" ones at 1.5 x."""
    exps, styles = [], []
    for style, gain in (("calm", 0.5), ("lively", 1.5)):
        for _ in range(per_style):
            exps.append(_clip(rng, gain * base, offset))
            styles.append(style)
    return exps, styles, [name] * len(exps)


def test_a_held_out_speaker_is_classified_by_its_articulation_relative_to_itself():
    # Known separating feature: log std of mode 0 is log(base) + log(0.5) or + log(1.5) (up to the sine's
    # constant), so relative to the speaker's centre the two styles sit at -+log(3)/2, whatever the speaker.
    # The held-out speaker articulates 4x more than any training speaker: its calm clips (amplitude 2) are
    # larger than every training lively clip (at most 1.5), so without speaker centring every one of its
    # clips looks lively (accuracy 0.5); centred on its own real clips, all are right.
    rng = np.random.default_rng(0)
    train = [_speaker(rng, f"s{i}", base, offset) for i, (base, offset) in
             enumerate(((0.6, 0.0), (0.8, 1.0), (1.0, -1.0), (0.7, 0.5)))]
    exps, styles, speakers = (sum((t[k] for t in train), []) for k in range(3))
    held_exps, held_styles, held_speakers = _speaker(rng, "new", 4.0, 3.0)
    clf = StyleClassifier(modes=(0, 1)).fit(exps, styles, speakers)
    assert clf.classes == ["calm", "lively"]
    assert clf.accuracy(held_exps, held_styles, held_speakers) == 1.0
    raw = StyleClassifier(modes=(0, 1), normalise="none").fit(exps, styles, speakers)
    assert raw.accuracy(held_exps, held_styles, held_speakers) == 0.5
    assert (raw.predict(held_exps, held_speakers) == "lively").all()
    # generated sequences are centred on their speaker's real clips: a sequence with half the speaker's
    # usual articulation of the calm clips is calm, one at the lively amplitude is lively
    centres = clf.speaker_centres(held_exps, held_speakers)
    gen = [_clip(rng, 1.0, 3.0), _clip(rng, 6.0, 3.0)]
    assert list(clf.predict(gen, ["new", "new"], centres)) == ["calm", "lively"]
    with pytest.raises(ValueError, match="no real-clip centre for speaker"):
        clf.predict(gen, ["other", "other"], centres)


def test_one_style_cannot_be_classified():
    rng = np.random.default_rng(1)
    exps, _, speakers = _speaker(rng, "s", 1.0, 0.0, 2)
    with pytest.raises(ValueError, match="at least two styles"):
        StyleClassifier().fit(exps, ["calm"] * len(exps), speakers)
