"""A style classifier trained on real expression sequences only, to score the style of generated ones
(issue 18: "style classification accuracy of generated sequences by a style classifier trained on real
sequences only").

StyleTalk's paper reports no such number; D_style (`discriminators.StyleDiscriminator`) is trained on real
sequences too, but the generator was trained against it, so its accuracy on generated sequences favours
StyleTalk. This classifier is independent of training: a multinomial logistic regression (scikit-learn,
standardised inputs, L2 penalty `C`) over per-clip statistics of the expression coefficients, fitted on the
training split's real clips (their fitted expressions, the `expressions` stage / shard_labels sidecars).

Features (`sequence_features`), per selected mode k (the caller passes the lower-face, mouth-related modes of
`geometry.mode_subsets`): the mean of x_k, log of its standard deviation and log of its mean absolute
frame-to-frame change (|x_k[t+1] - x_k[t]|), over the valid frames. A style that scales articulation
shifts the two log features by the log of the scale; a style that moves the resting mouth (a smile) shifts
the mean.

Unseen speakers (`normalise="speaker"`): each clip's features minus the mean features of its speaker's real
clips (`speaker_centres`), so what is classified is how a clip differs from that speaker's usual
articulation, not the speaker's face or fit. At test time a speaker's centre comes from that speaker's real
clips (labels unused); generated sequences are normalised with the centre of their target speaker's real
clips. With a `speaker` style rule (style = speaker) this removes the signal: use `normalise="none"`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Normalise = Literal["speaker", "none"]
EPS = 1e-6
"""Added inside the logs (coefficient units) so a constant mode gives a finite feature."""


def sequence_features(exp: np.ndarray, modes: Sequence[int] | None = None, valid: np.ndarray | None = None) -> np.ndarray:
    """Per-clip statistics of an expression sequence.

    Args:
        exp: (T, K) expression coefficients, T >= 2.
        modes: the mode indices to describe (None: all K).
        valid: (T,) bool frames to use (None: all); the change is taken between consecutive valid frames of
            the sequence (t and t + 1 both valid).

    Returns:
        (3 M,) float64: [mean_k, log(std_k + EPS), log(mean_t |x_k[t+1] - x_k[t]| + EPS)] for each of the M
        modes, grouped by statistic (M means, then M log-stds, then M log-changes).

    Raises:
        ValueError: fewer than 2 valid frames or fewer than one valid consecutive pair (names the counts).
    """
    x = np.asarray(exp, np.float64)
    if x.ndim != 2:
        raise ValueError(f"expressions of shape {x.shape}: expected (T, K)")
    if modes is not None:
        x = x[:, list(modes)]
    ok = np.ones(len(x), bool) if valid is None else np.asarray(valid, bool)
    pairs = ok[1:] & ok[:-1]
    if ok.sum() < 2 or not pairs.any():
        raise ValueError(f"a sequence of {len(x)} frames with {int(ok.sum())} valid frames and {int(pairs.sum())} "
                         "valid consecutive pairs: the style features need at least 2 consecutive valid frames")
    v = x[ok]
    change = np.abs(np.diff(x, axis=0))[pairs]
    return np.concatenate([v.mean(0), np.log(v.std(0) + EPS), np.log(change.mean(0) + EPS)])


@dataclass
class StyleClassifier:
    """Logistic regression over `sequence_features`, optionally centred per speaker (module docstring).

    Usage: `clf = StyleClassifier(modes).fit(train_exps, train_styles, train_speakers)`, then
    `clf.predict(exps, speakers, clf.speaker_centres(real_exps_of_those_speakers, their_speakers))`.
    """

    modes: tuple[int, ...] | None = None
    """Expression modes described (None: all)."""
    normalise: Normalise = "speaker"
    C: float = 0.1
    """Inverse L2 strength of the logistic regression (scikit-learn's `C`). 0.1: chosen on the demo by
    leave-one-speaker-out cross-validation on the training split alone (0.79 vs 0.77 at C = 1)."""
    classes: list[str] = field(default_factory=list)
    """The styles seen in training, sorted (set by `fit`)."""
    _model: object = field(default=None, repr=False)

    def features(self, exps: Sequence[np.ndarray], valids: Sequence[np.ndarray | None] | None = None) -> np.ndarray:
        """(N, 3 M) `sequence_features` of each sequence (N, not yet centred)."""
        valids = valids if valids is not None else [None] * len(exps)
        return np.stack([sequence_features(e, self.modes, v) for e, v in zip(exps, valids)])

    def speaker_centres(self, exps: Sequence[np.ndarray], speakers: Sequence[str],
                        valids: Sequence[np.ndarray | None] | None = None) -> dict[str, np.ndarray]:
        """{speaker: mean features of that speaker's sequences} (use real clips; labels are not needed)."""
        groups: dict[str, list[np.ndarray]] = defaultdict(list)
        for f, s in zip(self.features(exps, valids), speakers):
            groups[s].append(f)
        return {s: np.mean(fs, 0) for s, fs in groups.items()}

    def _centred(self, feats: np.ndarray, speakers: Sequence[str], centres: dict[str, np.ndarray] | None) -> np.ndarray:
        if self.normalise == "none":
            return feats
        missing = sorted({s for s in speakers if s not in centres})
        if missing:
            raise ValueError(f"no real-clip centre for speaker(s) {missing}: pass speaker_centres() of those "
                             "speakers' real clips, or use normalise='none'")
        return feats - np.stack([centres[s] for s in speakers])

    def fit(self, exps: Sequence[np.ndarray], styles: Sequence[str], speakers: Sequence[str],
            valids: Sequence[np.ndarray | None] | None = None) -> StyleClassifier:
        """Fit on real sequences (each (T_i, K)) with their style and speaker labels (centres: their own).

        Raises:
            ValueError: fewer than two styles.
        """
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.classes = sorted(set(styles))
        if len(self.classes) < 2:
            raise ValueError(f"the style classifier needs real clips of at least two styles, got {self.classes}")
        feats = self.features(exps, valids)
        centres = None
        if self.normalise == "speaker":
            groups: dict[str, list[np.ndarray]] = defaultdict(list)
            for f, s in zip(feats, speakers):
                groups[s].append(f)
            centres = {s: np.mean(fs, 0) for s, fs in groups.items()}
        self._model = make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=5000))
        self._model.fit(self._centred(feats, speakers, centres), np.asarray(styles))
        return self

    def predict(self, exps: Sequence[np.ndarray], speakers: Sequence[str],
                centres: dict[str, np.ndarray] | None = None,
                valids: Sequence[np.ndarray | None] | None = None) -> np.ndarray:
        """Predicted style (N,) of each sequence; `centres`: `speaker_centres` of the speakers' real clips
        (None: centred on the given sequences themselves, right only when they are the real clips).

        Raises:
            RuntimeError: not fitted; ValueError: a speaker without a centre.
        """
        if self._model is None:
            raise RuntimeError("StyleClassifier.predict before fit")
        feats = self.features(exps, valids)
        if self.normalise == "speaker" and centres is None:
            centres = self.speaker_centres(exps, speakers, valids)
        return self._model.predict(self._centred(feats, speakers, centres))

    def accuracy(self, exps: Sequence[np.ndarray], styles: Sequence[str], speakers: Sequence[str],
                 centres: dict[str, np.ndarray] | None = None,
                 valids: Sequence[np.ndarray | None] | None = None) -> float:
        """Fraction of sequences whose predicted style is their label (NaN for none)."""
        if not len(exps):
            return float("nan")
        return float(np.mean(self.predict(exps, speakers, centres, valids) == np.asarray(styles)))


__all__ = ["EPS", "Normalise", "StyleClassifier", "sequence_features"]
