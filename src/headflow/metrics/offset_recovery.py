"""Offset recovery and LSE-C of shifted audio on arbitrary videos (e.g. the real GRID clips).

Each video goes through the project's own steps, as the pipeline would take it: ingest's canonical
media (`headflow.media.normalize_clip`: 25 fps H.264 + 16 kHz mono wav), the `faces` tracker
(`process_clip`, default FacesParams), the Wav2Lip mel (`headflow.audio.mel.mel_spectrogram`) and the
expert's mouth crops (the lower half of `headflow.shards.cut.cut_views`' face96, as the shards cut
them). Then the audio is shifted by each applied shift (`scoring.shift_audio`) and scored; recovery
means the scorer's offset equals the shift.

    python bench/sync_grid.py --expert data/models/expert/last.pt
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from headflow.sync.data import ClipArrays
from headflow.metrics.lse import ClipTooShort, score_clip, shift_audio

SHIFTS = (-10, -5, 5, 10)


def prepare_clip(video: Path, work_dir: Path, faces_params=None) -> ClipArrays:
    """Canonical media, face track, mel and mouth crops of one video, as the pipeline makes them."""
    from headflow.audio.mel import mel_spectrogram
    from headflow.faces.faces import process_clip
    from headflow.faces.params import FacesParams
    from headflow.media import normalize_clip, read_audio
    from headflow.shards.cut import cut_views

    video = Path(video)
    work_dir.mkdir(parents=True, exist_ok=True)
    mp4, wav = work_dir / f"{video.stem}.mp4", work_dir / f"{video.stem}.wav"
    normalize_clip(video, mp4, wav, fps=25, sample_rate=16000, preset="ultrafast")
    faces = process_clip(mp4, faces_params or FacesParams(), None)
    audio, sr = read_audio(wav)
    if sr != 16000:
        raise ValueError(f"{wav}: {sr} Hz after normalisation, expected 16000")
    mouths = np.ascontiguousarray(cut_views(mp4, faces.boxes.astype(np.float64), faces.valid)["face96"][:, 48:])
    return ClipArrays(video.stem, mouths, mel_spectrogram(audio), faces.valid)


def offset_recovery(model, clip: ClipArrays, shifts=SHIFTS, max_offset: int = 15,
                    min_pairs: int = 5) -> pd.DataFrame:
    """One row per applied shift (0 = as recorded): recovered offset, LSE-D, LSE-C, seconds.

    `dist_at_zero` is the mean distance at offset 0 (LSE-D and LSE-C follow the best offset wherever
    it is, so a clearly shifted clip keeps a high LSE-C; the distance at 0 is what the shift worsens).

    Raises:
        ClipTooShort: naming the clip, when it is too short for a +-max_offset scan.
    """
    rows = []
    for shift in [0, *shifts]:
        t = time.perf_counter()
        try:
            s = score_clip(model, shift_audio(clip, shift) if shift else clip, max_offset, min_pairs)
        except ClipTooShort as err:
            raise ClipTooShort(f"clip {clip.clip_id} ({len(clip.mouths)} frames): {err}") from None
        rows.append({"clip_id": clip.clip_id, "applied_shift": shift, "recovered_offset": s.offset,
                     "recovered": s.offset == shift, "lse_d": s.lse_d, "lse_c": s.lse_c,
                     "dist_at_zero": float(s.mean_dist[max_offset]),
                     "frames": len(clip.mouths), "seconds": time.perf_counter() - t})
    return pd.DataFrame(rows)


def summarise(rows: pd.DataFrame) -> dict:
    """Overall figures: recovery rate over the shifted rows, offset-0 rate and LSE-C/D unshifted vs shifted."""
    shifted, unshifted = rows[rows.applied_shift != 0], rows[rows.applied_shift == 0]
    base = dict(zip(unshifted.clip_id, unshifted.recovered_offset))
    relative = shifted.recovered_offset - shifted.clip_id.map(base) == shifted.applied_shift
    return {
        "clips": int(rows.clip_id.nunique()),
        "recovery_rate": round(float(shifted.recovered.mean()), 4) if len(shifted) else None,
        # recovered offset minus the clip's own unshifted offset equals the shift (a clip whose
        # recording is itself a frame off still counts when the shift moves the peak by exactly the shift)
        "relative_recovery_rate": round(float(relative.mean()), 4) if len(shifted) else None,
        "recovery_by_shift": {int(k): round(float(v), 4) for k, v in shifted.groupby("applied_shift").recovered.mean().items()},
        "unshifted_offset_zero": round(float((unshifted.recovered_offset == 0).mean()), 4),
        "lse_c_unshifted": round(float(unshifted.lse_c.mean()), 4), "lse_c_shifted": round(float(shifted.lse_c.mean()), 4),
        "lse_d_unshifted": round(float(unshifted.lse_d.mean()), 4), "lse_d_shifted": round(float(shifted.lse_d.mean()), 4),
        "dist_at_zero_unshifted": round(float(unshifted.dist_at_zero.mean()), 4),
        "dist_at_zero_shifted": round(float(shifted.dist_at_zero.mean()), 4),
        "scoring_frames_per_s": round(float(rows.frames.sum() / rows.seconds.sum()), 1),
    }
