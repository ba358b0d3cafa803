"""The phone inventory: ARPAbet without stress plus SIL, its integer index table, StyleTalk's phindex.

Index table (`PHONE_INDEX`, stored as `phone_index` in the manifests)::

     0 SIL   1 AA   2 AE   3 AH   4 AO   5 AW   6 AY   7 B    8 CH   9 D   10 DH  11 EH  12 ER
    13 EY   14 F   15 G   16 HH  17 IH  18 IY  19 JH  20 K   21 L   22 M   23 N   24 NG  25 OW
    26 OY   27 P   28 R   29 S   30 SH  31 T   32 TH  33 UH  34 UW  35 V   36 W   37 Y   38 Z
    39 ZH

SIL is 0 so that a zero-initialised label array means silence. `sil`, `sp`, `spn` and the empty
label of MFA TextGrids all read as SIL.

StyleTalk (FuxiVirtualHuman/styletalk, `phindex.json`, commit 4ed06fd) numbers 41 symbols in
alphabetical order: the 39 ARPAbet phones, `NSN` (24, non-speech noise) and `SIL` (31)::

    AA 0  AE 1  AH 2  AO 3  AW 4  AY 5  B 6  CH 7  D 8  DH 9  EH 10  ER 11  EY 12  F 13  G 14
    HH 15 IH 16 IY 17 JH 18 K 19 L 20 M 21 N 22 NG 23 NSN 24 OW 25 OY 26 P 27 R 28 S 29 SH 30
    SIL 31 T 32 TH 33 UH 34 UW 35 V 36 W 37 Y 38 Z 39 ZH 40

Our SIL maps to StyleTalk's SIL (31); NSN is never produced (spoken noise `spn` is SIL here, as
DESIGN.md asks).
"""

from __future__ import annotations

import re

import numpy as np

SIL = "SIL"
ARPABET: tuple[str, ...] = tuple(
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH".split())
PHONES: tuple[str, ...] = (SIL, *ARPABET)
PHONE_INDEX: dict[str, int] = {p: i for i, p in enumerate(PHONES)}

STYLETALK_PHINDEX: dict[str, int] = {p: i for i, p in enumerate(sorted([*ARPABET, "NSN", "SIL"]))}
"""StyleTalk's phindex.json, reproduced (alphabetical: AA=0 ... NSN=24 ... SIL=31 ... ZH=40)."""

STYLETALK_INDEX: np.ndarray = np.array([STYLETALK_PHINDEX[p] for p in PHONES], dtype=np.int16)
"""STYLETALK_INDEX[phone_index] -> StyleTalk phindex."""

_SILENCES = frozenset({"", "sil", "sp", "spn", "<eps>", "silence", "pau", "h#"})
_STRESS = re.compile(r"[012]$")


def normalize_phone(label: str) -> str:
    """'IH0' -> 'IH', 'sil'/'sp'/'spn'/'' -> 'SIL'; raises KeyError for anything else.

    Raises:
        KeyError: the label is not ARPAbet (with or without stress) nor a silence mark.
    """
    text = label.strip()
    if text.lower() in _SILENCES:
        return SIL
    phone = _STRESS.sub("", text.upper())
    if phone not in PHONE_INDEX:
        raise KeyError(f"{label!r} is not an ARPAbet phone (expected one of {' '.join(PHONES)}, "
                       "optionally with a stress digit, or sil/sp/spn)")
    return phone


def phone_index(phone: str) -> int:
    """Index of a normalised phone in the table above."""
    return PHONE_INDEX[phone]


def frame_phones(intervals: list[tuple[float, float, str]], n_frames: int, fps: float = 25.0) -> list[str]:
    """The phone of each video frame: frame t covers [t/fps, (t+1)/fps) and takes the phone active at
    its centre (t + 0.5) / fps. Intervals are (start, end, phone), sorted and contiguous or not;
    a centre that no interval covers (before the first, after the last, or in a gap) is SIL.

    Example: intervals [(0, 0.1, SIL), (0.1, 0.18, 'M')] at 25 fps: centres 0.02, 0.06, 0.10, 0.14, 0.18
    -> SIL, SIL, M (0.10 is M's start, and intervals are half-open), M, SIL (0.18 is past M's end).
    """
    starts = np.array([a for a, _, _ in intervals], dtype=np.float64)
    ends = np.array([b for _, b, _ in intervals], dtype=np.float64)
    centres = (np.arange(n_frames) + 0.5) / fps
    k = np.searchsorted(starts, centres, side="right") - 1  # last interval starting at or before the centre
    out = []
    for t, i in enumerate(k):
        out.append(intervals[i][2] if i >= 0 and centres[t] < ends[i] else SIL)
    return out
