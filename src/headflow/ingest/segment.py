"""Long recordings cut into clips at pauses in the speech (`ingest.segment`).

HDTF spans, StyleTalk clips and interviews run from 15 s to many minutes; ingest's `max_duration_s`
would reject them whole. With `ingest.segment.enabled`, an input (or an HDTF span) longer than
`max_duration_s` is planned into consecutive segments that cover it with no gap or overlap, each
between `min_duration_s` and `max_duration_s` long, cut where the speaker pauses:

1. the audio of the range is decoded (16 kHz mono) and its level measured in 20 ms frames every
   10 ms (RMS, dBFS);
2. a pause is a run of at least `min_pause_s` whose frames all lie more than `pause_db` under the
   range's speech level (its 95th-percentile frame level), as energy-based voice activity detectors
   do (e.g. ffmpeg's silencedetect, with a threshold relative to the recording instead of absolute);
3. greedily from the start: the next cut is the centre of the latest pause that keeps the segment
   within `max_duration_s` and leaves at least `min_duration_s` behind it; with no pause there, the
   quietest 10 ms frame in that window (`segment_end: forced`). Cuts are rounded to the video frame
   grid (1/fps), so the canonical frames of consecutive segments are consecutive frames of the source.

Each segment becomes a `SourceItem` of the same file with `start_s`/`end_s`, `segment_index` and
`segment_end`; ingest records the range in `clips.parquet` (`source_start_s`, `source_end_s`).
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from headflow.ingest.sources import SourceItem

FRAME_S = 0.02     # level frame length
HOP_S = 0.01       # level frame hop


@dataclass(frozen=True)
class Segment:
    """[start_s, end_s) of the source and what ends it."""

    start_s: float
    end_s: float
    end: Literal["pause", "forced", "end"]


def frame_levels_db(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS level (dBFS, full scale 1.0) of 20 ms frames every 10 ms; frame i is centred at i*10 ms + 10 ms.

    Args:
        audio: (N,) float mono samples in [-1, 1].
    Returns:
        (max(0, 1 + (N - L) // H),) float64 dBFS, -200 for digital silence (L, H: frame and hop in samples).
    """
    L, H = int(round(FRAME_S * sample_rate)), int(round(HOP_S * sample_rate))
    if len(audio) < L:
        return np.zeros(0)
    n = 1 + (len(audio) - L) // H
    idx = np.arange(L)[None, :] + H * np.arange(n)[:, None]
    ms = np.mean(np.asarray(audio, np.float64)[idx] ** 2, axis=1)
    return 10 * np.log10(np.maximum(ms, 1e-20))


def find_pauses(levels_db: np.ndarray, pause_db: float, min_pause_s: float) -> list[tuple[float, float]]:
    """Pauses (start_s, end_s) relative to the audio's start: runs of >= `min_pause_s` of frames more than
    `pause_db` below the 95th-percentile frame level."""
    if len(levels_db) == 0:
        return []
    quiet = levels_db < np.percentile(levels_db, 95) - pause_db
    pauses = []
    i = 0
    while i < len(quiet):
        if not quiet[i]:
            i += 1
            continue
        j = i
        while j < len(quiet) and quiet[j]:
            j += 1
        start, end = i * HOP_S, (j - 1) * HOP_S + FRAME_S
        if end - start >= min_pause_s:
            pauses.append((start, end))
        i = j
    return pauses


def plan_segments(duration_s: float, levels_db: np.ndarray, pauses: list[tuple[float, float]], min_s: float,
                  max_s: float, fps: float) -> list[Segment]:
    """Consecutive segments covering [0, duration_s) (module docstring, step 3); times relative to the range.

    Raises:
        ValueError: when max_s < 2 * min_s (some lengths could not be cut into valid segments).
    """
    if max_s < 2 * min_s:
        raise ValueError(f"segmenting needs max_duration_s ({max_s}) >= 2 x min_duration_s ({min_s})")
    grid = 1.0 / fps
    centres = [round((a + b) / 2 / grid) * grid for a, b in pauses]
    out, pos = [], 0.0
    while duration_s - pos > max_s:
        lo, hi = pos + min_s, min(pos + max_s, duration_s - min_s)
        inside = [c for c in centres if lo <= c <= hi]
        if inside:
            cut, end = max(inside), "pause"
        else:
            i0, i1 = int(np.ceil(lo / HOP_S)), int(np.floor(hi / HOP_S))
            window = levels_db[i0:i1 + 1]
            t = (i0 + int(np.argmin(window))) * HOP_S + FRAME_S / 2 if len(window) else hi
            # on the frame grid, inside the window
            g_lo, g_hi = np.ceil(lo / grid - 1e-9) * grid, np.floor(hi / grid + 1e-9) * grid
            cut, end = float(min(max(round(t / grid) * grid, g_lo), g_hi)), "forced"
        out.append(Segment(round(pos, 6), round(cut, 6), end))
        pos = cut
    out.append(Segment(round(pos, 6), round(duration_s, 6), "end"))
    return out


def range_audio(path: Path, start_s: float | None, end_s: float | None, sample_rate: int = 16000) -> np.ndarray:
    """Mono float samples of [start_s, end_s) of `path` (`headflow.media.extract_audio`, mean downmix)."""
    from headflow.media import extract_audio, read_audio

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "range.wav"
        extract_audio(path, wav, sample_rate=sample_rate, start_s=start_s, end_s=end_s)
        audio, _ = read_audio(wav)
    return np.asarray(audio, np.float64)


def segment_item(item: SourceItem, duration_s: float, min_s: float, max_s: float, fps: float, pause_db: float,
                 min_pause_s: float, sample_rate: int = 16000) -> list[SourceItem]:
    """`item` (whole file of `duration_s` seconds, or its [start_s, end_s)) as pause-cut segment items.

    Items no longer than `max_s` come back as they are (a list of one).
    """
    start = item.start_s or 0.0
    end = item.end_s if item.end_s is not None else duration_s
    end = min(end, duration_s)
    if end - start <= max_s:
        return [item]
    audio = range_audio(item.path, start, end, sample_rate)
    levels = frame_levels_db(audio, sample_rate)
    segments = plan_segments(end - start, levels, find_pauses(levels, pause_db, min_pause_s), min_s, max_s, fps)
    return [dataclasses.replace(item, start_s=round(start + s.start_s, 6), end_s=round(start + s.end_s, 6),
                                segment_index=k, segment_end=s.end)
            for k, s in enumerate(segments)]
