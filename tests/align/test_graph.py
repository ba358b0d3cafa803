"""The utterance graph (align/hmm.build_graph): optional silences, pronunciation variants as parallel chains,
and the voice-activity-aware emissions (builtin.emissions). Hand-built graphs and log-likelihoods."""

import numpy as np
import pytest

from headflow.align.builtin import GARBAGE, N_UNITS, _intervals, emissions, segments_for
from headflow.align.hmm import STATES, GaussianModel, Segment, build_graph, viterbi
from headflow.align.phones import PHONE_INDEX, SIL
from headflow.align.types import UtteranceInput

LOG_P = np.log(0.3)
LOG_SKIP = np.log(0.7)


def _model() -> GaussianModel:
    s = N_UNITS * STATES
    return GaussianModel(np.ones((s, 1)), np.zeros((s, 1, 2)), np.ones((s, 1, 2)), np.full(s, 0.5))


def _ll(n_frames: int, spans: list[tuple[int, int, str]]) -> np.ndarray:
    """(T, S) log-likelihoods: 0 for every state of `unit` on its frames [a, b), -10 elsewhere."""
    ll = np.full((n_frames, N_UNITS * STATES), -10.0)
    for a, b, unit in spans:
        u = PHONE_INDEX[unit]
        ll[a:b, u * STATES:(u + 1) * STATES] = 0.0
    return ll


def test_chain_without_variants_keeps_the_optional_silence_branches():
    # SIL? A SIL? B SIL?: nodes 0-2 SIL0, 3-5 A, 6-8 SIL1, 9-11 B, 12-14 SIL2. A's first node is entered
    # from SIL0's last (2, free); SIL1's from A's last (5) at log 0.3; B's from SIL1's last (8, free) or,
    # jumping SIL1, from A's last at log 0.7. Starts: SIL0 or A; ends: B's last or SIL2's last.
    a, b, sil = PHONE_INDEX["AA"], PHONE_INDEX["B"], PHONE_INDEX[SIL]
    g = build_graph([Segment(sil, -1, True), Segment(a, 0, False), Segment(sil, -1, True), Segment(b, 1, False),
                     Segment(sil, -1, True)], LOG_P)
    assert list(g.pred[3][g.pred[3] >= 0]) == [2] and g.branch[3, 0] == 0.0
    assert list(g.pred[6][g.pred[6] >= 0]) == [5] and g.branch[6, 0] == pytest.approx(LOG_P)
    assert list(g.pred[9][g.pred[9] >= 0]) == [8, 5]
    assert g.branch[9, :2] == pytest.approx([0.0, LOG_SKIP])
    assert list(g.pred[4][g.pred[4] >= 0]) == [3]                       # inside a segment: its previous state
    assert list(np.flatnonzero(g.start)) == [0, 3] and list(np.flatnonzero(g.end)) == [11, 14]
    assert g.min_frames == 2 * STATES


def test_segments_for_appends_distinct_variants_after_the_rest():
    # "ab" said AA B, or IY; the repeated AA B and a spoken-noise variant are dropped. The first
    # pronunciation's segments keep the positions of a graph without variants (dtw.py's paths rely on it).
    segs = segments_for([("AA", "B")], [[("AA", "B"), ("IY",), ("AA", "B"), ("SPN",)]])
    assert segs[:4] == segments_for([("AA", "B")])
    assert segs[4:] == [Segment(PHONE_INDEX["IY"], 0, False, 1)]
    # a word without a pronunciation stays one GARBAGE segment, whatever its variants
    assert segments_for([None], [[("AA",)]]) == [Segment(PHONE_INDEX[SIL], -1, True), Segment(GARBAGE, 0, False),
                                                 Segment(PHONE_INDEX[SIL], -1, True)]


def test_viterbi_picks_the_variant_the_audio_fits():
    # 12 frames (10 ms): silence 0-2, IY 3-8, silence 9-11. With the variant the path is SIL IY SIL and the
    # word spans frames 3-8: boundaries at (3 - 0.5) and (9 - 0.5) frames = 0.025 s and 0.085 s. Without it
    # the word must be AA B, which the frames do not fit (a path score 6 x 10 lower).
    ll = _ll(12, [(0, 3, SIL), (3, 9, "IY"), (9, 12, SIL)])
    utt = UtteranceInput("u", np.zeros(12 * 160, np.float32), ["ee"], [("AA", "B")])
    g = build_graph(segments_for([("AA", "B")], [[("AA", "B"), ("IY",)]]), LOG_P)
    assert g.min_frames == STATES                          # the shortest variant: IY, one phone
    path, score = viterbi(g, ll, _model())
    al = _intervals(utt, g, path, 0.01, 0.12)
    assert [p for _, _, p, _ in al.phones] == [SIL, "IY", SIL]
    assert al.words == [(pytest.approx(0.025), pytest.approx(0.085), "ee")]
    g1 = build_graph(segments_for([("AA", "B")]), LOG_P)
    _, score1 = viterbi(g1, ll, _model())
    assert score - score1 > 50


def test_variant_without_a_first_pronunciation_is_an_error():
    with pytest.raises(ValueError, match="no alt-0"):
        build_graph([Segment(PHONE_INDEX[SIL], -1, True), Segment(PHONE_INDEX["IY"], 0, False, 1)], LOG_P)


def test_emissions_penalise_speech_in_pauses_and_silence_on_loud_frames():
    # 4 frames; frame 1 in a pause of weight 3 (penalty 5: speech states lose 15), frame 2 loud (SIL loses 2).
    g = build_graph(segments_for([("AA",)]), LOG_P)
    base = _model().log_likelihood(np.zeros((4, 2), np.float32))
    ll = emissions(_model(), np.zeros((4, 2), np.float32), g, np.array([0, 3.0, 0, 0]), 5.0,
                   np.array([False, False, True, False]), 2.0)
    aa = slice(PHONE_INDEX["AA"] * STATES, (PHONE_INDEX["AA"] + 1) * STATES)
    sil = slice(PHONE_INDEX[SIL] * STATES, (PHONE_INDEX[SIL] + 1) * STATES)
    np.testing.assert_allclose(ll[1, aa] - base[1, aa], -15.0)
    np.testing.assert_allclose(ll[2, sil] - base[2, sil], -2.0)
    np.testing.assert_allclose(ll[[0, 3]][:, np.r_[aa, sil]], base[[0, 3]][:, np.r_[aa, sil]])
    np.testing.assert_allclose(ll[1, sil], base[1, sil])
    np.testing.assert_allclose(ll[2, aa], base[2, aa])
