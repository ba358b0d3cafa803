"""Benchmark of the faces stage against a naive baseline, in one run on the same clips.

    PYTHONPATH=src:. python bench/faces.py                       # demo clips (data/interim/ingest) + GRID
    PYTHONPATH=src:. python bench/faces.py --demo-root /tmp/clone --grid ../shared/data/grid --only grid

Per clip set it measures, on the same frames:
    decode     decord sequential decoding only (one process)
    naive      dlib HOG detection + 68 landmarks of every face on every full-resolution frame (one process)
    stage      the whole faces stage (`run_faces`: detection every k frames on a downscaled frame,
               tracking, landmarks, smoothing, crop transforms, 256x256 crop videos written), `workers`
               processes, pool start and model loading included
and prints frames/s, the ratios stage/naive and stage/decode, and where the stage's time goes
(summed over clips, from the per-clip timings in faces.parquet). `--repeat` lists each clip several
times (distinct clip ids) so short clip sets are not dominated by the pool's start-up.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from headflow.faces.dlib_backend import detect_faces, landmarks68, shape_predictor
from headflow import params as P
from headflow.faces.params import FacesParams
from headflow.faces.stage import run_faces
from headflow.manifest.schemas import schema_for
from headflow.media import read_frames

STEPS = ("decode", "detect", "landmarks", "smooth", "warp", "encode")


# The shared test material, found as tests/conftest.py finds it: HEADFLOW_SHARED, else ../shared beside the
# checkout (not beside the current folder).
SHARED = Path(os.environ.get("HEADFLOW_SHARED") or Path(__file__).resolve().parents[2] / "shared")


def decode_only(videos: list[Path]) -> tuple[int, float, float]:
    t, c = time.perf_counter(), time.process_time()
    n = sum(1 for v in videos for _ in read_frames(v))
    return n, time.perf_counter() - t, time.process_time() - c


def naive(videos: list[Path]) -> tuple[int, float, float]:
    """Detect on every full-resolution frame, then 68 landmarks per face found."""
    shape_predictor()   # model loading is not what we compare
    t, c = time.perf_counter(), time.process_time()
    n = 0
    for v in videos:
        for frame in read_frames(v):
            for l, tp, r, b, _ in detect_faces(frame, 0):
                landmarks68(frame, (l, tp, r, b))
            n += 1
    return n, time.perf_counter() - t, time.process_time() - c


def clips_manifest(videos: list[Path], repeat: int, path: Path) -> None:
    """A minimal clips.parquet listing each video `repeat` times under distinct clip ids."""
    schema = schema_for("clips")
    rows = []
    for k in range(repeat):
        for v in videos:
            digest = hashlib.sha256(f"{v}:{k}".encode()).hexdigest()[:10]
            stem = "".join(c if c.isalnum() else "_" for c in v.stem.lower())
            rows.append({**dict.fromkeys(schema.names), "clip_id": f"bench_{stem}_{k}-{digest}",
                         "source_path": v.name, "video_path": str(v.resolve()), "fps": 25})
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def stage(videos: list[Path], repeat: int, params: FacesParams) -> tuple[int, float, pd.DataFrame, int]:
    with tempfile.TemporaryDirectory(prefix="bench_faces_") as tmp:
        tmp = Path(tmp)
        clips_manifest(videos, repeat, tmp / "clips.parquet")
        t = time.perf_counter()
        res = run_faces(params, tmp / "clips.parquet", tmp / "faces", project_root=Path("/"), progress=False)
        dt = time.perf_counter() - t
    return int(res.faces.n_frames.sum()), dt, res.faces, len(res.quarantine)


def bench_set(name: str, videos: list[Path], repeat: int | None, params: FacesParams, min_frames: int) -> None:
    if not videos:
        print(f"{name}: no clips found, skipped")
        return
    if repeat is None:
        per_pass = sum(1 for v in videos for _ in read_frames(v))
        repeat = max(1, -(-min_frames // per_pass))
    n_dec, t_dec, c_dec = decode_only(videos * repeat)
    n_nv, t_nv, c_nv = naive(videos)
    n_st, t_st, faces, n_q = stage(videos, repeat, params)
    c_st = float(faces.cpu_s.sum()) if len(faces) else float("nan")
    fps_dec, fps_nv, fps_st = n_dec / t_dec, n_nv / t_nv, n_st / t_st
    print(f"\n== {name}: {len(videos)} clips x{repeat}, {faces.width.iloc[0] if len(faces) else '?'}x"
          f"{faces.height.iloc[0] if len(faces) else '?'}; stage accepted {len(faces)}, quarantined {n_q} ==")
    print(f"{'what':<44}{'frames':>8}{'wall s':>8}{'frames/s':>10}{'CPU ms/frame':>14}")
    print(f"{'decode only (1 process)':<44}{n_dec:>8}{t_dec:>8.2f}{fps_dec:>10.0f}{1000 * c_dec / n_dec:>14.2f}")
    print(f"{'naive: HOG + 68 lm every full frame (1 proc)':<44}{n_nv:>8}{t_nv:>8.2f}{fps_nv:>10.0f}"
          f"{1000 * c_nv / n_nv:>14.2f}")
    print(f"{f'stage, crops written ({params.workers} processes)':<44}{n_st:>8}{t_st:>8.2f}{fps_st:>10.0f}"
          f"{1000 * c_st / n_st:>14.2f}")
    print(f"ratio stage / naive (wall frames/s):  {fps_st / fps_nv:5.2f}x")
    print(f"ratio stage / decode (wall frames/s): {fps_st / fps_dec:5.2f}x")
    print(f"ratio naive / stage CPU per frame:    {c_nv / n_nv / (c_st / n_st):5.2f}x  (workers + their ffmpeg "
          f"encoders; pool start-up, model loading and manifest writing excluded)")
    if len(faces):
        spent = {s: float(faces[f"{s}_s"].sum()) for s in STEPS}
        total = float(faces.total_s.sum())
        other = total - sum(spent.values())
        parts = ", ".join(f"{s} {v / total:.0%} ({1000 * v / n_st:.2f} ms/frame)" for s, v in spent.items())
        print(f"where the stage's per-clip time goes (worker CPU-seconds {total:.2f}): {parts}, "
              f"other {other / total:.0%}; writing manifests happens after, in the parent")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo-root", default=".", help="project root holding data/interim/ingest (demo clips)")
    ap.add_argument("--grid", default=str(SHARED / "data" / "grid"), help="folder of GRID .mpg clips")
    ap.add_argument("--repeat", type=int, default=None,
                    help="list each clip this many times in the stage run (default: enough for --min-frames)")
    ap.add_argument("--min-frames", type=int, default=6000,
                    help="default repeat: at least this many frames per set, so pool start-up and model "
                         "loading (~1 s per worker, included) do not dominate")
    ap.add_argument("--workers", type=int, default=2, help="processes of the stage run (default %(default)s)")
    ap.add_argument("--every", type=int, default=None, help="override faces.detect.every")
    ap.add_argument("--only", choices=["demo", "grid"], default=None, help="run one clip set only (default: both)")
    ap.add_argument("--params", default="params.yaml", help="params file whose faces block is benchmarked")
    args = ap.parse_args(argv)
    # The faces block of params.yaml: what `dvc repro` runs (dataclass defaults if there is none).
    params = P.load("faces", args.params) if Path(args.params).exists() else FacesParams()
    params.workers = args.workers
    if args.every:
        params.detect.every = args.every
    clips = Path(args.demo_root) / "data/interim/ingest/clips.parquet"
    if args.only == "grid":
        pass
    elif clips.exists():
        c = pd.read_parquet(clips)
        demo = [Path(args.demo_root) / p for p in c[~c.source_path.str.startswith("bad/")].video_path]
        bench_set("demo corpus (good clips)", demo, args.repeat, params, args.min_frames)
    else:
        print(f"{clips} not found: demo set skipped (run `dvc repro ingest` or pass --demo-root)")
    if args.only != "demo":
        bench_set("GRID", sorted(Path(args.grid).glob("*.mpg")), args.repeat, params, args.min_frames)
    print("\ncores:", len(__import__("os").sched_getaffinity(0)), " python", sys.version.split()[0],
          f" params: detect.every={params.detect.every} scale={params.detect.scale} "
          f"crop.preset={params.crop.preset}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
