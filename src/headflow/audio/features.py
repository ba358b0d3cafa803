"""Per-clip audio features: mel spectrogram cached as .npy plus level statistics, or a rejection."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from headflow.audio.mel import WAV2LIP, mel_spectrogram, valid_window_frames
from headflow.audio.params import AudioFeaturesParams
from headflow.manifest import Quarantine, Rejected, atomic_output, check_accounting
from headflow.media import MediaError, read_audio
from headflow.parallel import map_jobs

STAGE = "audio_features"


def clip_features(clip_id: str, audio_path: Path, n_video_frames: int, fps: float, params: AudioFeaturesParams,
                  mel_dir: Path, project_root: Path) -> dict:
    """Compute and store one clip's mel spectrogram; returns its manifest row. Raises Rejected."""
    try:
        wav, sr = read_audio(project_root / audio_path)
    except MediaError as err:
        raise Rejected("unreadable", err.message) from None
    if sr != WAV2LIP.sample_rate:
        raise Rejected("wrong_sample_rate", f"{audio_path}: {sr} Hz, expected {WAV2LIP.sample_rate} (re-run ingest)")
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if len(wav) else 0.0
    rms_dbfs = 20 * np.log10(max(rms, 1e-10))
    if rms_dbfs < params.silence_dbfs:
        raise Rejected("silent_audio", f"{audio_path}: RMS level {rms_dbfs:.1f} dBFS < silence_dbfs {params.silence_dbfs}")
    mel = mel_spectrogram(wav)
    n_valid = valid_window_frames(len(mel), n_video_frames, fps)
    if n_valid == 0:
        raise Rejected("audio_too_short", f"{audio_path}: {len(wav) / sr:.2f} s gives no complete 0.2 s mel window")
    mel_path = mel_dir / f"{clip_id}.npy"
    with atomic_output(mel_path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, mel)
    return {
        "clip_id": clip_id, "mel_path": mel_path.relative_to(project_root).as_posix(),
        "n_mel_frames": len(mel), "n_video_frames": int(n_video_frames), "n_valid_windows": n_valid,
        "duration_s": len(wav) / sr, "rms_dbfs": round(rms_dbfs, 3), "peak": float(np.abs(wav).max()),
        "clipped_fraction": float(np.mean(np.abs(wav) >= params.clip_level)),
        "mel_min": float(mel.min()), "mel_max": float(mel.max()),
    }


def _work(args: tuple) -> tuple[str, dict | None, tuple[str, str] | None]:
    clip_id = args[0]
    try:
        return clip_id, clip_features(*args), None
    except Rejected as rej:
        return clip_id, None, (rej.reason_code, rej.message)


@dataclass(frozen=True)
class AudioFeaturesResult:
    features: pd.DataFrame
    quarantine: Quarantine
    n_inputs: int


def run_audio_features(clips: pd.DataFrame, params: AudioFeaturesParams, out_dir: Path,
                       project_root: Path | None = None, progress: bool = True,
                       map_fn: Callable | None = None) -> AudioFeaturesResult:
    """Mel spectrograms for every clip of `clips` (ingest's clips.parquet)."""
    project_root = project_root or Path.cwd()
    mel_dir = out_dir / "mel"
    mel_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(r.clip_id, Path(r.audio_path), int(r.n_frames), float(r.fps), params, mel_dir.resolve(),
             project_root.resolve()) for r in clips.itertuples()]
    results = map_jobs(_work, jobs, params.workers, map_fn, desc="mel", progress=progress)
    quarantine = Quarantine(STAGE)
    rows = []
    source = dict(zip(clips.clip_id, clips.source_path))
    for clip_id, row, rejection in results:
        if row is not None:
            rows.append(row)
        else:
            quarantine.add(clip_id, rejection[0], rejection[1], source.get(clip_id, ""))
    keep = {r["clip_id"] for r in rows}
    for f in mel_dir.iterdir():
        if f.stem not in keep:
            f.unlink()
    check_accounting(list(clips.clip_id), [r["clip_id"] for r in rows], [q["clip_id"] for q in quarantine.rows], STAGE)
    features = pd.DataFrame(rows).sort_values("clip_id", ignore_index=True) if rows else pd.DataFrame()
    return AudioFeaturesResult(features, quarantine, len(clips))
