"""Accuracy of the faces stage: landmark error on the demo corpus (exact ground truth), GRID stability.

    PYTHONPATH=src:. python bench/faces_accuracy.py --demo-root /tmp/clone --grid ../shared/data/grid

Demo corpus (good clips, with `<clip>.truth.npz` beside each raw clip): median landmark error in %
of the inter-ocular distance (outer eye corners 36-45) before and after smoothing, detection rate,
and the verdict on bad/two_faces.mp4. GRID: face found on every frame, rigid-point jitter on still
frames before/after smoothing, frame-to-frame crop motion before/after smoothing.
Override params with --set key=value (e.g. --set detect.every=5 --set smooth.method=one_euro).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

from headflow.config import from_dict
from headflow.faces.evaluate import landmark_error
from headflow.faces.faces import process_clip
from headflow.faces.params import FacesParams
from headflow.landmarks68 import MOUTH, inter_ocular
from headflow.manifest import Rejected


# The shared test material, found as tests/conftest.py finds it: HEADFLOW_SHARED, else ../shared beside the
# checkout (not beside the current folder).
SHARED = Path(os.environ.get("HEADFLOW_SHARED") or Path(__file__).resolve().parents[2] / "shared")


def _params(overrides: list[str]) -> FacesParams:
    data: dict = {}
    for item in overrides:
        key, value = item.split("=", 1)
        node = data
        *parents, leaf = key.split(".")
        for k in parents:
            node = node.setdefault(k, {})
        import yaml

        node[leaf] = yaml.safe_load(value)
    return from_dict(FacesParams, data, "faces")


def demo(root: Path, params: FacesParams) -> None:
    clips = pd.read_parquet(root / "data/interim/ingest/clips.parquet")
    raw = root / "data/raw/demo"
    rows = []
    for c in clips.itertuples():
        try:
            r = process_clip(root / c.video_path, params, None)
        except Rejected as rej:
            rows.append({"source_path": c.source_path, "verdict": rej.reason_code})
            continue
        truth_path = raw / Path(c.source_path).with_suffix(".truth.npz")
        row = {"source_path": c.source_path, "verdict": "accepted", "detection_rate": r.summary["detection_rate"]}
        if truth_path.exists():
            gt = np.load(truth_path)["landmarks"]
            n = min(len(gt), len(r.valid))
            v = r.valid[:n]
            row["err_raw"] = float(np.median(landmark_error(r.landmarks_raw[:n][v], gt[:n][v]))) * 100
            row["err_smooth"] = float(np.median(landmark_error(r.landmarks[:n][v], gt[:n][v]))) * 100
            iod = inter_ocular(gt[:n][v])
            for key, lm in (("mouth_raw", r.landmarks_raw), ("mouth_smooth", r.landmarks)):
                d = np.linalg.norm(lm[:n][v][:, MOUTH] - gt[:n][v][:, MOUTH], axis=-1).mean(-1) / iod
                row[key] = float(np.median(d)) * 100
            row["n_truth"], row["n_frames"] = len(gt), len(r.valid)
        rows.append(row)
    df = pd.DataFrame(rows)
    good = df[df.source_path.str.startswith("bad/") == False]  # noqa: E712
    print(df.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"\ndemo good clips: {len(good)}; median of per-clip median error: pre-smoothing "
          f"{good.err_raw.median():.2f}% IOD, post-smoothing {good.err_smooth.median():.2f}% IOD "
          f"(worst clip {good.err_raw.max():.2f} / {good.err_smooth.max():.2f}); mouth points 48-67 "
          f"{good.mouth_raw.median():.2f} -> {good.mouth_smooth.median():.2f}% IOD; detection rate mean "
          f"{good.detection_rate.mean():.3f} min {good.detection_rate.min():.3f}")
    bad = df[df.source_path.str.startswith("bad/")]
    for b in bad.itertuples():
        print(f"{b.source_path}: {b.verdict}")


def grid(folder: Path, params: FacesParams) -> None:
    rows = []
    for v in sorted(folder.glob("*.mpg")):
        r = process_clip(v, params, None)
        s = r.summary
        rows.append({"clip": v.name, "frames": s["n_frames"], "detection_rate": s["detection_rate"],
                     "still_frames": s["still_frames"], "jitter_raw_%iod": s["jitter_raw"], "jitter_%iod": s["jitter"],
                     "crop_motion_raw_px": s["crop_motion_raw"], "crop_motion_px": s["crop_motion"]})
    df = pd.DataFrame(rows)
    print(df.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"\nGRID: {len(df)} clips, every frame has a face: {bool((df.detection_rate == 1).all())}; "
          f"median jitter on still frames {df['jitter_raw_%iod'].median():.2f} -> {df['jitter_%iod'].median():.2f} % IOD; "
          f"median crop motion {df.crop_motion_raw_px.median():.2f} -> {df.crop_motion_px.median():.2f} px (256 px crop)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo-root", default=".",
                    help="project root holding data/interim/ingest and the demo's truth files (default: here)")
    ap.add_argument("--grid", default=str(SHARED / "data" / "grid"),
                    help="folder of GRID .mpg clips (default $HEADFLOW_SHARED/data/grid, else ../shared/data/grid)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a faces param, repeatable (e.g. detect.every=5)")
    args = ap.parse_args(argv)
    params = _params(args.set)
    clips = Path(args.demo_root) / "data/interim/ingest/clips.parquet"
    if clips.exists():
        demo(Path(args.demo_root), params)
    else:
        print(f"{clips} not found: demo set skipped (run `dvc repro faces` or pass --demo-root)")
    if Path(args.grid).is_dir():
        grid(Path(args.grid), params)
    else:
        print(f"{args.grid} not found: GRID set skipped (pass --grid or set HEADFLOW_SHARED)")


if __name__ == "__main__":
    main()
