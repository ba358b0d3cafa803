"""Praat TextGrids in the layout Montreal Forced Aligner writes: a `words` and a `phones` IntervalTier.

Reading and formatting are praatio's (`praatio.utilities.textgrid_io`), the library MFA itself uses
to write its TextGrids, so our files and MFA's are the same format; this module only maps them to
headflow's small `TextGrid` (tiers as lists of (start, end, label)) and writes atomically.

- Writing: Praat's long ("ooTextFile") text format in UTF-8, as MFA saves it; empty intervals ("")
  mark silence and fill every gap, so each tier tiles [xmin, xmax]. Times are rounded to the
  microsecond (the files stay readable, and the rounded values read back exactly).
- Reading: the long and the short text formats, in UTF-8 or UTF-16 with a byte-order mark (Praat
  saves UTF-16 when a label is not ASCII). TextTiers (point tiers) are skipped; labels come back
  stripped of surrounding spaces (praatio's reading).

praatio 6.2 reads numbers of the long format with the pattern `[\\d.]+`, so a time Praat wrote in
exponent notation (`5.0000000000000002e-05`) fails to parse; such numbers are rewritten in plain
decimal notation before parsing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from praatio.utilities import errors as praatio_errors
from praatio.utilities import textgrid_io
from praatio.utilities.constants import INTERVAL_TIER, Interval as PraatInterval

from headflow.atomic import atomic_output

Interval = tuple[float, float, str]  # (start s, end s, label)

TIME_DECIMALS = 6
"""Written times are rounded to this many decimals (microseconds)."""


@dataclass
class TextGrid:
    """A TextGrid's time range and its IntervalTiers, in file order."""

    xmin: float
    """Start of the grid, seconds."""
    xmax: float
    """End of the grid, seconds."""
    tiers: dict[str, list[Interval]] = field(default_factory=dict)
    """Tier name -> intervals (start s, end s, label), sorted (IntervalTiers only)."""


_HEADER = re.compile(r'\A\s*File type = "ooTextFile(?: short)?"\s*\n\s*(?:Object class = )?"TextGrid"')
_EXPONENT = re.compile(r'^(\s*(?:xmin|xmax|number) = )(-?\d+(?:\.\d*)?[eE][-+]?\d+)[ \t]*$', re.MULTILINE)


def _plain_numbers(text: str) -> str:
    """Long-format numbers in exponent notation rewritten as plain decimals (praatio cannot read them)."""
    return _EXPONENT.sub(lambda m: m.group(1) + np.format_float_positional(float(m.group(2)), trim="-"), text)


def parse_textgrid(text: str, source: str = "<string>") -> TextGrid:
    """Parse a TextGrid text (long or short format) with praatio. TextTiers are skipped.

    Args:
        text: the decoded file contents (a leading byte-order mark is ignored).
        source: what to name in error messages (the file's path).

    Returns:
        The grid with its IntervalTiers in file order.

    Raises:
        ValueError: not a Praat TextGrid text file, or truncated / malformed.
    """
    text = text.lstrip("\ufeff")
    if not _HEADER.match(text):
        raise ValueError(f"{source}: not a Praat TextGrid text file (expected File type = \"ooTextFile\", "
                         "Object class = \"TextGrid\"); save it from Praat as a text file")
    try:
        parsed = textgrid_io.parseTextgridStr(_plain_numbers(text), includeEmptyIntervals=True)
        grid = TextGrid(float(parsed["xmin"]), float(parsed["xmax"]))
        for tier in parsed["tiers"]:
            if tier["class"] == INTERVAL_TIER:
                grid.tiers[tier["name"]] = [(float(a), float(b), str(lab)) for a, b, lab in tier["entries"]]
    except (praatio_errors.ParsingError, IndexError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{source}: truncated or malformed TextGrid ({type(err).__name__}: {err})") from None
    return grid


def read_textgrid(path: str | Path) -> TextGrid:
    """Read a TextGrid file: UTF-16 when it starts with a UTF-16 byte-order mark, else UTF-8.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a TextGrid, or not decodable (the message names the file).
    """
    path = Path(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 or UTF-16 with a byte-order mark ({err}); re-save it from "
                         "Praat (Save as text file) or convert it to UTF-8") from None
    return parse_textgrid(text, str(path))


def _clean(intervals: list[Interval], xmin: float, xmax: float) -> list[PraatInterval]:
    """Sorted, rounded intervals inside [xmin, xmax], overlaps cut at the previous end, empty ones dropped."""
    out: list[PraatInterval] = []
    t = xmin
    for a, b, lab in sorted(intervals):
        a, b = max(round(float(a), TIME_DECIMALS), t), min(round(float(b), TIME_DECIMALS), xmax)
        if b > a:
            out.append(PraatInterval(a, b, str(lab)))
            t = b
    return out


def format_textgrid(grid: TextGrid) -> str:
    """The grid in Praat's long text format, gaps filled with empty intervals (praatio, as MFA writes)."""
    xmin, xmax = round(float(grid.xmin), TIME_DECIMALS), round(float(grid.xmax), TIME_DECIMALS)
    tiers = [{"class": INTERVAL_TIER, "name": name, "xmin": xmin, "xmax": xmax,
              "entries": _clean(intervals, xmin, xmax)} for name, intervals in grid.tiers.items()]
    return textgrid_io.getTextgridAsStr({"xmin": xmin, "xmax": xmax, "tiers": tiers}, "long_textgrid",
                                        includeBlankSpaces=True)


def write_textgrid(grid: TextGrid, path: str | Path) -> None:
    """Write `format_textgrid(grid)` to `path` in UTF-8, atomically (`headflow.atomic`)."""
    with atomic_output(path) as tmp:
        tmp.write_text(format_textgrid(grid), encoding="utf-8")


def alignment_textgrid(words: list[Interval], phones: list[Interval], duration: float) -> TextGrid:
    """MFA's layout: tier `words` (lower-case words) and tier `phones`; silence is the empty label
    (`spn`, spoken noise, is kept, as MFA writes it)."""
    sil = {"SIL", "sil", "sp", ""}
    return TextGrid(0.0, duration, {
        "words": [(a, b, w) for a, b, w in words if w not in sil],
        "phones": [(a, b, p) for a, b, p in phones if p not in sil],
    })
