"""Benchmark of the NMFC renderer against a naive per-triangle rasteriser, in one run.

    PYTHONPATH=src:. python bench/morph_render.py                      # 140 frames, 256x256, ICT face area
    PYTHONPATH=src:. python bench/morph_render.py --frames 500 --repeat 5 --model /path/to/ict.npz

Input: the real ICT-FaceKit light model (`../shared/models/ict_facekit/ict_face_model_light_full.npz`,
face-area mesh, ~18k triangles), with a smoothly varying random identity, expressions and pose
(yaw +-30, pitch +-12, roll +-8 degrees, scale and translation drifting) projected into a 640x480
source frame, then mapped into the 256x256 crop by the FFHQ-style `align_transform` of the projected
landmarks, as the pipeline does. Measured on the same frames:
    naive    a straightforward rasteriser: Python loop over triangles, numpy over each bounding box,
             float barycentrics and a z-buffer (a few frames, extrapolated)
    numpy    `render_nmfc(..., backend="numpy")`: vectorised numpy, identical output to numba
    numba    `render_nmfc(...)`: numba, frames in parallel over the available threads
plus `render_shaded`, `to_crop`, and the NMFC file (`write_nmfc` / `read_nmfc`: size per frame, speed).
Timings are best of `--repeat` runs (the machine may be shared); the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from headflow.faces.crops import align_transforms
from headflow.nmfc.render import face_triangles, nmfc_colors, read_nmfc, render_nmfc, render_shaded, to_crop, write_nmfc
from headflow.rotations import euler_to_matrix

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = (Path(os.environ.get("HEADFLOW_SHARED") or ROOT.parent / "shared")
                 / "models" / "ict_facekit" / "ict_face_model_light_full.npz")


def _smooth_noise(rng, T: int, k: int, period: float) -> np.ndarray:
    """(T, k) smooth curves in [-1, 1]: sums of a few random sinusoids."""
    t = np.arange(T)[:, None]
    out = np.zeros((T, k))
    for _ in range(3):
        out += np.sin(2 * np.pi * t / (period * rng.uniform(0.5, 1.5, k)) + rng.uniform(0, 2 * np.pi, k))
    return out / 3


def synthetic_clip(model, frames: int, size: int = 256, seed: int = 0):
    """Projected vertices of a plausible talking-head clip in crop coordinates, (T, V, 3) float32."""
    rng = np.random.default_rng(seed)
    ident = rng.normal(0, 0.7, min(model.n_id, 20))
    expr = np.clip(0.5 * _smooth_noise(rng, frames, model.n_exp, 40) + rng.uniform(-0.3, 0.1, model.n_exp), 0, 1)
    X = model.shape(np.broadcast_to(ident, (frames, len(ident))), expr)             # (T, V, 3)
    angles = _smooth_noise(rng, frames, 3, 90) * [30, 12, 8]
    R = euler_to_matrix(angles)
    scale = 11.0 * (1 + 0.1 * _smooth_noise(rng, frames, 1, 120)[:, 0])
    trans = np.stack([320 + 25 * _smooth_noise(rng, frames, 1, 100)[:, 0],
                      230 + 15 * _smooth_noise(rng, frames, 1, 100)[:, 0]], axis=1)
    P = np.einsum("tij,tvj->tvi", R, X)
    projected = np.stack([scale[:, None] * P[..., 0] + trans[:, :1], -scale[:, None] * P[..., 1] + trans[:, 1:],
                          scale[:, None] * P[..., 2]], axis=-1)
    M = align_transforms(projected[:, model.landmarks68, :2], size=size)
    return projected, M


def naive_render(model, xyz: np.ndarray, triangles: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The baseline: per-triangle Python loop, numpy on the bounding box, float z-buffer (one frame)."""
    col = nmfc_colors(model)
    zbuf = np.full((size, size), -np.inf)
    out = np.zeros((size, size, 3), np.uint8)
    for a, b, c in triangles:
        p0, p1, p2 = xyz[a], xyz[b], xyz[c]
        area = (p1[0] - p0[0]) * (p2[1] - p0[1]) - (p1[1] - p0[1]) * (p2[0] - p0[0])
        if area >= 0:                                               # back-facing or degenerate
            continue
        x0, x1 = max(0, int(np.ceil(min(p0[0], p1[0], p2[0])))), min(size - 1, int(max(p0[0], p1[0], p2[0])))
        y0, y1 = max(0, int(np.ceil(min(p0[1], p1[1], p2[1])))), min(size - 1, int(max(p0[1], p1[1], p2[1])))
        if x0 > x1 or y0 > y1:
            continue
        yy, xx = np.mgrid[y0:y1 + 1, x0:x1 + 1]
        w0 = ((p2[0] - p1[0]) * (yy - p1[1]) - (p2[1] - p1[1]) * (xx - p1[0])) / area
        w1 = ((p0[0] - p2[0]) * (yy - p2[1]) - (p0[1] - p2[1]) * (xx - p2[0])) / area
        w2 = 1 - w0 - w1
        inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
        z = w0 * p0[2] + w1 * p1[2] + w2 * p2[2]
        win = inside & (z > zbuf[y0:y1 + 1, x0:x1 + 1])
        zbuf[y0:y1 + 1, x0:x1 + 1][win] = z[win]
        rgb = w0[..., None] * col[a] + w1[..., None] * col[b] + w2[..., None] * col[c]
        out[y0:y1 + 1, x0:x1 + 1][win] = np.round(255 * rgb[win]).astype(np.uint8)
    return out, np.isfinite(zbuf)


def best_of(fn, repeat: int) -> tuple[float, object]:
    """(best wall seconds over `repeat` calls of fn, the last result)."""
    best, result = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def bench_render(frames: int = 140, size: int = 256, repeat: int = 3, naive_frames: int = 2,
                 numpy_frames: int = 10, model_path: Path | str = DEFAULT_MODEL) -> dict:
    """Frames/s of each renderer on the same synthetic ICT clip; returns a dict of figures."""
    import numba

    from headflow.morphable.ict import load_ict_npz

    model = load_ict_npz(model_path)
    tri = face_triangles(model)
    projected, M = synthetic_clip(model, frames, size)
    t_crop, xyz = best_of(lambda: to_crop(projected, M), repeat)
    render_nmfc(model, xyz[:2], size)                               # numba compile / cache load
    render_shaded(model, xyz[:2], size)
    t_numba, (nmfc, mask) = best_of(lambda: render_nmfc(model, xyz, size), repeat)
    t_shaded, _ = best_of(lambda: render_shaded(model, xyz, size), repeat)
    k = min(numpy_frames, frames)
    t_numpy, (nmfc_np, _) = best_of(lambda: render_nmfc(model, xyz[:k], size, backend="numpy"), 1)
    kn = min(naive_frames, frames)
    t0 = time.perf_counter()
    naive = [naive_render(model, xyz[t], tri, size) for t in range(kn)]
    t_naive = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.nmfc.zip"
        t_write, _ = best_of(lambda: write_nmfc(path, nmfc, mask), repeat)
        nbytes = path.stat().st_size
        t_read, (back, back_mask) = best_of(lambda: read_nmfc(path), repeat)
    assert (back == nmfc).all() and (back_mask == mask).all()
    agree_naive = float(np.mean([(m == mask[t]).mean() for t, (_, m) in enumerate(naive)]))
    return {
        "frames": frames, "size": size, "triangles": int(len(tri)), "threads": numba.get_num_threads(),
        "coverage": float(mask.mean()),
        "fps_numba": frames / t_numba, "fps_numpy": k / t_numpy, "fps_naive": kn / t_naive,
        "fps_shaded": frames / t_shaded, "fps_to_crop": frames / t_crop,
        "speedup_vs_naive": (frames / t_numba) / (kn / t_naive),
        "speedup_vs_numpy": (frames / t_numba) / (k / t_numpy),
        "numpy_equals_numba": bool((nmfc_np == nmfc[:k]).all()),
        "naive_mask_agreement": agree_naive,
        "file_kib_per_frame": nbytes / frames / 1024, "raw_kib_per_frame": nmfc[0].nbytes / 1024,
        "write_ms_per_frame": 1000 * t_write / frames, "read_ms_per_frame": 1000 * t_read / frames,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=140,
                    help="length of the synthetic clip in frames; the numba, shaded, to_crop and NMFC-file "
                         "figures are over all of them (default %(default)s)")
    ap.add_argument("--size", type=int, default=256,
                    help="side of the square crop rendered into, in pixels (default %(default)s)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed runs of each numba render, to_crop, write_nmfc and read_nmfc; the best one is "
                         "reported (the numpy and naive renderers run once) (default %(default)s)")
    ap.add_argument("--naive-frames", type=int, default=2,
                    help="frames rendered by the slow per-triangle baseline (capped at --frames); its frames/s "
                         "and mask agreement come from these (default %(default)s)")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                    help="ICT-FaceKit model .npz to render (default: models/ict_facekit/"
                         "ict_face_model_light_full.npz under $HEADFLOW_SHARED, else ../shared beside the repository)")
    args = ap.parse_args(argv)
    r = bench_render(args.frames, args.size, args.repeat, args.naive_frames, model_path=args.model)
    print(f"NMFC render, ICT face area ({r['triangles']} triangles), {r['frames']} frames at "
          f"{r['size']}x{r['size']}, numba threads {r['threads']}, coverage {r['coverage']:.1%}")
    print(f"  naive per-triangle loop  {r['fps_naive']:9.1f} frames/s  (on {args.naive_frames} frames; "
          f"mask agreement with numba {r['naive_mask_agreement']:.4f})")
    print(f"  numpy (vectorised)       {r['fps_numpy']:9.1f} frames/s  (identical output: {r['numpy_equals_numba']})")
    print(f"  numba render_nmfc        {r['fps_numba']:9.1f} frames/s  = {r['speedup_vs_naive']:.0f}x naive, "
          f"{r['speedup_vs_numpy']:.1f}x numpy   (target >= 150)")
    print(f"  numba render_shaded      {r['fps_shaded']:9.1f} frames/s")
    print(f"  to_crop                  {r['fps_to_crop']:9.1f} frames/s")
    print(f"  file: {r['file_kib_per_frame']:.1f} KiB/frame (raw {r['raw_kib_per_frame']:.0f} KiB), write "
          f"{r['write_ms_per_frame']:.2f} ms/frame, read {r['read_ms_per_frame']:.2f} ms/frame")


if __name__ == "__main__":
    main()
