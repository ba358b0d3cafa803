"""Real datasets in their own layouts: HDTF, MEAD, VoxCeleb2 and Wav2Lip's dubbing test-pair lists.

Each `discover_*` returns `SourceItem`s as `headflow.ingest.sources` does for the plain layouts, so a
user points `ingest.root` at the dataset as downloaded, with no glue script:

- `hdtf` (Zhang et al. 2021, github.com/MRzzm/HDTF `HDTF_dataset/`): the `<subset>_video_url.txt`
  (`<name> <youtube url>`), `<subset>_annotion_time.txt` (`<name>.mp4 mm:ss-mm:ss [mm:ss-mm:ss ...]`,
  the talking spans of each downloaded video) and `<subset>_crop_wh.txt` (`<name>_<k>.mp4 x w y h`,
  the face window of span k, as HDTF's `download.py` applies it: ffmpeg `crop=w:h:x:y`) lists, found
  anywhere under the root, and the downloaded long videos `<name>.mp4` or `<subset>_<name>.mp4`. Every
  span is one item with its source time range and crop; a listed video that is not on disk is still an
  item (ingest quarantines it as unreadable, naming its URL). Speaker: the name without trailing digits
  (`AdamKinzinger2` -> `AdamKinzinger`). Spans are minutes long: `ingest.segment` cuts them at pauses.
- `mead` (Wang et al. 2020): `<id>/video/<view>/<emotion>/<level_k>/<n>.mp4`; speaker = id,
  `style` = `emotion` = the emotion folder, `emotion_level` = k, `camera_view` = the view folder.
- `voxceleb2` (Chung et al. 2018): `<id>/<youtube id>/<clip>.mp4` (under `dev/mp4/` or `test/mp4/`
  or directly under the root); speaker = id. No transcripts (align quarantines `no_transcript`).
- `wav2lip_pairs`: Wav2Lip's `evaluation/test_filelists/{lrs2,lrs3}.txt`, lines
  `<audio source key> <video key>` (as its `gen_videos_from_filelist.py` reads them), keys
  `<programme>/<utterance>` of `<root>[/main|/test|/pretrain|/trainval]/<key>.mp4`. Every key of either
  column is one item (LRS2 `.txt` transcripts beside them are read); `listed_pairs` gives the pairs,
  which ingest writes to `dubbing_pairs.parquet` for the dubbing protocol.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from headflow.ingest.sources import SourceItem, _files, normalise_extensions, read_lrs2_transcript
from headflow.ingest.transcripts import DEFAULT_LEGACY, TranscriptEncodingError

HDTF_TIMES = "_annotion_time.txt"    # sic: HDTF's own spelling
HDTF_CROPS = "_crop_wh.txt"
HDTF_URLS = "_video_url.txt"
LRS_SUBFOLDERS = ("", "main", "test", "pretrain", "trainval")


def parse_timestamp(text: str) -> float:
    """`mm:ss`, `hh:mm:ss` or seconds (fractions allowed) -> seconds.

    Raises:
        ValueError: naming the text when it is none of these.
    """
    parts = text.strip().split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"timestamp {text!r}: expected mm:ss, hh:mm:ss or seconds") from None
    if not 1 <= len(values) <= 3 or any(v < 0 for v in values):
        raise ValueError(f"timestamp {text!r}: expected mm:ss, hh:mm:ss or seconds")
    seconds = 0.0
    for v in values:
        seconds = seconds * 60 + v
    return seconds


@dataclass(frozen=True)
class HdtfSpan:
    """One talking span of an HDTF video: [start_s, end_s) and its crop window (x, y, w, h) or None."""

    video: str
    index: int
    start_s: float
    end_s: float
    crop: tuple[int, int, int, int] | None


def read_hdtf_lists(times_file: Path) -> tuple[list[HdtfSpan], dict[str, str]]:
    """The spans of one HDTF subset (`<subset>_annotion_time.txt` plus its crop and URL lists beside it).

    Returns:
        (spans in file order, {video name: URL} from the URL list, empty without one).

    Raises:
        ValueError: a line that is not `<name>.mp4 start-end ...`, a span that ends before it starts,
            or a crop line that is not `<name>_<k>.mp4 x w y h` (file and line named).
    """
    subset = times_file.name[: -len(HDTF_TIMES)]
    crops: dict[str, tuple[int, int, int, int]] = {}
    crop_file = times_file.with_name(subset + HDTF_CROPS)
    if crop_file.exists():
        for n, line in enumerate(crop_file.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 5 or not all(re.fullmatch(r"-?\d+", p) for p in parts[1:]):
                raise ValueError(f"{crop_file}:{n}: expected '<name>_<k>.mp4 x w y h', got {line!r}")
            x, w, y, h = (int(p) for p in parts[1:])
            crops[Path(parts[0]).stem] = (x, y, w, h)
    urls: dict[str, str] = {}
    url_file = times_file.with_name(subset + HDTF_URLS)
    if url_file.exists():
        for line in url_file.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2:
                urls[Path(parts[0]).stem] = parts[1]
    spans = []
    for n, line in enumerate(times_file.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        name = Path(parts[0]).stem
        for k, span in enumerate(parts[1:]):
            if span.count("-") != 1:
                raise ValueError(f"{times_file}:{n}: span {span!r} of {name}: expected start-end (mm:ss-mm:ss)")
            try:
                start, end = (parse_timestamp(t) for t in span.split("-"))
            except ValueError as err:
                raise ValueError(f"{times_file}:{n}: {err}") from None
            if end <= start:
                raise ValueError(f"{times_file}:{n}: span {span!r} of {name} ends before it starts")
            spans.append(HdtfSpan(name, k, start, end, crops.get(f"{name}_{k}")))
    return spans, urls


def hdtf_speaker(name: str) -> str:
    """`AdamKinzinger2` -> `AdamKinzinger`: HDTF numbers several videos of one person."""
    return re.sub(r"\d+$", "", name) or name


def discover_hdtf(root: Path, extensions: list[str]) -> list[SourceItem]:
    """HDTF as downloaded (module docstring). Raises FileNotFoundError without an annotation list."""
    lists = sorted(p for p in _files(root) if p.name.endswith(HDTF_TIMES))
    if not lists:
        raise FileNotFoundError(f"ingest.source hdtf: no '*{HDTF_TIMES}' list under {root}; copy HDTF's "
                                "HDTF_dataset/ folder (time stamps, crop and URL lists) there")
    exts = normalise_extensions(extensions)
    videos = {p.stem.lower(): p for p in _files(root) if p.suffix.lower() in exts}
    items = []
    for times in lists:
        subset = times.name[: -len(HDTF_TIMES)]
        spans, urls = read_hdtf_lists(times)
        for s in spans:
            video = videos.get(s.video.lower()) or videos.get(f"{subset}_{s.video}".lower())
            if video is None:    # an item all the same: ingest quarantines it, naming the URL
                url = urls.get(s.video, "its URL in " + subset + HDTF_URLS)
                video = root / f"{subset}_{s.video}.mp4"
                note = f"not downloaded ({url})"
            else:
                note = None
            items.append(SourceItem(video, video.relative_to(root).as_posix(), hdtf_speaker(s.video),
                                    start_s=s.start_s, end_s=s.end_s, crop=s.crop, span_index=s.index,
                                    missing_note=note))
    return sorted(items, key=lambda i: (i.relpath, i.start_s or 0.0))


MEAD_LEVEL = re.compile(r"level[_-]?(\d+)", re.IGNORECASE)


def discover_mead(root: Path, extensions: list[str]) -> list[SourceItem]:
    """MEAD: `<id>/video/<view>/<emotion>/<level_k>/<n>.mp4` (module docstring).

    Raises:
        ValueError: a video under the root that is not in this layout (path named), so nothing is
            attributed to the wrong speaker or emotion.
    """
    exts = normalise_extensions(extensions)
    items = []
    for video in _files(root):
        if video.suffix.lower() not in exts:
            continue
        rel = video.relative_to(root)
        parts = rel.parts
        level = MEAD_LEVEL.fullmatch(parts[-2]) if len(parts) >= 6 else None
        if len(parts) < 6 or parts[-5].lower() != "video" or level is None:
            raise ValueError(f"ingest.source mead: {rel.as_posix()} is not <id>/video/<view>/<emotion>/level_<k>/"
                             "<n>.mp4; point ingest.root at the folder holding the speaker ids")
        emotion = parts[-3].lower()
        items.append(SourceItem(video, rel.as_posix(), parts[-6], style=emotion, emotion=emotion,
                                emotion_level=int(level.group(1)), camera_view=parts[-4].lower()))
    return items


def discover_voxceleb2(root: Path, extensions: list[str]) -> list[SourceItem]:
    """VoxCeleb2: `<id>/<youtube id>/<clip>.mp4`, speaker = id (the folder two above the file).

    Raises:
        ValueError: a video less than three folders deep (path named).
    """
    exts = normalise_extensions(extensions)
    items = []
    for video in _files(root):
        if video.suffix.lower() not in exts:
            continue
        rel = video.relative_to(root)
        if len(rel.parts) < 3:
            raise ValueError(f"ingest.source voxceleb2: {rel.as_posix()} is not <id>/<video>/<clip>.mp4; point "
                             "ingest.root at the folder holding the speaker ids (e.g. dev/mp4)")
        items.append(SourceItem(video, rel.as_posix(), rel.parts[-3]))
    return items


def read_pair_list(list_path: Path) -> list[tuple[str, str]]:
    """Wav2Lip's test-pair list: `(audio key, video key)` per line, in file order.

    Raises:
        ValueError: a line that is not two keys (file and line named).
    """
    pairs = []
    for n, line in enumerate(list_path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise ValueError(f"{list_path}:{n}: expected '<audio key> <video key>', got {line!r}")
        pairs.append((parts[0], parts[1]))
    return pairs


def _lrs_video(root: Path, key: str) -> Path:
    return next((root / sub / f"{key}.mp4" for sub in LRS_SUBFOLDERS if (root / sub / f"{key}.mp4").exists()),
                root / f"{key}.mp4")


def discover_wav2lip_pairs(root: Path, file_list: str,
                           transcript_encodings: tuple[str, ...] | list[str] = DEFAULT_LEGACY) -> list[SourceItem]:
    """Every key of a Wav2Lip test-pair list as an LRS2/LRS3 item (module docstring)."""
    list_path = Path(file_list) if Path(file_list).is_absolute() else root / file_list
    if not list_path.exists():
        raise FileNotFoundError(f"ingest.file_list '{list_path}' not found (Wav2Lip's "
                                "evaluation/test_filelists/lrs2.txt or lrs3.txt)")
    keys = sorted({k for pair in read_pair_list(list_path) for k in pair})
    items = []
    for key in keys:
        video = _lrs_video(root, key)
        rel = video.relative_to(root).as_posix()
        text, words, src, problem = None, None, None, None
        if video.with_suffix(".txt").exists():
            src = "filelist"
            try:
                text, words = read_lrs2_transcript(video.with_suffix(".txt"), transcript_encodings)
            except TranscriptEncodingError as err:
                problem = str(err)
        items.append(SourceItem(video, rel, key.split("/")[0], text, src, words, transcript_problem=problem,
                                list_key=key))
    return items


def listed_pairs(root: Path, file_list: str) -> list[tuple[str, str]]:
    """(video key, audio key) of a Wav2Lip test-pair list: the video dubbed with the audio's speech."""
    list_path = Path(file_list) if Path(file_list).is_absolute() else root / file_list
    return [(video, audio) for audio, video in read_pair_list(list_path)]
