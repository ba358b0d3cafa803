"""Weighted edit distance between phone (or word) label sequences: which reference label pairs with
which hypothesis label. Used to score alignments (`evaluate.boundary_errors`) and to map espeak-ng's
phones onto the dictionary's (`dtw`). Vowel-for-vowel and consonant-for-consonant substitutions cost
less (0.6) than across classes (1.0), so like sounds pair up."""

from __future__ import annotations

import numpy as np


_VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())


def _sub_cost(a: str, b: str, words: bool) -> float:
    if a == b:
        return 0.0
    if words:
        return 1.5  # never cheaper than delete + insert: words pair only when equal
    return 0.6 if (a in _VOWELS) == (b in _VOWELS) else 1.0


def edit_pairs(ref: list[str], hyp: list[str], words: bool = False) -> list[tuple[int, int]]:
    """Index pairs (i, j) aligned by minimum-cost edit distance (see the module docstring)."""
    n, m = len(ref), len(hyp)
    cost = np.zeros((n + 1, m + 1))
    cost[:, 0], cost[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i, j] = min(cost[i - 1, j] + 1, cost[i, j - 1] + 1,
                             cost[i - 1, j - 1] + _sub_cost(ref[i - 1], hyp[j - 1], words))
    pairs, i, j = [], n, m
    while i > 0 and j > 0:
        if np.isclose(cost[i, j], cost[i - 1, j - 1] + _sub_cost(ref[i - 1], hyp[j - 1], words)):
            if not (words and ref[i - 1] != hyp[j - 1]):
                pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif np.isclose(cost[i, j], cost[i - 1, j] + 1):
            i -= 1
        else:
            j -= 1
    return pairs[::-1]
