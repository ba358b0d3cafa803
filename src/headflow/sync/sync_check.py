"""The `sync_check` stage: every accepted clip scored with the lip-sync expert; optional filter or correction.

Runs after `train_expert` (the expert is trained on the ingested corpus itself, so the check cannot
run inside `ingest`). For each clip of the `shards` stage: the expert's mouth crops (the lower half of
the shard's `face96` view, the rule training uses) and the clip's mel are read from its shard, and
`headflow.metrics.lse.score_clip` gives LSE-D, LSE-C and the offset (> 0: the audio lags the video).
`decide` turns that into an action:

- keep:  in sync (|offset| <= max_abs_offset and LSE-C >= min_confidence), or `mode: report`;
- shift: `mode: shift` and a confident offset beyond the tolerance: the mel is shifted by
         `audio_shift_frames = -offset` video frames (`scoring.shift_audio`: whole mel frames, the
         vacated edge filled with the spectrogram's silence floor) and written to
         `data/interim/sync_check/mel/<clip_id>.npy`;
- drop:  `mode: drop` (or `shift` for untrustworthy offsets): the clip goes to quarantine.

A clip shorter than `min_length_s` is never shifted or dropped on its offset alone: its offset beyond
the tolerance is recorded as `sync_offset_short` and the clip kept as it is (bench/sync_length.py
measured how often the expert's offset is wrong on short real clips).

Outputs (`data/interim/sync_check/`): `scores.parquet` (every input clip, its scores and action),
`clips.parquet` (the clips that go on: keep + shift, same columns), `decisions.parquet` (every clip:
keep or drop, reason, `audio_shift_frames`, `mel_path`), `quarantine.parquet` (`sync_offset`,
`sync_low_confidence`, `too_short_for_sync`; clips the shards could not cut are in the shards
stage's quarantine), `mel/` (shifted mels). Downstream consumers of training data read the catalog's
training join (`headflow.catalog.training_clips`) or `headflow.shards.read_clip(..., decisions=...)`,
both built on `decisions.parquet` alone: it holds no score, so an expert retrained to the same
decisions writes the same bytes and re-runs nothing downstream. Its `mel_path` is the audio_features
mel for kept clips and the corrected one for shifted clips. The canonical wav is not rewritten; a
consumer of waveforms applies `audio_shift_frames` x 40 ms itself.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from headflow.catalog import CATALOG
from headflow.manifest import Quarantine, atomic_output, check_accounting, read_manifest
from headflow.parallel import map_jobs
from headflow.stage import finish_quarantine, log, write_metrics, write_validated
from headflow.sync.params import SyncCheckParams

STAGE = "sync_check"
TRAINED = CATALOG.model("train_expert", "expert") / "last.pt"
"""The checkpoint `sync_check.expert: trained` names."""
REASON_CODES = ("sync_offset", "sync_low_confidence", "too_short_for_sync")
FLAGS = ("sync_offset_short",)
"""Reasons recorded on clips that are kept (never quarantine reason codes)."""


@dataclass(frozen=True)
class Decision:
    action: str              # keep | shift | drop
    audio_shift_frames: int  # video frames to delay the audio by (0 unless shift)
    reason: str | None       # reason code when the clip is not cleanly in sync (report mode: what drop/shift would do)


def decide(offset: int | None, lse_c: float | None, params: SyncCheckParams,
           unscorable: str | None = None, length_s: float | None = None) -> Decision:
    """The action for one clip's scores under `params` (see the module docstring).

    Args:
        offset, lse_c: the clip's scores (None when it could not be scored).
        unscorable: the reason code when it could not be scored.
        length_s: the clip's length in seconds; below `params.min_length_s` an offset beyond the
            tolerance only flags the clip (`sync_offset_short`), whatever the mode. None: not checked.
    """
    if unscorable is not None:
        drop = params.mode != "report" and params.drop_unscorable
        return Decision("drop" if drop else "keep", 0, unscorable)
    if lse_c is None or offset is None:
        raise ValueError("decide: a scored clip needs both offset and lse_c")
    if lse_c < params.min_confidence:
        code = "sync_low_confidence"
    elif abs(offset) > params.max_abs_offset:
        code = "sync_offset"
    else:
        return Decision("keep", 0, None)
    if code == "sync_offset" and length_s is not None and length_s < params.min_length_s:
        return Decision("keep", 0, "sync_offset_short")
    if params.mode == "report":
        return Decision("keep", 0, code)
    # An argmin on the edge of the scan may lie beyond it: the true offset is unknown, so never shift by it.
    if params.mode == "shift" and code == "sync_offset" and abs(offset) < params.max_offset:
        return Decision("shift", -offset, code)
    return Decision("drop", 0, code)


def resolve_expert(expert: str, project_root: Path | None = None, trained: Path = TRAINED) -> Path:
    """The checkpoint path of `sync_check.expert` ("trained": `trained`; else a path), relative to the project root."""
    root = project_root or Path.cwd()
    path = root / (trained if expert == "trained" else Path(expert))
    if not path.is_file():
        hint = "run `dvc repro train_expert` first" if expert == "trained" else \
            "sync_check.expert must be 'trained' or the path of a checkpoint written by train_expert"
        raise FileNotFoundError(f"sync_check: expert checkpoint {path} not found ({hint})")
    return path


_MODELS: dict[str, object] = {}


def _expert(path: str):
    """The expert of checkpoint `path`, loaded once per process."""
    if path not in _MODELS:
        from headflow.sync.train import load_expert

        _MODELS[path] = load_expert(Path(path))
    return _MODELS[path]


def _check_job(args: tuple) -> dict:
    """Read, score and decide one clip; writes its shifted mel in shift mode. Returns a result dict."""
    import torch

    from headflow.metrics.lse import ClipTooShort, score_clip, shift_audio
    from headflow.shards import read_clip
    from headflow.sync.data import clip_arrays

    clip_id, shards_dir, mel_path, root, expert, params, mel_dir, threads = args
    row = {"clip_id": clip_id, "offset": None, "lse_d": None, "lse_c": None, "action": "keep",
           "audio_shift_frames": 0, "reason": None, "mel_path": mel_path, "n_windows": None}
    clip = clip_arrays(read_clip(clip_id, views=("face96", "mel"), root=shards_dir, project_root=Path(root)))
    mouths = clip.mouths
    torch.set_num_threads(threads)
    t = time.perf_counter()
    try:
        score = score_clip(_expert(expert), clip, params.max_offset, params.min_pairs)
    except ClipTooShort as err:
        d = decide(None, None, params, unscorable="too_short_for_sync")
        row.update(action=d.action, reason=d.reason)
        return {"row": row, "message": f"{clip_id}: {len(mouths)} frames: {err}", "frames": 0, "seconds": 0.0}
    seconds = time.perf_counter() - t
    d = decide(score.offset, score.lse_c, params, length_s=len(mouths) / clip.fps)
    row.update(offset=score.offset, lse_d=score.lse_d, lse_c=score.lse_c, action=d.action,
               audio_shift_frames=d.audio_shift_frames, reason=d.reason, n_windows=score.n_video_windows)
    message = (f"{clip_id}: audio-video offset {score.offset:+d} frames (tolerance +-{params.max_abs_offset}), "
               f"LSE-C {score.lse_c:.3f} (min_confidence {params.min_confidence}), LSE-D {score.lse_d:.3f}")
    if d.action == "shift":
        out = Path(mel_dir) / f"{clip_id}.npy"
        with atomic_output(Path(root) / out) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, shift_audio(clip, d.audio_shift_frames).mel)
        row["mel_path"] = out.as_posix()
    return {"row": row, "message": message, "frames": len(mouths), "seconds": seconds}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def run_sync_check(params: SyncCheckParams, out_dir: Path = CATALOG.folder("sync_check"),
                   project_root: Path | None = None, map_fn: Callable | None = None, progress: bool = True,
                   shards_dir: Path = CATALOG.folder("shards"),
                   trained_expert: Path = TRAINED) -> tuple[pd.DataFrame, Quarantine, dict]:
    """Score and decide every clip of the shards; returns (scores of every clip, quarantine, run facts).

    Relative paths (these and those inside the manifests) are relative to `project_root` (default: the
    current folder); the manifests record `mel_path` the same way.
    """
    root = project_root or Path.cwd()
    clips = read_manifest(root / shards_dir / "shards.parquet", "shards")
    mel_dir = out_dir / "mel"               # relative to the project root, as every manifest path
    (root / mel_dir).mkdir(parents=True, exist_ok=True)
    expert = resolve_expert(params.expert, root, trained_expert) if params.enabled else None
    jobs = []
    for r in clips.itertuples():
        jobs.append((r.clip_id, shards_dir.as_posix(), r.mel_path, str(root), str(expert), params, mel_dir.as_posix(),
                     params.threads if params.workers <= 1 else 1))
    t = time.perf_counter()
    if params.enabled:
        results = map_jobs(_check_job, jobs, params.workers, map_fn, desc="sync check", progress=progress)
    else:
        results = [{"row": {"clip_id": j[0], "offset": None, "lse_d": None, "lse_c": None, "action": "keep",
                            "audio_shift_frames": 0, "reason": "disabled", "mel_path": j[2], "n_windows": None},
                    "message": "", "frames": 0, "seconds": 0.0} for j in jobs]
    wall = time.perf_counter() - t
    keep = {r["row"]["clip_id"] for r in results if r["row"]["action"] == "shift"}
    for f in (root / mel_dir).iterdir():        # shifted mels of an earlier run must not linger
        if f.stem not in keep:
            f.unlink()
    quarantine = Quarantine(STAGE)
    source = dict(zip(clips.clip_id, clips.source_path))
    for r in results:
        if r["row"]["action"] == "drop":
            quarantine.add(r["row"]["clip_id"], r["row"]["reason"], r["message"], source[r["row"]["clip_id"]])
    scores = pd.DataFrame([r["row"] for r in results], columns=list(_columns()))
    check_accounting(list(clips.clip_id), list(scores.clip_id[scores.action != "drop"]),
                     [q["clip_id"] for q in quarantine.rows], STAGE)
    facts = {"frames": sum(r["frames"] for r in results), "score_seconds": sum(r["seconds"] for r in results),
             "seconds": wall, "expert": f"{params.expert} (sha256 {_sha(expert)})" if expert else None}
    return scores, quarantine, facts


def _columns() -> list[str]:
    from headflow.manifest.schemas import schema_for

    return schema_for("sync_check").names


def check_metrics(scores: pd.DataFrame, params: SyncCheckParams, facts: dict) -> dict:
    scored = scores[scores.offset.notna()]
    offsets = scored.offset.astype(int)
    return {
        "mode": params.mode, "expert": facts["expert"], "clips": len(scores), "scored": len(scored),
        "kept": int((scores.action == "keep").sum()), "shifted": int((scores.action == "shift").sum()),
        "dropped": int((scores.action == "drop").sum()),
        "flagged": dict(sorted(scores.reason.dropna().value_counts().to_dict().items())),
        "offset_histogram": {str(k): int(v) for k, v in sorted(offsets.value_counts().items())},
        "offset_zero": int((offsets == 0).sum()),
        "offset_within_tolerance": int((offsets.abs() <= params.max_abs_offset).sum()),
        "median_lse_c": round(float(scored.lse_c.median()), 4) if len(scored) else None,
        "median_lse_d": round(float(scored.lse_d.median()), 4) if len(scored) else None,
        "scoring_frames_per_s": round(facts["frames"] / facts["score_seconds"], 1) if facts["score_seconds"] else None,
        "seconds": round(facts["seconds"], 2),
    }


def decisions_table(scores: pd.DataFrame) -> pd.DataFrame:
    """decisions.parquet from scores.parquet: per clip keep (kept or shifted) or drop, reason, shift, mel_path."""
    decisions = scores[["clip_id", "reason", "audio_shift_frames", "mel_path"]].copy()
    decisions.insert(1, "decision", scores.action.map({"keep": "keep", "shift": "keep", "drop": "drop"}))
    return decisions.reset_index(drop=True)


def run_stage(params: SyncCheckParams, map_fn: Callable | None = None, progress: bool = True,
              out_dir: Path = CATALOG.folder("sync_check"), metrics_path: Path = CATALOG.metrics("sync_check"),
              shards_dir: Path = CATALOG.folder("shards"),
              trained_expert: Path = TRAINED, project_root: Path | None = None) -> dict:
    """The DVC/Prefect entry: scores, clips, decisions and quarantine manifests, metrics.

    Paths are relative to `project_root` (default: the current folder) unless absolute.
    """
    import torch

    root = project_root or Path()
    torch.set_num_threads(params.threads)
    scores, quarantine, facts = run_sync_check(params, out_dir, project_root, map_fn, progress, shards_dir,
                                               trained_expert)
    out = root / out_dir
    write_validated(scores, out / "scores.parquet", "sync_check")
    write_validated(scores[scores.action != "drop"].reset_index(drop=True), out / "clips.parquet", "sync_check")
    write_validated(decisions_table(scores), out / "decisions.parquet", "decisions")
    metrics = check_metrics(scores, params, facts)
    write_metrics(root / metrics_path, metrics)
    log.info("sync_check (%s): %d clips, offsets %s, %d kept, %d shifted, %d dropped, median LSE-C %s",
             params.mode, metrics["clips"], metrics["offset_histogram"], metrics["kept"], metrics["shifted"],
             metrics["dropped"], metrics["median_lse_c"])
    finish_quarantine(quarantine, out / "quarantine.parquet", len(scores), params.max_reject_fraction)
    return metrics
