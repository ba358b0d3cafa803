"""Long pauses in real speech: a test recording with known pauses, and the figure that says whether an
aligner put words inside them.

The joined-pauses recording (issue 16): real utterances with MFA reference tiers lose the middle of
their own pauses of at least `cut_pause_s` (100 ms is kept at each side), and inserted pauses of 1-5 s
take their place. The inserted audio alternates between digital silence (samples exactly 0, as editors
and concatenating tools leave) and the recording's own room tone (its quiet pause stretches, repeated),
the two kinds of pause that drew words into them. The reference tiers of the pieces, shifted by the inserted
time, are the exact reference of the joined file: nothing inside an inserted pause is speech.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from headflow.align.textgrid import Interval

SAMPLE_RATE = 16000
INSERTED_PAUSES_S = (3.0, 1.0, 5.0, 2.0, 4.0, 1.5, 3.5, 2.5, 4.5, 1.0, 5.0, 2.0)
"""Lengths of the inserted pauses, in order (1-5 s; fixed, so the file is the same on every machine)."""


@dataclass
class Recording:
    """One real recording with its reference word and phone tiers (MFA layout: "" marks silence)."""

    name: str
    wav: np.ndarray          # (n,) float32 mono, 16 kHz
    transcript: str
    words: list[Interval]    # (start s, end s, word), tiling [0, duration]
    phones: list[Interval]   # (start s, end s, phone)


@dataclass
class JoinedPauses:
    """The joined recording: audio, transcript and exact reference tiers (silences as "")."""

    wav: np.ndarray
    transcript: str
    words: list[Interval]
    phones: list[Interval]
    inserted: list[tuple[float, float, str]]   # (start s, end s, "zeros" | "room_tone") of each inserted pause


def _room_tone(rec: Recording, n: int, min_run_s: float = 0.2, fade_s: float = 0.01) -> np.ndarray:
    """n samples of the recording's stationary background: the stretches of its reference pauses whose frames
    are all quiet (features.quiet_frames; no breath, click or untranscribed sound) for at least `min_run_s`,
    joined with `fade_s` cross-fades (no click at the joins) and repeated."""
    from headflow.align.features import quiet_frames

    hop = SAMPLE_RATE // 100
    quiet = quiet_frames(rec.wav, 1 + len(rec.wav) // hop, 10.0)
    in_pause = np.zeros_like(quiet)
    for a, b, w in rec.words:
        if not w:
            in_pause[int(np.ceil(a * 100)):int(b * 100)] = True
    ok = np.r_[False, quiet & in_pause, False]
    edges = np.flatnonzero(ok[1:] != ok[:-1]).reshape(-1, 2)
    runs = [rec.wav[a * hop:b * hop].astype(np.float64) for a, b in edges if (b - a) / 100 >= min_run_s]
    if not runs:
        return np.zeros(n, np.float32)
    fade = int(fade_s * SAMPLE_RATE)
    ramp = np.linspace(0.0, 1.0, fade)
    tone = runs[0]
    while len(tone) < n + fade:
        for r in runs[1:] or runs:
            tone = np.r_[tone[:-fade], tone[-fade:] * ramp[::-1] + r[:fade] * ramp, r[fade:]]
    return tone[:n].astype(np.float32)


def _pieces(rec: Recording, cut_pause_s: float, keep_s: float) -> list[tuple[float, float]]:
    """(start s, end s) of the pieces: every inner reference pause of >= cut_pause_s loses all but `keep_s`
    at each side (the speech's onset and decay stay; what the reference calls silence but may hold an
    untranscribed breath or hesitation goes)."""
    duration = len(rec.wav) / SAMPLE_RATE
    edges = [0.0]
    for k, (a, b, w) in enumerate(rec.words):
        if not w and b - a >= cut_pause_s and 0 < k < len(rec.words) - 1:
            edges += [a + keep_s, b - keep_s]
    edges.append(duration)
    return list(zip(edges[::2], edges[1::2]))


def _shift(tier: list[Interval], a: float, b: float, offset: float) -> list[Interval]:
    """The intervals of `tier` clipped to [a, b) and moved to start at `offset`."""
    out = []
    for s, e, lab in tier:
        s, e = max(s, a), min(e, b)
        if e > s:
            out.append((s - a + offset, e - a + offset, lab))
    return out


def _merge_silences(tier: list[Interval]) -> list[Interval]:
    """Adjacent silence intervals ("") merged into one."""
    out: list[Interval] = []
    for s, e, lab in tier:
        if out and not lab and not out[-1][2]:
            out[-1] = (out[-1][0], e, "")
        else:
            out.append((s, e, lab))
    return out


def join_with_pauses(recordings: list[Recording], cut_pause_s: float = 0.5, keep_s: float = 0.1,
                     pauses_s: tuple[float, ...] = INSERTED_PAUSES_S) -> JoinedPauses:
    """Cut every recording at its pauses of >= `cut_pause_s` and join all pieces with inserted pauses.

    Args:
        recordings: real recordings with MFA-layout reference tiers (16 kHz).
        cut_pause_s: only reference pauses at least this long are replaced, so no word is split.
        keep_s: seconds of each replaced pause kept at either side of the inserted one.
        pauses_s: lengths (s) of the inserted pauses, used in order and cycled; even-numbered ones are
            digital silence (zeros), odd-numbered ones the room tone of the piece before them.

    Returns:
        The joined audio, transcript and reference tiers. The transcript is the reference word tier's words
        (what the reference aligned), not the recordings' transcripts: ../shared/data/mfa's .lab files
        differ from what MFA aligned there (acoustic_corpus's "uh" after "intensity" is not in its tier,
        cold_corpus's tier has "uh uh" where the .lab has one), and a transcript word nobody spoke has
        nowhere to go but a pause.

    Raises:
        ValueError: no recordings, or a recording's reference word tier does not end at its duration
            (± 50 ms: not the tier of this audio).
    """
    if not recordings:
        raise ValueError("join_with_pauses: recordings is empty; give at least one recording with reference tiers")
    wavs, words, phones, inserted = [], [], [], []
    t, k = 0.0, 0
    for r_i, rec in enumerate(recordings):
        duration = len(rec.wav) / SAMPLE_RATE
        if abs(rec.words[-1][1] - duration) > 0.05:
            raise ValueError(f"recording {rec.name}: its word tier ends at {rec.words[-1][1]:.3f} s but the audio lasts "
                             f"{duration:.3f} s; give the TextGrid that belongs to this audio")
        pieces = _pieces(rec, cut_pause_s, keep_s)
        for p_i, (a, b) in enumerate(pieces):
            i, j = int(round(a * SAMPLE_RATE)), int(round(b * SAMPLE_RATE))
            wavs.append(rec.wav[i:j].astype(np.float32))
            words += _shift(rec.words, a, b, t)
            phones += _shift(rec.phones, a, b, t)
            t += (j - i) / SAMPLE_RATE
            last = r_i == len(recordings) - 1 and p_i == len(pieces) - 1
            if not last:
                n = int(round(pauses_s[k % len(pauses_s)] * SAMPLE_RATE))
                kind = "zeros" if k % 2 == 0 else "room_tone"
                wavs.append(np.zeros(n, np.float32) if kind == "zeros" else _room_tone(rec, n))
                words.append((t, t + n / SAMPLE_RATE, ""))
                phones.append((t, t + n / SAMPLE_RATE, ""))
                inserted.append((t, t + n / SAMPLE_RATE, kind))
                t += n / SAMPLE_RATE
                k += 1
    spoken = " ".join(w for _, _, w in _merge_silences(words) if w)
    return JoinedPauses(np.concatenate(wavs), spoken,
                        _merge_silences(words), _merge_silences(phones), inserted)


@dataclass(frozen=True)
class PauseReport:
    """Words an aligner put inside the reference's long pauses."""

    n_pauses: int             # reference pauses of at least min_pause_s
    n_words: int              # hypothesis words
    inside: list[tuple[float, float, str]]   # hypothesis words with more than half their span in such a pause
    overlap_s: float          # total time of hypothesis words inside such pauses (s)

    def line(self) -> str:
        return (f"{len(self.inside)} of {self.n_words} words inside the {self.n_pauses} pauses, "
                f"{self.overlap_s:.2f} s of words in pauses")


def words_in_pauses(ref_words: list[Interval], hyp_words: list[Interval], min_pause_s: float = 0.5) -> PauseReport:
    """Which hypothesis words lie inside the reference's pauses of at least `min_pause_s`.

    A pause is a gap between reference words (silence labels "", "sil", "sp", "<eps>" or no interval at
    all). A word is inside when more than half its span overlaps pauses; `overlap_s` sums every word's
    overlap (a word stretched 0.3 s into a pause adds 0.3 s without being inside).
    """
    speech = sorted((a, b) for a, b, w in ref_words if w not in ("", "sil", "sp", "<eps>") and b > a)
    gaps = [(b0, a1) for (_, b0), (a1, _) in zip(speech, speech[1:]) if a1 - b0 >= min_pause_s]
    if speech:
        end = max(b for _, b, _ in ref_words)
        gaps = ([(0.0, speech[0][0])] if speech[0][0] >= min_pause_s else []) + gaps + \
               ([(speech[-1][1], end)] if end - speech[-1][1] >= min_pause_s else [])
    inside, total = [], 0.0
    for a, b, w in hyp_words:
        ov = sum(max(0.0, min(b, g1) - max(a, g0)) for g0, g1 in gaps)
        total += ov
        if b > a and ov > 0.5 * (b - a):
            inside.append((a, b, w))
    return PauseReport(len(gaps), len(hyp_words), inside, total)


def read_recording(folder, name: str) -> Recording:
    """`folder/name.wav` (16 kHz mono), `name.lab` (transcript) and `name.TextGrid` (MFA's `words` and
    `phones` tiers) as a Recording. Raises ValueError when the audio is not 16 kHz or a tier is missing."""
    from pathlib import Path

    from headflow.align.textgrid import read_textgrid
    from headflow.media import read_audio

    folder = Path(folder)
    wav, sr = read_audio(folder / f"{name}.wav")
    if sr != SAMPLE_RATE:
        raise ValueError(f"{folder / name}.wav: {sr} Hz, expected {SAMPLE_RATE}; resample it first")
    grid = read_textgrid(folder / f"{name}.TextGrid")
    missing = {"words", "phones"} - set(grid.tiers)
    if missing:
        raise ValueError(f"{folder / name}.TextGrid: no {sorted(missing)} tier; give an MFA TextGrid (words, phones)")
    return Recording(name, wav, (folder / f"{name}.lab").read_text(), grid.tiers["words"], grid.tiers["phones"])
