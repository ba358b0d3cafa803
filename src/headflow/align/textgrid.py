"""Praat TextGrids in the layout Montreal Forced Aligner writes: a `words` and a `phones` IntervalTier.

Writing uses Praat's long ("ooTextFile") text format, as MFA does; empty intervals ("") mark silence
and fill every gap so each tier tiles [xmin, xmax]. Reading accepts the long and the short text
formats (both are the same sequence of numbers and quoted strings once the `key =` labels and
`[n]` indices are ignored, which is how Praat itself reads them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from headflow.manifest import atomic_output

Interval = tuple[float, float, str]  # (start s, end s, label)


@dataclass
class TextGrid:
    xmin: float
    xmax: float
    tiers: dict[str, list[Interval]] = field(default_factory=dict)  # name -> intervals (IntervalTiers only)


_TOKEN = re.compile(r'"((?:[^"]|"")*)"|(?<![\w.])(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)(?![\w])|(<exists>|<absent>)')


def _tokens(text: str) -> list:
    text = re.sub(r"\[\s*\d+\s*\]", " ", text)  # `item [1]:`, `intervals [3]:`
    out: list = []
    for m in _TOKEN.finditer(text):
        if m.group(1) is not None:
            out.append(m.group(1).replace('""', '"'))
        elif m.group(2) is not None:
            out.append(float(m.group(2)))
        else:
            out.append(m.group(3))
    return out


def parse_textgrid(text: str, source: str = "<string>") -> TextGrid:
    """Parse a TextGrid (long or short text format). TextTiers are skipped.

    Raises:
        ValueError: not a TextGrid text file, or truncated.
    """
    tok = _tokens(text.lstrip("\ufeff"))
    if tok[:2] != ["ooTextFile", "TextGrid"]:
        raise ValueError(f"{source}: not a Praat TextGrid text file (expected File type = \"ooTextFile\", "
                         "Object class = \"TextGrid\")")
    try:
        xmin, xmax = float(tok[2]), float(tok[3])
        if tok[4] != "<exists>":
            return TextGrid(xmin, xmax)
        n_tiers, i = int(tok[5]), 6
        grid = TextGrid(xmin, xmax)
        for _ in range(n_tiers):
            cls, name, n = tok[i], tok[i + 1], int(tok[i + 4])
            i += 5
            if cls == "IntervalTier":
                grid.tiers[name] = [(float(tok[i + 3 * k]), float(tok[i + 3 * k + 1]), str(tok[i + 3 * k + 2]))
                                    for k in range(n)]
                i += 3 * n
            else:  # TextTier: (time, mark) pairs
                i += 2 * n
        return grid
    except (IndexError, TypeError, ValueError) as err:
        raise ValueError(f"{source}: truncated or malformed TextGrid ({err})") from None


def read_textgrid(path: str | Path) -> TextGrid:
    path = Path(path)
    raw = path.read_bytes()
    text = raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode("utf-8")
    return parse_textgrid(text, str(path))


def _fill(intervals: list[Interval], xmin: float, xmax: float) -> list[Interval]:
    """Sorted intervals with the gaps filled by empty ones, so the tier tiles [xmin, xmax]."""
    out: list[Interval] = []
    t = xmin
    for a, b, lab in sorted(intervals):
        if a > t + 1e-9:
            out.append((t, a, ""))
        a = max(a, t)
        if b > a:
            out.append((a, b, lab))
            t = b
    if xmax > t + 1e-9:
        out.append((t, xmax, ""))
    return out


def _num(x: float) -> str:
    return f"{float(x):.6f}".rstrip("0").rstrip(".") or "0"


def format_textgrid(grid: TextGrid) -> str:
    """Long text format, as written by MFA and Praat."""
    q = lambda s: '"' + s.replace('"', '""') + '"'  # noqa: E731
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", f"xmin = {_num(grid.xmin)}",
             f"xmax = {_num(grid.xmax)}", "tiers? <exists>", f"size = {len(grid.tiers)}", "item []:"]
    for k, (name, intervals) in enumerate(grid.tiers.items(), 1):
        filled = _fill(intervals, grid.xmin, grid.xmax)
        lines += [f"    item [{k}]:", '        class = "IntervalTier"', f"        name = {q(name)}",
                  f"        xmin = {_num(grid.xmin)}", f"        xmax = {_num(grid.xmax)}",
                  f"        intervals: size = {len(filled)}"]
        for j, (a, b, lab) in enumerate(filled, 1):
            lines += [f"        intervals [{j}]:", f"            xmin = {_num(a)}", f"            xmax = {_num(b)}",
                      f"            text = {q(lab)}"]
    return "\n".join(lines) + "\n"


def write_textgrid(grid: TextGrid, path: str | Path) -> None:
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
