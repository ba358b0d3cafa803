"""Style moved? A clip-level style classifier trained on real frames only, applied to generate_stylemap's videos.

    PYTHONPATH=src:. python bench/stylemap_style.py

The classifier (scikit-learn logistic regression, standardised features) sees a clip as the per-pixel mean
and temporal standard deviation of its 32x32 grey lower-face crops (rows 128-255 of the 256 aligned crop,
area-resized): speaking styles differ in how much and where the mouth moves. It is trained on the real
train-split clips with ingest's `style` labels and scored on (1) the real test clips (its own accuracy:
the ceiling), (2) the transfer outputs against the style reference's label (style moved), (3) the same
outputs against the source clip's label (style kept, which transfer should not), (4) the reconstruction
outputs against their own clip's label. Chance is 1 / number of styles.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from headflow.media.normalize import read_frames
from headflow.shards import read_clip


def features(frames: np.ndarray) -> np.ndarray:
    """(T, 256, 256, 3) uint8 aligned crops -> (2048,) mean and std over time of 32x32 grey lower faces."""
    lower = np.stack([cv2.resize(cv2.cvtColor(f[128:], cv2.COLOR_RGB2GRAY), (32, 32), interpolation=cv2.INTER_AREA)
                      for f in frames]).astype(np.float32) / 255.0
    return np.concatenate([lower.mean(0).ravel(), lower.std(0).ravel()])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data")
    a = ap.parse_args()
    data = Path(a.data)
    clips = pd.read_parquet(data / "interim/ingest/clips.parquet")
    clips = clips[clips["style"].notna()]
    shards = set(pd.read_parquet(data / "interim/shards/shards.parquet").clip_id)
    style = clips.set_index("clip_id")["style"].to_dict()

    def real(split: str) -> tuple[np.ndarray, list[str]]:
        ids = sorted(set(clips[clips.split == split].clip_id) & shards)
        x = [features(read_clip(c, ("crop256",), root=data / "interim/shards").crop256.pixels) for c in ids]
        return np.stack(x), [style[c] for c in ids]

    x_train, y_train = real("train")
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1)).fit(x_train, y_train)
    x_test, y_test = real("test")
    n_styles = len(set(y_train))
    print(f"classifier: {len(y_train)} real train clips, {n_styles} styles (chance {1 / n_styles:.2f}); "
          f"real test clips accuracy {np.mean(clf.predict(x_test) == np.array(y_test)):.2f} ({len(y_test)} clips)")
    gen = pd.read_parquet(data / "interim/generate_stylemap/generated.parquet")
    for protocol, label_of in (("transfer", "driver_clip"), ("transfer", "source_clip"),
                               ("reconstruction", "source_clip")):
        rows = gen[gen.protocol == protocol]
        if rows.empty:
            continue
        x = np.stack([features(np.stack(list(read_frames(p)))) for p in rows.output_path])
        acc = np.mean(clf.predict(x) == np.array([style[c] for c in rows[label_of]]))
        print(f"{protocol} outputs vs the {label_of.replace('_clip', '')}'s style: accuracy {acc:.2f} ({len(rows)} videos)")


if __name__ == "__main__":
    main()
