"""The align stage's work: pronunciations, alignment with the chosen backend, TextGrids, manifests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from headflow.align.builtin import Alignment, UtteranceInput, audio_frames, train_and_align
from headflow.align.evaluate import boundary_errors
from headflow.align.lexicon import SPN, Lexicon, is_marker, read_dictionary, words_of
from headflow.align.params import AlignParams, BuiltinAlignerParams
from headflow.align.phones import PHONE_INDEX, STYLETALK_INDEX, frame_phones
from headflow.align.synth import variants_for
from headflow.align.textgrid import alignment_textgrid, write_textgrid
from headflow.align.types import AudioFrames
from headflow.manifest import Quarantine, check_accounting, manifest_table
from headflow.manifest.schemas import schema_for

STAGE = "align"


PER_CLIP_MANIFESTS = ("words", "phones", "frame_labels")
"""The manifests of several rows per clip, which `run_align(sinks=...)` hands over clip by clip."""


@dataclass(frozen=True)
class AlignResult:
    """What `run_align` returns. With `sinks` given, words, phones and frame_labels are None (their rows
    went to the sinks); the counts and source errors are filled either way."""

    alignments: pd.DataFrame           # one row per clip
    words: pd.DataFrame | None         # one row per word
    phones: pd.DataFrame | None        # one row per phone interval (silences included, word empty)
    frame_labels: pd.DataFrame | None  # one row per video frame
    quarantine: Quarantine
    n_inputs: int
    audio_seconds: float
    n_words: int = 0                   # rows of words
    n_phones: int = 0                  # rows of phones that are not SIL
    source_errors: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Word-boundary errors (s) against the alignments the source ships (GRID .align: clips.words)."""


def _prepare(job: tuple) -> tuple[str, AudioFrames | np.ndarray | None, object, str | None]:
    """Per clip, in a worker: read the audio and what the initial segmentation needs: the DTW state path
    (espeak_dtw) or the labelled synthetic frames (espeak_hmm). With the builtin aligner's params in the
    job, the audio comes back as its `AudioFrames` (features and the rest; the samples are dropped here,
    so the stage never holds the corpus's audio); without (MFA), as the samples."""
    # imported here: importing headflow.media (PyAV) before cv2 breaks cv2's PNG decoding in this environment
    from headflow.media import MediaError, read_audio

    clip_id, audio_path, init, prons, transcript, shift_ms, voice, variants, builtin = job
    try:
        wav, sr = read_audio(audio_path)
    except MediaError as err:
        return clip_id, None, None, f"unreadable audio: {err.message}"
    if sr != 16000:
        return clip_id, None, None, f"{audio_path}: {sr} Hz, expected 16000 (re-run ingest)"
    start = initial(init, wav, transcript, prons, shift_ms, voice, variants)
    return clip_id, audio_frames(wav, builtin) if builtin is not None else wav, start, None


def initial(init: str, wav: np.ndarray, transcript: str, prons: list, shift_ms: float, voice: str,
            variants: tuple[str, ...] = ("",)):
    """espeak_dtw: the DTW state path; espeak_hmm: synthetic (frames, states) in `variants` of the voice;
    flat: None."""
    if init == "espeak_dtw":
        from headflow.align.dtw import espeak_init_path

        return espeak_init_path(wav, transcript, prons, shift_ms, voice)
    if init == "espeak_hmm":
        from headflow.align.synth import synthetic_frames

        return synthetic_frames(transcript, voice, shift_ms, variants=variants)
    return None


def builtin_align(utts: list[UtteranceInput], cfg: BuiltinAlignerParams, prepared: list) -> list[Alignment]:
    """train_and_align with each utterance's `initial` result, by kind of init."""
    if cfg.init == "espeak_hmm":
        return train_and_align(utts, cfg, synthetic=prepared)
    return train_and_align(utts, cfg, prepared if cfg.init == "espeak_dtw" else None)


def run_align(clips: pd.DataFrame, params: AlignParams, out_dir: Path, project_root: Path | None = None,
              progress: bool = True, map_fn: Callable | None = None,
              sinks: Mapping[str, Any] | None = None) -> AlignResult:
    """Align every clip of `clips` (ingest's clips.parquet) and build the manifests.

    Args:
        sinks: for each of PER_CLIP_MANIFESTS, an object whose `add(table)` takes one clip's rows
            (`headflow.stage.ValidatedWriter`, which validates and appends them in batches). Given,
            the clips' rows go there one clip at a time in clip_id order and the result's words,
            phones and frame_labels are None; else those tables are built in memory and returned.
            The accounting check runs before this returns, so a stage that opened the writers around
            the call keeps the older files when it fails.
    """
    project_root = (project_root or Path.cwd()).resolve()
    quarantine = Quarantine(STAGE)
    source = dict(zip(clips.clip_id, clips.source_path))
    user = read_dictionary(project_root / params.dictionary) if params.dictionary else {}
    lexicon = Lexicon(params.language, user)
    todo: list = []
    for r in clips.itertuples():
        words = words_of(r.transcript, lexicon.user) if isinstance(r.transcript, str) else []
        if not words or all(is_marker(w) and w not in lexicon.user for w in words):
            quarantine.add(r.clip_id, "no_transcript", "the clip has no transcript (or only punctuation and "
                           "non-speech markers) to align", r.source_path)
        else:
            todo.append((r, words))
    lookup = lexicon.lookup(sorted({w for _, ws in todo for w in ws}))
    jobs, meta = [], {}
    for r, words in todo:
        unpronounceable = sorted({w for w in words if lookup[w][0] is None})
        if unpronounceable and params.reject_unpronounceable:
            quarantine.add(r.clip_id, "unpronounceable", f"no pronunciation for {', '.join(unpronounceable)} (add them "
                           "to align.dictionary, or set align.reject_unpronounceable: false)", r.source_path)
            continue
        prons = [lookup[w][0][0] if lookup[w][0] else None for w in words]
        meta[r.clip_id] = (r, words, prons, unpronounceable)
        init = params.builtin.init if params.backend == "builtin" else "flat"
        voice = "en-us" if params.language.lower() == "en" else params.language
        spoken = " ".join(w for w in words if not is_marker(w))   # espeak must not read "[noise]" aloud
        builtin = params.builtin if params.backend == "builtin" else None   # its AudioFrames, not samples
        jobs.append((r.clip_id, str(project_root / r.audio_path), init, prons, spoken, params.builtin.shift_ms,
                     voice, variants_for(len(jobs), len(todo)), builtin))
    if map_fn is None and params.workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(params.workers) as pool:
            prepared = list(tqdm(pool.map(_prepare, jobs), total=len(jobs), desc="align-prepare", disable=not progress))
    else:
        prepared = list(tqdm((map_fn or map)(_prepare, jobs), total=len(jobs), desc="align-prepare",
                             disable=not progress))
    utts, inits, samples = [], [], 0
    for clip_id, audio, path, error in prepared:
        if error is not None:
            quarantine.add(clip_id, "align_failed", error, source[clip_id])
            continue
        r, words, prons, _ = meta[clip_id]
        if isinstance(audio, AudioFrames):   # the builtin aligner: features, not samples
            variants = [lookup[w][0] or [] for w in words]
            utts.append(UtteranceInput(clip_id, np.zeros(0, np.float32), words, prons, r.transcript, variants, audio))
            samples += audio.n_samples
        else:
            utts.append(UtteranceInput(clip_id, audio, words, prons, r.transcript, None))
            samples += len(audio)
        inits.append(path)
    del prepared
    if params.backend == "builtin":
        aligned = builtin_align(utts, params.builtin, inits) if utts else []
    else:
        from headflow.align.mfa import run_mfa

        speakers = {r.clip_id: str(r.speaker_id) for r, *_ in meta.values()}
        aligned = run_mfa(utts, speakers, params.mfa, out_dir / "mfa_work",
                          str(project_root / params.dictionary) if params.dictionary else None) if utts else []
    reference = dict(zip(clips.clip_id, clips.words)) if "words" in clips else {}
    return _tables(aligned, meta, params, out_dir, project_root, quarantine, source, reference, sinks,
                   list(clips.clip_id), float(samples / 16000))


def label_frames(n_video_frames: int, video_fps: float, label_fps: int) -> int:
    """How many phone labels at `label_fps` cover a clip of `n_video_frames` at `video_fps`.

    round(duration x label_fps): at the clip's own rate one label per video frame; at another rate
    the same duration (75 frames at 25 fps = 3 s -> 90 labels at 30 fps, 150 at 50 fps).
    """
    return int(round(n_video_frames * label_fps / video_fps))


def _relative(path: Path, root: Path) -> str:
    """`path` relative to the project root when inside it (the normal case), else absolute."""
    path = path.resolve()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()


def clip_tables(al: Alignment, r, words: list[str], n_labels: int, fps: int) -> dict[str, pa.Table]:
    """One aligned clip's rows of words, phones and frame_labels (manifest tables, `manifest_table`):
    words in word order, phones by start time, one label per frame (`frame_phones` at `fps`)."""
    word_rows = [{"clip_id": al.clip_id, "word_index": k, "word": w, "start": a, "end": b}
                 for k, (a, b, w) in enumerate(al.words)]
    phone_rows = [{"clip_id": al.clip_id, "word_index": w, "word": words[w] if w >= 0 else "", "phone": p,
                   "phone_index": PHONE_INDEX[p], "start": a, "end": b} for a, b, p, w in al.phones]
    labels = frame_phones([(a, b, p) for a, b, p, _ in al.phones], n_labels, fps)
    idx = np.array([PHONE_INDEX[p] for p in labels], dtype=np.int16)
    frames = pd.DataFrame({"clip_id": al.clip_id, "frame": np.arange(len(labels), dtype=np.int64),
                           "phone": labels, "phone_index": idx, "styletalk_index": STYLETALK_INDEX[idx]})
    phones = pd.DataFrame(phone_rows).sort_values("start", kind="stable", ignore_index=True) if phone_rows else None
    return {"words": manifest_table(word_rows, "words") if word_rows else None,
            "phones": manifest_table(phones, "phones") if phones is not None else None,
            "frame_labels": manifest_table(frames, "frame_labels") if len(frames) else None}


def _tables(aligned: list[Alignment], meta: dict, params: AlignParams, out_dir: Path, project_root: Path,
            quarantine: Quarantine, source: dict, reference: dict, sinks: Mapping[str, Any] | None,
            clip_ids: list[str], audio_seconds: float) -> AlignResult:
    """TextGrids and manifests of the aligned clips, clip by clip in clip_id order (the order of the
    files), into `sinks` or into memory; the accounting check and the result."""
    grid_dir = out_dir / "textgrids"
    grid_dir.mkdir(parents=True, exist_ok=True)
    for al in aligned:   # in the aligner's order, as before (the quarantine table is sorted when written)
        if al.failed:
            quarantine.add(al.clip_id, "align_failed", al.failed, source[al.clip_id])
    clip_rows, errors, n_words, n_phones = [], [], 0, 0
    kept: dict[str, list[pa.Table]] = {name: [] for name in PER_CLIP_MANIFESTS}
    for al in sorted((a for a in aligned if not a.failed), key=lambda a: a.clip_id):
        r, words, prons, unpronounceable = meta[al.clip_id]
        grid_path = grid_dir / f"{al.clip_id}.TextGrid"
        tg_phones = [(a, b, "spn" if w >= 0 and prons[w] in (None, (SPN,)) else p) for a, b, p, w in al.phones]
        write_textgrid(alignment_textgrid(al.words, tg_phones, al.duration), grid_path)
        n_labels = label_frames(int(r.n_frames), float(getattr(r, "fps", None) or params.fps), params.fps)
        for name, table in clip_tables(al, r, words, n_labels, params.fps).items():
            if table is not None:
                (sinks[name].add if sinks is not None else kept[name].append)(table)
        spoken = sum(p != "SIL" for _, _, p, _ in al.phones)
        n_words += len(al.words)
        n_phones += spoken
        ref = reference.get(al.clip_id)
        if ref is not None and len(ref) and al.words:
            errors.append(boundary_errors([(w["start"], w["end"], str(w["word"]).lower()) for w in ref],
                                          [(a, b, w) for a, b, w in al.words], words=True))
        clip_rows.append({
            "clip_id": al.clip_id, "backend": params.backend, "transcript": r.transcript, "n_words": len(words),
            "n_aligned_words": len(al.words), "n_phones": spoken,
            "unpronounceable": unpronounceable, "duration_s": al.duration, "n_frames": n_labels,
            "fps": params.fps, "log_likelihood": al.log_likelihood,
            "textgrid_path": _relative(grid_path, project_root),
        })
    keep = {r["clip_id"] for r in clip_rows}
    for f in grid_dir.iterdir():
        if f.stem not in keep:
            f.unlink()
    check_accounting(clip_ids, [r["clip_id"] for r in clip_rows], [q["clip_id"] for q in quarantine.rows], STAGE)
    alignments = (pd.DataFrame(clip_rows).sort_values(["clip_id"], ignore_index=True) if clip_rows
                  else empty_manifest("alignments"))
    tables = {name: None if sinks is not None else
              pa.concat_tables(kept[name]).to_pandas() if kept[name] else empty_manifest(name)
              for name in PER_CLIP_MANIFESTS}
    return AlignResult(alignments, tables["words"], tables["phones"], tables["frame_labels"], quarantine,
                       len(clip_ids), audio_seconds, n_words=n_words, n_phones=n_phones,
                       source_errors=np.concatenate(errors) if errors else np.zeros(0))


def empty_manifest(kind: str) -> pd.DataFrame:
    """A manifest of no rows with its schema's columns and dtypes (what a corpus without transcripts gets)."""
    return schema_for(kind).empty_table().to_pandas()


def align_wavs(items: list[tuple[str, np.ndarray, str]], params=None) -> list:
    """Align (clip_id, 16 kHz mono audio, transcript) items with the builtin aligner and the lexicon of
    `params` (AlignParams; default params when None). For benchmarks and tests on material that has
    no clips manifest."""
    params = params or AlignParams()
    words = [words_of(t) for _, _, t in items]
    lookup = Lexicon(params.language).lookup(sorted({w for ws in words for w in ws}))
    utts, inits = [], []
    for i, ((cid, wav, transcript), ws) in enumerate(zip(items, words)):
        prons = [lookup[w][0][0] if lookup[w][0] else None for w in ws]
        utts.append(UtteranceInput(cid, wav, ws, prons, transcript, [lookup[w][0] or [] for w in ws]))
        voice = "en-us" if params.language.lower() == "en" else params.language
        inits.append(initial(params.builtin.init, wav, " ".join(ws), prons, params.builtin.shift_ms, voice,
                             variants_for(i, len(items))))
    return builtin_align(utts, params.builtin, inits)
