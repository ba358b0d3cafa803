"""Benchmark of the 3DMM stage's parts against naive baselines, in one run on the same data.

    PYTHONPATH=src:. python bench/morph.py                      # fit (ICT-FaceKit on GRID landmarks) + render
    PYTHONPATH=src:. python bench/morph.py --only fit --frames 1500 --model builtin

fit: landmarks of real GRID clips (the faces stage's landmark code on ../shared/data/grid; the demo
corpus' ground truth with --landmarks demo), repeated to at least --frames frames as clips of their
own length, fitted with
    video      `fit_video`: one identity per clip, joint banded solve over the frames (the method)
    frames     `fit_frames`: every frame on its own, dense bounded least squares per frame (baseline)
and prints frames/s, the ratio video / frames, and the median reprojection error of each.
    fit_video over 2 processes, warm pool and the stage's `map_jobs` (pool start and model load included)
render: `bench/morph_render.py`'s NMFC benchmark (numba / numpy / naive per-triangle rasteriser).
Timings are best of --repeat passes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from headflow.fit3dmm.fit import FitConfig, fit_frames, fit_video

sys.path.insert(0, str(Path(__file__).resolve().parent))   # morph_render beside this file
from morph_render import best_of  # noqa: E402

# The shared test material, found as tests/conftest.py finds it: HEADFLOW_SHARED, else ../shared beside the
# checkout (not beside the current folder).
SHARED = Path(os.environ.get("HEADFLOW_SHARED") or Path(__file__).resolve().parents[2] / "shared")
ICT_NPZ = str(SHARED / "models" / "ict_facekit" / "ict_face_model_light_full.npz")


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


def run(fit, model, clips, config, repeat: int = 1) -> tuple[int, float, float, float]:
    """Frames, best wall seconds and CPU seconds of `repeat` passes, median reprojection error (IOD)."""
    best_wall, best_cpu = np.inf, np.inf
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fits = [fit(model, lm, config=config) for lm in clips]
        best_wall, best_cpu = min(best_wall, time.perf_counter() - t), min(best_cpu, time.process_time() - c)
    err = float(np.nanmedian(np.concatenate([f.reproj_iod() for f in fits])))
    return sum(len(lm) for lm in clips), best_wall, best_cpu, err


_WORKER: dict = {}


def _init_worker(model_name: str, n_id: int | None) -> None:
    _WORKER["model"], _WORKER["config"] = load_model(model_name), FitConfig(n_id=n_id)


def _fit_one(lm: np.ndarray) -> tuple[int, float]:
    f = fit_video(_WORKER["model"], lm, config=_WORKER["config"])
    return len(lm), float(np.nanmedian(f.reproj_iod()))


def _fit_job(job: tuple[str, int | None, np.ndarray]) -> int:
    """One clip as the fit3dmm stage runs it under `map_jobs`: model from a per-process cache, then fit."""
    name, n_id, lm = job
    if _WORKER.get("name") != name:
        _init_worker(name, n_id)
        _WORKER["name"] = name
    fit_video(_WORKER["model"], lm, config=_WORKER["config"])
    return len(lm)


def run_pool(model_name: str, n_id: int | None, clips, workers: int, repeat: int = 1) -> tuple[int, float]:
    """fit_video over the clips in `workers` processes (model loading excluded: pool warmed first)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(model_name, n_id)) as pool:
        list(pool.map(_fit_one, clips[:workers]))   # start and load the model in every worker
        best, n = best_of(lambda: sum(k for k, _ in pool.map(_fit_one, clips)), repeat)
        return n, best


def run_map_jobs(model_name: str, n_id: int | None, clips, workers: int, repeat: int = 1) -> tuple[int, float]:
    """The stage's way: `headflow.parallel.map_jobs` (a fresh pool each call; start-up and model load
    included in the time)."""
    from headflow.parallel import map_jobs

    best, n = best_of(lambda: sum(map_jobs(_fit_job, [(model_name, n_id, lm) for lm in clips], workers,
                                          progress=False)), repeat)
    return n, best


def bench_fit(model_name: str, landmarks: str, frames: int, baseline_frames: int, n_id: int | None,
              grid: Path, demo_root: Path, workers: int = 2, repeat: int = 3) -> dict:
    t = time.perf_counter()
    model = load_model(model_name)
    t_model = time.perf_counter() - t
    clips = grid_landmarks(grid) if landmarks == "grid" else demo_landmarks(demo_root)
    per_pass = sum(len(c) for c in clips)
    video_clips = clips * max(1, -(-frames // per_pass))
    base_clips = clips * max(1, -(-baseline_frames // per_pass))
    config = FitConfig(n_id=n_id)
    fit_video(model, clips[0], config=config)   # warm-up (imports, BLAS start)
    n_v, t_v, c_v, e_v = run(fit_video, model, video_clips, config, repeat)
    n_f, t_f, c_f, e_f = run(fit_frames, model, base_clips, config, repeat)
    fps_v, fps_f = n_v / t_v, n_f / t_f
    print(f"\n== fit: {model.name} ({model.n_vertices} vertices, {config.n_id or model.n_id} identity / "
          f"{model.n_exp} expression modes, model load {t_model:.2f} s), {landmarks} landmarks: "
          f"{len(clips)} clips of {per_pass / len(clips):.0f} frames; best of {repeat} ==")
    print(f"{'what':<52}{'frames':>8}{'wall s':>8}{'frames/s':>10}{'CPU ms/frame':>14}{'median err':>12}")
    print(f"{'fit_video (joint banded solve, one identity)':<52}{n_v:>8}{t_v:>8.2f}{fps_v:>10.0f}"
          f"{1000 * c_v / n_v:>14.2f}{e_v:>11.2%}")
    print(f"{'fit_frames (per-frame dense bounded LSQ)':<52}{n_f:>8}{t_f:>8.2f}{fps_f:>10.0f}"
          f"{1000 * c_f / n_f:>14.2f}{e_f:>11.2%}")
    out = {"fps_video": fps_v, "fps_frames": fps_f, "err_video": e_v, "err_frames": e_f}
    if workers > 1:
        n_p, t_p = run_pool(model_name, n_id, video_clips, workers, repeat)
        n_m, t_m = run_map_jobs(model_name, n_id, video_clips, workers, repeat)
        print(f"{f'fit_video, clips over {workers} warm processes':<52}{n_p:>8}{t_p:>8.2f}{n_p / t_p:>10.0f}")
        print(f"{f'fit_video, map_jobs({workers}) as the stage (start-up incl.)':<52}{n_m:>8}{t_m:>8.2f}"
              f"{n_m / t_m:>10.0f}")
        out.update(fps_pool=n_p / t_p, fps_map_jobs=n_m / t_m)
    out.update(render_path(model, clips[0], config, repeat))
    print(f"ratio fit_video / fit_frames (wall frames/s, 1 process each): {fps_v / fps_f:5.2f}x   "
          f"(median reprojection error as a fraction of the inter-ocular distance)   target >= 500 frames/s")
    return out


def render_path(model, landmarks: np.ndarray, config: FitConfig, repeat: int = 3) -> dict:
    """The fit3dmm stage's rendering path on one fitted clip: `VideoFit.project` (all vertices),
    `to_crop` (the FFHQ-style crop of the landmarks), `render_nmfc` at 256x256 and `write_nmfc`."""
    import tempfile

    from headflow.faces.crops import align_transforms
    from headflow.nmfc.render import render_nmfc, to_crop, write_nmfc

    fit = fit_video(model, landmarks, config=config)
    M = align_transforms(landmarks, size=256)
    render_nmfc(model, to_crop(fit.project(model)[:2], M[:2]), size=256)   # numba compile / cache load
    T = len(landmarks)

    t_p, P = best_of(lambda: fit.project(model), repeat)
    t_c, C = best_of(lambda: to_crop(P, M), repeat)
    t_r, (nmfc, mask) = best_of(lambda: render_nmfc(model, C, size=256), repeat)
    with tempfile.TemporaryDirectory() as tmp:
        t_w, _ = best_of(lambda: write_nmfc(Path(tmp) / "clip.nmfc.zip", nmfc, mask), repeat)
    total = t_p + t_c + t_r + t_w
    print(f"{'stage render path (project+crop+NMFC+write), 1 proc':<52}{T:>8}{total:>8.2f}{T / total:>10.0f}"
          f"   (project {T / t_p:.0f}, crop {T / t_c:.0f}, rasterise {T / t_r:.0f}, write {T / t_w:.0f} frames/s)")
    return {"fps_render_path": T / total}


def bench_render(args) -> dict | None:
    """NMFC rendering: `bench/morph_render.py`'s benchmark (ICT face area, 256x256) against its naive
    per-triangle rasteriser, in the same run."""
    import morph_render

    model_path = Path(args.model) if args.model.endswith(".npz") else Path(ICT_NPZ)
    if not model_path.is_file():
        print(f"\n== render: skipped, {model_path} not found (the ICT-FaceKit npz of ../shared) ==")
        return None
    r = morph_render.bench_render(args.render_frames, 256, args.repeat, model_path=model_path)
    print(f"\n== render: NMFC, ICT face area ({r['triangles']} triangles), {r['frames']} frames at 256x256, "
          f"numba threads {r['threads']}, best of {args.repeat} ==")
    print(f"  naive per-triangle loop  {r['fps_naive']:9.1f} frames/s  (mask agreement {r['naive_mask_agreement']:.4f})")
    print(f"  numpy (vectorised)       {r['fps_numpy']:9.1f} frames/s  (identical output: {r['numpy_equals_numba']})")
    print(f"  numba render_nmfc        {r['fps_numba']:9.1f} frames/s  = {r['speedup_vs_naive']:.0f}x naive, "
          f"{r['speedup_vs_numpy']:.1f}x numpy   (target >= 150)")
    print(f"  numba render_shaded      {r['fps_shaded']:9.1f} frames/s;  to_crop {r['fps_to_crop']:.0f} frames/s")
    print(f"  file: {r['file_kib_per_frame']:.1f} KiB/frame, write {r['write_ms_per_frame']:.2f} ms/frame, "
          f"read {r['read_ms_per_frame']:.2f} ms/frame")
    return r


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["fit", "render"], default=None, help="run one part only (default: both)")
    ap.add_argument("--model", default="ict", help="ict (../shared npz), a path to the ICT npz, or builtin")
    ap.add_argument("--landmarks", choices=["grid", "demo"], default="grid",
                    help="landmarks fitted: real GRID clips or the demo's ground truth (default %(default)s)")
    ap.add_argument("--grid", default=str(SHARED / "data" / "grid"), help="folder of GRID .mpg clips")
    ap.add_argument("--demo-root", default=".", help="project root holding data/raw/demo (demo ground truth)")
    ap.add_argument("--frames", type=int, default=1500, help="at least this many frames for fit_video")
    ap.add_argument("--baseline-frames", type=int, default=450, help="at least this many for fit_frames")
    ap.add_argument("--n-id", type=int, default=50, help="identity modes used (ICT has 100)")
    ap.add_argument("--workers", type=int, default=2, help="also run fit_video with clips over this many processes")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many passes (the machine may be shared)")
    ap.add_argument("--render-frames", type=int, default=140, help="frames rendered by the NMFC benchmark")
    args = ap.parse_args(argv)
    if args.only != "render":
        bench_fit(args.model, args.landmarks, args.frames, args.baseline_frames,
                  args.n_id if args.model != "builtin" else None, Path(args.grid), Path(args.demo_root), args.workers,
                  args.repeat)
    if args.only != "fit":
        bench_render(args)
    print("\ncores:", len(os.sched_getaffinity(0)), " python", sys.version.split()[0],
          " load average", " ".join(f"{x:.1f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
