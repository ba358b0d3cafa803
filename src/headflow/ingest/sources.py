"""Discover the inputs of a source layout: plain folder, the demo corpus, GRID, LRS2 file lists.

Each layout yields `SourceItem`s: the file, its path relative to the source root, a speaker id and
whatever transcript / word alignment / speaking style the layout ships. Discovery never opens the
media; probing is the ingest step's job.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

GRID_TICKS_PER_S = 25000.0  # GRID .align times are in 1/25000 s
GRID_SILENCES = {"sil", "sp"}


@dataclass(frozen=True)
class SourceItem:
    """One input file of a source layout, with what the layout says about it."""

    path: Path
    relpath: str
    speaker_id: str
    transcript: str | None = None
    transcript_source: str | None = None
    words: tuple[tuple[str, float, float], ...] | None = None   # (word, start_s, end_s)
    style: str | None = None
    """Speaking style the source records (the demo corpus: neutral, exaggerated, ...); None if unknown."""
    expected_reject: bool = False
    """The source ships it as a deliberately bad input (demo `bad/`): it never makes its speaker
    eligible for val/test (headflow.ingest.splits)."""


def _videos(root: Path, extensions: list[str]) -> list[Path]:
    exts = {e.lower() for e in extensions}
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in exts
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def _load_transcripts_json(root: Path, name: str | None) -> dict[str, str]:
    if not name:
        return {}
    path = Path(name) if Path(name).is_absolute() else root / name
    if not path.exists():
        raise FileNotFoundError(f"transcripts_json '{path}' not found")
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object mapping clip name -> transcript")
    return {str(k): str(v) for k, v in data.items()}


def _sidecar_transcript(video: Path) -> tuple[str | None, str | None]:
    for ext in (".txt", ".lab"):
        side = video.with_suffix(ext)
        if side.exists():
            text = " ".join(side.read_text(encoding="utf-8", errors="replace").split())
            return (text or None), ext[1:]
    return None, None


def _lookup(table: dict[str, str], rel: str, stem: str) -> str | None:
    return table.get(rel) or table.get(rel.rsplit(".", 1)[0]) or table.get(stem)


def discover_folder(root: Path, extensions: list[str], speaker_from: str = "parent",
                    transcripts_json: str | None = None) -> list[SourceItem]:
    """Any folder of videos; transcripts from a `.txt`/`.lab` beside each video or a JSON table."""
    table = _load_transcripts_json(root, transcripts_json)
    items = []
    for video in _videos(root, extensions):
        rel = video.relative_to(root).as_posix()
        if speaker_from == "parent":
            speaker = video.parent.name if video.parent != root else video.stem
        elif speaker_from == "stem_prefix":
            speaker = video.stem.split("_")[0]
        else:
            speaker = "unknown"
        text, src = _sidecar_transcript(video)
        if text is None and (found := _lookup(table, rel, video.stem)):
            text, src = found, "json"
        items.append(SourceItem(video, rel, speaker, text, src))
    return items


def discover_demo(root: Path, extensions: list[str], speaker_from: str = "parent",
                  transcripts_json: str | None = None) -> list[SourceItem]:
    """The demo corpus (headflow.demo): a folder source plus each clip's style and verdict.

    Style and kind come from the corpus index `corpus.parquet` (columns `source_path`, `kind`,
    `style`); a clip the index does not list falls back to `style` in its `<clip>.truth.json`, and
    without either its style is None. Inputs of kind `bad` are marked `expected_reject`.

    Raises:
        ValueError: when `corpus.parquet` exists but lacks the columns above (an index from an
            older headflow: rebuild it with `dvc repro demo_corpus`).
    """
    import pandas as pd

    items = discover_folder(root, extensions, speaker_from, transcripts_json)
    index = root / "corpus.parquet"
    known: dict[str, tuple[str | None, bool]] = {}
    if index.exists():
        corpus = pd.read_parquet(index)
        missing = {"source_path", "kind", "style"} - set(corpus.columns)
        if missing:
            raise ValueError(f"{index}: demo corpus index lacks columns {sorted(missing)}; rebuild it "
                             "(`dvc repro demo_corpus`)")
        known = {r.source_path: (r.style if isinstance(r.style, str) else None, r.kind == "bad")
                 for r in corpus.itertuples()}
    out = []
    for item in items:
        if item.relpath in known:
            style, bad = known[item.relpath]
        else:
            truth = item.path.with_suffix(".truth.json")
            style = json.loads(truth.read_text()).get("style") if truth.exists() else None
            bad = False
        out.append(dataclasses.replace(item, style=style, expected_reject=bad))
    return out


def read_grid_align(path: Path) -> tuple[tuple[str, float, float], ...]:
    """GRID word alignment: lines `start end word` in 1/25000 s; silences (sil, sp) dropped."""
    words = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise ValueError(f"{path}:{n}: expected 'start end word', got {line!r}")
        start, end, word = int(parts[0]) / GRID_TICKS_PER_S, int(parts[1]) / GRID_TICKS_PER_S, parts[2]
        if word.lower() not in GRID_SILENCES:
            words.append((word.lower(), start, end))
    return tuple(words)


def _grid_align_for(root: Path, video: Path, speaker: str) -> Path | None:
    for cand in (video.with_suffix(".align"), video.parent / "align" / f"{video.stem}.align",
                 root / "alignments" / speaker / f"{video.stem}.align", root / "align" / f"{video.stem}.align"):
        if cand.exists():
            return cand
    return None


def discover_grid(root: Path, extensions: list[str], transcripts_json: str | None = None) -> list[SourceItem]:
    """GRID: `<speaker>/<clip>.mpg` (speaker folders `s1`..`s34`, or a flat folder), `.align` files."""
    table = _load_transcripts_json(root, transcripts_json)
    items = []
    for video in _videos(root, extensions):
        rel = video.relative_to(root).as_posix()
        parent = video.parent.name
        # A flat folder has no speaker information: each clip is its own (pseudo-)speaker.
        speaker = parent if re.fullmatch(r"s\d+", parent) else video.stem
        align = _grid_align_for(root, video, speaker)
        words = read_grid_align(align) if align else None
        text, src = None, None
        if (found := _lookup(table, rel, video.stem)):
            text, src = found, "json"
        elif words:
            text, src = " ".join(w for w, _, _ in words), "align"
        items.append(SourceItem(video, rel, speaker, text, src, words))
    return items


def read_lrs2_transcript(path: Path) -> tuple[str | None, tuple[tuple[str, float, float], ...] | None]:
    """LRS2 `.txt`: a `Text:  WORDS` line and, for pretrain, a `WORD START END ASDSCORE` table."""
    text, words = None, []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    in_table = False
    for line in lines:
        if line.startswith("Text:"):
            text = " ".join(line[5:].split()).lower() or None
        elif line.strip().startswith("WORD START END"):
            in_table = True
        elif in_table and line.strip():
            parts = line.split()
            if len(parts) >= 3:
                words.append((parts[0].lower(), float(parts[1]), float(parts[2])))
    return text, (tuple(words) or None)


def discover_lrs2(root: Path, file_list: str) -> list[SourceItem]:
    """LRS2/LRS3 style: a list file of `<programme id>/<utterance>` lines; videos under root[/main|/pretrain]."""
    list_path = Path(file_list) if Path(file_list).is_absolute() else root / file_list
    if not list_path.exists():
        raise FileNotFoundError(f"file_list '{list_path}' not found")
    items = []
    for n, line in enumerate(list_path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        key = line.split()[0]
        video = next((root / sub / f"{key}.mp4" for sub in ("", "main", "pretrain")
                      if (root / sub / f"{key}.mp4").exists()), root / f"{key}.mp4")
        rel = video.relative_to(root).as_posix() if video.is_relative_to(root) else key + ".mp4"
        text, words, src = None, None, None
        if video.with_suffix(".txt").exists():
            text, words = read_lrs2_transcript(video.with_suffix(".txt"))
            src = "filelist"
        # A listed file that does not exist still becomes an item: ingest quarantines it as unreadable.
        items.append(SourceItem(video, rel, key.split("/")[0], text, src, words))
    return sorted(items, key=lambda i: i.relpath)
