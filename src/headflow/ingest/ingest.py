"""The `ingest` stage: probe, hash, split and normalise raw videos into `clips.parquet`.

Per input: content hash -> stable clip_id; probe (streams, fps, frames, duration, size, rotation,
audio format); checks (readable, both streams, duration bounds, full decode, audio and video of the
same length within `max_av_length_diff_s`, a decodable transcript); canonical media (25 fps CFR H.264
+ 16 kHz mono wav, the mono mix guarded against phase cancellation); an optional cheap face probe.
Every input ends up either in `clips.parquet` or in `quarantine.parquet` with a reason code, and so
does every other file under the root that may be media (`unsupported_extension`; see
`headflow.ingest.sources.audit_root`). Splits: `headflow.ingest.splits` (speaker-disjoint, val/test from
speakers with usable clips).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from headflow.ingest.params import IngestParams
from headflow.ingest.sources import (SourceItem, audit_root, discover_demo, discover_folder, discover_grid,
                                     discover_lrs2, normalise_extensions)
from headflow.ingest.splits import assign_splits
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
    """Check and normalise one input. Returns its clips.parquet row; raises Rejected."""
    clip_id = clip_id_for(item.relpath, content_hash)
    if item.transcript_problem:
        raise Rejected("transcript_encoding", f"{item.relpath}: transcript {item.transcript_problem}")
    try:
        info = probe(item.path)
        require_streams(info, video=True, audio=True)
        duration = info.duration_s or 0.0
        if duration < params.min_duration_s:
            raise Rejected("too_short", f"{item.relpath}: {duration:.2f} s < min_duration_s {params.min_duration_s}")
        if duration > params.max_duration_s:
            raise Rejected("too_long", f"{item.relpath}: {duration:.2f} s > max_duration_s {params.max_duration_s}")
        decode_check(item.path, info)
        check_av_lengths(item.relpath, info.video_content_s, info.audio_duration_s, params.max_av_length_diff_s)
        video_out, audio_out = media_dir / f"{clip_id}.mp4", media_dir / f"{clip_id}.wav"
        mix = normalize_clip(item.path, video_out, audio_out, fps=params.fps, sample_rate=params.sample_rate,
                             crf=params.crf, max_side=params.max_side, max_downmix_loss_db=params.max_downmix_loss_db)
        norm = probe(video_out)
    except MediaError as err:
        raise Rejected(err.reason_code, err.message) from None
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
        "_downmix": mix, "_transcript_encoding": item.transcript_encoding,   # for the metrics; not columns
    }


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
    clip_id = clip_id_for(item.relpath, content_hash)
    try:
        return clip_id, process_item(item, content_hash, params, media_dir, project_root), None
    except Rejected as rej:
        return clip_id, None, (rej.reason_code, rej.message)


def _hash(item: SourceItem) -> str:
    try:
        return file_sha256(item.path)
    except OSError:
        return ""   # missing/unreadable file: probe will reject it with the OS error


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
    if params.source != "lrs2":     # a list file names lrs2's inputs; the rest of its tree is not meant
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
    hashes = [_hash(it) for it in tqdm(items, desc="hash", disable=not progress, leave=False)]
    todo = []
    first_by_hash: dict[str, str] = {}
    for item, h in zip(items, hashes):
        clip_id = clip_id_for(item.relpath, h or "0" * 64)
        ids_in.append(clip_id)
        if h and h in first_by_hash:
            quarantine.add(clip_id, "duplicate_content",
                           f"{item.relpath}: same bytes as {first_by_hash[h]} (kept that one)", item.relpath)
            continue
        if h:
            first_by_hash[h] = item.relpath
        todo.append((item, h or "0" * 64, params, media_dir, project_root))
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
    for r in rows:
        r["split"] = splits[r["speaker_id"]]
    clips = pd.DataFrame(rows).sort_values("source_path", ignore_index=True) if rows else pd.DataFrame(rows)
    check_accounting(ids_in, [r["clip_id"] for r in rows], [q["clip_id"] for q in quarantine.rows], STAGE)
    return IngestResult(clips=clips, quarantine=quarantine, n_inputs=len(ids_in), other_files=n_other,
                        downmix=dict(sorted(downmix.items())), transcript_encodings=dict(sorted(encodings.items())))
