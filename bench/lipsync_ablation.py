"""The lip-sync generator's table 4.1 ablations on the demo, several seeds each, scored by the evaluation stage.

    python bench/lipsync_ablation.py --seeds 0 1 2 --jobs 2        # after `make demo` (its data/)

Each row of `ROWS` is a set of `train_lipsync` overrides on the demo configuration (params.yaml), the
`dvc exp run -S` variants of docs/families/lipsync.md written out: KMeans references (the paper's method, the base
row), a random single reference, no reference augmentation, no mask head, no GAN stage. Every (row,
seed) trains with the stage's own code into `data/models/ablation/<row>_s<seed>/`, generates the
evaluation clips under `generate_lipsync.variant = <row>` and that seed, and all of them go into one
`generated.parquet` that the evaluate stage scores in one run with the baselines: it averages each
variant's seeds per clip before the paired bootstrap (`headflow.evaluate.aggregate`), so each row's
interval covers seed and clip variation together. The per-seed figures stay in per_clip.parquet.

Writes `data/interim/generate_lipsync/generated.parquet` (the concatenation; the demo's own
generate_lipsync outputs are replaced: re-run `dvc repro generate_lipsync` after), the evaluate
stage's outputs, and `reports/bench/lipsync_ablation.json` + `.md` (per row and metric: the mean over
clips of the seed-averaged value and its interval, and the paired comparison with each baseline).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS: dict[str, dict] = {
    "kmeans": {},                                                      # the paper's method (the base row)
    "random1": {"data.reference_sampling": "random", "data.n_references": 1},
    "no_augment": {"data.reference_augment": False},
    "no_mask_head": {"model.mask_head": False},
    "no_gan": {"stage2_epochs": 0},
}
METRICS = ("m_lmd", "psnr_masked", "ssim_masked", "lse_c", "lse_d")



def train_and_generate(row: str, seed: int) -> dict:
    """One (row, seed): train with the stage's code, then generate the evaluation clips. Runs in a worker."""
    sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
    import logging

    from headflow import params as P
    from headflow.config import replace_dotted
    from headflow.generators.lipsync import generate, train

    logging.basicConfig(level=logging.WARNING)
    tag = f"{row}_s{seed}"
    p = P.load("train_lipsync")
    for k, v in {**ROWS[row], "loop.seed": seed, "threads": 1}.items():
        p = replace_dotted(p, k, v)
    p.validate()
    model_dir = ROOT / "data/models/ablation" / tag
    t0 = time.perf_counter()
    train.run_stage(p, progress=False, out_dir=ROOT / "data/interim/ablation" / tag / "train", model_dir=model_dir,
                    metrics_path=ROOT / "data/interim/ablation" / tag / "train/metrics.json",
                    plot_path=ROOT / "data/interim/ablation" / tag / "train/history.png")
    t_train = time.perf_counter() - t0
    g = P.load("generate_lipsync")
    g = dataclasses.replace(g, checkpoint=str(model_dir / "generator.pt"), variant=row, seed=seed, threads=1)
    out = ROOT / "data/interim/ablation" / tag / "generate"
    t0 = time.perf_counter()
    generate.run_stage(g, progress=False, out_dir=out, metrics_path=out / "metrics.json")
    return {"row": row, "seed": seed, "train_s": t_train, "generate_s": time.perf_counter() - t0,
            "generated": str(out / "generated.parquet")}


def summarise(eval_dir: Path, runs: list[dict], out: Path) -> None:
    import pandas as pd

    agg = pd.read_parquet(eval_dir / "aggregates.parquet")
    comp = pd.read_parquet(eval_dir / "comparisons.parquet")
    rows, lines = [], ["| row | protocol | metric | mean [95% CI] | vs static frame | vs reference fill | vs unedited |",
                       "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in ROWS:
        for protocol, metrics in (("reconstruction", ("m_lmd", "psnr_masked", "ssim_masked")),
                                  ("dubbing", ("lse_c", "lse_d"))):
            for m in metrics:
                a = agg[(agg.system == "lipsync") & (agg.variant == row) & (agg.protocol == protocol) & (agg.metric == m)]
                if a.empty:
                    continue
                a = a.iloc[0]
                cells = []
                for opp in ("baseline_static_frame", "baseline_reference_fill", "baseline_unedited"):
                    c = comp[(comp.system == "lipsync") & (comp.variant == row) & (comp.protocol == protocol)
                             & (comp.metric == m) & (comp.opponent == opp)]
                    cells.append("" if c.empty else
                                 f"{c.iloc[0]['diff']:+.3f} [{c.iloc[0].low:+.3f}, {c.iloc[0].high:+.3f}] {c.iloc[0].winner}")
                rows.append({"row": row, "protocol": protocol, "metric": m, "mean": float(a["mean"]),
                             "low": float(a.low), "high": float(a.high), "n": int(a.n)})
                lines.append(f"| {row} | {protocol} | {m} | {a['mean']:.3f} [{a.low:.3f}, {a.high:.3f}] | "
                             + " | ".join(cells) + " |")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"rows": rows, "runs": runs}, indent=2))
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                    help="train_lipsync loop.seed values (also generate_lipsync.seed); every row is trained and "
                         "generated once per seed, and the evaluation averages each row's seeds per clip "
                         "(default %(default)s)")
    ap.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS), metavar="ROW",
                    help="ablation rows to run, names of ROWS: %(choices)s; each is a set of train_lipsync "
                         "overrides (kmeans: none, the base row) (default: all)")
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel (each one thread)")
    args = ap.parse_args(argv)
    sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
    import pandas as pd

    from headflow.manifest import write_manifest

    t0 = time.perf_counter()
    jobs = [(r, s) for r in args.rows for s in args.seeds]
    with ProcessPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(train_and_generate, *zip(*jobs)))
    for r in runs:
        print(f"{r['row']:>13} seed {r['seed']}: train {r['train_s']:.0f} s, generate {r['generate_s']:.0f} s", flush=True)
    g = pd.concat([pd.read_parquet(r["generated"]) for r in runs], ignore_index=True)
    write_manifest(g, ROOT / "data/interim/generate_lipsync/generated.parquet", kind="generated")
    t1 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "stages.evaluate"], cwd=ROOT, check=True)
    print(f"train + generate {t1 - t0:.0f} s ({len(jobs)} runs, {args.jobs} at a time), evaluate "
          f"{time.perf_counter() - t1:.0f} s")
    summarise(ROOT / "data/interim/evaluate", runs, ROOT / "reports/bench/lipsync_ablation")


if __name__ == "__main__":
    main()
