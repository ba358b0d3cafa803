"""Offset reliability of the lip-sync expert against clip length, on real GRID clips cut short.

    PYTHONPATH=src:. nice -n 10 python bench/sync_length.py --expert data/models/expert/last.pt \\
        --grid ../shared/data/grid --json reports/bench/sync_length.json

Each GRID clip (3 s) goes through the pipeline's own steps once (`offset_recovery.prepare_clip`:
canonical media, face track, face96 mouth crops, Wav2Lip mel). Then, for every length in `--lengths`
(seconds), windows of that many frames are cut from it at `--starts` evenly spaced positions, and each
cut is scored as `sync_check` scores a clip (`metrics.lse.score_clip`, the expert's whole-clip centring
applied to the cut, `--max-offset` / `--min-pairs` as the stage's params):

- as recorded (GRID is in sync): a cut is *right* when |offset| <= `--tolerance` (sync_check's
  `max_abs_offset`); a wrong offset is what `shift` mode would act on;
- with the whole clip's audio delayed by each of `--shifts` frames before cutting (so the cut holds
  real sound, not padding): *recovered* when the offset lies within `--tolerance` of the shift.

It prints one row per length (cuts, scorable, right rate, recovered rate, median LSE-C of right and
wrong cuts) and the shortest length from which every longer one has a right rate of at least
`--target`: the value to use for `sync_check.min_length_s`.
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

from headflow.audio.mel import mel_window_start
from headflow.metrics.lse import ClipTooShort, score_clip, shift_audio
from headflow.metrics.offset_recovery import prepare_clip
from headflow.sync.data import ClipArrays
from headflow.sync.train import load_expert


# The shared test material, found as tests/conftest.py finds it: HEADFLOW_SHARED, else ../shared beside the
# checkout (not beside the current folder).
SHARED = Path(os.environ.get("HEADFLOW_SHARED") or Path(__file__).resolve().parents[2] / "shared")


def cut_clip(clip: ClipArrays, start: int, n_frames: int) -> ClipArrays:
    """Frames [start, start + n_frames) of `clip` with the mel a clip of that length would have.

    A clip of n video frames at 25 fps holds n x 640 samples, i.e. 3.2 n + 1 mel frames (hop 200).
    """
    m0 = mel_window_start(start, clip.fps)
    n_mel = int(round(n_frames * 80 / clip.fps)) + 1
    valid = None if clip.valid is None else clip.valid[start:start + n_frames]
    return ClipArrays(f"{clip.clip_id}@{start}", clip.mouths[start:start + n_frames], clip.mel[m0:m0 + n_mel],
                      valid, clip.fps)


def score_cuts(model, clip: ClipArrays, lengths_s: list[float], n_starts: int, shifts: list[int],
               max_offset: int, min_pairs: int) -> pd.DataFrame:
    """One row per (length, start, applied shift): offset, LSE-C, or unscorable."""
    rows = []
    versions = {0: clip, **{s: shift_audio(clip, s) for s in shifts}}
    T = len(clip.mouths)
    for length in lengths_s:
        n = int(round(length * clip.fps))
        if n > T:
            continue
        for start in sorted({int(round(x)) for x in np.linspace(0, T - n, n_starts)}):
            for shift, version in versions.items():
                cut = cut_clip(version, start, n)
                try:
                    s = score_clip(model, cut, max_offset, min_pairs)
                    offset, lse_c = s.offset, s.lse_c
                except ClipTooShort:
                    offset, lse_c = None, None
                rows.append({"clip": clip.clip_id, "length_s": length, "start": start, "applied_shift": shift,
                             "offset": offset, "lse_c": lse_c})
    return pd.DataFrame(rows)


def summarise(rows: pd.DataFrame, tolerance: int) -> pd.DataFrame:
    """Per length: cuts, scorable fraction, right rate (unshifted), recovered rate (shifted), LSE-C."""
    out = []
    for length, g in rows.groupby("length_s"):
        scored = g[g.offset.notna()]
        base, shifted = scored[scored.applied_shift == 0], scored[scored.applied_shift != 0]
        right = (base.offset.astype(int).abs() <= tolerance)
        recovered = ((shifted.offset.astype(int) - shifted.applied_shift).abs() <= tolerance)
        out.append({
            "length_s": length, "cuts": int((g.applied_shift == 0).sum()),
            "scorable": round(float(g.offset.notna().mean()), 3),
            "right_rate": round(float(right.mean()), 3) if len(base) else None,
            "wrong_offsets": sorted(int(o) for o in base.offset[~right.to_numpy()]) if len(base) else [],
            "recovered_rate": round(float(recovered.mean()), 3) if len(shifted) else None,
            "lse_c_right": round(float(base.lse_c[right.to_numpy()].median()), 3) if right.any() else None,
            "lse_c_wrong": round(float(base.lse_c[~right.to_numpy()].median()), 3) if (~right).any() else None,
        })
    return pd.DataFrame(out)


def reliable_length(table: pd.DataFrame, target: float) -> float | None:
    """Shortest length whose right rate, and every longer length's, is >= `target` (None: none is)."""
    best = None
    for r in table.sort_values("length_s", ascending=False).itertuples():
        if r.right_rate is None or r.right_rate < target:
            break
        best = float(r.length_s)
    return best


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", default=str(SHARED / "data" / "grid"), help="folder of GRID .mpg clips")
    ap.add_argument("--expert", default="data/models/expert/last.pt", help="a train_expert checkpoint (read only)")
    ap.add_argument("--lengths", type=float, nargs="+", default=[0.8, 1.0, 1.2, 1.4, 1.6, 2.0, 2.4, 2.6, 2.8, 3.0],
                    help="cut lengths in seconds (default %(default)s)")
    ap.add_argument("--starts", type=int, default=5, help="cut positions per clip and length")
    ap.add_argument("--shifts", type=int, nargs="+", default=[-5, 5],
                    help="audio delays in frames applied before cutting (default %(default)s)")
    ap.add_argument("--max-offset", type=int, default=15,
                    help="sync_check.max_offset: +- frames scanned (default %(default)s)")
    ap.add_argument("--min-pairs", type=int, default=5, help="sync_check.min_pairs (default %(default)s)")
    ap.add_argument("--tolerance", type=int, default=2, help="sync_check.max_abs_offset")
    ap.add_argument("--target", type=float, default=0.9, help="right rate a length must reach")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default %(default)s)")
    ap.add_argument("--json", help="also write the table and the rows here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    videos = sorted(Path(args.grid).glob("*.mpg"))
    if not videos:
        raise SystemExit(f"no .mpg clips in {args.grid} (pass --grid or set HEADFLOW_SHARED)")
    model = load_expert(Path(args.expert))
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        for v in videos:
            clip = prepare_clip(v, Path(tmp))
            tables.append(score_cuts(model, clip, args.lengths, args.starts, args.shifts, args.max_offset,
                                     args.min_pairs))
            print(f"{v.stem}: {len(clip.mouths)} frames scored at {len(tables[-1])} cuts", flush=True)
    rows = pd.concat(tables, ignore_index=True)
    table = summarise(rows, args.tolerance)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False))
    shortest = reliable_length(table, args.target)
    print(f"shortest length with right rate >= {args.target} there and above: {shortest} s "
          f"(expert {args.expert}, {rows['clip'].nunique()} GRID clips, tolerance +-{args.tolerance} frames)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"expert": args.expert, "target": args.target, "reliable_length_s": shortest,
                                               "table": table.to_dict("records"), "rows": rows.to_dict("records")},
                                              indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
