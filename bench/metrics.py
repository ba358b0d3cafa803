"""Per-call cost of the evaluation metrics on 256x256 frames, with baselines measured in the same run.

    PYTHONPATH=src:. OMP_NUM_THREADS=1 python bench/metrics.py            # 8 frames, best of 3
    PYTHONPATH=src:. OMP_NUM_THREADS=1 python bench/metrics.py --frames 16 --repeat 5

Frames are skimage's astronaut portrait resized to 256x256 (the generator crop size), against a
blurred and noised copy. Each line prints milliseconds per frame (or per call) and the ratio to
its baseline: our SSIM against skimage's (same Gaussian convention, checked equal) and
pytorch-msssim's; our PSNR against skimage's; the costly per-frame metrics (CPBD, face
descriptors) against our SSIM, to show why they run on `frame_sample` frames only.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import cv2
import numpy as np


def best_ms(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of `repeat` calls, in ms (the minimum is the least disturbed by other work)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8, help="frames per clip (per-frame figures divide by this)")
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per measurement (the best is kept)")
    args = parser.parse_args()

    from skimage.data import astronaut
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from headflow.faces.dlib_backend import detect_faces, landmarks68
    from headflow.metrics import (bootstrap_ci, cpbd, face_descriptors, frechet_distance, lap_var, psnr, rgb_to_gray,
                                  ssim)

    t_frames, r = args.frames, args.repeat
    face = cv2.resize(astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    real = np.stack([np.roll(face, i, axis=1) for i in range(t_frames)])
    fake = np.clip(np.stack([cv2.GaussianBlur(f, (0, 0), 1.0) for f in real]).astype(np.int16)
                   + rng.integers(-8, 9, real.shape), 0, 255).astype(np.uint8)
    gray = rgb_to_gray(fake)
    print(f"bench/metrics.py: {t_frames} frames of 256x256x3 uint8, best of {r}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")

    rows: list[tuple[str, float, str, float | None]] = []

    def per_frame(name: str, fn: Callable[[], object], baseline: str | None = None) -> float:
        ms = best_ms(fn, r) / t_frames
        base = {n: m for n, m, _, _ in rows}.get(baseline) if baseline else None
        rows.append((name, ms, baseline or "", ms / base if base else None))
        return ms

    def sk_ssim() -> None:
        for a, b in zip(real, fake):
            structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                  data_range=255, channel_axis=-1)

    def sk_psnr() -> None:
        for a, b in zip(real, fake):
            peak_signal_noise_ratio(a, b, data_range=255)

    per_frame("skimage ssim (gaussian)", sk_ssim)
    per_frame("ssim (ours)", lambda: ssim(real, fake), "skimage ssim (gaussian)")
    try:
        import torch
        from pytorch_msssim import ssim as pm_ssim

        torch.set_num_threads(1)
        x = torch.from_numpy(real).permute(0, 3, 1, 2).float()
        y = torch.from_numpy(fake).permute(0, 3, 1, 2).float()
        per_frame("pytorch-msssim ssim (float32, 1 thread)", lambda: pm_ssim(x, y, data_range=255, size_average=False),
                  "ssim (ours)")
    except ImportError:
        print("  (pytorch-msssim not installed: skipped)")
    per_frame("skimage psnr", sk_psnr)
    per_frame("psnr (ours)", lambda: psnr(real, fake), "skimage psnr")
    per_frame("lap_var (ours)", lambda: lap_var(gray), "ssim (ours)")
    per_frame("cpbd (cpbd package)", lambda: cpbd(gray, backend="package"), "ssim (ours)")
    per_frame("cpbd (vectorised, the default)", lambda: cpbd(gray), "cpbd (cpbd package)")

    box = detect_faces(face, upsample=1)
    if box:
        b = np.array(box[0][:4], float)
        lm = np.stack([landmarks68(f, tuple(b)) for f in real])
        face_descriptors(real[:1], lm[:1])  # load the network once, outside the timing
        per_frame("face_descriptors (landmarks given)", lambda: face_descriptors(real, lm), "ssim (ours)")
        per_frame("face_descriptors (box: + 68-pt predictor)",
                  lambda: face_descriptors(real, np.repeat(b[None], t_frames, 0)), "ssim (ours)")
    else:
        print("  (no face found in the 256x256 portrait: descriptor timing skipped)")

    print(f"  {'metric':45s} {'ms/frame':>10s}  ratio")
    for name, ms, base, ratio in rows:
        rel = f"{ratio:8.2f}x {base}" if ratio is not None else "  (baseline)"
        print(f"  {name:45s} {ms:10.2f}  {rel}")

    feats_a = rng.normal(size=(100, 128))
    feats_b = rng.normal(size=(100, 128)) + 0.1
    ms_fd = best_ms(lambda: frechet_distance(feats_a, feats_b), r)
    clips = rng.normal(size=500)
    ms_boot = best_ms(lambda: bootstrap_ci(clips, n_boot=1000), r)
    print(f"  {'frechet_distance, 100 vs 100 x 128-d':45s} {ms_fd:10.2f}  ms/call")
    print(f"  {'bootstrap_ci, 500 clips, 1000 resamples':45s} {ms_boot:10.2f}  ms/call")


if __name__ == "__main__":
    main()
