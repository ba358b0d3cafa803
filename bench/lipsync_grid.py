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
same path with `.md` (the tables printed at the end). Preparation, jobs, summary and tables are
`headflow.evaluate.external`'s, shared with `bench/discohead_grid.py`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from headflow.evaluate import external
from headflow.evaluate.baselines import canonical_tasks
from headflow.evaluate.external import clip_items, records as _records  # noqa: F401 - tests import them here
from headflow.evaluate.stage import _row, score_clip_job

FAMILY = "lipsync"
ROOT = Path(__file__).resolve().parents[1]
# The shared test material, found as tests/conftest.py finds it: HEADFLOW_SHARED, else ../shared.
SHARED = Path(os.environ.get("HEADFLOW_SHARED") or ROOT.parent / "shared")
TABLE_METRICS: dict[str, tuple[str, ...]] = {
    "reconstruction": ("m_lmd", "psnr_masked", "ssim_masked", "lap_var", "lse_c", "lse_d", "abs_offset"),
    "dubbing": ("lse_c", "lse_d", "abs_offset", "lse_c_loss_expert", "lap_var"),
}
"""The columns of the printed tables per protocol (the JSON holds every metric the stage computes)."""


def markdown_tables(aggregates: pd.DataFrame, comparisons: pd.DataFrame,
                    metrics: dict[str, tuple[str, ...]] = TABLE_METRICS, digits: int = 3) -> str:
    """`headflow.evaluate.external.markdown_tables` with this bench's columns by default."""
    return external.markdown_tables(aggregates, comparisons, metrics, digits)


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
    from headflow.evaluate.params import EvaluateParams
    from headflow.faces.params import FacesParams
    from headflow.generators.lipsync.data import ReferenceError
    from headflow.manifest import file_sha256
    from headflow.manifest.quarantine import Rejected
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
        real[v.stem] = external.prepare_clip(v, work, faces_params)
    tasks, skipped = canonical_tasks({c: r.n_frames for c, r in real.items()},
                                     {c: r.n_mel for c, r in real.items()}, params.protocols, params.frame_start)

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
    jobs = external.clip_jobs(items, real, params, checkpoints)
    t_score = time.perf_counter()
    results = map_jobs(score_clip_job, jobs, args.workers, desc="score", progress=True)
    score_s = time.perf_counter() - t_score

    notes = {}
    if loss_expert is None:
        notes["lse_c_loss_expert"] = f"loss expert {args.loss_expert} not found"
    per_clip, aggregates, comparisons = external.summarise(results, failed, params, notes)
    wall = time.perf_counter() - t_start

    command = external.command_line(argv)
    tables = markdown_tables(aggregates, comparisons)
    header = (f"GRID lip-sync transfer: {len(real)} clips ({', '.join(real)}), generator {Path(args.generator).name} "
              f"(sha256 {sha[:12]}), judge {Path(args.judge).name}; {len(outputs)} outputs, {len(failed)} failed; "
              f"generation {gen_frames / gen_s if gen_s else float('nan'):.1f} frames/s end to end; wall {wall:.0f} s. "
              f"Means over clips [{params.ci:.0%} bootstrap interval].\n\n")
    report = {
        "command": command, "wall_seconds": round(wall, 1), "scoring_seconds": round(score_s, 1),
        "generation": {"outputs": len(outputs), "failed": len(failed), "frames": gen_frames,
                       "frames_per_s": round(gen_frames / gen_s, 2) if gen_s else None},
        "clips": {c: {"frames": r.n_frames, "frames_with_face": r.faces_valid, "mel_frames": r.n_mel}
                  for c, r in real.items()},
        "skipped_tasks": [list(s) for s in skipped],
        "checkpoints": {"generator": {"path": args.generator, "sha256": sha},
                        "judge": {"path": args.judge, "sha256": file_sha256(Path(args.judge))},
                        "loss_expert": {"path": loss_expert, "sha256": file_sha256(Path(loss_expert)) if loss_expert else None}},
        "evaluate_params": asdict(params),
        "speed": external.speed(results),
        "aggregates": _records(aggregates), "comparisons": _records(comparisons), "per_clip": _records(per_clip),
    }
    external.write_outputs(Path(args.out), report, header + tables)
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
