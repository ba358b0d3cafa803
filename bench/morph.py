"""Benchmark of the 3DMM stage's parts against naive baselines, in one run on the same data.

    PYTHONPATH=src:. python bench/morph.py                      # fit (ICT-FaceKit on GRID landmarks) + render
    PYTHONPATH=src:. python bench/morph.py --only fit --frames 1500 --model builtin

fit: landmarks of real GRID clips (the faces stage's landmark code on ../shared/data/grid; the demo
corpus' ground truth with --landmarks demo), repeated to at least --frames frames as clips of their
own length, fitted with
    video      `fit_video`: one identity per clip, joint banded solve over the frames (the method)
    frames     `fit_frames`: every frame on its own, dense bounded least squares per frame (baseline)
and prints frames/s, the ratio video / frames, and the median reprojection error of each.
render: `bench_render` (filled in by the NMFC rendering work).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from headflow.morphable import FitConfig, fit_frames, fit_video

ICT_NPZ = "../shared/models/ict_facekit/ict_face_model_light_full.npz"


def load_model(name: str):
    if name == "builtin":
        from headflow.morphable.builtin import builtin_model

        return builtin_model()
    from headflow.morphable.ict import load_ict_npz

    return load_ict_npz(name if name.endswith(".npz") else ICT_NPZ, face_only=True)


def grid_landmarks(grid: Path) -> list[np.ndarray]:
    from headflow.faces.faces import process_clip
    from headflow.faces.params import FacesParams

    videos = sorted(grid.glob("*.mpg"))
    if not videos:
        raise SystemExit(f"no GRID clips in {grid}")
    return [process_clip(v, FacesParams(), None).landmarks for v in videos]


def demo_landmarks(root: Path) -> list[np.ndarray]:
    files = sorted((root / "data/raw/demo").glob("*/*.truth.npz"))
    if not files:
        raise SystemExit(f"no demo ground truth under {root}/data/raw/demo (run `make demo`)")
    return [np.load(f)["landmarks"] for f in files]


def run(fit, model, clips, config) -> tuple[int, float, float, float]:
    t, c = time.perf_counter(), time.process_time()
    fits = [fit(model, lm, config=config) for lm in clips]
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    err = float(np.nanmedian(np.concatenate([f.reproj_iod() for f in fits])))
    return sum(len(lm) for lm in clips), wall, cpu, err


_WORKER: dict = {}


def _init_worker(model_name: str, n_id: int | None) -> None:
    _WORKER["model"], _WORKER["config"] = load_model(model_name), FitConfig(n_id=n_id)


def _fit_one(lm: np.ndarray) -> tuple[int, float]:
    f = fit_video(_WORKER["model"], lm, config=_WORKER["config"])
    return len(lm), float(np.nanmedian(f.reproj_iod()))


def run_pool(model_name: str, n_id: int | None, clips, workers: int) -> tuple[int, float]:
    """fit_video over the clips in `workers` processes (model loading excluded: pool warmed first)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(model_name, n_id)) as pool:
        list(pool.map(_fit_one, clips[:workers]))   # start and load the model in every worker
        t = time.perf_counter()
        n = sum(k for k, _ in pool.map(_fit_one, clips))
        return n, time.perf_counter() - t


def bench_fit(model_name: str, landmarks: str, frames: int, baseline_frames: int, n_id: int | None,
              grid: Path, demo_root: Path, workers: int = 2) -> None:
    t = time.perf_counter()
    model = load_model(model_name)
    t_model = time.perf_counter() - t
    clips = grid_landmarks(grid) if landmarks == "grid" else demo_landmarks(demo_root)
    per_pass = sum(len(c) for c in clips)
    video_clips = clips * max(1, -(-frames // per_pass))
    base_clips = clips * max(1, -(-baseline_frames // per_pass))
    config = FitConfig(n_id=n_id)
    fit_video(model, clips[0], config=config)   # warm-up (imports, BLAS start)
    n_v, t_v, c_v, e_v = run(fit_video, model, video_clips, config)
    n_f, t_f, c_f, e_f = run(fit_frames, model, base_clips, config)
    fps_v, fps_f = n_v / t_v, n_f / t_f
    print(f"\n== fit: {model.name} ({model.n_vertices} vertices, {config.n_id or model.n_id} identity / "
          f"{model.n_exp} expression modes, model load {t_model:.2f} s), {landmarks} landmarks: "
          f"{len(clips)} clips of {per_pass / len(clips):.0f} frames ==")
    print(f"{'what':<52}{'frames':>8}{'wall s':>8}{'frames/s':>10}{'CPU ms/frame':>14}{'median err':>12}")
    print(f"{'fit_video (joint banded solve, one identity)':<52}{n_v:>8}{t_v:>8.2f}{fps_v:>10.0f}"
          f"{1000 * c_v / n_v:>14.2f}{e_v:>11.2%}")
    print(f"{'fit_frames (per-frame dense bounded LSQ)':<52}{n_f:>8}{t_f:>8.2f}{fps_f:>10.0f}"
          f"{1000 * c_f / n_f:>14.2f}{e_f:>11.2%}")
    if workers > 1:
        n_p, t_p = run_pool(model_name, n_id, video_clips, workers)
        print(f"{f'fit_video, clips over {workers} processes':<52}{n_p:>8}{t_p:>8.2f}{n_p / t_p:>10.0f}")
    print(f"ratio fit_video / fit_frames (wall frames/s, 1 process each): {fps_v / fps_f:5.2f}x   "
          f"(median reprojection error as a fraction of the inter-ocular distance)")


def bench_render(args) -> None:
    """NMFC rendering benchmark: to be filled in by the rendering work (headflow.morphable.render)."""
    print("\n== render: not implemented in this branch (see headflow.morphable.render) ==")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["fit", "render"], default=None)
    ap.add_argument("--model", default="ict", help="ict (../shared npz), a path to the ICT npz, or builtin")
    ap.add_argument("--landmarks", choices=["grid", "demo"], default="grid")
    ap.add_argument("--grid", default="../shared/data/grid", help="folder of GRID .mpg clips")
    ap.add_argument("--demo-root", default=".", help="project root holding data/raw/demo (demo ground truth)")
    ap.add_argument("--frames", type=int, default=1500, help="at least this many frames for fit_video")
    ap.add_argument("--baseline-frames", type=int, default=450, help="at least this many for fit_frames")
    ap.add_argument("--n-id", type=int, default=50, help="identity modes used (ICT has 100)")
    ap.add_argument("--workers", type=int, default=2, help="also run fit_video with clips over this many processes")
    args = ap.parse_args(argv)
    if args.only != "render":
        bench_fit(args.model, args.landmarks, args.frames, args.baseline_frames,
                  args.n_id if args.model != "builtin" else None, Path(args.grid), Path(args.demo_root), args.workers)
    if args.only != "fit":
        bench_render(args)
    print("\ncores:", len(os.sched_getaffinity(0)), " python", sys.version.split()[0],
          " load average", " ".join(f"{x:.1f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
