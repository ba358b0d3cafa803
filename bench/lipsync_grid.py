"""Real faces: the demo-trained lip-sync generator on the GRID clips, scored as the evaluation stage scores.

    PYTHONPATH=src:. python bench/lipsync_grid.py                     # data/models/{lipsync,judge}, ../shared/data/grid
    PYTHONPATH=src:. python bench/lipsync_grid.py --generator G.pt --judge J.pt --out reports/lipsync_grid.json
    HEADFLOW_SHARED=/path/to/shared PYTHONPATH=src:. python bench/lipsync_grid.py   # a worktree: ../shared is elsewhere

Every clip of `--grid` (.mpg, sorted by name) is one evaluation clip, under the evaluation stage's two
canonical protocols (`headflow.evaluate.baselines.canonical_tasks`): reconstruction (the clip's own
audio; the clip is the ground truth) and dubbing (the audio of the next clip in name order,
`headflow.manifest.generated.dubbing_pairs`; the last takes the first's).

- Generation: `headflow.cli.dub_files`, the code behind `headflow lipsync --video --audio --out`
  (normalisation, face tracking, face crops, `generate_crops`, blending, encoding with the driving audio).
- Ground truth: each clip normalised and tracked exactly as `dub_files` does (`normalize_video` at
  25 fps with its defaults, `process_clip` with params.yaml's `faces` block), so the generated video
  and the real frames share their frames and face geometry; the mel of each driving audio is
  `extract_audio` at 16 kHz + `mel_spectrogram`, as `dub_files` computes it.
- Scoring: the evaluation stage's own job (`headflow.evaluate.stage.score_clip_job`): the baselines of
  `headflow.evaluate.baselines` (reference-frame fill, static first frame, unedited video with the new
  audio), M-LMD from dlib landmarks re-detected on both sides, PSNR / SSIM of the lower half of the
  96x96 face crop, Laplacian variance, LSE-D / LSE-C / offset from the judge (and `lse_c_loss_expert`
  from `--loss-expert` when it exists), with params.yaml's `evaluate` block (sampled frames, offsets,
  bootstrap). Then `aggregate` (bootstrap intervals over clips) and `compare` (paired bootstrap of the
  generator against each baseline), as the stage does.

The generator and the judge were trained on the synthetic demo corpus only: these figures measure how
they transfer to real faces and voices (there is no bar to pass). Six clips give wide intervals.
Writes `--out` (JSON: params, checkpoints, per-clip rows, aggregates, comparisons, timings) and the
same path with `.md` (the tables printed at the end).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from headflow.evaluate.baselines import BASELINES, Task, canonical_tasks
from headflow.evaluate.stage import ClipJob, ClipSpec, _row, score_clip_job
from headflow.manifest.generated import scored_range

FAMILY = "lipsync"
ROOT = Path(__file__).resolve().parents[1]
# The shared test material, found as tests/conftest.py finds it: HEADFLOW_SHARED, else ../shared.
SHARED = Path(os.environ.get("HEADFLOW_SHARED") or ROOT.parent / "shared")
TABLE_METRICS: dict[str, tuple[str, ...]] = {
    "reconstruction": ("m_lmd", "psnr_masked", "ssim_masked", "lap_var", "lse_c", "lse_d", "abs_offset"),
    "dubbing": ("lse_c", "lse_d", "abs_offset", "lse_c_loss_expert", "lap_var"),
}
"""The columns of the printed tables per protocol (the JSON holds every metric the stage computes)."""
METRIC_NAMES = {"m_lmd": "M-LMD px", "psnr_masked": "PSNR lower dB", "ssim_masked": "SSIM lower",
                "lap_var": "vL", "lse_c": "LSE-C", "lse_d": "LSE-D", "abs_offset": "abs offset",
                "lse_c_loss_expert": "LSE-C loss expert"}


def clip_items(tasks: Sequence[Task], outputs: dict[tuple[str, str], dict]) -> dict[str, list[tuple[Task, str, dict | None]]]:
    """What the evaluation stage scores per real clip: each task's baselines, then the generator's output.

    Args:
        tasks: canonical tasks (`canonical_tasks`).
        outputs: (protocol, source clip) -> the generator's row (a generated.parquet-style dict with
            `family`, `variant`, `seed`, `output_path`, `output_kind`, `fps`, `frame_start`, `frame_end`).
            A task without an output gets no generator item (the caller records its failure).

    Returns:
        frame clip -> [(task, system, row or None for a reference system)], in task order, the items of
        `headflow.evaluate.stage.ClipJob` (systems of `BASELINES[protocol]` first).

    Raises:
        ValueError: an output whose protocol has no canonical baselines.
    """
    items: dict[str, list[tuple[Task, str, dict | None]]] = {}
    for t in tasks:
        if t.protocol not in BASELINES:
            raise ValueError(f"task {t.clip_id}: protocol {t.protocol!r} has no baselines; expected one of "
                             f"{sorted(BASELINES)}")
        its = items.setdefault(t.frame_clip, [])
        its += [(t, system, None) for system in BASELINES[t.protocol]]
        row = outputs.get((t.protocol, t.source_clip))
        if row is not None:
            its.append((t, row["family"], row))
    return items


def _cell(mean: float, low: float, high: float, digits: int) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    if math.isinf(mean):
        return "inf" if mean > 0 else "-inf"
    if low is None or not (math.isfinite(low) and math.isfinite(high)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def markdown_tables(aggregates: pd.DataFrame, comparisons: pd.DataFrame,
                    metrics: dict[str, tuple[str, ...]] = TABLE_METRICS, digits: int = 3) -> str:
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


def _prepare_real(video: Path, work: Path, faces_params) -> dict:
    """Canonical video, face track and the driving-audio mel of one clip, exactly as `dub_files` makes them."""
    from headflow.audio.mel import mel_spectrogram
    from headflow.faces.faces import process_clip
    from headflow.media.normalize import extract_audio, normalize_video, read_audio, read_frames

    mp4, wav, mel_path = work / f"{video.stem}.mp4", work / f"{video.stem}.wav", work / f"{video.stem}.mel.npy"
    normalize_video(video, mp4, fps=25)
    extract_audio(video, wav, sample_rate=16000)
    faces = process_clip(mp4, faces_params, crop_path=None)
    n_frames = min(sum(1 for _ in read_frames(mp4)), len(faces.valid))
    audio, _ = read_audio(wav)
    mel = mel_spectrogram(audio)
    np.save(mel_path, mel)
    return {"video_path": str(mp4), "wav_path": str(wav), "mel_path": str(mel_path), "n_frames": n_frames,
            "n_mel": len(mel), "boxes": faces.boxes[:n_frames].astype(np.float64), "valid": faces.valid[:n_frames],
            "m256": np.asarray(faces.transforms[:n_frames], np.float64), "faces_valid": int(faces.valid.sum())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generator", default="data/models/lipsync/generator.pt", help="an exported lipsync generator")
    ap.add_argument("--judge", default="data/models/judge/best.pt", help="the sync judge (train_judge)")
    ap.add_argument("--loss-expert", default="data/models/expert/last.pt",
                    help="the expert the generator trained against (lse_c_loss_expert; null when absent)")
    ap.add_argument("--grid", default=str(SHARED / "data" / "grid"), help="folder of GRID .mpg clips")
    ap.add_argument("--out", default="reports/lipsync_grid.json", help="the JSON; the markdown tables go beside it (.md)")
    ap.add_argument("--params", default="params.yaml", help="params file (its faces and evaluate blocks)")
    ap.add_argument("--variant", default="default", help="the generator's variant label in the tables")
    ap.add_argument("--workers", type=int, default=1, help="scoring processes")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--work", help="keep the canonical clips and the dubbed videos here (default: a temporary folder)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import torch
    from tqdm import tqdm

    from headflow.cli import dub_files
    from headflow.evaluate.aggregate import aggregate, compare
    from headflow.evaluate.params import EvaluateParams
    from headflow.faces.params import FacesParams
    from headflow.generators.lipsync.data import ReferenceError
    from headflow.manifest import file_sha256
    from headflow.manifest.quarantine import Rejected
    from headflow.manifest.schemas import PER_CLIP
    from headflow.media import MediaError
    from headflow.params import load as load_block
    from headflow.parallel import map_jobs

    t_start = time.perf_counter()
    torch.set_num_threads(args.threads)
    for name, path in (("--generator", args.generator), ("--judge", args.judge)):
        if not Path(path).is_file():
            raise SystemExit(f"{name} {path}: no such checkpoint (train it with `dvc repro`, or pass the path of one)")
    videos = sorted(Path(args.grid).glob("*.mpg"))
    if len(videos) < 2:
        raise SystemExit(f"--grid {args.grid}: found {len(videos)} .mpg clip(s); dubbing needs at least two "
                         "(lay the GRID clips there or set HEADFLOW_SHARED)")
    have_params = Path(args.params).exists()
    params = load_block("evaluate", args.params) if have_params else EvaluateParams()
    faces_params = load_block("faces", args.params) if have_params else FacesParams()
    loss_expert = args.loss_expert if Path(args.loss_expert).is_file() else None
    sha = file_sha256(Path(args.generator))

    tmp = None if args.work else tempfile.TemporaryDirectory(prefix="headflow-lipsync-grid-")
    work = Path(args.work or tmp.name)
    (work / "videos").mkdir(parents=True, exist_ok=True)
    by_name = {v.stem: v for v in videos}
    real = {}
    for v in tqdm(videos, desc="real clips", unit="clip"):
        real[v.stem] = _prepare_real(v, work, faces_params)
    tasks, skipped = canonical_tasks({c: r["n_frames"] for c, r in real.items()},
                                     {c: r["n_mel"] for c, r in real.items()}, params.protocols, params.frame_start)

    outputs, failed = {}, []
    gen_frames, gen_s = 0, 0.0
    for t in tqdm(tasks, desc="lipsync", unit="output"):
        out = work / "videos" / f"{t.source_clip}.{t.protocol}.mp4"
        row = {"clip_id": f"{t.source_clip}.{t.protocol}", "family": FAMILY, "variant": args.variant, "seed": 0,
               "protocol": t.protocol, "source_clip": t.source_clip, "audio_clip": t.audio_clip,
               "output_kind": "video", "output_path": str(out), "fps": 25.0, "frame_start": 0,
               "checkpoint_sha256": sha}
        try:
            info = dub_files(str(by_name[t.source_clip]), str(by_name[t.audio_clip]), str(out), args.generator,
                             args.params, progress=False)
        except (Rejected, ReferenceError, MediaError, ValueError) as err:   # a failure of the system, scored as one
            code = getattr(err, "reason_code", "generation_error")
            failed.append(_row(t, FAMILY, row, None, "failed", code, str(err)))
            continue
        row["frame_end"] = info["frames"]
        outputs[(t.protocol, t.source_clip)] = row
        gen_frames += info["frames"]
        gen_s += info["seconds"]

    items = clip_items(tasks, outputs)
    checkpoints = (str(Path(args.judge).resolve()), str(Path(loss_expert).resolve()) if loss_expert else "")
    jobs = []
    for c, its in items.items():
        r = real[c]
        n_decode = max(t.frame_end for t, _, _ in its)
        own = scored_range(r["n_frames"], r["n_mel"], params.frame_start)   # the stage's fixed-sample range
        spec = ClipSpec(c, r["video_path"], r["boxes"], r["valid"], r["m256"], n_decode,
                        own if own[1] > own[0] else None)
        audio = sorted({t.audio_clip for t, _, _ in its})
        jobs.append(ClipJob(spec, its, {}, {a: real[a]["mel_path"] for a in audio},
                            {a: real[a]["wav_path"] for a in audio}, params, "/", False, checkpoints))
    t_score = time.perf_counter()
    results = map_jobs(score_clip_job, jobs, args.workers, desc="score", progress=True)
    score_s = time.perf_counter() - t_score

    rows = [r for res in results for r in res["rows"]] + failed
    per_clip = pd.DataFrame(rows, columns=PER_CLIP.names).sort_values(
        ["protocol", "system", "variant", "seed", "clip_id"], ignore_index=True, na_position="first")
    notes = {}
    if loss_expert is None:
        notes["lse_c_loss_expert"] = f"loss expert {args.loss_expert} not found"
    aggregates = aggregate(per_clip, params.n_boot, params.ci, params.seed, notes)
    comparisons = compare(per_clip, BASELINES, params.n_boot, params.ci, params.seed)
    wall = time.perf_counter() - t_start

    timings: dict[str, list[float]] = {}
    for res in results:
        for g, (n, s) in res["timings"].items():
            acc = timings.setdefault(g, [0.0, 0.0])
            acc[0] += n
            acc[1] += s
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    tables = markdown_tables(aggregates, comparisons)
    header = (f"GRID lip-sync transfer: {len(real)} clips ({', '.join(real)}), generator {Path(args.generator).name} "
              f"(sha256 {sha[:12]}), judge {Path(args.judge).name}; {len(outputs)} outputs, {len(failed)} failed; "
              f"generation {gen_frames / gen_s if gen_s else float('nan'):.1f} frames/s end to end; wall {wall:.0f} s. "
              f"Means over clips [{params.ci:.0%} bootstrap interval].\n\n")
    report = {
        "command": command, "wall_seconds": round(wall, 1), "scoring_seconds": round(score_s, 1),
        "generation": {"outputs": len(outputs), "failed": len(failed), "frames": gen_frames,
                       "frames_per_s": round(gen_frames / gen_s, 2) if gen_s else None},
        "clips": {c: {"frames": r["n_frames"], "frames_with_face": r["faces_valid"], "mel_frames": r["n_mel"]}
                  for c, r in real.items()},
        "skipped_tasks": [list(s) for s in skipped],
        "checkpoints": {"generator": {"path": args.generator, "sha256": sha},
                        "judge": {"path": args.judge, "sha256": file_sha256(Path(args.judge))},
                        "loss_expert": {"path": loss_expert, "sha256": file_sha256(Path(loss_expert)) if loss_expert else None}},
        "evaluate_params": asdict(params),
        "speed": {g: {"frames": n, "seconds": round(s, 2)} for g, (n, s) in sorted(timings.items())},
        "aggregates": _records(aggregates), "comparisons": _records(comparisons), "per_clip": _records(per_clip),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=_plain, allow_nan=False) + "\n")
    out.with_suffix(".md").write_text(header + tables)
    print(header + tables)
    print(f"wrote {out} and {out.with_suffix('.md')}")
    if tmp is not None:
        tmp.cleanup()
    return 0


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def _records(df: pd.DataFrame) -> list[dict]:
    """Rows as strict-JSON dicts: NaN/None -> null, +-inf -> "inf" / "-inf" (as the stage's metrics JSON)."""
    def value(v):
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float):
            return None if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else v
        return v
    return [{k: value(v) for k, v in r.items()} for r in df.to_dict("records")]


if __name__ == "__main__":
    sys.exit(main())
