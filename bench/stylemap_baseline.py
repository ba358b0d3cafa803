"""Which landmark baseline: the similarity or the affine warp of the source crop, against the real crops.

    PYTHONPATH=src:. python bench/stylemap_baseline.py [--split test] [--data data]

For every clip of the split: the first frame with landmarks (the source) warped onto each later frame with
landmarks by the least-squares similarity and affine of their 68 crop landmarks
(`headflow.generators.stylemap.affine.warp_source`), and the unwarped source, each scored by PSNR over the
whole 256 aligned crop against the real crop of that frame; per clip the mean over frames. A quick check of
`generate_stylemap.landmark_baseline`'s default, not the evaluation (which scores the 96 face crop and more).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from headflow.generators.stylemap.affine import warp_source
from headflow.shards import read_clip


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-frame PSNR (dB) of uint8 frames (T, H, W, 3) against (T, H, W, 3) (or one broadcast frame)."""
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean(axis=(-3, -2, -1))
    return 10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-12))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="test", help="the clips' split (default %(default)s)")
    ap.add_argument("--data", default="data", help="the project's data/ directory (default %(default)s)")
    a = ap.parse_args()
    data = Path(a.data)
    clips = pd.read_parquet(data / "interim/ingest/clips.parquet")
    shards = set(pd.read_parquet(data / "interim/shards/shards.parquet").clip_id)
    ids = sorted(set(clips[clips.split == a.split].clip_id) & shards)
    res: dict[str, list[float]] = {"similarity": [], "affine": [], "unwarped source": []}
    for c in ids:
        crop = read_clip(c, ("crop256",), root=data / "interim/shards").crop256
        ok = np.flatnonzero(np.isfinite(crop.landmarks).all((1, 2)))
        if len(ok) < 2:
            continue
        s, later = ok[0], ok[1:]
        real = crop.pixels[later]
        for kind in ("similarity", "affine"):
            res[kind].append(float(psnr(warp_source(crop.pixels[s], crop.landmarks[s], crop.landmarks[later], kind),
                                        real).mean()))
        res["unwarped source"].append(float(psnr(real, crop.pixels[s][None]).mean()))
    for name, v in res.items():
        print(f"{name:16s} PSNR over the 256 crop: mean of {len(v)} clips {np.mean(v):.2f} dB")
    d = np.array(res["similarity"]) - np.array(res["affine"])
    print(f"similarity - affine: {d.mean():+.2f} dB, similarity higher on {(d > 0).sum()} of {len(d)} clips")


if __name__ == "__main__":
    main()
