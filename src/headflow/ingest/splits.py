"""Speaker-disjoint train/val/test splits drawn from the speakers with usable clips.

A speaker can only validate or test a model when it has clips to measure on: a pseudo-speaker (one
input file that is its own "speaker", e.g. a flat GRID folder, or the demo corpus's `bad/` folder of
deliberately broken inputs) or a speaker with a single clip would make a held-out split of nothing.
So only *eligible* speakers (at least `min_speaker_clips` usable clips) are dealt to val and test;
every other accepted clip trains.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

from headflow.ingest.params import SplitParams

SPLITS = ("train", "val", "test")


def split_sizes(n_eligible: int, split: SplitParams) -> tuple[int, int]:
    """(n_test, n_val): how many eligible speakers go to test and val.

    `round(fraction * n)` each, at least one per split with a positive fraction once there are 3 or
    more eligible speakers, and never so many that train is left without an eligible speaker.
    Example: 7 eligible speakers, val = test = 0.15: round(1.05) = 1 each, so 1 / 1 / 5.
    """
    def count(frac: float) -> int:
        k = int(round(frac * n_eligible))
        return max(k, 1) if frac > 0 and n_eligible >= 3 else k

    n_test, n_val = count(split.test), count(split.val)
    room = max(n_eligible - 1, 0)          # keep one eligible speaker for training
    n_test = min(n_test, room)
    n_val = min(n_val, room - n_test)
    return n_test, n_val


def eligible_speakers(speakers: Sequence[str], split: SplitParams, usable: Sequence[bool]) -> set[str]:
    """The speakers with at least `split.min_speaker_clips` usable clips (one `speakers` / `usable` entry per
    clip): the only ones `assign_splits` deals to val and test."""
    n_usable = Counter(s for s, ok in zip(speakers, usable) if ok)
    return {s for s, n in n_usable.items() if n >= split.min_speaker_clips}


def assign_splits(speakers: Sequence[str], split: SplitParams,
                  usable: Sequence[bool] | None = None) -> dict[str, str]:
    """Speaker-disjoint split with val and test drawn only from speakers that have usable clips.

    Rule: the sorted distinct speakers are shuffled with `split.seed` (`random.Random`, the same
    shuffle as before this rule existed, so held-out speakers stay put when eligibility changes
    around them); walking that order, the first `n_test` *eligible* speakers go to test, the next
    `n_val` to val (`split_sizes`), and everything else, eligible or not, to train. A speaker is
    eligible when it has at least `split.min_speaker_clips` usable clips.

    Args:
        speakers: the speaker of each accepted clip (one entry per clip, so counts are clip counts).
        split: seed, fractions and `min_speaker_clips`.
        usable: per clip, False for clips that do not count towards eligibility although they were
            accepted (the demo corpus's deliberately bad inputs that a later stage must reject);
            default: every clip counts.

    Returns:
        {speaker_id: "train" | "val" | "test"} for every distinct speaker in `speakers`.

    Raises:
        ValueError: when `usable` does not have one entry per clip.
    """
    if usable is None:
        usable = [True] * len(speakers)
    if len(usable) != len(speakers):
        raise ValueError(f"assign_splits: usable has {len(usable)} entries for {len(speakers)} clips; "
                         "pass one flag per accepted clip")
    ok = eligible_speakers(speakers, split, usable)
    order = sorted(set(speakers))
    random.Random(split.seed).shuffle(order)
    eligible = [s for s in order if s in ok]
    n_test, n_val = split_sizes(len(eligible), split)
    out = dict.fromkeys(order, "train")
    for s in eligible[:n_test]:
        out[s] = "test"
    for s in eligible[n_test:n_test + n_val]:
        out[s] = "val"
    return out
