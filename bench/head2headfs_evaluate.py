"""The evaluate stage on the head2headfs manifest alone: reenactment rows, with fid_face (issue 17).

    PYTHONPATH=src:. python bench/head2headfs_evaluate.py --min-face-fraction 0.0 --out /tmp/h2h_eval/noface
    PYTHONPATH=src:. python bench/head2headfs_evaluate.py --out /tmp/h2h_eval/default      # the default 0.5

`headflow.evaluate.stage.run_stage` with params.yaml's `evaluate` block but the first `--max-clips` test
clips, the reconstruction references only (no dubbing) and `--min-face-fraction`, over
`data/interim/generate_head2headfs/generated.parquet` (run from a project whose data/ holds a demo run's
outputs; symlinked folders are only read). Every output of the stage (tables, metrics, plots, report) is
written under `--out`, never into data/. Prints the wall time and the `fid_face` metrics.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path


def main() -> None:
    from headflow import params as P
    from headflow.evaluate.stage import run_stage
    from headflow.stage import setup_logging

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--min-face-fraction", type=float, default=0.5,
                    help="evaluate.min_face_fraction (default %(default)s)")
    ap.add_argument("--max-clips", type=int, default=4, help="evaluate.max_clips (default %(default)s)")
    ap.add_argument("--out", type=Path, required=True, help="folder for every output of the run")
    a = ap.parse_args()
    setup_logging()
    p = dataclasses.replace(P.load("evaluate"), max_clips=a.max_clips, protocols=["reconstruction"],
                            min_face_fraction=a.min_face_fraction)
    out = a.out.resolve()
    t = time.perf_counter()
    m = run_stage(p, progress=False, generated_paths=[Path("data/interim/generate_head2headfs/generated.parquet")],
                  out_dir=out / "evaluate", metrics_path=out / "metrics.json", plot_path=out / "plots.json",
                  report_path=out / "report.html")
    print("wall", round(time.perf_counter() - t, 1), "s")
    print(json.dumps({k: v for k, v in m.items() if "fid_face" in k or "/" not in k}, indent=1))


if __name__ == "__main__":
    main()
