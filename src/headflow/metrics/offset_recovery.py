"""Offset recovery and LSE-C of shifted audio on arbitrary videos (e.g. the real GRID clips).

Each video goes through the project's own steps, as the pipeline would take it: ingest's canonical
media (`headflow.media.normalize_clip`: 25 fps H.264 + 16 kHz mono wav), the `faces` tracker
(`process_clip`, default FacesParams), the Wav2Lip mel (`headflow.audio.mel.mel_spectrogram`) and the
expert's mouth crops (the lower half of `headflow.shards.cut.cut_views`' face96, as the shards cut
them). Then the audio is shifted by each applied shift (`scoring.shift_audio`) and scored; recovery
means the scorer's offset equals the shift.

Two questions are kept apart (`recovery_tables`): *relative* recovery (does the expert see the shift:
o_s - o_0 == s, whatever the clip's own offset o_0) and *exact* recovery (o_s == s, which also needs
the recording itself to score at offset 0); and the *absolute* question, is the clip as recorded in
sync (|o_0| <= tolerance), with the LSE-C that backs each answer. Every fraction carries a 95% Wilson
interval. Sign convention throughout (`headflow.metrics.lse`): `shift_audio(clip, s)` with s > 0
delays the audio, and an offset > 0 means the audio lags the video, so a shift s moves the offset by +s.

    python bench/sync_grid.py --expert data/models/expert/last.pt
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from headflow.sync.data import ClipArrays
from headflow.metrics.lse import ClipTooShort, score_clip, shift_audio

SHIFTS = (-10, -5, 5, 10)


def prepare_clip(video: Path, work_dir: Path, faces_params=None) -> ClipArrays:
    """Canonical media, face track, mel and mouth crops of one video, as the pipeline makes them."""
    return prepare_clip_and_aperture(video, work_dir, faces_params)[0]


def prepare_clip_and_aperture(video: Path, work_dir: Path, faces_params=None) -> tuple[ClipArrays, np.ndarray]:
    """`prepare_clip`, plus the clip's mouth aperture per video frame from the same face track.

    Returns:
        (clip, aperture): aperture (T,) float64 = inner-lip opening (points 62-66) / inter-ocular distance
        of the smoothed landmarks (`headflow.landmarks68`), NaN on frames without a face.
    """
    from headflow.landmarks68 import inter_ocular, mouth_opening
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
    lm = faces.landmarks.astype(np.float64)
    aperture = mouth_opening(lm) / inter_ocular(lm)
    aperture[~np.asarray(faces.valid, bool)] = np.nan
    return ClipArrays(video.stem, mouths, mel_spectrogram(audio), faces.valid), aperture


def mel_loudness(mel: np.ndarray, n_frames: int, fps: float = 25.0) -> np.ndarray:
    """Loudness envelope per video frame: the mean over the 80 bands of the log-mel, averaged over the mel
    frames (80 per second, `headflow.audio.mel.WAV2LIP`) that fall in each video frame.

    Args:
        mel: (T_mel, 80) the Wav2Lip log-mel (its normalised dB scale).
        n_frames: video frames T.
        fps: video frame rate.

    Returns:
        (T,) float64; NaN for video frames the mel does not cover.
    """
    per_mel = np.asarray(mel, np.float64).mean(axis=1)
    out = np.full(n_frames, np.nan)
    step = 80.0 / fps
    for t in range(n_frames):
        a, b = int(round(t * step)), int(round((t + 1) * step))
        if b <= len(per_mel) and b > a:
            out[t] = per_mel[a:b].mean()
    return out


def envelope_offset(aperture: np.ndarray, loudness: np.ndarray, max_offset: int = 4,
                    min_pairs: int = 20, centre: int = 0) -> tuple[float, np.ndarray]:
    """An offset estimate independent of the expert: the lag at which the mouth aperture best correlates with
    the audio loudness envelope, refined to a fraction of a frame.

    Lip aperture and the acoustic envelope are strongly correlated in natural speech (Chandrasekaran et
    al. 2009, "The natural statistics of audiovisual speech", PLoS Comput Biol 5(7)); delaying the audio by
    d frames moves the correlation peak by +d. Where the peak sits for an in-sync recording depends on the
    speaker and material (the mouth opens before the sound starts at onsets), so the estimate's zero is not
    exact: compare clips of one corpus with each other rather than with 0.

    Args:
        aperture: (T,) mouth opening per video frame (NaN where no face), `prepare_clip_and_aperture`.
        loudness: (T,) loudness per video frame (NaN where no audio), `mel_loudness`.
        max_offset: lags k = c-K..c+K video frames around `centre` c; k > 0 pairs video t with audio t + k
            (audio lags), the sign convention of `headflow.metrics.lse`. Keep K small: speech is
            quasi-periodic at the syllable rate (~4-5 Hz, 5-6 frames), so a wide scan on a 3 s clip can
            lock onto a neighbouring syllable (on GRID, +-15 frames put two of six clips at +-12).
        min_pairs: fewest finite (t, t + k) pairs a lag needs.
        centre: c, the lag to scan around (an applied shift, when checking that the estimate follows it).

    Returns:
        (offset, corr): the sub-frame lag of the correlation peak (the vertex of the parabola through the
        maximum and its neighbours, `headflow.metrics.lse.subframe_offset` on -corr), and the Pearson
        correlation at every lag c-K..c+K (2K + 1,).

    Raises:
        ClipTooShort: a lag with fewer than `min_pairs` finite pairs.
    """
    from headflow.metrics.lse import subframe_offset

    ap, lo = np.asarray(aperture, np.float64), np.asarray(loudness, np.float64)
    corr = np.empty(2 * max_offset + 1)
    for i, k in enumerate(range(centre - max_offset, centre + max_offset + 1)):
        t0, t1 = max(0, -k), min(len(ap), len(lo) - k)
        x, y = ap[t0:t1], lo[t0 + k:t1 + k]
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() < min_pairs:
            raise ClipTooShort(f"only {int(ok.sum())} frames with both a face and audio at lag {k:+d} "
                               f"(need {min_pairs})")
        corr[i] = np.corrcoef(x[ok], y[ok])[0, 1]
    return centre + subframe_offset(-corr, max_offset), corr


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
                     "recovered_subframe": s.offset_subframe,
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


def wilson_interval(successes: int, trials: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (Wilson 1927, JASA 22:209-212).

    Inverts the normal test of p: centre (k/n + z^2/2n) / (1 + z^2/n), half-width
    z / (1 + z^2/n) * sqrt(k/n (1 - k/n) / n + z^2 / 4n^2). Unlike the Wald interval it stays inside
    [0, 1] and is not empty at 0/n or n/n, which matters for the few dozen trials of the GRID bench.

    Args:
        successes: k, 0 <= k <= trials.
        trials: n >= 1.
        z: the normal quantile; the default gives a 95% two-sided interval.

    Returns:
        (lower, upper), both in [0, 1].

    Raises:
        ValueError: when trials < 1 or successes is outside [0, trials].
    """
    if trials < 1 or not 0 <= successes <= trials:
        raise ValueError(f"wilson_interval: need 0 <= successes <= trials and trials >= 1, got "
                         f"{successes}/{trials}; pass counts, not rates")
    p, z2 = successes / trials, z * z
    denom = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Proportion:
    """k of n with its 95% Wilson interval (`wilson_interval`); `rate` is None when n == 0."""

    k: int
    n: int

    @property
    def rate(self) -> float | None:
        return self.k / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.k, self.n) if self.n else None

    def as_dict(self) -> dict:
        ci = self.interval
        return {"k": self.k, "n": self.n, "rate": None if self.rate is None else round(self.rate, 4),
                "ci95": None if ci is None else [round(ci[0], 4), round(ci[1], 4)]}

    def __str__(self) -> str:
        if not self.n:
            return "0/0"
        lo, hi = self.interval
        return f"{self.k}/{self.n} = {self.rate:.3f} [{lo:.3f}, {hi:.3f}]"


def shift_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per shifted copy: clip_id, applied_shift s, o0 (the clip's unshifted offset), o_s, relative, exact.

    relative = (o_s - o0 == s): the expert moved its peak by exactly the shift; exact = (o_s == s).
    With a `recovered_subframe` column (`offset_recovery` writes it; `lse.subframe_offset`), also
    o0_sub, o_s_sub and relative_subframe = (round(o_s_sub - o0_sub) == s): a clip recorded half a frame
    off has integer peaks that straddle the shift (o0 = 0, o_s = s + 1) although the peak moved by s.

    Raises:
        ValueError: naming the clips that have shifted rows but no unshifted (applied_shift 0) row.
    """
    unshifted = rows[rows.applied_shift == 0]
    base = dict(zip(unshifted.clip_id, unshifted.recovered_offset.astype(int)))
    shifted = rows[rows.applied_shift != 0]
    missing = sorted(set(shifted.clip_id) - set(base))
    if missing:
        raise ValueError(f"clips {missing} have shifted rows but no applied_shift 0 row; "
                         "score the unshifted audio too (offset_recovery does)")
    out = pd.DataFrame({"clip_id": shifted.clip_id.to_numpy(),
                        "applied_shift": shifted.applied_shift.astype(int).to_numpy(),
                        "o0": shifted.clip_id.map(base).astype(int).to_numpy(),
                        "o_s": shifted.recovered_offset.astype(int).to_numpy()})
    out["relative"] = out.o_s - out.o0 == out.applied_shift
    out["exact"] = out.o_s == out.applied_shift
    if "recovered_subframe" in rows:
        fine = dict(zip(unshifted.clip_id, unshifted.recovered_subframe.astype(float)))
        out["o0_sub"] = shifted.clip_id.map(fine).astype(float).to_numpy()
        out["o_s_sub"] = shifted.recovered_subframe.astype(float).to_numpy()
        out["relative_subframe"] = np.round(out.o_s_sub - out.o0_sub).astype(int) == out.applied_shift
    return out


def absolute_table(rows: pd.DataFrame, tolerance: int = 1) -> pd.DataFrame:
    """One row per clip as recorded: clip_id, o0, lse_c (at the best offset), in_sync = |o0| <= tolerance."""
    u = rows[rows.applied_shift == 0]
    out = pd.DataFrame({"clip_id": u.clip_id.to_numpy(), "o0": u.recovered_offset.astype(int).to_numpy(),
                        "lse_c": u.lse_c.astype(float).to_numpy()})
    if "recovered_subframe" in rows:
        out["o0_sub"] = u.recovered_subframe.astype(float).to_numpy()
    out["in_sync"] = out.o0.abs() <= tolerance
    return out


def recovery_tables(rows: pd.DataFrame, tolerance: int = 1) -> dict:
    """Relative and exact recovery, overall and per shift, and the absolute-offset table, with 95% intervals.

    Args:
        rows: `offset_recovery` rows of one or more clips (applied_shift 0 = as recorded).
        tolerance: frames; a clip is "in sync" as recorded when |o0| <= tolerance.

    Returns:
        {"relative": {"overall": P, "by_shift": {s: P}}, "exact": {...},
         "absolute": {"tolerance": t, "in_sync": P, "median_lse_c_in_sync": float | None,
                      "median_lse_c_out_of_sync": float | None, "clips": [{clip_id, o0, lse_c, in_sync}]}}
        where P is `Proportion.as_dict()` (k, n, rate, ci95). The intervals treat every shifted copy as
        an independent trial; copies of one clip are not independent, so they are optimistic.
    """
    sh, ab = shift_table(rows), absolute_table(rows, tolerance)
    out: dict = {}
    for col in ("relative", "exact", "relative_subframe"):
        if col not in sh:
            continue
        out[col] = {"overall": Proportion(int(sh[col].sum()), len(sh)).as_dict(),
                    "by_shift": {int(s): Proportion(int(g[col].sum()), len(g)).as_dict()
                                 for s, g in sh.groupby("applied_shift")}}

    def med(x: pd.Series) -> float | None:
        return round(float(x.median()), 4) if len(x) else None

    out["absolute"] = {"tolerance": tolerance,
                       "in_sync": Proportion(int(ab.in_sync.sum()), len(ab)).as_dict(),
                       "median_lse_c_in_sync": med(ab.lse_c[ab.in_sync]),
                       "median_lse_c_out_of_sync": med(ab.lse_c[~ab.in_sync]),
                       "clips": [{"clip_id": r.clip_id, "o0": int(r.o0), "lse_c": round(float(r.lse_c), 4),
                                  "in_sync": bool(r.in_sync),
                                  **({"o0_subframe": round(float(r.o0_sub), 3)} if "o0_sub" in ab else {})}
                                 for r in ab.itertuples()]}
    return out


def format_tables(tables: dict) -> str:
    """The two tables of `recovery_tables` as text: recovery per shift (relative, exact) and the clips' own offsets."""
    def p(d: dict) -> str:
        return str(Proportion(d["k"], d["n"]))

    rel, ex, ab = tables["relative"], tables["exact"], tables["absolute"]
    sub = tables.get("relative_subframe")
    lines = ["Relative recovery (o_s - o0 == s), exact recovery (o_s == s)"
             + (" and relative on sub-frame peaks (round(o_s - o0) == s)" if sub else "")
             + ", k/n = rate [95% Wilson]:",
             f"  {'shift':>6}  {'relative':<28}  {'exact':<28}" + (f"  {'relative (sub-frame)':<28}" if sub else "")]
    for s in rel["by_shift"]:
        lines.append(f"  {s:>+6d}  {p(rel['by_shift'][s]):<28}  {p(ex['by_shift'][s]):<28}"
                     + (f"  {p(sub['by_shift'][s]):<28}" if sub else ""))
    lines.append(f"  {'all':>6}  {p(rel['overall']):<28}  {p(ex['overall']):<28}"
                 + (f"  {p(sub['overall']):<28}" if sub else ""))
    lines += [f"Absolute offset as recorded (in sync = |o0| <= {ab['tolerance']}):",
              f"  {'clip':<12} {'o0':>4} {'sub-frame':>9} {'LSE-C':>7}  in sync"]
    lines += [f"  {c['clip_id']:<12} {c['o0']:>+4d} {c.get('o0_subframe', float('nan')):>+9.2f} {c['lse_c']:>7.3f}  "
              f"{'yes' if c['in_sync'] else 'no'}" for c in ab["clips"]]
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    lines.append(f"  in sync: {p(ab['in_sync'])}; median LSE-C in sync {fmt(ab['median_lse_c_in_sync'])}, "
                 f"others {fmt(ab['median_lse_c_out_of_sync'])}")
    return "\n".join(lines)
