"""The joined-pauses recording (align/pauses.py) and the pause gate of issue 16: no word inside a pause.

Figures: `python bench/align.py` (section "joined pauses")."""

import numpy as np
import pytest

from headflow.align.pauses import Recording, join_with_pauses, read_recording, words_in_pauses


def _toy(name: str, seconds: float, words: list) -> Recording:
    rng = np.random.default_rng(len(name))
    wav = rng.normal(0, 0.001, int(seconds * 16000)).astype(np.float32)
    for a, b, w in words:
        if w:
            wav[int(a * 16000):int(b * 16000)] += rng.normal(0, 0.2, int(b * 16000) - int(a * 16000)).astype(np.float32)
    phones = [(a, b, "AH1" if w else "") for a, b, w in words]
    return Recording(name, wav, " ".join(w for _, _, w in words if w), words, phones)


def test_join_replaces_long_pauses_and_shifts_the_reference():
    # "one" 0.2-0.5, pause 0.5-1.5 (1.0 s >= 0.5: replaced, 0.1 s kept each side), "two" 1.5-1.8, pause 1.8-2.0
    # (0.2 s: kept whole). Piece 1 = [0, 0.6), inserted 3.0 s (INSERTED_PAUSES_S[0], zeros), piece 2 = [1.4, 2.0)
    # moved by 0.6 + 3.0 - 1.4 = 2.2 s: "two" at 3.7-4.0, file 0.6 + 3.0 + 0.6 = 4.2 s.
    rec = _toy("a", 2.0, [(0.0, 0.2, ""), (0.2, 0.5, "one"), (0.5, 1.5, ""), (1.5, 1.8, "two"), (1.8, 2.0, "")])
    j = join_with_pauses([rec])
    assert len(j.wav) == int(round(4.2 * 16000))
    assert j.transcript == "one two"
    assert [w for w in j.words if w[2]] == [(0.2, 0.5, "one"), pytest.approx((3.7, 4.0, "two"))]
    assert j.words[2] == pytest.approx((0.5, 3.7, ""))                    # old 0.1 + inserted 3.0 + old 0.1
    assert j.inserted == [pytest.approx((0.6, 3.6, "zeros"))]
    assert not j.wav[int(0.6 * 16000) + 1:int(3.6 * 16000) - 1].any()    # digital silence
    assert j.phones[-1] == pytest.approx((4.0, 4.2, ""))


def test_room_tone_is_the_recordings_quiet_background():
    rec = _toy("b", 3.0, [(0.0, 0.2, ""), (0.2, 0.6, "one"), (0.6, 1.6, ""), (1.6, 2.0, "two"), (2.0, 2.2, ""),
                          (2.2, 2.5, "three"), (2.5, 3.0, "")])
    j = join_with_pauses([rec, rec], pauses_s=(1.0, 2.0))
    assert [k for _, _, k in j.inserted] == ["zeros", "room_tone", "zeros"]
    a, b, _ = j.inserted[1]
    tone = j.wav[int(a * 16000):int(b * 16000)]
    # the background is N(0, 0.001): the inserted room tone has its level (no speech burst of std 0.2 copied)
    assert 0.0005 < tone.std() < 0.002 and np.abs(tone).max() < 0.01


def test_words_in_pauses_counts_words_mostly_inside_long_pauses():
    ref = [(0.0, 1.0, ""), (1.0, 1.5, "a"), (1.5, 1.8, ""), (1.8, 2.0, "b"), (2.0, 4.0, "")]
    # pauses >= 0.5 s: 0-1.0 and 2.0-4.0 (1.5-1.8 is 0.3 s). "x" 2.5-2.9 is inside; "y" 0.8-1.3 overlaps 0.2 of
    # its 0.5 s (not inside, adds 0.2 s); "z" 1.5-1.8 lies in the short pause (not counted).
    r = words_in_pauses(ref, [(0.8, 1.3, "y"), (1.5, 1.8, "z"), (2.5, 2.9, "x")])
    assert r.n_pauses == 2 and r.inside == [(2.5, 2.9, "x")]
    assert r.overlap_s == pytest.approx(0.6)


def test_join_rejects_a_tier_of_other_audio():
    rec = _toy("c", 1.0, [(0.0, 0.5, "one"), (0.5, 2.0, "")])
    with pytest.raises(ValueError, match="word tier ends at 2.000 s"):
        join_with_pauses([rec])


@pytest.mark.shared
@pytest.mark.slow
def test_no_word_inside_a_pause_of_the_joined_file(shared_dir):
    """../shared/data/mfa's two recordings joined with 1-5 s pauses (74 s): no word more than half inside a
    reference pause of >= 0.5 s. Today's aligner before issue 16 put 8 of 122 words there (bench/align.py)."""
    from headflow.align.run import align_wavs

    recs = [read_recording(shared_dir / "data/mfa", n) for n in ("acoustic_corpus", "cold_corpus")]
    j = join_with_pauses(recs)
    assert len(j.inserted) == 9 and 70 < len(j.wav) / 16000 < 80
    al = align_wavs([("joined", j.wav, j.transcript)])[0]
    assert al.failed is None and len(al.words) == len(j.transcript.split())
    report = words_in_pauses(j.words, al.words)
    assert report.n_pauses >= 9
    assert report.inside == [], report.line()


def _bursts(spans: list, seconds: float, quiet_std: float = 0.001) -> np.ndarray:
    """Room noise of std `quiet_std` with loud noise (std 0.2) in `spans` (start s, end s)."""
    rng = np.random.default_rng(0)
    wav = rng.normal(0, quiet_std, int(seconds * 16000))
    for a, b in spans:
        wav[int(a * 16000):int(b * 16000)] = rng.normal(0, 0.2, int(b * 16000) - int(a * 16000))
    return wav.astype(np.float32)


def test_pause_frames_weights_runs_by_length_and_bridges_clicks():
    from headflow.align.features import pause_frames

    # loud 0-0.5, quiet 0.5-0.6 (100 ms < 150: a closure, weight 0), loud 0.6-1.0, quiet 1.0-1.3 (300 ms:
    # a pause, 1), loud 1.3-1.5, quiet 1.5-2.5 with a 20 ms click at 2.0 (bridged: one 1 s run, long: 3),
    # loud 2.5-3.0. Frames 10 ms; 3 frames at each edge are left out (the 20 ms energy window straddles them).
    wav = _bursts([(0, 0.5), (0.6, 1.0), (1.3, 1.5), (2.0, 2.02), (2.5, 3.0)], 3.0)
    w = pause_frames(wav, 301, 10.0, min_ms=150, gap_ms=30, long_ms=500, long_weight=3.0)
    assert (w[3:47] == 0).all() and (w[53:57] == 0).all()
    assert (w[103:127] == 1).all() and (w[153:247] == 3).all()
    assert (w[133:147] == 0).all() and (w[253:298] == 0).all()
    # without bridging, the click's frames 200-202 (their windows reach 1.99-2.03 s) split the pause into two
    # runs shorter than 500 ms (frames ~151-199 and ~203-249): weight 1, not 3
    w0 = pause_frames(wav, 301, 10.0, min_ms=150, gap_ms=0, long_ms=500, long_weight=3.0)
    assert (w0[200:203] == 0).all() and (w0[153:198] == 1).all() and (w0[205:247] == 1).all()


def test_quiet_frames_floor_ignores_digital_silence():
    from headflow.align.features import quiet_frames

    # zeros 0-1 s, room noise (std 0.001, -60 dB) 1-2 s, speech (std 0.2, -14 dB) 2-3 s. With the zeros
    # (-120 dB) as the floor the threshold would be -120 + 0.3 * 106 = -88 dB and the room noise speech;
    # with the live frames' floor (-60 dB) the room noise is quiet, and the zeros are quiet too.
    wav = _bursts([(2.0, 3.0)], 3.0)
    wav[:16000] = 0
    q = quiet_frames(wav, 301, 10.0)
    assert q[3:97].all() and q[103:197].all() and not q[203:298].any()


def test_loud_frames_are_above_the_level_of_the_floor_to_top_range():
    from headflow.align.features import frame_levels, loud_frames

    # room noise (std 0.001: -60 dB) 0-1 s, noise of std 0.01 (-40 dB) 1-2 s, std 0.2 (-14 dB) 2-3 s. The floor
    # (5th percentile) is -60 dB and the top (95th) -14 dB: level 0.15 -> -53 dB (the -40 dB second is loud),
    # level 0.6 -> -32 dB (it is not). 3 frames at each edge are left out (the 20 ms window straddles them).
    wav = _bursts([(2.0, 3.0)], 3.0)
    wav[16000:32000] *= 10
    db, floor, top = frame_levels(wav, 301, 10.0)
    assert floor == pytest.approx(-60, abs=1) and top == pytest.approx(-14, abs=1)
    low, high = loud_frames(wav, 301, 10.0, 0.15), loud_frames(wav, 301, 10.0, 0.6)
    assert not low[3:97].any() and low[103:197].all() and low[203:298].all()
    assert not high[3:197].any() and high[203:298].all()
    assert not loud_frames(np.zeros(3 * 16000, np.float32), 301).any()   # all digital silence: nothing is loud
