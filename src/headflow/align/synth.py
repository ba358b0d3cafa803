"""Initial acoustic model from speech synthesis (`init="espeak_hmm"`): espeak-ng speaks every transcript
in a few voices, and its exact phone timings label those frames; one Gaussian per HMM state is estimated
from them, silence comes from the real audio's quietest frames, and Viterbi with this model (the
transcript's graph, optional pauses) gives each real utterance its initial segmentation.

Why not DTW alone (dtw.py): frame-to-frame warping between one synthetic and one real utterance drifts
by hundreds of ms on real speech (one bad frame match pulls a whole stretch along); a model that pools
every instance of a phone across voices, constrained by the phone order of the graph, does not.

- Features are those of the aligner (per-utterance CMVN MFCCs), so the synthetic model speaks its units.
- Synthetic silence is digital (a dither spectrum), nothing like a real pause: SIL is trained instead on
  the real frames in the bottom 30% of each utterance's energy range (features.quiet_frames).
- Synthetic variances are narrow (espeak is very regular): every variance is mixed with the pooled
  variance (`var_mix`), which keeps unseen speakers from falling off every phone's Gaussian.
"""

from __future__ import annotations

import numpy as np

from headflow.align.features import mfcc_features
from headflow.align.hmm import STATES, Accumulator, GaussianModel
from headflow.align.phones import PHONE_INDEX, SIL

VARIANTS = ("", "+m3", "+f2")
"""espeak voice variants (appended to the language's voice)."""
ALL_VARIANTS_BELOW = 8
"""Corpora of fewer clips have every transcript spoken in every variant; larger ones one variant per clip,
in turn (enough data, and one synthesis per clip keeps the stage fast)."""


def variants_for(index: int, n_clips: int) -> tuple[str, ...]:
    """The voice variants clip `index` of `n_clips` is synthesised in."""
    return VARIANTS if n_clips < ALL_VARIANTS_BELOW else (VARIANTS[index % len(VARIANTS)],)


def synthetic_frames(transcript: str, voice: str = "en-us", shift_ms: float = 10.0, rate_wpm: int = 150,
                     variants: tuple[str, ...] = VARIANTS) -> tuple[np.ndarray, np.ndarray] | None:
    """Features (T, D) of `transcript` spoken in each variant of `voice`, and the model state of each frame
    (T,) from espeak's exact phone timings (the phone's span split evenly over its STATES states); espeak's
    pauses are left out. None when synthesis fails for every variant."""
    from headflow.speech.espeak import synthesize

    shift = shift_ms / 1000
    xs, ss = [], []
    for variant in variants:
        try:
            utt = synthesize(transcript, voice=voice + variant, rate_wpm=rate_wpm)
        except (ValueError, KeyError, RuntimeError):
            continue
        x = mfcc_features(utt.audio, shift_ms)
        st = np.full(len(x), -1, np.int64)
        for p in utt.phones:
            unit = PHONE_INDEX.get(p.label)
            a, b = int(round(p.start / shift)), min(int(round(p.end / shift)), len(x))
            if unit is None or p.label == SIL or b <= a:
                continue
            st[a:b] = unit * STATES + (np.arange(b - a) * STATES) // (b - a)
        keep = st >= 0
        xs.append(x[keep])
        ss.append(st[keep])
    if not xs:
        return None
    return np.concatenate(xs), np.concatenate(ss)


def synthetic_model(base: GaussianModel, synthetic: list[tuple[np.ndarray, np.ndarray]],
                    silences: list[np.ndarray], var_floor: np.ndarray, var_mix: float = 0.3) -> GaussianModel:
    """One Gaussian per state from labelled synthetic frames plus real pauses (`silences`: one (n, D) array
    per run of quiet frames, split evenly over SIL's states); states never seen keep `base`'s parameters. Variances: (1 - var_mix) * own + var_mix * pooled."""
    acc = Accumulator(base.n_states, 1, base.means.shape[2])
    sil = PHONE_INDEX[SIL] * STATES
    pooled = []
    for x, st in synthetic:
        acc.add(x, st, base)
        pooled.append(x)
    for x in silences:
        if len(x):
            acc.add(x, sil + (np.arange(len(x)) * STATES) // len(x), base)
            pooled.append(x)
    model = acc.update(base, var_floor)
    if pooled:
        model.variances[:] = (1 - var_mix) * model.variances + var_mix * np.concatenate(pooled).var(0)
    return model
