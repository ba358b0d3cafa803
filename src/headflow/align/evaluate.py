"""Boundary accuracy of an alignment against a reference (espeak's exact timings, MFA, GRID).

How boundaries are matched when the phone sequences differ (the dictionary and the reference may
pronounce a word differently): silences are dropped from both sides, the two phone label sequences
are aligned by edit distance (insertion/deletion 1, substitution 0.6 within vowels or within
consonants, 1 across), and every aligned pair (same or substituted label) contributes its start
and its end boundary. A boundary shared by two consecutive aligned pairs on both sides (the end of
one phone is the start of the next, in reference and hypothesis) is counted once. Words: the
same, with word labels and exact-match cost 0 only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from headflow.align.editdistance import edit_pairs
from headflow.align.phones import SIL, normalize_phone

def boundary_errors(ref: list[tuple[float, float, str]], hyp: list[tuple[float, float, str]],
                    words: bool = False) -> np.ndarray:
    """Absolute errors (s) of the shared boundaries of two interval lists (start, end, label)."""
    def speech(items):
        out = []
        for a, b, lab in items:
            lab = lab if words else normalize_phone(lab)
            if lab not in (SIL, "", "sil", "sp") and b > a:
                out.append((a, b, lab))
        return out

    r, h = speech(ref), speech(hyp)
    seen: dict[tuple[float, float], float] = {}
    for i, j in edit_pairs([x[2] for x in r], [x[2] for x in h], words):
        for rt, ht in ((r[i][0], h[j][0]), (r[i][1], h[j][1])):
            seen[(round(rt, 5), round(ht, 5))] = abs(rt - ht)
    return np.array(list(seen.values()))


@dataclass(frozen=True)
class BoundaryStats:
    n: int
    median_ms: float
    mean_ms: float
    within_20ms: float
    within_40ms: float

    def line(self, name: str) -> str:
        return (f"{name}: {self.n} boundaries, median {self.median_ms:.1f} ms, mean {self.mean_ms:.1f} ms, "
                f"{self.within_20ms:.1%} within 20 ms, {self.within_40ms:.1%} within 40 ms")


def summarize(errors: np.ndarray) -> BoundaryStats:
    e = np.asarray(errors, dtype=np.float64)
    if len(e) == 0:
        return BoundaryStats(0, float("nan"), float("nan"), float("nan"), float("nan"))
    return BoundaryStats(len(e), float(np.median(e) * 1000), float(e.mean() * 1000), float(np.mean(e <= 0.020)),
                         float(np.mean(e <= 0.040)))


def read_grid_align(path) -> list[tuple[float, float, str]]:
    """A GRID .align file (start end word, times in 1/25000 s) -> word intervals in seconds, sil kept."""
    out = []
    for line in open(path, encoding="utf-8"):
        parts = line.split()
        if len(parts) == 3:
            out.append((int(parts[0]) / 25000, int(parts[1]) / 25000, parts[2]))
    return out


@dataclass(frozen=True)
class WordBoundary:
    """One word paired between reference and hypothesis (`word_boundaries`); times in seconds."""

    word: str
    ref: tuple[float, float]
    hyp: tuple[float, float]
    gap_before: float   # reference: silence between the previous word's end (or 0) and this word's start
    gap_after: float    # reference: silence between this word's end and the next word's start (or the tier's end)
    first_phone: str    # reference phone tier's first phone of the word ("" when no phone tier was given)
    last_phone: str

    @property
    def start_error(self) -> float:
        """Signed: hypothesis minus reference start (> 0: ours starts late)."""
        return self.hyp[0] - self.ref[0]

    @property
    def end_error(self) -> float:
        """Signed: hypothesis minus reference end (> 0: ours ends late)."""
        return self.hyp[1] - self.ref[1]


def word_boundaries(ref_words: list[tuple[float, float, str]], hyp_words: list[tuple[float, float, str]],
                    ref_phones: list[tuple[float, float, str]] | None = None) -> list[WordBoundary]:
    """Every word paired by `boundary_errors`' word matching (exact labels, edit distance), with its start and
    end in both and its reference context, for diagnosing which word boundaries miss (bench/align.py --words).

    Unlike `boundary_errors`, a boundary shared by two consecutive words appears twice (as one word's end
    and the next one's start). Silences ("", "sil", "sp", "SIL") are dropped from both sides; gaps are
    measured between the reference's remaining words (the first word's from 0, the last word's to the end
    of the reference tier, silences included). Phones: the reference phones lying inside the
    word's span, normalised (stress removed)."""
    def speech(items):
        return [(a, b, lab) for a, b, lab in items if lab not in (SIL, "", "sil", "sp") and b > a]

    r, h = speech(ref_words), speech(hyp_words)
    tier_end = max((b for _, b, _ in ref_words), default=0.0)
    phones = [(a, b, normalize_phone(p)) for a, b, p in speech(ref_phones or [])]
    out = []
    for i, j in edit_pairs([x[2] for x in r], [x[2] for x in h], True):
        a, b, word = r[i]
        inside = [p for pa, pb, p in phones if pa >= a - 1e-6 and pb <= b + 1e-6]
        out.append(WordBoundary(word, (a, b), (h[j][0], h[j][1]),
                                a - (r[i - 1][1] if i > 0 else 0.0),
                                (r[i + 1][0] if i + 1 < len(r) else tier_end) - b,
                                inside[0] if inside else "", inside[-1] if inside else ""))
    return out


def tier_phones(intervals: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """A reference phone tier (ARPAbet with or without stress, MFA 2.x IPA, or silence marks) -> intervals of
    normalised ARPAbet phones and SIL.

    Each label is read as ARPAbet (`phones.normalize_phone`: `IH0` -> IH, "" / sil / sp / spn -> SIL) or else
    through `lexicon.IPA_TO_ARPABET` (`lexicon.to_arpabet`: `ɪ` -> IH, `tʃ` -> CH, `ɾ` -> T, `ɫ̩` -> AH L,
    diacritics dropped). An IPA label that maps to two ARPAbet phones (syllabic consonants: `n̩` -> AH N)
    splits its interval into equal halves.

    Raises:
        ValueError: a label that is neither (names it and its time).
    """
    from headflow.align.lexicon import SPN, to_arpabet

    out = []
    for a, b, label in intervals:
        try:
            out.append((a, b, normalize_phone(label)))
            continue
        except KeyError:
            pass
        mapped = to_arpabet(label.strip())
        if mapped is None:
            raise ValueError(f"phone tier: label {label!r} at {a:.3f}-{b:.3f} s is neither ARPAbet nor an IPA phone "
                             "of lexicon.IPA_TO_ARPABET; add it to that table")
        mapped = tuple(SIL if p == SPN else p for p in mapped)
        step = (b - a) / len(mapped)
        out += [(a + k * step, a + (k + 1) * step, p) for k, p in enumerate(mapped)]
    return out


def tier_frame_labels(intervals: list[tuple[float, float, str]], n_frames: int, fps: float = 25.0) -> np.ndarray:
    """Per-video-frame StyleTalk phoneme indices (n_frames,) int64 of a phone tier (`tier_phones`'s labels):
    frame t takes the phone at its centre (t + 0.5) / fps, SIL (31) where no interval covers it
    (`phones.frame_phones`, the rule the align stage's frame labels follow), mapped by `phones.STYLETALK_PHINDEX`.
    """
    from headflow.align.phones import STYLETALK_PHINDEX, frame_phones

    return np.array([STYLETALK_PHINDEX[p] for p in frame_phones(tier_phones(intervals), n_frames, fps)], np.int64)
