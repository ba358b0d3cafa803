"""The `ingest` stage: probe, hash, split and normalise raw videos into `clips.parquet`.

Per input: content hash -> stable clip_id; probe (streams, fps, frames, duration, size, rotation,
audio format); checks (readable, both streams, duration bounds, full decode, audio and video of the
same length within `max_av_length_diff_s`, a decodable transcript); canonical media (25 fps CFR H.264
+ 16 kHz mono wav, the mono mix guarded against phase cancellation); an optional cheap face probe.
Every input ends up either in `clips.parquet` or in `quarantine.parquet` with a reason code, and so
does every other file under the root that may be media (`unsupported_extension`; see
`headflow.ingest.sources.audit_root`). Splits: `headflow.ingest.splits` (speaker-disjoint, val/test from
speakers with usable clips).

Real datasets' layouts (HDTF spans with crops, MEAD, VoxCeleb2, Wav2Lip's test-pair lists) come from
`headflow.ingest.layouts`; an item may be part of a file (`start_s`/`end_s`, recorded as
`source_start_s`/`source_end_s`). With `segment.enabled`, inputs longer than `max_duration_s` are
planned into pause-cut segments first (`headflow.ingest.segment`), each file probed and decoded once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from headflow.ingest.layouts import (discover_hdtf, discover_mead, discover_voxceleb2, discover_wav2lip_pairs,
                                     listed_pairs)
from headflow.ingest.params import IngestParams
from headflow.ingest.segment import segment_item
from headflow.ingest.sources import (SourceItem, audit_root, discover_demo, discover_folder, discover_grid,
                                     discover_lrs2, normalise_extensions)
from headflow.ingest.splits import assign_splits, eligible_speakers
from headflow.manifest import Quarantine, Rejected, check_accounting, clip_id_for, file_sha256
from headflow.media import MediaError, decode_check, normalize_clip, probe, require_streams
from headflow.parallel import map_jobs

STAGE = "ingest"
log = logging.getLogger("headflow")
REASON_CODES = ("unreadable", "no_video_stream", "no_audio_stream", "too_short", "too_long",
                "duplicate_content", "no_face", "av_length_mismatch", "transcript_encoding", "unsupported_extension")


@dataclass(frozen=True)
class IngestResult:
    clips: pd.DataFrame
    quarantine: Quarantine
    n_inputs: int
    """Inputs accounted for: discovered videos plus files quarantined as unsupported_extension."""
    other_files: int = 0
    """Files under the root that are not inputs (sidecars, layout files, documents, tables)."""
    downmix: dict[str, int] | None = None
    """Accepted clips per mono downmix ("mono", "mean", "channel": the mean cancelled, one channel used)."""
    transcript_encodings: dict[str, int] | None = None
    """Accepted clips per transcript encoding ("utf-8", "utf-16 (BOM)", "cp1252", ...)."""
    segmentation: dict[str, int] | None = None
    """Inputs cut at pauses and their segments: {"inputs_cut", "segments", "pause", "forced"}."""
    dubbing_pairs: pd.DataFrame | None = None
    """wav2lip_pairs: the list's pairs whose video and audio clips were both accepted (else empty)."""


def discover(params: IngestParams, root: Path) -> list[SourceItem]:
    """The inputs of the configured source layout, sorted by relative path."""
    if not root.is_dir():
        raise FileNotFoundError(f"ingest.root '{root}' is not a folder (for the demo corpus run "
                                "`dvc repro demo_corpus` first)")
    if params.source == "demo":
        return discover_demo(root, params.extensions, params.speaker_from, params.transcripts_json,
                             params.transcript_encodings)
    if params.source == "folder":
        return discover_folder(root, params.extensions, params.speaker_from, params.transcripts_json,
                               params.transcript_encodings)
    if params.source == "grid":
        return discover_grid(root, params.extensions, params.transcripts_json)
    if params.source == "hdtf":
        return discover_hdtf(root, params.extensions)
    if params.source == "mead":
        return discover_mead(root, params.extensions)
    if params.source == "voxceleb2":
        return discover_voxceleb2(root, params.extensions)
    if params.source == "wav2lip_pairs":
        return discover_wav2lip_pairs(root, params.file_list or "", params.transcript_encodings)
    return discover_lrs2(root, params.file_list or "", params.transcript_encodings)


def _face_probe(video: Path, n_samples: int) -> int:
    """Max number of faces dlib HOG sees on `n_samples` evenly spaced frames."""
    import decord

    from headflow.faces.dlib_backend import detect_faces

    vr = decord.VideoReader(str(video), num_threads=1)
    n = len(vr)
    idx = np.unique(np.linspace(0, n - 1, n_samples + 2)[1:-1].round().astype(int))
    batch = vr.get_batch(list(idx)).asnumpy()
    counts = []
    for frame in batch:
        faces = detect_faces(frame, upsample=0)
        if not faces and max(frame.shape[:2]) < 480:
            faces = detect_faces(frame, upsample=1)   # small frames: faces may be under HOG's 80 px
        counts.append(len(faces))
    return max(counts)


def process_item(item: SourceItem, content_hash: str, params: IngestParams, media_dir: Path,
                 project_root: Path) -> dict:
    """Check and normalise one input (a file, or the part `item.start_s`..`end_s` of one).

    Returns its clips.parquet row; raises Rejected."""
    clip_id = clip_id_for(item.key, content_hash)
    if item.missing_note:
        raise Rejected("unreadable", f"{item.relpath}: listed by the layout but {item.missing_note}")
    if item.transcript_problem:
        raise Rejected("transcript_encoding", f"{item.relpath}: transcript {item.transcript_problem}")
    try:
        info = probe(item.path)
        require_streams(info, video=True, audio=True)
        duration = _range_duration(item, info.duration_s or 0.0)
        what = item.relpath if item.start_s is None else f"{item.relpath} [{item.start_s:.2f}, {item.end_s:.2f}) s"
        if duration < params.min_duration_s:
            raise Rejected("too_short", f"{what}: {duration:.2f} s < min_duration_s {params.min_duration_s}")
        if duration > params.max_duration_s:
            hint = "" if params.segment.enabled else "; set ingest.segment.enabled to cut it into clips at pauses"
            raise Rejected("too_long", f"{what}: {duration:.2f} s > max_duration_s {params.max_duration_s}{hint}")
        if not item.checked:
            decode_check(item.path, info)
            check_av_lengths(item.relpath, info.video_content_s, info.audio_duration_s, params.max_av_length_diff_s)
        video_out, audio_out = media_dir / f"{clip_id}.mp4", media_dir / f"{clip_id}.wav"
        mix = normalize_clip(item.path, video_out, audio_out, fps=params.fps, sample_rate=params.sample_rate,
                             crf=params.crf, max_side=params.max_side, max_downmix_loss_db=params.max_downmix_loss_db,
                             start_s=item.start_s, end_s=item.end_s, crop=item.crop)
        norm = probe(video_out)
    except MediaError as err:   # the media layer names the file by its path: the row names it as the others do
        raise Rejected(err.reason_code, err.message.replace(str(item.path), item.relpath)) from None
    n_faces = None
    if params.face_probe_frames > 0:
        n_faces = _face_probe(video_out, params.face_probe_frames)
        if n_faces == 0 and params.reject_no_face:
            raise Rejected("no_face", f"{item.relpath}: dlib HOG found no face on "
                           f"{params.face_probe_frames} sampled frames")
    words = [{"word": w, "start": s, "end": e} for w, s, e in item.words] if item.words else None
    return {
        "clip_id": clip_id, "source": params.source, "source_path": item.relpath,
        "content_hash": content_hash, "speaker_id": item.speaker_id, "split": None,
        "transcript": item.transcript, "transcript_source": item.transcript_source, "words": words,
        "style": item.style,
        "native_container": info.container, "native_fps": info.fps, "native_n_frames": info.n_frames,
        "native_duration_s": info.duration_s, "native_width": info.width, "native_height": info.height,
        "rotation": info.rotation, "native_video_codec": info.video_codec,
        "native_audio_codec": info.audio_codec, "native_sample_rate": info.audio_sample_rate,
        "native_channels": info.audio_channels, "n_audio_streams": info.n_audio_streams,
        "video_path": os.path.relpath(video_out, project_root), "audio_path": os.path.relpath(audio_out, project_root),
        "fps": params.fps, "sample_rate": params.sample_rate, "n_frames": norm.n_frames,
        "duration_s": norm.duration_s, "width": norm.width, "height": norm.height, "n_faces_probe": n_faces,
        "source_start_s": item.start_s, "source_end_s": item.end_s if item.end_s is not None else (
            None if item.start_s is None else info.duration_s),
        "source_crop": list(item.crop) if item.crop else None, "segment_index": item.segment_index,
        "segment_end": item.segment_end, "emotion": item.emotion, "emotion_level": item.emotion_level,
        "camera_view": item.camera_view,
        "_downmix": mix, "_transcript_encoding": item.transcript_encoding,   # for the metrics; not columns
    }


def _range_duration(item: SourceItem, file_duration_s: float) -> float:
    """Seconds of `item`: its [start_s, end_s) clipped to the file, or the whole file."""
    start = item.start_s or 0.0
    end = file_duration_s if item.end_s is None else min(item.end_s, file_duration_s)
    return max(end - start, 0.0)


def item_hash(item: SourceItem, file_hash: str) -> str:
    """The content hash of an item: its file's sha256, or for part of a file (a time range, a crop)
    the sha256 of the file's sha256 and that range and crop, so parts of one file are distinct."""
    if item.start_s is None and item.end_s is None and item.crop is None:
        return file_hash
    return hashlib.sha256(f"{file_hash}|{item.start_s}|{item.end_s}|{item.crop}".encode()).hexdigest()


def plan_file(args: tuple) -> tuple[list[SourceItem], tuple[str, str] | None]:
    """Probe and fully decode one file once, then cut each of its items longer than max_duration_s at pauses.

    Args:
        args: (items of one file, IngestParams).
    Returns:
        (the planned items, marked `checked`; or [] with (reason_code, message) when the file fails a check).
    """
    items, params = args
    first = items[0]
    if first.missing_note:
        return [], ("unreadable", f"{first.relpath}: listed by the layout but {first.missing_note}")
    try:
        info = probe(first.path)
        require_streams(info, video=True, audio=True)
        decode_check(first.path, info)
        check_av_lengths(first.relpath, info.video_content_s, info.audio_duration_s, params.max_av_length_diff_s)
        out = []
        for item in items:
            item = dataclasses.replace(item, checked=True)
            if params.segment.enabled:
                out += segment_item(item, info.duration_s or 0.0, params.min_duration_s, params.max_duration_s,
                                    params.fps, params.segment.pause_db, params.segment.min_pause_s,
                                    params.sample_rate)
            else:
                out.append(item)
        return out, None
    except MediaError as err:
        return [], (err.reason_code, err.message.replace(str(first.path), first.relpath))
    except Rejected as rej:
        return [], (rej.reason_code, rej.message)


def check_av_lengths(name: str, video_s: float | None, audio_s: float | None, tolerance_s: float) -> None:
    """Reject `av_length_mismatch` when the streams' own lengths (s) differ by more than `tolerance_s`.

    The lengths are each stream's presented content (`MediaInfo.video_content_s`, `audio_duration_s`),
    not their end times, so a stream that merely starts later (kept as a timing offset) passes.

    Raises:
        Rejected: av_length_mismatch, naming both lengths, which is shorter and the tolerance.
    """
    if video_s is None or audio_s is None:
        return
    diff = audio_s - video_s
    if abs(diff) > tolerance_s:
        shorter = "audio" if diff < 0 else "video"
        raise Rejected("av_length_mismatch", f"{name}: audio/video length mismatch: {audio_s:.2f} s of audio for "
                       f"{video_s:.2f} s of video (the {shorter} is {abs(diff):.2f} s shorter > "
                       f"ingest.max_av_length_diff_s {tolerance_s:g}); frames without sound (or sound without "
                       "frames) would be aligned and scored as if they matched: re-export the clip with both "
                       "streams complete")


def _work(args: tuple) -> tuple[str, dict | None, tuple[str, str] | None]:
    item, content_hash, params, media_dir, project_root = args
    clip_id = clip_id_for(item.key, content_hash)
    try:
        return clip_id, process_item(item, content_hash, params, media_dir, project_root), None
    except Rejected as rej:
        return clip_id, None, (rej.reason_code, rej.message)


def _hash(item: SourceItem, cache: dict[Path, str] | None = None) -> str:
    if cache is not None and item.path in cache:
        return cache[item.path]
    try:
        h = file_sha256(item.path)
    except OSError:
        h = ""   # missing/unreadable file: probe will reject it with the OS error
    if cache is not None:
        cache[item.path] = h
    return h


def run_ingest(params: IngestParams, root: Path, out_dir: Path, project_root: Path | None = None,
               progress: bool = True, map_fn: Callable | None = None) -> IngestResult:
    """Ingest every input under `root` into `out_dir` (media/ + manifests are written by the caller).

    Args:
        map_fn: optional `map(fn, iterable)` replacement (Prefect/Dask); default: a process pool.
    """
    project_root = project_root or Path.cwd()
    items = discover(params, root)
    media_dir = out_dir / "media"
    media_dir.mkdir(parents=True, exist_ok=True)
    quarantine = Quarantine(STAGE)
    ids_in = []
    n_other = 0
    if params.source not in ("lrs2", "wav2lip_pairs"):   # a list file names their inputs; the rest of the tree is not meant
        audit = audit_root(root, items, (params.transcripts_json, "corpus.parquet"))
        n_other = len(audit.other)
        allowed = " ".join(sorted(normalise_extensions(params.extensions)))
        for f in audit.unsupported:
            rel = f.relative_to(root).as_posix()
            clip_id = clip_id_for(rel, _hash(SourceItem(f, rel, "")) or "0" * 64)
            ids_in.append(clip_id)
            quarantine.add(clip_id, "unsupported_extension", f"{rel}: extension '{f.suffix}' is not in "
                           f"ingest.extensions ({allowed}); add it there if this is a video", rel)
        if audit.unsupported:
            log.warning("ingest: %d file(s) under %s have an extension outside ingest.extensions (quarantined as "
                        "unsupported_extension), e.g. %s", len(audit.unsupported), root, audit.unsupported[0].name)
    file_hashes: dict[Path, str] = {}
    hashes = [_hash(it, file_hashes) for it in tqdm(items, desc="hash", disable=not progress, leave=False)]
    kept: list[tuple[SourceItem, str]] = []
    first_by_hash: dict[str, str] = {}
    for item, fh in zip(items, hashes):
        h = item_hash(item, fh) if fh else ""
        clip_id = clip_id_for(item.key, h or "0" * 64)
        if h and h in first_by_hash:
            ids_in.append(clip_id)
            quarantine.add(clip_id, "duplicate_content",
                           f"{item.relpath}: same bytes as {first_by_hash[h]} (kept that one)", item.relpath)
            continue
        if h:
            first_by_hash[h] = item.relpath
        kept.append((item, fh))
    # Parts of files (HDTF spans) and, with segment.enabled, every file: probed and decoded once per file,
    # long ones cut at pauses. The stage's rows in are then the planned items.
    seg_stats: Counter = Counter()
    planned: list[tuple[SourceItem, str]] = []
    by_file: dict[Path, list[SourceItem]] = {}
    for item, fh in kept:
        if params.segment.enabled or item.start_s is not None or item.end_s is not None:
            by_file.setdefault(item.path, []).append(item)
        else:
            planned.append((item, fh))
    if by_file:
        plans = map_jobs(plan_file, [(v, params) for v in by_file.values()], params.workers, map_fn,
                         desc="plan", progress=progress)
        for (path, its), (out, rejection) in zip(by_file.items(), plans):
            fh = file_hashes.get(path, "")
            if rejection is not None:
                for it in its:
                    clip_id = clip_id_for(it.key, item_hash(it, fh) if fh else "0" * 64)
                    ids_in.append(clip_id)
                    quarantine.add(clip_id, rejection[0], rejection[1], it.relpath)
                continue
            cut = [o for o in out if o.segment_index is not None]
            if cut:
                seg_stats["inputs_cut"] += sum(o.segment_index == 0 for o in cut)
                seg_stats["segments"] += len(cut)
                for o in cut:
                    seg_stats[o.segment_end] += 1
            planned += [(o, fh) for o in out]
    todo = []
    for item, fh in planned:
        h = item_hash(item, fh) if fh else "0" * 64
        ids_in.append(clip_id_for(item.key, h))
        todo.append((item, h, params, media_dir, project_root))
    rows, usable = [], []
    downmix: Counter = Counter()
    encodings: Counter = Counter()
    results = map_jobs(_work, todo, params.workers, map_fn, desc="ingest", progress=progress)
    for (item, *_), (clip_id, row, rejection) in zip(todo, results):
        if row is not None:
            mix = row.pop("_downmix")
            downmix[mix.mode] += 1
            if mix.mode == "channel":
                log.warning("ingest: %s: the mean of its %d audio channels lies %.1f dB under the loudest "
                            "(phase cancellation): channel %d used alone", item.relpath, len(mix.channel_dbfs),
                            mix.loss_db, mix.channel)
            enc = row.pop("_transcript_encoding")
            if enc is not None:
                encodings[enc] += 1
                if enc not in ("utf-8", "json"):
                    log.info("ingest: %s: transcript decoded as %s", item.relpath, enc)
            rows.append(row)
            usable.append(not item.expected_reject)
        else:
            quarantine.add(clip_id, rejection[0], rejection[1], item.relpath)
    # Media of rejected clips must not linger from an earlier run.
    keep = {r["clip_id"] for r in rows}
    for f in media_dir.iterdir():
        if f.stem not in keep:
            f.unlink()
    # Quarantined clips never count; known-bad demo inputs and thin speakers train (see splits.py).
    splits = assign_splits([r["speaker_id"] for r in rows], params.split, usable)
    empty = [name for name, frac in (("val", params.split.val), ("test", params.split.test))
             if frac > 0 and name not in splits.values()]
    if rows and empty and params.source != "wav2lip_pairs":   # held-out splits need speakers to spare
        log.warning("ingest: no speaker for %s: %d speaker(s) have >= %d usable clips and one must train "
                    "(splits are speaker-disjoint; val and test each take a whole speaker once there are 3): "
                    "add speakers, or lower ingest.split.min_speaker_clips", " and ".join(empty),
                    len(eligible_speakers([r["speaker_id"] for r in rows], params.split, usable)),
                    params.split.min_speaker_clips)
    for r in rows:
        # A dubbing test-pair list is an evaluation set: all of it is test (generate/evaluate score `test`).
        r["split"] = "test" if params.source == "wav2lip_pairs" else splits[r["speaker_id"]]
    clips = (pd.DataFrame(rows).sort_values(["source_path", "source_start_s"], ignore_index=True, na_position="first")
             if rows else pd.DataFrame(rows))
    check_accounting(ids_in, [r["clip_id"] for r in rows], [q["clip_id"] for q in quarantine.rows], STAGE)
    pairs = None
    if params.source == "wav2lip_pairs":
        key_to_clip: dict[str, str] = {}
        accepted = {r["clip_id"] for r in rows}
        for (item, *_), (clip_id, row, _) in zip(todo, results):
            if row is not None and clip_id in accepted:
                key_to_clip[item.list_key] = clip_id
        pairs = dubbing_pair_table(listed_pairs(root, params.file_list or ""), key_to_clip)
    return IngestResult(clips=clips, quarantine=quarantine, n_inputs=len(ids_in), other_files=n_other,
                        downmix=dict(sorted(downmix.items())), transcript_encodings=dict(sorted(encodings.items())),
                        segmentation=dict(sorted(seg_stats.items())), dubbing_pairs=pairs)


def dubbing_pair_table(pairs: list[tuple[str, str]], key_to_clip: dict[str, str]) -> pd.DataFrame:
    """dubbing_pairs.parquet rows: the (video key, audio key) pairs whose clips were both accepted.

    A video listed again keeps its first pair (the dubbing protocol dubs each clip once); pairs with a
    quarantined clip are left out (ingest's quarantine says why).
    """
    rows, seen = [], set()
    for video, audio in pairs:
        if video in key_to_clip and audio in key_to_clip and video not in seen:
            seen.add(video)
            rows.append({"clip_id": key_to_clip[video], "audio_clip": key_to_clip[audio],
                         "video_key": video, "audio_key": audio})
    return pd.DataFrame(rows, columns=["clip_id", "audio_clip", "video_key", "audio_key"])
