"""Initial alignment from speech synthesis: espeak-ng speaks the transcript (its phone boundaries are
exact), dynamic time warping maps its frames onto the real audio, and the phone boundaries follow.

The dictionary's phone sequence (what the HMM aligns) may differ from espeak's; the two are paired
by edit distance and each dictionary phone takes the warped times of its espeak partner (unpaired
phones share the span between their paired neighbours evenly). Pauses espeak or the speaker make
between words become the optional silence after the word.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from headflow.align.editdistance import edit_pairs
from headflow.align.features import mfcc_features, quiet_frames, speech_region
from headflow.align.hmm import STATES
from headflow.align.lexicon import SPN
from headflow.align.phones import SIL


@njit(cache=True)
def _dtw(cost, slot):  # pragma: no cover - numba
    """Monotone alignment of real frames (rows) to synth frames (columns); a column marked `slot` (a pause
    place between words) may also be skipped diagonally. Returns the column of each row."""
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    move = np.zeros((n + 1, m + 1), np.int8)
    acc[0, 0] = 0.0
    for j in range(1, m + 1):  # leading slots may be skipped before the first row
        if slot[j - 1] and (j == 1 or acc[0, j - 1] == 0.0):
            acc[0, j] = 0.0
            move[0, j] = 2
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            best, arg = acc[i - 1, j - 1], 0
            if acc[i - 1, j] < best:
                best, arg = acc[i - 1, j], 1
            if acc[i, j - 1] < best:
                best, arg = acc[i, j - 1], 2
            if j >= 2 and slot[j - 2] and acc[i - 1, j - 2] < best:
                best, arg = acc[i - 1, j - 2], 3
            acc[i, j] = cost[i - 1, j - 1] + best
            move[i, j] = arg
    col = np.zeros(n, np.int64)
    i, j = n, m
    while j > 1 and slot[j - 1] and acc[n, j - 1] <= acc[n, j]:  # trailing slots may be skipped too
        j -= 1
    while i > 0:
        col[i - 1] = j - 1
        a = move[i, j]
        if a == 0:
            i, j = i - 1, j - 1
        elif a == 1:
            i -= 1
        elif a == 2:
            j -= 1
        else:
            i, j = i - 1, j - 2
    return col


def _speaking_rate(wav: np.ndarray, n_words: int, shift_ms: float) -> int:
    lo, hi = speech_region(wav, shift_ms)
    minutes = max((hi - lo) * shift_ms / 60000, 1e-3)
    return int(np.clip(n_words / minutes * 0.85, 80, 400))  # pauses inflate the span: aim a little slower


def espeak_init_path(wav: np.ndarray, transcript: str, prons: list, shift_ms: float = 10.0,
                     voice: str = "en-us") -> np.ndarray | None:
    """Graph-node path (T,) for the utterance graph of `prons` (see builtin.segments_for), or None when
    synthesis fails (the aligner then falls back to a flat start for this clip).

    The synthetic utterance loses its own pauses and gets a pause *slot* before, between and after its
    words; DTW maps each real frame to a synthetic frame or to a slot (cheap for quiet frames, dear for
    loud ones), so the speaker's pauses land in the optional silences wherever they are.
    """
    from headflow.speech.espeak import synthesize

    words = transcript.split()
    try:
        utt = synthesize(transcript, voice=voice, rate_wpm=_speaking_rate(wav, len(words), shift_ms))
    except (ValueError, KeyError, RuntimeError):
        return None
    if len(utt.words) != len(words):
        return None
    real = mfcc_features(wav, shift_ms)[:, 1:26]  # c1..c12 + deltas: no energy, no delta-deltas
    synth = mfcc_features(utt.audio, shift_ms)[:, 1:26]
    shift = shift_ms / 1000
    # columns: slot, frames of word 0's phones, slot, word 1, ..., slot; column_label = (word, espeak phone k)
    cols, labels = [], []  # synth frame index or -1 for a slot; (word, phone k) or (slot number, -1)
    phones = utt.phones
    for w, iv in enumerate(utt.words):
        cols.append(-1)
        labels.append((w, -1))
        for k, p in enumerate(phones):
            mid = (p.start + p.end) / 2
            if p.label == SIL or not (iv.start <= mid < iv.end):
                continue
            for f in range(int(round(p.start / shift)), min(int(round(p.end / shift)), len(synth))):
                cols.append(f)
                labels.append((w, k))
    cols.append(-1)
    labels.append((len(words), -1))
    cols_a = np.array(cols)
    slot = cols_a < 0
    quiet = quiet_frames(wav, len(real), shift_ms)
    diff = real[:, None, :] - synth[np.maximum(cols_a, 0)][None, :, :]
    cost = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff)) + 3.0 * quiet[:, None]
    cost[:, slot] = np.where(quiet, 0.5, 12.0)[:, None]
    col = _dtw(cost, slot)
    # per graph segment (optional silence, each word's phones, optional silence ...) its real frames
    n_real = len(real)
    bounds = []
    for w in range(len(words) + 1):
        rows = np.flatnonzero(slot[col] & (np.array([labels[c][0] for c in col]) == w))
        if w > 0:
            mine = [(k, r) for r, c in enumerate(col) if not slot[c] and labels[c][0] == w - 1
                    for k in [labels[c][1]]]
            if not mine:
                return None
            a, b = mine[0][1], mine[-1][1] + 1
            ks = sorted({k for k, _ in mine})
            spans = [(min(r for k2, r in mine if k2 == k), phones[k].label) for k in ks]
            pron = prons[w - 1]
            bounds.extend(_pair([SPN] if pron is None else list(pron),
                                [(st, 0, lab) for st, lab in spans], a, b))
        lo = rows.min() if len(rows) else (bounds[-1][1] if bounds else 0)
        hi = rows.max() + 1 if len(rows) else lo
        bounds.append((lo, hi))
    return _path_from_bounds(bounds, prons, n_real)


def _pair(labels: list[str], mine: list[tuple[int, int, str]], a: int, b: int) -> list[tuple[int, int]]:

    pairs = dict(edit_pairs([m[2] for m in mine], labels))  # espeak index -> dictionary index
    starts = np.full(len(labels) + 1, -1.0)
    starts[0], starts[-1] = a, b
    for i, j in pairs.items():
        starts[j] = mine[i][0] if j > 0 else a
    known = np.flatnonzero(starts >= 0)
    starts = np.interp(np.arange(len(labels) + 1), known, starts[known])
    return [(int(round(starts[k])), int(round(starts[k + 1]))) for k in range(len(labels))]


def _path_from_bounds(bounds: list[tuple[int, int]], prons: list, n: int) -> np.ndarray | None:
    """Node path from per-segment frame spans: optional silences shorter than one model traversal are
    dropped, phones get at least STATES frames, each segment's frames split evenly over its states."""
    optional = [True]
    for pron in prons:
        optional += [False] * (1 if pron is None else len(pron)) + [True]
    if sum(not o for o in optional) * STATES > n:
        return None
    lengths = np.array([max(0, b - a) for a, b in bounds])
    lengths[[i for i, o in enumerate(optional) if o and lengths[i] < STATES]] = 0
    need = np.array([0 if o else STATES for o in optional])
    lengths = np.maximum(lengths, need)
    # make the spans add up to n: trim the longest segments (never below their minimum), or pad the last
    while lengths.sum() > n:
        k = int(np.argmax(lengths - need))
        lengths[k] -= min(lengths[k] - need[k], lengths.sum() - n)
    lengths[-1 if optional[-1] and lengths[-1] else -2] += n - lengths.sum()
    path = np.empty(n, np.int64)
    t = 0
    for s, length in enumerate(lengths):
        if length:
            path[t:t + length] = s * STATES + (np.arange(length) * STATES) // length
            t += length
    return path
