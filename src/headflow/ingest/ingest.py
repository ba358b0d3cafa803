"""The `ingest` stage: probe, hash, split and normalise raw videos into `clips.parquet`.

Per input: content hash -> stable clip_id; probe (streams, fps, frames, duration, size, rotation,
audio format); checks (readable, both streams, duration bounds, full decode); canonical media
(25 fps CFR H.264 + 16 kHz mono wav); an optional cheap face probe. Every input ends up either in
`clips.parquet` or in `quarantine.parquet` with a reason code. Splits: `headflow.ingest.splits`
(speaker-disjoint, val/test from speakers with usable clips).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from headflow.ingest.params import IngestParams
from headflow.ingest.sources import SourceItem, discover_demo, discover_folder, discover_grid, discover_lrs2
from headflow.ingest.splits import assign_splits
from headflow.manifest import Quarantine, Rejected, check_accounting, clip_id_for, file_sha256
from headflow.media import MediaError, decode_check, normalize_clip, probe, require_streams
from headflow.parallel import map_jobs

STAGE = "ingest"
REASON_CODES = ("unreadable", "no_video_stream", "no_audio_stream", "too_short", "too_long",
                "duplicate_content", "no_face")


@dataclass(frozen=True)
class IngestResult:
    clips: pd.DataFrame
    quarantine: Quarantine
    n_inputs: int


def discover(params: IngestParams, root: Path) -> list[SourceItem]:
    """The inputs of the configured source layout, sorted by relative path."""
    if not root.is_dir():
        raise FileNotFoundError(f"ingest.root '{root}' is not a folder (for the demo corpus run "
                                "`dvc repro demo_corpus` first)")
    if params.source == "demo":
        return discover_demo(root, params.extensions, params.speaker_from, params.transcripts_json)
    if params.source == "folder":
        return discover_folder(root, params.extensions, params.speaker_from, params.transcripts_json)
    if params.source == "grid":
        return discover_grid(root, params.extensions, params.transcripts_json)
    return discover_lrs2(root, params.file_list or "")


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
    try:
        info = probe(item.path)
        require_streams(info, video=True, audio=True)
        duration = info.duration_s or 0.0
        if duration < params.min_duration_s:
            raise Rejected("too_short", f"{item.relpath}: {duration:.2f} s < min_duration_s {params.min_duration_s}")
        if duration > params.max_duration_s:
            raise Rejected("too_long", f"{item.relpath}: {duration:.2f} s > max_duration_s {params.max_duration_s}")
        decode_check(item.path, info)
        video_out, audio_out = media_dir / f"{clip_id}.mp4", media_dir / f"{clip_id}.wav"
        normalize_clip(item.path, video_out, audio_out, fps=params.fps, sample_rate=params.sample_rate,
                       crf=params.crf, max_side=params.max_side)
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
    }


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
    hashes = [_hash(it) for it in tqdm(items, desc="hash", disable=not progress, leave=False)]
    ids_in = []
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
    results = map_jobs(_work, todo, params.workers, map_fn, desc="ingest", progress=progress)
    for (item, *_), (clip_id, row, rejection) in zip(todo, results):
        if row is not None:
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
    return IngestResult(clips=clips, quarantine=quarantine, n_inputs=len(items))
