"""Offset recovery and LSE-C of shifted vs unshifted audio on the real GRID clips (../shared/data/grid).

    PYTHONPATH=src:. python bench/sync_grid.py                       # the demo's expert (dvc repro train_expert)
    PYTHONPATH=src:. python bench/sync_grid.py --expert path/to/last.pt --grid ../shared/data/grid

Each clip is normalised, face-tracked, cropped and turned into a mel with the project's own code
(`headflow.metrics.offset_recovery.prepare_clip`), its audio is shifted by -10, -5, +5, +10 frames and scored
(LSE-D, LSE-C, offset over +-15 frames, `headflow.metrics.lse`). Two tables follow, each fraction with
a 95% Wilson interval: relative recovery (the offset moves by exactly the shift from the clip's own
offset) next to exact recovery (the offset equals the shift), and the clips' own offsets as recorded
with their LSE-C (`headflow.metrics.offset_recovery.recovery_tables`). The expert of `train_expert` is
trained on the synthetic demo corpus only: these figures measure how it transfers to real faces and
voices, not how a GRID-trained expert would do.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

import pandas as pd
import torch

from headflow.metrics.offset_recovery import (SHIFTS, format_tables, offset_recovery, prepare_clip,
                                              recovery_tables, summarise)
from headflow.sync.train import load_expert


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", default="../shared/data/grid", help="folder of GRID .mpg clips")
    ap.add_argument("--expert", default="data/models/expert/last.pt", help="a train_expert checkpoint")
    ap.add_argument("--shifts", type=int, nargs="+", default=list(SHIFTS))
    ap.add_argument("--max-offset", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tolerance", type=int, default=1, help="frames: a clip as recorded is in sync when |offset| <= this")
    ap.add_argument("--json", help="also write the overall figures here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    videos = sorted(Path(args.grid).glob("*.mpg"))
    if not videos:
        raise SystemExit(f"no .mpg clips in {args.grid}")
    model = load_expert(Path(args.expert))
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        for v in videos:
            clip = prepare_clip(v, Path(tmp))
            rows = offset_recovery(model, clip, args.shifts, args.max_offset)
            tables.append(rows)
            got = "  ".join(f"{r.applied_shift:+d}->{r.recovered_offset:+d}" for r in rows.itertuples())
            print(f"{v.stem}: {len(clip.mouths)} frames ({int(clip.valid.sum())} with a face)  applied->recovered "
                  f"{got}  LSE-C {rows.lse_c.iloc[0]:.3f} unshifted / {rows.lse_c.iloc[1:].mean():.3f} shifted  "
                  f"LSE-D {rows.lse_d.iloc[0]:.3f} / {rows.lse_d.iloc[1:].mean():.3f}  "
                  f"distance at offset 0 {rows.dist_at_zero.iloc[0]:.3f} / {rows.dist_at_zero.iloc[1:].mean():.3f}")
    rows = pd.concat(tables, ignore_index=True)
    overall = summarise(rows)
    overall["expert"] = args.expert
    overall["tables"] = recovery_tables(rows, args.tolerance)
    print(json.dumps({k: v for k, v in overall.items() if k != "tables"}, indent=2))
    print(format_tables(overall["tables"]))
    print("note: the expert was trained on the synthetic demo corpus only; GRID figures measure transfer to real faces.")
    if args.json:
        Path(args.json).write_text(json.dumps(overall, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
