"""Head pose of the trained Style Mapping network against the demo's exact poses and fit3dmm's fitted ones.

    PYTHONPATH=src:. python bench/stylemap_pose.py [--split test] [--corpus data/raw/demo]

For every frame with a face of the split's clips: the pose-expression network's decoded (yaw, pitch, roll)
(`data/models/stylemap/generator.pt`), fit3dmm's fitted angles and the constant mean pose of the training
set (stored in generator.pt), each against the demo's ground truth (the renderer's truth files, whose
angles are headflow's (yaw, -pitch, -roll), `headflow.demo.animation.rotation_matrix`), all moved into
the aligned crop (`data.crop_angles`). The truth is relative to each portrait's rest pose (a portrait may
be tilted ~30 degrees in its image, which fit3dmm's absolute angles include), so the "centred" rows
compare motion: every series minus its clip's median, against the constant (per-clip median) baseline.
Prints median and p90 absolute errors in degrees over frames x 3 angles, then the paired comparisons with
their bootstrap 95% intervals (`headflow.metrics.transfer.pose_intervals`): per clip the mean absolute error
(MAE) of a series and of its constant baseline, the clips' differences resampled (units are clips, not
frames: a clip's frames are strongly correlated). Demo corpus only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from headflow.generators.stylemap.data import crop_angles, resize_frames, to_float
from headflow.generators.stylemap.model import load_generator
from headflow.metrics.transfer import pose_intervals
from headflow.shards import read_clip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="test", help="the clips' split (default %(default)s)")
    ap.add_argument("--corpus", default="data/raw/demo",
                    help="the demo corpus with its truth files (default %(default)s)")
    ap.add_argument("--data", default="data", help="the project's data/ directory (default %(default)s)")
    ap.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default %(default)s)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    data, corpus = Path(a.data), Path(a.corpus)
    gen, meta = load_generator(data / "models/stylemap/generator.pt")
    size = gen.params.image_size
    truth_of = pd.read_parquet(corpus / "corpus.parquet").set_index("source_path").truth_path.to_dict()
    clips = pd.read_parquet(data / "interim/ingest/clips.parquet")
    shards = pd.read_parquet(data / "interim/shards/shards.parquet")
    ids = sorted(set(clips[clips.split == a.split].clip_id) & set(shards.clip_id))
    src = clips.set_index("clip_id").source_path.to_dict()
    errs: dict[str, list[np.ndarray]] = {"network": [], "fit3dmm": [], "mean pose": [], "network centred": [],
                                         "fit3dmm centred": [], "constant centred": []}
    paired: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {
        "network vs mean pose (exact truth)": [], "network vs mean pose (fit3dmm)": [],
        "network centred vs constant": [], "fit3dmm centred vs constant": []}
    for c in ids:
        truth_path = truth_of.get(src[c])
        if not isinstance(truth_path, str):
            continue
        shard = read_clip(c, ("crop256", "expressions"), root=data / "interim/shards",
                          labels_root=data / "interim/shard_labels")
        crop, expr = shard.crop256, shard.expressions
        n = min(len(crop.pixels), len(expr.angles))
        ok = np.asarray(shard.valid[:n], bool) & np.isfinite(crop.transform[:n]).all((1, 2)) & expr.valid[:n]
        pose = np.load(corpus / truth_path)["pose"][:n, :3].astype(np.float64)
        truth = crop_angles(pose * np.array([1.0, -1.0, -1.0]), np.nan_to_num(crop.transform[:n]))[ok]
        fitted = crop_angles(np.nan_to_num(expr.angles[:n]), np.nan_to_num(crop.transform[:n]))[ok]
        frames = resize_frames(crop.pixels[:n][ok], size)
        with torch.no_grad():
            pred = np.concatenate([gen.pose(to_float(torch.from_numpy(frames[i:i + 16]))).angles.numpy()
                                   for i in range(0, len(frames), 16)])
        errs["network"].append(np.abs(pred - truth).ravel())
        errs["fit3dmm"].append(np.abs(fitted - truth).ravel())
        errs["mean pose"].append(np.abs(np.asarray(meta["mean_pose"])[None] - truth).ravel())

        def centred(x: np.ndarray) -> np.ndarray:
            return x - np.median(x, 0, keepdims=True)

        errs["network centred"].append(np.abs(centred(pred) - centred(truth)).ravel())
        errs["fit3dmm centred"].append(np.abs(centred(fitted) - centred(truth)).ravel())
        errs["constant centred"].append(np.abs(centred(truth)).ravel())
        every = np.ones(len(truth), bool)
        paired["network vs mean pose (exact truth)"].append((pred, truth, every))
        paired["network vs mean pose (fit3dmm)"].append((pred, fitted, every))
        paired["network centred vs constant"].append((centred(pred), centred(truth), every))
        paired["fit3dmm centred vs constant"].append((centred(fitted), centred(truth), every))
    for name, e in errs.items():
        e = np.concatenate(e)
        print(f"{name:16s} vs exact pose: median {np.median(e):.2f} deg, p90 {np.percentile(e, 90):.2f} deg "
              f"({len(e) // 3} frames of {len(ids)} {a.split} clips)")
    print("paired by clip, MAE (deg), series - baseline with its bootstrap 95% interval:")
    better = {"network": "series", "mean_pose": "baseline", "none": "neither (interval contains 0)"}
    for name, clips in paired.items():
        base = np.zeros(3) if "centred" in name else np.asarray(meta["mean_pose"], np.float64)
        r = pose_intervals(clips, base, a.n_boot)
        if r:
            print(f"  {name:36s} {r['pose_mae_deg']:.2f} vs {r['baseline_pose_mae_deg']:.2f}: diff "
                  f"{r['pose_mae_diff_deg']:+.2f} [{r['pose_mae_diff_low']:+.2f}, {r['pose_mae_diff_high']:+.2f}] "
                  f"over {r['pose_clips']} clips; better: {better[r['pose_winner']]}")


if __name__ == "__main__":
    main()
