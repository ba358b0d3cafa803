"""Scoring systems on a folder of real clips outside the pipeline (the GRID benches), as the `evaluate` stage scores.

The benches `bench/lipsync_grid.py` and `bench/discohead_grid.py` share this: each real clip prepared exactly as
`headflow.cli.dub_files` prepares a video (`prepare_clip`: ingest's normalisation, the faces stage's
tracking, the Wav2Lip mel), the evaluation stage's per-clip items (`clip_items`: its baselines of
`headflow.evaluate.baselines`, then the generated rows), its per-clip jobs (`clip_jobs`, scored by
`headflow.evaluate.stage.score_clip_job`), its summary (`summarise`: `aggregate`, the face-descriptor FID
`set_metrics`, the Inception-FID / LPIPS rows null with their reasons, the paired bootstrap `compare`), and the
markdown tables of the result (`markdown_tables`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from headflow.evaluate.baselines import BASELINES, Task

METRIC_NAMES = {"m_lmd": "M-LMD px", "psnr_masked": "PSNR lower dB", "ssim_masked": "SSIM lower",
                "lap_var": "vL", "lse_c": "LSE-C", "lse_d": "LSE-D", "abs_offset": "abs offset",
                "lse_c_loss_expert": "LSE-C loss expert", "psnr": "PSNR dB", "ssim": "SSIM", "akd": "AKD px",
                "aed": "AED", "fid_face": "FID face", "fid_inception": "FID Inception", "lpips": "LPIPS",
                "csim": "CSIM"}
"""Column titles of `markdown_tables` (a metric not listed is titled by its column name)."""


@dataclass
class PreparedClip:
    """One real clip normalised, tracked and turned into a mel exactly as `headflow.cli.dub_files` does.

    Arrays cover the first `n_frames` frames (the shorter of the decoded video and the faces track).
    """

    clip_id: str
    video_path: str
    """The canonical 25 fps video (`media.normalize.normalize_video`)."""
    wav_path: str
    """16 kHz mono audio (`media.normalize.extract_audio`)."""
    mel_path: str
    """(T_mel, 80) float32 Wav2Lip mel (`audio.mel.mel_spectrogram`, 80 frames per second), .npy."""
    n_frames: int
    n_mel: int
    boxes: np.ndarray
    """(T, 4) float64 faces boxes l, t, r, b in source pixels."""
    valid: np.ndarray
    """(T,) bool frames the faces stage fitted."""
    m256: np.ndarray
    """(T, 2, 3) float64 source -> aligned crop of `faces.crop.size` px (the faces stage's `crop_transform`)."""
    landmarks: np.ndarray
    """(T, 68, 2) float32 smoothed iBUG-68 landmarks in source pixels, NaN where invalid."""
    faces_valid: int
    """Frames with a tracked face (of the whole track)."""


def prepare_clip(video: Path, work: Path, faces_params) -> PreparedClip:
    """Canonical video, 16 kHz audio, face track and mel of one clip, as `headflow.cli.dub_files` makes them.

    Args:
        video: any file ffmpeg reads (GRID's .mpg).
        work: folder for `<stem>.mp4`, `<stem>.wav`, `<stem>.mel.npy` (existing files are overwritten).
        faces_params: the `faces` block (`headflow.faces.params.FacesParams`).

    Returns:
        `PreparedClip` with `clip_id` = the file's stem.

    Raises:
        headflow.manifest.quarantine.Rejected: no face on any frame, or an unreadable video (reason code).
        headflow.media.MediaError: ffmpeg cannot normalise the file.
    """
    from headflow.audio.mel import mel_spectrogram
    from headflow.faces.faces import process_clip
    from headflow.media.normalize import extract_audio, normalize_video, read_audio, read_frames

    video, work = Path(video), Path(work)
    mp4, wav, mel_path = work / f"{video.stem}.mp4", work / f"{video.stem}.wav", work / f"{video.stem}.mel.npy"
    normalize_video(video, mp4, fps=25)
    extract_audio(video, wav, sample_rate=16000)
    faces = process_clip(mp4, faces_params, crop_path=None)
    n_frames = min(sum(1 for _ in read_frames(mp4)), len(faces.valid))
    audio, _ = read_audio(wav)
    mel = mel_spectrogram(audio)
    np.save(mel_path, mel)
    return PreparedClip(video.stem, str(mp4), str(wav), str(mel_path), n_frames, len(mel),
                        faces.boxes[:n_frames].astype(np.float64), faces.valid[:n_frames].astype(bool),
                        np.asarray(faces.transforms[:n_frames], np.float64),
                        np.asarray(faces.landmarks[:n_frames], np.float32), int(faces.valid.sum()))


def clip_items(tasks: Sequence[Task], outputs: dict[tuple[str, str], dict | list[dict]]
               ) -> dict[str, list[tuple[Task, str, dict | None]]]:
    """What the evaluation stage scores per real clip: each task's baselines, then the generated outputs.

    Args:
        tasks: canonical tasks (`headflow.evaluate.baselines.canonical_tasks`).
        outputs: (protocol, source clip) -> the generated row, or a list of rows (several variants of one
            family, e.g. DisCoHead's `<v>` and `<v>+source_warp`); a row is a generated.parquet-style dict with
            `family`, `variant`, `seed`, `output_path`, `output_kind`, `fps`, `frame_start`, `frame_end`.
            A task without an output gets no generated item (the caller records its failure).

    Returns:
        frame clip -> [(task, system, row or None for a reference system)], in task order, the items of
        `headflow.evaluate.stage.ClipJob` (systems of `BASELINES[protocol]` first, then the rows in order).

    Raises:
        ValueError: a task whose protocol has no canonical baselines.
    """
    items: dict[str, list[tuple[Task, str, dict | None]]] = {}
    for t in tasks:
        if t.protocol not in BASELINES:
            raise ValueError(f"task {t.clip_id}: protocol {t.protocol!r} has no baselines; expected one of "
                             f"{sorted(BASELINES)}")
        its = items.setdefault(t.frame_clip, [])
        its += [(t, system, None) for system in BASELINES[t.protocol]]
        rows = outputs.get((t.protocol, t.source_clip))
        for row in [rows] if isinstance(rows, dict) else rows or []:
            its.append((t, row["family"], row))
    return items


def clip_jobs(items: dict[str, list[tuple[Task, str, dict | None]]], real: dict[str, PreparedClip], params,
              checkpoints: tuple[str, str]) -> list:
    """One `headflow.evaluate.stage.ClipJob` per real clip, built as the stage's `plan_jobs` builds them.

    Each clip's fixed frame sample is drawn over its own reconstruction range (`scored_range` from
    `params.frame_start`); every path is absolute (root "/"); no previews.

    Args:
        items: `clip_items`' result.
        real: clip id -> `PreparedClip` of every frame and audio clip named by the items.
        params: the `evaluate` block (`EvaluateParams`).
        checkpoints: (judge, loss expert) checkpoint paths, absolute; a missing file leaves its columns null.
    """
    from headflow.evaluate.stage import ClipJob, ClipSpec
    from headflow.manifest.generated import scored_range

    jobs = []
    for c, its in items.items():
        r = real[c]
        n_decode = max(t.frame_end for t, _, _ in its)
        own = scored_range(r.n_frames, r.n_mel, params.frame_start)
        spec = ClipSpec(c, r.video_path, r.boxes, r.valid, r.m256, n_decode, own if own[1] > own[0] else None)
        audio = sorted({t.audio_clip for t, _, _ in its if t.audio_clip is not None})
        jobs.append(ClipJob(spec, its, {}, {a: real[a].mel_path for a in audio}, {a: real[a].wav_path for a in audio},
                            params, "/", False, checkpoints))
    return jobs


def summarise(results: list[dict], extra_rows: list[dict], params, notes: dict[str, str] | None = None
              ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """per_clip, aggregates and comparisons of scored jobs, as the `evaluate` stage's `run_stage` makes them.

    Aggregates: `aggregate` (bootstrap intervals over clips; a failed row counts at its clip's worst value),
    the face-descriptor FID of each (system, variant, protocol) against ground truth (reconstruction) or the
    unedited video (dubbing) (`set_metrics`), and the `fid_inception` rows null with their reason; `lpips` is null
    with `headflow.evaluate.stage.UNAVAILABLE`'s reason. Comparisons: `compare` (paired bootstrap against the
    protocol's baselines and a family's same-run `<v>+<name>` variants).

    Args:
        results: `score_clip_job` results.
        extra_rows: per_clip rows of failures outside the scoring (generation errors: status "failed").
        params: the `evaluate` block.
        notes: metric -> why it is null (added to `UNAVAILABLE`'s; e.g. a missing judge).
    """
    from headflow.evaluate.stage import UNAVAILABLE, summarise_scores
    from headflow.manifest.schemas import PER_CLIP

    rows = [r for res in results for r in res["rows"]] + list(extra_rows)
    per_clip = pd.DataFrame(rows, columns=PER_CLIP.names).sort_values(
        ["protocol", "system", "variant", "seed", "clip_id"], ignore_index=True, na_position="first")
    agg, comparisons = summarise_scores(per_clip, results, params, {**UNAVAILABLE, **(notes or {})})
    return per_clip, agg, comparisons


def _cell(mean: float, low: float, high: float, digits: int) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    if math.isinf(mean):
        return "inf" if mean > 0 else "-inf"
    if low is None or not (math.isfinite(low) and math.isfinite(high)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def markdown_tables(aggregates: pd.DataFrame, comparisons: pd.DataFrame, metrics: dict[str, tuple[str, ...]],
                    digits: int = 3) -> str:
    """Markdown tables of the evaluation stage's `aggregates` and `comparisons` frames.

    Per protocol, one row per system (reference systems in `BASELINES` order, then the generated ones)
    with "mean [low, high]" of each metric in `metrics[protocol]` ("n/a" where the metric is missing or
    null, "inf" for an infinite mean such as ground truth's PSNR); then one row per (generated system,
    baseline, metric) of the paired comparisons: mean(system - baseline) [low, high] and the winner
    ("system", "opponent", or "none" when the interval contains 0).

    Args:
        aggregates: rows with the `aggregates` schema's columns (system, variant, protocol, metric,
            mean, low, high, higher_is_better).
        comparisons: rows with the `comparisons` schema's columns (system, variant, protocol, opponent,
            metric, diff, low, high, n, winner).
        metrics: protocol -> metric columns, in order.
        digits: decimals of every number.

    Returns:
        The tables, separated by blank lines.
    """
    out: list[str] = []
    arrow = dict(zip(aggregates.metric, aggregates.higher_is_better))
    for protocol, cols in metrics.items():
        agg = aggregates[aggregates.protocol == protocol]
        if agg.empty:
            continue
        labels = []
        for s, v in agg[["system", "variant"]].drop_duplicates().itertuples(index=False):
            labels.append((s, v))
        order = {s: i for i, s in enumerate(BASELINES.get(protocol, ()))}
        labels.sort(key=lambda sv: (order.get(sv[0], len(order)), sv[0], str(sv[1])))
        head = [f"{METRIC_NAMES.get(m, m)} {'↑' if arrow.get(m, True) else '↓'}" for m in cols]
        out += [f"{protocol}:", "", "| system | " + " | ".join(head) + " |", "|---" * (len(cols) + 1) + "|"]
        for s, v in labels:
            name = s if v is None or (isinstance(v, float) and math.isnan(v)) else f"{s}:{v}"
            rows = agg[(agg.system == s) & ((agg.variant == v) if isinstance(v, str) else agg.variant.isna())]
            by_metric = {r.metric: r for r in rows.itertuples()}
            cells = [_cell(float(by_metric[m].mean), float(by_metric[m].low), float(by_metric[m].high), digits)
                     if m in by_metric else "n/a" for m in cols]
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
        comp = comparisons[(comparisons.protocol == protocol) & comparisons.metric.isin(cols)]
        if len(comp):
            out += ["| system - baseline | metric | diff [95% interval] | n | winner |", "|---|---|---|---|---|"]
            comp = comp.assign(_m=comp.metric.map({m: i for i, m in enumerate(cols)}))
            for r in comp.sort_values(["opponent", "_m"], kind="stable").itertuples():
                name = r.system if not isinstance(r.variant, str) else f"{r.system}:{r.variant}"
                out.append(f"| {name} - {r.opponent} | {METRIC_NAMES.get(r.metric, r.metric)} | "
                           f"{_cell(float(r.diff), float(r.low), float(r.high), digits)} | {r.n} | {r.winner} |")
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def null_notes(aggregates: pd.DataFrame, metrics: Sequence[str]) -> list[str]:
    """"metric: reason" for each metric of `metrics` whose aggregate rows are all null and carry a note."""
    out = []
    for m in metrics:
        rows = aggregates[aggregates.metric == m]
        if len(rows) and rows["mean"].isna().all():
            notes = sorted({str(n) for n in rows["note"] if isinstance(n, str) and n})
            if notes:
                out.append(f"{m}: null ({'; '.join(notes)})")
    return out


def plain(v):
    """`json.dumps` default: numpy scalars and arrays as Python values, anything else as its str."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def records(df: pd.DataFrame) -> list[dict]:
    """Rows as strict-JSON dicts: NaN/None -> null, +-inf -> "inf" / "-inf" (as the stage's metrics JSON)."""
    def value(v):
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float):
            return None if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else v
        return v
    return [{k: value(v) for k, v in r.items()} for r in df.to_dict("records")]


def speed(results: list[dict]) -> dict[str, dict[str, float]]:
    """Group -> {"frames", "seconds"} summed over `score_clip_job` results' timings (the stage's speed groups)."""
    acc: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for res in results:
        for g, (n, s) in res["timings"].items():
            acc[g][0] += n
            acc[g][1] += s
    return {g: {"frames": n, "seconds": round(s, 2)} for g, (n, s) in sorted(acc.items())}


def command_line(argv: Sequence[str] | None) -> str:
    """The command a bench was run with, shell-quoted ("python <script> <args>")."""
    import shlex
    import sys

    return "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])


def write_outputs(out: Path, report: dict, text: str) -> None:
    """Write `report` as strict JSON to `out` and `text` (the tables) beside it as `.md`; print the text."""
    import json

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=plain, allow_nan=False) + "\n")
    out.with_suffix(".md").write_text(text)
    print(text)
    print(f"wrote {out} and {out.with_suffix('.md')}")
