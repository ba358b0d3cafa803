"""Discover the inputs of a source layout: plain folder, the demo corpus, GRID, LRS2 file lists.

Each layout yields `SourceItem`s: the file, its path relative to the source root, a speaker id and
whatever transcript / word alignment / speaking style the layout ships. Discovery never opens the
media; probing is the ingest step's job. Extensions are matched case-insensitively (`.MP4`, `.Mov`);
sidecar transcripts too (`clip.TXT`). Transcripts are decoded by `headflow.ingest.transcripts` (BOMs,
strict UTF-8, the configured legacy code pages); one that cannot be decoded is recorded on its item
(`transcript_problem`) for ingest to quarantine, never read with replacement characters.

`audit_root` accounts for every other file under a folder, demo or GRID root: sidecars of an input
(`<stem>.*` beside it: transcripts, `.align`, the demo's ground truth), layout files, documents and
data tables are not inputs; anything else (media with an extension outside `ingest.extensions`, or
an unknown extension) is listed for ingest to quarantine as `unsupported_extension`.
"""

from __future__ import annotations

import dataclasses
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from headflow.ingest.transcripts import DEFAULT_LEGACY, TranscriptEncodingError, read_transcript, text_problem

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
    transcript_encoding: str | None = None
    """How its transcript file was decoded ("utf-8", "utf-16 (BOM)", "cp1252", ...); None without one."""
    transcript_problem: str | None = None
    """Why its transcript file could not be decoded (ingest quarantines it as transcript_encoding)."""
    start_s: float | None = None
    """Start of the part of the file this item is (seconds from the file's start); None: the whole file."""
    end_s: float | None = None
    """End of that part (seconds); None: to the end of the file."""
    crop: tuple[int, int, int, int] | None = None
    """Window (x, y, w, h) in upright source pixels the layout crops the picture to (HDTF); None: full frame."""
    span_index: int | None = None
    """Which span of its file the layout lists (HDTF: k of `<name>_<k>`); None when the layout lists none."""
    segment_index: int | None = None
    """Which pause-cut segment of its file or span this is (`headflow.ingest.segment`); None: not cut."""
    segment_end: str | None = None
    """What ends a cut segment: "pause" (a pause in the speech), "forced" (no pause within reach: the
    quietest instant) or "end" (the span's or file's end); None when not cut."""
    checked: bool = False
    """Its file was already probed and fully decoded when its segments were planned."""
    missing_note: str | None = None
    """Why the layout lists a file that is not on disk (e.g. 'not downloaded (URL)'); ingest quarantines it."""
    emotion: str | None = None
    """Emotion the layout records (MEAD: angry, happy, ...); None if unknown."""
    emotion_level: int | None = None
    """Intensity level of that emotion (MEAD: 1-3); None if unknown."""
    camera_view: str | None = None
    """Camera the layout records (MEAD: front, left_30, ...); None if unknown."""
    list_key: str | None = None
    """The key a list file names it by (Wav2Lip pair lists: `<programme>/<utterance>`)."""

    @property
    def key(self) -> str:
        """What its clip_id is derived from: the relative path, plus the time range for part of a file
        (`a/b.mp4` -> `a/b_t000012.000-000027.500.mp4`), so every part of one file gets its own id."""
        if self.start_s is None and self.end_s is None:
            return self.relpath
        stem, dot, ext = self.relpath.rpartition(".")
        stem, ext = (stem, dot + ext) if dot else (self.relpath, "")
        end = "end" if self.end_s is None else f"{self.end_s:010.3f}"
        return f"{stem}_t{self.start_s or 0.0:010.3f}-{end}{ext}"


def normalise_extensions(extensions: list[str]) -> frozenset[str]:
    """`[".MP4", "mov"]` -> `{".mp4", ".mov"}`: lower case, one leading dot."""
    return frozenset("." + e.strip().lstrip(".").lower() for e in extensions if e.strip().lstrip("."))


def _files(root: Path) -> list[Path]:
    """Every regular file under `root`, hidden files and folders (a leading '.') aside, sorted."""
    return sorted(p for p in root.rglob("*") if p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def _videos(root: Path, extensions: list[str]) -> list[Path]:
    exts = normalise_extensions(extensions)
    return [p for p in _files(root) if p.suffix.lower() in exts]


def _load_transcripts_json(root: Path, name: str | None, legacy: tuple[str, ...] | list[str] = DEFAULT_LEGACY
                           ) -> tuple[dict[str, str], dict[str, str]]:
    """(transcripts, problems) of `ingest.transcripts_json`, a JSON object mapping clip name -> transcript.

    The file's bytes are decoded as a transcript file is (`read_transcript`: BOMs honoured, strict
    UTF-8, the legacy code pages), so a table saved by a Windows editor reads like its sidecar twin. An
    entry whose text still holds a control character or U+FFFD (a JSON escape such as `\\u0000` or
    `\\ufffd`: text damaged before it was saved) is not a transcript: it goes to `problems` (name ->
    what is wrong) for ingest to quarantine as `transcript_encoding`.

    Raises:
        FileNotFoundError: the file does not exist.
        TranscriptEncodingError: its bytes decode in no accepted encoding (the message names each).
        ValueError: it is not JSON, or not a JSON object.
    """
    if not name:
        return {}, {}
    path = Path(name) if Path(name).is_absolute() else root / name
    if not path.exists():
        raise FileNotFoundError(f"transcripts_json '{path}' not found")
    try:
        data = json.loads(read_transcript(path, legacy)[0])
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err}); expected an object mapping clip name -> transcript") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object mapping clip name -> transcript")
    table, problems = {}, {}
    for key, value in data.items():
        text = str(value)
        if (problem := text_problem(text)) is not None:
            problems[str(key)] = f"entry {str(key)!r} of {path.name} holds {problem}: fix the text and save it as UTF-8"
        else:
            table[str(key)] = unicodedata.normalize("NFC", text)   # as the sidecar files' text is
    return table, problems


class _Sidecars:
    """Files beside the videos, by lower-case name, one folder listing each (case-insensitive lookups)."""

    def __init__(self) -> None:
        self._folders: dict[Path, dict[str, Path]] = {}

    def find(self, video: Path, ext: str) -> Path | None:
        folder = self._folders.get(video.parent)
        if folder is None:
            folder = self._folders[video.parent] = {p.name.lower(): p for p in video.parent.iterdir() if p.is_file()}
        return folder.get((video.stem + ext).lower())


def _sidecar_transcript(video: Path, sidecars: _Sidecars, legacy: tuple[str, ...] | list[str] = DEFAULT_LEGACY
                        ) -> tuple[str | None, str | None, str | None, str | None]:
    """(text, source "txt"/"lab", encoding, problem) of the transcript beside `video`, all None without one."""
    for ext in (".txt", ".lab"):
        side = sidecars.find(video, ext)
        if side is not None:
            try:
                raw, encoding = read_transcript(side, legacy)
            except TranscriptEncodingError as err:
                return None, ext[1:], None, str(err)
            return (" ".join(raw.split()) or None), ext[1:], encoding, None
    return None, None, None, None


def _lookup(table: dict[str, str], rel: str, stem: str) -> str | None:
    return table.get(rel) or table.get(rel.rsplit(".", 1)[0]) or table.get(stem)


def discover_folder(root: Path, extensions: list[str], speaker_from: str = "parent",
                    transcripts_json: str | None = None,
                    transcript_encodings: tuple[str, ...] | list[str] = DEFAULT_LEGACY) -> list[SourceItem]:
    """Any folder of videos; transcripts from a `.txt`/`.lab` beside each video or a JSON table.

    `transcript_encodings`: legacy code pages tried after UTF-8 (`headflow.ingest.transcripts`)."""
    table, damaged = _load_transcripts_json(root, transcripts_json, transcript_encodings)
    sidecars = _Sidecars()
    items = []
    for video in _videos(root, extensions):
        rel = video.relative_to(root).as_posix()
        if speaker_from == "parent":
            speaker = video.parent.name if video.parent != root else video.stem
        elif speaker_from == "stem_prefix":
            speaker = video.stem.split("_")[0]
        else:
            speaker = "unknown"
        text, src, encoding, problem = _sidecar_transcript(video, sidecars, transcript_encodings)
        if text is None and problem is None:
            if (found := _lookup(table, rel, video.stem)):
                text, src, encoding = found, "json", "json"
            elif (bad := _lookup(damaged, rel, video.stem)):
                src, problem = "json", bad
        items.append(SourceItem(video, rel, speaker, text, src, transcript_encoding=encoding,
                                transcript_problem=problem))
    return items


def discover_demo(root: Path, extensions: list[str], speaker_from: str = "parent",
                  transcripts_json: str | None = None,
                  transcript_encodings: tuple[str, ...] | list[str] = DEFAULT_LEGACY) -> list[SourceItem]:
    """The demo corpus (headflow.demo): a folder source plus each clip's style and verdict.

    Style and kind come from the corpus index `corpus.parquet` (columns `source_path`, `kind`,
    `style`); a clip the index does not list falls back to `style` in its `<clip>.truth.json`, and
    without either its style is None. Inputs of kind `bad` are marked `expected_reject`.

    Raises:
        ValueError: when `corpus.parquet` exists but lacks the columns above (an index from an
            older headflow: rebuild it with `dvc repro demo_corpus`).
    """
    import pandas as pd

    items = discover_folder(root, extensions, speaker_from, transcripts_json, transcript_encodings)
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
    table, damaged = _load_transcripts_json(root, transcripts_json)
    items = []
    for video in _videos(root, extensions):
        rel = video.relative_to(root).as_posix()
        parent = video.parent.name
        # A flat folder has no speaker information: each clip is its own (pseudo-)speaker.
        speaker = parent if re.fullmatch(r"s\d+", parent) else video.stem
        align = _grid_align_for(root, video, speaker)
        words = read_grid_align(align) if align else None
        text, src, problem = None, None, None
        if (found := _lookup(table, rel, video.stem)):
            text, src = found, "json"
        elif (bad := _lookup(damaged, rel, video.stem)):
            src, problem = "json", bad
        elif words:
            text, src = " ".join(w for w, _, _ in words), "align"
        items.append(SourceItem(video, rel, speaker, text, src, words, transcript_problem=problem))
    return items


def read_lrs2_transcript(path: Path, transcript_encodings: tuple[str, ...] | list[str] = DEFAULT_LEGACY
                         ) -> tuple[str | None, tuple[tuple[str, float, float], ...] | None]:
    """LRS2 `.txt`: a `Text:  WORDS` line and, for pretrain, a `WORD START END ASDSCORE` table.

    Raises:
        TranscriptEncodingError: the file decodes cleanly in no accepted encoding.
    """
    text, words = None, []
    lines = read_transcript(path, transcript_encodings)[0].splitlines()
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


def discover_lrs2(root: Path, file_list: str,
                  transcript_encodings: tuple[str, ...] | list[str] = DEFAULT_LEGACY) -> list[SourceItem]:
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
        text, words, src, problem = None, None, None, None
        if video.with_suffix(".txt").exists():
            src = "filelist"
            try:
                text, words = read_lrs2_transcript(video.with_suffix(".txt"), transcript_encodings)
            except TranscriptEncodingError as err:
                problem = str(err)
        # A listed file that does not exist still becomes an item: ingest quarantines it as unreadable.
        items.append(SourceItem(video, rel, key.split("/")[0], text, src, words, transcript_problem=problem))
    return sorted(items, key=lambda i: i.relpath)


NOT_MEDIA_SUFFIXES = frozenset({
    ".txt", ".lab", ".align", ".textgrid", ".json", ".jsonl", ".csv", ".tsv", ".parquet", ".npz", ".npy", ".pkl",
    ".yaml", ".yml", ".md", ".rst", ".pdf", ".html", ".htm", ".xml", ".dict", ".lst", ".list", ".srt", ".vtt",
    ".sha256", ".md5", ".dvc", ".gitignore",
})
"""Suffixes of files that are not inputs by nature (transcripts, alignments, tables, documents, checksums)."""

VIDEO_SUFFIXES = frozenset({
    ".mp4", ".m4v", ".mov", ".qt", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".mpe", ".m2v", ".ts", ".mts", ".m2ts",
    ".3gp", ".3g2", ".wmv", ".asf", ".flv", ".f4v", ".ogv", ".vob", ".rm", ".rmvb", ".divx", ".dv", ".mxf", ".y4m",
})
"""Video container suffixes: a file with one is never a sidecar, even beside an input of the same stem
(`clip.wmv` next to `clip.mpg` is another video, quarantined as `unsupported_extension` when its suffix is not
in `ingest.extensions`)."""


@dataclass(frozen=True)
class RootAudit:
    """What `audit_root` found under a root besides the inputs."""

    unsupported: tuple[Path, ...]
    """Files that may be media but whose extension is not in `ingest.extensions` (quarantined)."""
    other: tuple[Path, ...]
    """Sidecars of inputs, layout files, documents and tables (not inputs; counted in the metrics)."""


def audit_root(root: Path, items: list[SourceItem], extra: tuple[str | None, ...] = ()) -> RootAudit:
    """Sort every file under `root` that is not an input (see the module docstring).

    Args:
        root: the source root.
        items: the discovered inputs.
        extra: layout files relative to `root` or absolute (transcripts_json, ...); None entries ignored.
    """
    inputs = {it.path.resolve() for it in items}
    stems = {(it.path.parent.resolve(), it.path.stem.lower()) for it in items}
    named = {(Path(e) if Path(e).is_absolute() else root / e).resolve() for e in extra if e}
    unsupported, other = [], []
    for f in _files(root):
        r = f.resolve()
        if r in inputs:
            continue
        sidecar = f.suffix.lower() not in VIDEO_SUFFIXES and any((r.parent, stem) in stems
                                                                 for stem in _stem_prefixes(f.name))
        if sidecar or r in named or f.suffix.lower() in NOT_MEDIA_SUFFIXES:
            other.append(f)
        else:
            unsupported.append(f)
    return RootAudit(tuple(unsupported), tuple(other))


def _stem_prefixes(name: str) -> list[str]:
    """'a.b.c' -> ['a', 'a.b']: every stem a sidecar named `name` could belong to, lower case."""
    parts = name.lower().split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts))]
