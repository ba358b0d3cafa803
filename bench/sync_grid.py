"""Offset recovery and LSE-C of shifted vs unshifted audio on the real GRID clips (../shared/data/grid).

    PYTHONPATH=src:. python bench/sync_grid.py                       # the demo's expert (dvc repro train_expert)
    PYTHONPATH=src:. python bench/sync_grid.py --expert path/to/last.pt --grid ../shared/data/grid
    PYTHONPATH=src:. python bench/sync_grid.py --expert baseline.pt candidate.pt   # both on the same clips, compared

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
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from headflow.metrics.lse import shift_audio
from headflow.metrics.offset_recovery import (SHIFTS, envelope_offset, format_tables, mel_loudness, offset_recovery,
                                              prepare_clip_and_aperture, recovery_tables, summarise)
from headflow.sync.train import load_expert


# The shared test material, found as tests/conftest.py finds it: HEADFLOW_SHARED, else ../shared beside the
# checkout (not beside the current folder).
SHARED = Path(os.environ.get("HEADFLOW_SHARED") or Path(__file__).resolve().parents[2] / "shared")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", default=str(SHARED / "data" / "grid"), help="folder of GRID .mpg clips")
    ap.add_argument("--expert", nargs="+", default=["data/models/expert/last.pt"],
                    help="train_expert checkpoint(s); several are scored on the same prepared clips in one run, "
                         "the first as the baseline of the comparison table")
    ap.add_argument("--shifts", type=int, nargs="+", default=list(SHIFTS),
                    help="audio shifts in frames, > 0 delays the audio (default %(default)s)")
    ap.add_argument("--max-offset", type=int, default=15,
                    help="offsets scanned: +- this many frames (default %(default)s)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default %(default)s)")
    ap.add_argument("--tolerance", type=int, default=1, help="frames: a clip as recorded is in sync when |offset| <= this")
    ap.add_argument("--envelope-window", type=int, default=4,
                    help="frames either side of the applied shift the expert-free envelope estimate scans")
    ap.add_argument("--json", help="also write the overall figures here (one record per expert)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    videos = sorted(Path(args.grid).glob("*.mpg"))
    if not videos:
        raise SystemExit(f"no .mpg clips in {args.grid} (pass --grid or set HEADFLOW_SHARED)")
    with tempfile.TemporaryDirectory() as tmp:
        prepared = [prepare_clip_and_aperture(v, Path(tmp)) for v in videos]
    results = []
    for expert in args.expert:
        print(f"== expert {expert}")
        results.append(score_expert(load_expert(Path(expert)), prepared, args))
        results[-1]["expert"] = expert
    if len(results) > 1:
        print(format_comparison(results))
    print("note: the expert was trained on the synthetic demo corpus only; GRID figures measure transfer to real faces.")
    if args.json:
        Path(args.json).write_text(json.dumps(results if len(results) > 1 else results[0], indent=2, sort_keys=True) + "\n")


def score_expert(model, prepared: list, args) -> dict:
    """One expert on the prepared clips: per-clip lines, the recovery tables and the expert-free check."""
    tables = []
    for clip, aperture in prepared:
        rows = offset_recovery(model, clip, args.shifts, args.max_offset)
        # the expert-free estimate on the same copies: mouth aperture vs loudness envelope
        env = {s: envelope_offset(aperture, mel_loudness((shift_audio(clip, s) if s else clip).mel,
                                                         len(clip.mouths), clip.fps),
                                  args.envelope_window, centre=s)[0]
               for s in [0, *args.shifts]}
        rows["envelope_offset"] = rows.applied_shift.map(env)
        tables.append(rows)
        own = rows.recovered_subframe - rows.applied_shift      # the clip's own offset as each copy reads it
        got = "  ".join(f"{r.applied_shift:+d}->{r.recovered_offset:+d}" for r in rows.itertuples())
        print(f"{clip.clip_id}: {len(clip.mouths)} frames ({int(clip.valid.sum())} with a face)  applied->recovered "
              f"{got}  LSE-C {rows.lse_c.iloc[0]:.3f} unshifted / {rows.lse_c.iloc[1:].mean():.3f} shifted  "
              f"LSE-D {rows.lse_d.iloc[0]:.3f} / {rows.lse_d.iloc[1:].mean():.3f}  "
              f"distance at offset 0 {rows.dist_at_zero.iloc[0]:.3f} / {rows.dist_at_zero.iloc[1:].mean():.3f}  "
              f"own sub-frame offset {own.mean():+.2f} sd {own.std(ddof=1):.3f} over the {len(rows)} copies")
    rows = pd.concat(tables, ignore_index=True)
    overall = summarise(rows)
    overall["per_clip"] = clip_consistency(rows)
    overall["tables"] = recovery_tables(rows, args.tolerance)
    print(json.dumps({k: v for k, v in overall.items() if k != "tables"}, indent=2))
    print(format_tables(overall["tables"]))
    overall["independent"] = independent_check(rows)
    print(format_independent(overall["independent"]))
    return overall


def format_comparison(results: list[dict]) -> str:
    """One line per expert (the first is the baseline): relative, exact and sub-frame relative recovery with
    95% Wilson intervals, and the correlation of its clip offsets with the expert-free estimate."""
    from headflow.metrics.offset_recovery import Proportion

    def p(t: dict, col: str) -> str:
        d = t[col]["overall"] if col in t else None
        return str(Proportion(d["k"], d["n"])) if d else "-"

    lines = ["Experts on the same clips (first = baseline):",
             f"  {'expert':<48} {'relative':<28} {'exact':<28} {'relative (sub-frame)':<28} r(envelope)"]
    for r in results:
        t = r["tables"]
        lines.append(f"  {r['expert'][-48:]:<48} {p(t, 'relative'):<28} {p(t, 'exact'):<28} "
                     f"{p(t, 'relative_subframe'):<28} {r['independent']['pearson_r']}")
    if not all("per_clip" in r for r in results):
        return "\n".join(lines)
    lines.append("Per clip (continuous; higher LSE-C = more confident, lower sd = the shifted copies agree on the "
                 "clip's own sub-frame offset): LSE-C mean over its copies / own-offset sd in frames")
    clips = list(results[0]["per_clip"])
    lines.append(f"  {'clip':<10} " + " ".join(f"{r['expert'][-30:]:>30}" for r in results))
    for c in [*clips, "mean"]:
        cells = []
        for r in results:
            pc = r["per_clip"]
            lse = np.mean([pc[k]["lse_c_mean"] for k in clips]) if c == "mean" else pc[c]["lse_c_mean"]
            sd = np.mean([pc[k]["own_offset_sd"] for k in clips]) if c == "mean" else pc[c]["own_offset_sd"]
            cells.append(f"{lse:>7.3f} / {sd:.3f}")
        lines.append(f"  {c:<10} " + " ".join(f"{x:>30}" for x in cells))
    base = results[0]["per_clip"]
    for r in results[1:]:
        up = sum(r["per_clip"][c]["lse_c_mean"] > base[c]["lse_c_mean"] for c in clips)
        tighter = sum(r["per_clip"][c]["own_offset_sd"] < base[c]["own_offset_sd"] for c in clips)
        lines.append(f"  {r['expert'][-48:]} vs baseline: LSE-C higher on {up}/{len(clips)} clips, "
                     f"own-offset sd lower on {tighter}/{len(clips)}")
    return "\n".join(lines)


def clip_consistency(rows: pd.DataFrame) -> dict:
    """Per clip: LSE-C at the recovered offset (unshifted, and the mean over all its copies) and how well
    the copies agree on the clip's own offset: the sample sd over copies of (sub-frame recovered offset
    minus applied shift), in frames (0 = every shifted copy reads the same own offset)."""
    out = {}
    for clip_id, g in rows.groupby("clip_id", sort=True):
        own = g.recovered_subframe - g.applied_shift
        out[clip_id] = {"lse_c_unshifted": round(float(g[g.applied_shift == 0].lse_c.mean()), 4),
                        "lse_c_mean": round(float(g.lse_c.mean()), 4),
                        "own_offset_mean": round(float(own.mean()), 3),
                        "own_offset_sd": round(float(own.std(ddof=1)), 4)}
    return out


def independent_check(rows: pd.DataFrame) -> dict:
    """The clips' own offsets by the expert (sub-frame) next to the expert-free envelope estimate.

    Both are read relative to their median over the clips (the envelope estimate has no exact zero: see
    `envelope_offset`), and the envelope estimate's own relative recovery of the applied shifts says
    whether it can be trusted on this material.
    """
    base = rows[rows.applied_shift == 0].set_index("clip_id")
    e0 = base.envelope_offset
    shifted = rows[rows.applied_shift != 0]
    env_rel = (shifted.envelope_offset - shifted.clip_id.map(e0)).round() == shifted.applied_shift
    x, y = base.recovered_subframe - base.recovered_subframe.median(), e0 - e0.median()
    return {"envelope_relative_recovery": {"k": int(env_rel.sum()), "n": int(len(env_rel))},
            "pearson_r": round(float(np.corrcoef(x, y)[0, 1]), 3) if len(x) > 2 else None,
            "clips": [{"clip_id": c, "expert_subframe": round(float(base.recovered_subframe[c]), 3),
                       "envelope": round(float(e0[c]), 3), "expert_rel": round(float(x[c]), 3),
                       "envelope_rel": round(float(y[c]), 3)} for c in base.index]}


def format_independent(ind: dict) -> str:
    """`independent_check` as text."""
    r = ind["envelope_relative_recovery"]
    lines = ["Clips' own offsets, expert vs an expert-free estimate (mouth aperture vs loudness envelope, "
             "`envelope_offset`), each also minus its median over the clips:",
             f"  {'clip':<12} {'expert':>7} {'envelope':>9} {'expert-med':>11} {'envelope-med':>13}"]
    lines += [f"  {c['clip_id']:<12} {c['expert_subframe']:>+7.2f} {c['envelope']:>+9.2f} {c['expert_rel']:>+11.2f} "
              f"{c['envelope_rel']:>+13.2f}" for c in ind["clips"]]
    lines.append(f"  envelope estimate's relative recovery of the applied shifts: {r['k']}/{r['n']}; "
                 f"Pearson r of the two (minus medians) over clips: {ind['pearson_r']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
