"""Reference phone tiers (MFA TextGrids, ARPAbet or IPA) -> per-video-frame StyleTalk labels."""

from __future__ import annotations

import numpy as np
import pytest

from headflow.align.evaluate import tier_frame_labels, tier_phones
from headflow.align.phones import STYLETALK_PHINDEX as ST


def test_arpabet_tier_with_stress_and_silence_marks_known_answer():
    tier = [(0.0, 0.1, ""), (0.1, 0.18, "M"), (0.18, 0.26, "AH0"), (0.26, 0.3, "sp")]
    # 25 fps, frame t takes the phone at its centre (t + 0.5) / 25 = 0.02, 0.06, 0.10, 0.14, 0.18, 0.22, 0.26, 0.30:
    # SIL SIL M M AH AH SIL(sp) SIL(past the tier's end)
    out = tier_frame_labels(tier, 8)
    assert out.tolist() == [ST["SIL"]] * 2 + [ST["M"]] * 2 + [ST["AH"]] * 2 + [ST["SIL"]] * 2
    assert out.dtype == np.int64


def test_ipa_tier_maps_through_the_lexicon_table_and_splits_syllabic_consonants():
    tier = [(0.0, 0.08, "tʃ"), (0.08, 0.16, "ɪ"), (0.16, 0.24, "ɾ"), (0.24, 0.40, "n̩"), (0.40, 0.48, "pʰ")]
    # n̩ -> AH N: its 0.16 s split in halves, AH [0.24, 0.32), N [0.32, 0.40); pʰ -> P (aspiration dropped)
    assert tier_phones(tier)[3:5] == [(0.24, 0.32, "AH"), (0.32, 0.4, "N")]
    # centres 0.02 0.06 | 0.10 0.14 | 0.18 0.22 | 0.26 0.30 | 0.34 0.38 | 0.42 0.46
    expected = ["CH", "CH", "IH", "IH", "T", "T", "AH", "AH", "N", "N", "P", "P"]
    assert tier_frame_labels(tier, 12).tolist() == [ST[p] for p in expected]


def test_an_unknown_label_names_itself_and_its_time():
    with pytest.raises(ValueError, match=r"'Q!' at 0\.100-0\.200"):
        tier_phones([(0.1, 0.2, "Q!")])
