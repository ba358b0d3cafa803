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

from headflow.align.features import mfcc_features, speech_region
from headflow.align.hmm import STATES
from headflow.align.lexicon import SPN
from headflow.align.phones import SIL


@njit(cache=True)
def _dtw(cost):  # pragma: no cover - numba
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            acc[i, j] = cost[i - 1, j - 1] + min(acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
    # backtrack: for each column j (synth frame) the first row i (real frame) on the path
    first = np.full(m, n, np.int64)
    i, j = n, m
    while i > 0 and j > 0:
        if i - 1 < first[j - 1]:
            first[j - 1] = i - 1
        a, b, c = acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]
        if a <= b and a <= c:
            i, j = i - 1, j - 1
        elif b <= c:
            i -= 1
        else:
            j -= 1
    return first


def warp(real: np.ndarray, synth: np.ndarray) -> np.ndarray:
    """For each synth frame, the first real frame DTW pairs it with (monotone), shape (len(synth),)."""
    diff = real[:, None, :] - synth[None, :, :]
    cost = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    return np.maximum.accumulate(_dtw(cost))


def _speaking_rate(wav: np.ndarray, n_words: int, shift_ms: float) -> int:
    lo, hi = speech_region(wav, shift_ms)
    minutes = max((hi - lo) * shift_ms / 60000, 1e-3)
    return int(np.clip(n_words / minutes * 0.85, 80, 400))  # pauses inflate the span: aim a little slower


def espeak_init_path(wav: np.ndarray, transcript: str, prons: list, shift_ms: float = 10.0,
                     voice: str = "en-us") -> np.ndarray | None:
    """Graph-node path (T,) for the utterance graph of `prons` (see builtin.segments_for), or None when
    synthesis fails (the aligner then falls back to a flat start for this clip)."""
    from headflow.demo.speech import synthesize

    words = transcript.split()
    try:
        utt = synthesize(transcript, voice=voice, rate_wpm=_speaking_rate(wav, len(words), shift_ms))
    except (ValueError, KeyError, RuntimeError):
        return None
    if len(utt.words) != len(words):
        return None
    real = mfcc_features(wav, shift_ms)[:, 1:26]  # c1..c12 + deltas: no energy, no delta-deltas
    synth = mfcc_features(utt.audio, shift_ms)[:, 1:26]
    first = warp(real, synth)
    shift = shift_ms / 1000
    to_real = lambda t: int(first[min(int(round(t / shift)), len(first) - 1)])  # noqa: E731
    n_real = len(real)
    # espeak's phones per word (in real frames), then the dictionary's phones paired with them
    spans: list[tuple[int, int, str]] = []   # (start, end, label) in real frames, label SIL for pauses
    word_of: list[int] = []
    for p in utt.phones:
        mid = (p.start + p.end) / 2
        w = next((k for k, iv in enumerate(utt.words) if iv.start <= mid < iv.end), -1)
        spans.append((to_real(p.start), to_real(p.end), p.label))
        word_of.append(w if p.label != SIL else -1)
    bounds = []  # (start, end) real frames per graph segment, in graph order, optional silences included
    lead = [s for s, w in zip(spans, word_of) if w == -1 and s[0] < (spans[word_of.index(0)][0] if 0 in word_of else 1 << 30)]
    bounds.append((0, max((b for _, b, _ in lead), default=0)))
    for w, pron in enumerate(prons):
        mine = [s for s, k in zip(spans, word_of) if k == w]
        if not mine:
            return None
        a, b = mine[0][0], mine[-1][1]
        labels = [SPN] if pron is None else list(pron)
        bounds.extend(_pair(labels, mine, a, b))
        nxt = next((s for s, k in zip(spans, word_of) if k == w + 1), None)
        bounds.append((b, nxt[0] if nxt else n_real))  # the pause after the word (often empty)
    return _path_from_bounds(bounds, prons, n_real)


def _pair(labels: list[str], mine: list[tuple[int, int, str]], a: int, b: int) -> list[tuple[int, int]]:
    from headflow.align.evaluate import edit_pairs

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
