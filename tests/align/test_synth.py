"""The synthetic-speech initial model (headflow.align.synth)."""

import numpy as np

from headflow.align.hmm import STATES
from headflow.align.phones import PHONE_INDEX
from headflow.align.synth import VARIANTS, synthetic_frames, variants_for


def test_variants_for_small_and_large_corpora():
    assert variants_for(0, 2) == VARIANTS
    assert [variants_for(i, 30) for i in range(4)] == [(v,) for v in (*VARIANTS, VARIANTS[0])]


def test_synthetic_frames_label_every_frame_with_a_speech_state():
    x, st = synthetic_frames("the cat sat", variants=("", "+m3"))
    assert x.shape == (len(st), 39) and len(st) > 30
    units = set(st // STATES)
    assert PHONE_INDEX["SIL"] not in units and {PHONE_INDEX[p] for p in ("K", "AE", "S")} <= units
    assert np.all(np.diff(st)[np.diff(st // STATES) == 0] >= 0)  # states run forwards within a phone


def test_synthetic_frames_unknown_voice_is_none():
    assert synthetic_frames("hello", voice="no-such-voice") is None
