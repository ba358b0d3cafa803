"""boundary_errors / summarize (the figures behind the aligner's gates) on hand-worked intervals."""

import numpy as np
import pytest

from headflow.align.evaluate import boundary_errors, summarize

# Reference "bin" with silences around it; the hypothesis moves the boundaries by known amounts.
REF = [(0.0, 0.1, "SIL"), (0.1, 0.3, "B"), (0.3, 0.5, "IH1"), (0.5, 0.6, "N"), (0.6, 0.8, "sil")]
HYP = [(0.0, 0.11, "sil"), (0.11, 0.27, "B"), (0.27, 0.55, "IH"), (0.55, 0.6, "N")]


def test_shared_boundaries_counted_once_silences_dropped():
    # B start 0.1 vs 0.11 (10 ms); B end = IH start 0.3 vs 0.27 (30 ms, once); IH end = N start 0.5 vs
    # 0.55 (50 ms, once); N end 0.6 vs 0.6 (0). Silences on either side give no boundary; "IH1" is IH.
    err = boundary_errors(REF, HYP)
    np.testing.assert_allclose(np.sort(err), [0.0, 0.01, 0.03, 0.05], atol=1e-12)
    s = summarize(err)
    assert s.n == 4 and s.median_ms == pytest.approx(20.0) and s.mean_ms == pytest.approx(22.5)
    assert (s.within_20ms, s.within_40ms) == (0.5, 0.75)


def test_substitution_is_paired_and_insertion_is_skipped():
    # IY for IH (a vowel for a vowel) still pairs: the same errors.
    sub = [(a, b, "IY" if p == "IH" else p) for a, b, p in HYP]
    np.testing.assert_allclose(np.sort(boundary_errors(REF, sub)), [0.0, 0.01, 0.03, 0.05], atol=1e-12)
    # An extra T inside N's span is an insertion: it pairs with nothing, and N now starts at 0.57
    # while IH still ends at 0.55, so those two boundaries are no longer shared: 50 and 70 ms.
    ins = HYP[:3] + [(0.55, 0.57, "T"), (0.57, 0.6, "N")]
    np.testing.assert_allclose(np.sort(boundary_errors(REF, ins)), [0.0, 0.01, 0.03, 0.05, 0.07], atol=1e-12)


def test_words_match_exact_labels_only():
    ref = [(0.0, 0.49, "sil"), (0.49, 0.77, "set"), (0.77, 1.0, "white")]
    hyp = [(0.5, 0.8, "set"), (0.8, 1.02, "white")]
    np.testing.assert_allclose(np.sort(boundary_errors(ref, hyp, words=True)), [0.01, 0.02, 0.03], atol=1e-12)
    # A different word is not paired: only "white"'s two boundaries are left.
    other = [(0.5, 0.8, "sat"), (0.8, 1.02, "white")]
    np.testing.assert_allclose(np.sort(boundary_errors(ref, other, words=True)), [0.02, 0.03], atol=1e-12)
    assert summarize(np.array([])).n == 0


def test_word_boundaries_pair_words_with_their_reference_context():
    from headflow.align.evaluate import word_boundaries

    # "set white" after 0.49 s of silence, a 0.1 s pause, "now", the tier ending at 1.5 s. Ours drops "now"
    # (unpaired) and calls "white" "white": set starts 10 ms late, ends 30 ms late; white 0.9 -> 0.92, 1.2 -> 1.15.
    ref = [(0.0, 0.49, ""), (0.49, 0.8, "set"), (0.8, 0.9, "sp"), (0.9, 1.2, "white"), (1.2, 1.3, "now"),
           (1.3, 1.5, "")]
    phones = [(0.49, 0.6, "S"), (0.6, 0.7, "EH1"), (0.7, 0.8, "T"), (0.9, 1.0, "W"), (1.0, 1.1, "AY1"),
              (1.1, 1.2, "T"), (1.2, 1.3, "N")]
    hyp = [(0.5, 0.83, "set"), (0.92, 1.15, "white")]
    wb = word_boundaries(ref, hyp, phones)
    assert [w.word for w in wb] == ["set", "white"]
    assert wb[0].start_error == pytest.approx(0.01) and wb[0].end_error == pytest.approx(0.03)
    assert wb[1].start_error == pytest.approx(0.02) and wb[1].end_error == pytest.approx(-0.05)
    assert (wb[0].gap_before, wb[0].gap_after) == (pytest.approx(0.49), pytest.approx(0.1))
    assert (wb[1].gap_before, wb[1].gap_after) == (pytest.approx(0.1), pytest.approx(0.0))  # "now" follows at once
    assert (wb[0].first_phone, wb[0].last_phone, wb[1].first_phone) == ("S", "T", "W")
    # the last word's gap runs to the end of the reference tier
    assert word_boundaries(ref, [(1.2, 1.3, "now")])[0].gap_after == pytest.approx(0.2)
