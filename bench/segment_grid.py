"""Pause segmentation (`ingest.segment`) on real speech: the GRID clips joined into one long recording.

    PYTHONPATH=src:. python bench/segment_grid.py --grid ../shared/data/grid --max 8 5

The clips of `--grid` (3 s each, sorted by name) are concatenated with ffmpeg into one video; the
pauses `headflow.ingest.segment` finds and the segments it plans for each `--max` duration are
printed, with the level (dBFS) of the 20 ms frame at each cut and the distance of each cut to the
nearest join between two clips (where the silences of both clips meet).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from headflow.ingest.segment import FRAME_S, HOP_S, find_pauses, frame_levels_db, range_audio, segment_item
from headflow.ingest.sources import SourceItem
from headflow.media import probe


# The shared test material, found as tests/conftest.py finds it: HEADFLOW_SHARED, else ../shared beside the
# checkout (not beside the current folder).
SHARED = Path(os.environ.get("HEADFLOW_SHARED") or Path(__file__).resolve().parents[2] / "shared")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", default=str(SHARED / "data" / "grid"),
                    help="folder of GRID .mpg clips (default $HEADFLOW_SHARED/data/grid, else ../shared/data/grid)")
    ap.add_argument("--max", type=float, nargs="+", default=[8.0, 5.0], help="max_duration_s values")
    ap.add_argument("--min", type=float, default=1.0, help="min_duration_s")
    ap.add_argument("--pause-db", type=float, default=25.0,
                    help="segment.pause_db: dB under the 95th-percentile level (default %(default)s)")
    ap.add_argument("--min-pause-s", type=float, default=0.2, help="segment.min_pause_s (default %(default)s)")
    args = ap.parse_args(argv)
    clips = sorted(Path(args.grid).glob("*.mpg"))
    if not clips:
        raise SystemExit(f"no .mpg clips in {args.grid} (pass --grid or set HEADFLOW_SHARED)")
    with tempfile.TemporaryDirectory() as tmp:
        lst, long = Path(tmp) / "list.txt", Path(tmp) / "long.mp4"
        lst.write_text("".join(f"file '{c.resolve()}'\n" for c in clips))
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "concat", "-safe", "0",
                        "-i", str(lst), "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(long)], check=True)
        info = probe(long)
        joins = np.cumsum([probe(c).duration_s for c in clips])[:-1]
        levels = frame_levels_db(range_audio(long, None, None), 16000)
        pauses = find_pauses(levels, args.pause_db, args.min_pause_s)
        print(f"{len(clips)} clips joined: {info.duration_s:.2f} s, joins at {np.round(joins, 2).tolist()} s")
        print(f"pauses ({len(pauses)}): " + " ".join(f"{a:.2f}-{b:.2f}" for a, b in pauses))
        for mx in args.max:
            segs = segment_item(SourceItem(long, "long.mp4", "grid"), info.duration_s, args.min, mx, 25,
                                args.pause_db, args.min_pause_s)
            print(f"max_duration_s {mx:g}: {len(segs)} segments")
            for s in segs:
                cut = s.end_s
                i = min(max(int(round((cut - FRAME_S / 2) / HOP_S)), 0), len(levels) - 1)
                near = float(np.min(np.abs(joins - cut))) if len(joins) else float("nan")
                print(f"  [{s.start_s:6.2f}, {s.end_s:6.2f}) {s.end_s - s.start_s:5.2f} s  ends: {s.segment_end:6s}"
                      + ("" if s.segment_end == "end" else
                         f"  level at cut {levels[i]:6.1f} dBFS (p95 {np.percentile(levels, 95):.1f})  "
                         f"nearest join {near:.2f} s away"))


if __name__ == "__main__":
    main()
