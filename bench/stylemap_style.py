"""Style moved? A clip-level style classifier trained on real frames only, applied to generate_stylemap's videos.

    PYTHONPATH=src:. python bench/stylemap_style.py [--features landmarks|pixels] [--landmarks refit|faces]
        [--data data]

Two classifiers (scikit-learn logistic regression on standardised features), trained on the real
train-split clips with ingest's `style` labels:

* `landmarks` (default): the 21 geometric style features of `headflow.metrics.style` (mouth opening, width,
  corner lift, jaw drop, brow raise over the clip, in inter-ocular distances) from 68 landmarks, z-scored
  per speaker against that speaker's own clips (`speaker_normalise`, no labels used), so it can judge an
  unseen speaker. `--landmarks refit` (default): dlib's 68 landmarks re-fitted on every 256 crop inside the
  box of the shards' landmarks of that frame, the pipe the generated outputs go through too (a classifier
  trained on other landmarks does not transfer: the faces stage's landmarks are smoothed); `faces`: the
  faces stage's landmarks (real clips only; outputs are then measured through the re-fit pipe all the same).
* `pixels`: the per-pixel mean and temporal standard deviation of 32x32 grey lower-face crops (rows 128-255
  of the 256 aligned crop): it learns the training speakers' faces.

Printed first, before any generated output: accuracy on the real val (t1_3) and test (t1_2) speakers, both
unseen in training, leave-one-speaker-out accuracy over all real clips, and the majority-class rate (chance
is not 1 / styles: half the clips are neutral). Then on the outputs: transfer outputs against the style
reference's label (style moved) and against the source clip's label (style kept, which transfer should
not), with the paired bootstrap interval of the difference over the outputs, and reconstruction outputs
against their own clip's label. For the landmark classifier, outputs go through the re-fit
pipe in the driving frame's landmark box, each output normalised by its source speaker's real clips
measured the same way; with `--landmarks faces` the real test clips through that pipe are printed as a check.
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

from headflow.faces.dlib_backend import landmarks68
from headflow.media.normalize import read_frames
from headflow.metrics.stats import paired_bootstrap
from headflow.metrics.style import clip_style_features, speaker_normalise
from headflow.metrics.transfer import landmark_box
from headflow.shards import read_clip


def pixel_features(frames: np.ndarray) -> np.ndarray:
    """(T, 256, 256, 3) uint8 aligned crops -> (2048,) mean and std over time of 32x32 grey lower faces."""
    lower = np.stack([cv2.resize(cv2.cvtColor(f[128:], cv2.COLOR_RGB2GRAY), (32, 32), interpolation=cv2.INTER_AREA)
                      for f in frames]).astype(np.float32) / 255.0
    return np.concatenate([lower.mean(0).ravel(), lower.std(0).ravel()])


def refit_features(frames: np.ndarray, boxes_from: np.ndarray) -> np.ndarray:
    """Style features of 256-crop frames from dlib landmarks re-fitted in each frame's box (`boxes_from`:
    (T, 68, 2) landmarks whose extent is the box; frames whose box is not finite are skipped)."""
    ok = np.isfinite(boxes_from).all((1, 2))
    lm = np.full((len(frames), 68, 2), np.nan)
    for t in np.flatnonzero(ok):
        lm[t] = landmarks68(frames[t], tuple(landmark_box(boxes_from[t])))
    return clip_style_features(lm, ok)


def classifier() -> object:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, C=1.0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data", help="the project's data/ directory (default %(default)s)")
    ap.add_argument("--features", choices=("landmarks", "pixels"), default="landmarks",
                    help="what the classifier sees per clip: landmarks = the 21 speaker-normalised geometric style "
                         "features, pixels = mean and temporal std of 32x32 grey lower-face crops "
                         "(default %(default)s)")
    ap.add_argument("--landmarks", choices=("refit", "faces"), default="refit",
                    help="with --features landmarks, where the real clips' landmarks come from: refit = dlib "
                         "re-fitted on each 256 crop (the generated outputs' pipe), faces = the faces stage's "
                         "landmarks.parquet; the outputs are re-fitted either way (default %(default)s)")
    a = ap.parse_args()
    data = Path(a.data)
    shards_root, labels_root = data / "interim/shards", data / "interim/shard_labels"
    clips = pd.read_parquet(data / "interim/ingest/clips.parquet")
    clips = clips[clips["style"].notna()]
    shards = set(pd.read_parquet(data / "interim/shards/shards.parquet").clip_id)
    clips = clips[clips.clip_id.isin(shards)].sort_values("clip_id").reset_index(drop=True)
    style = clips.set_index("clip_id")["style"].to_dict()
    speaker = clips.set_index("clip_id")["speaker_id"].to_dict()

    crops: dict[str, object] = {}

    def crop(c: str):
        if c not in crops:
            crops[c] = read_clip(c, ("crop256",), root=shards_root, labels_root=labels_root).crop256
        return crops[c]

    refit: dict[str, np.ndarray] = {}
    if a.features == "landmarks" and a.landmarks == "refit":
        for c in clips.clip_id:
            refit[c] = refit_features(crop(c).pixels, crop(c).landmarks)
            crops.pop(c)
        x_all = speaker_normalise(np.stack([refit[c] for c in clips.clip_id]), clips.speaker_id.to_numpy())
    elif a.features == "landmarks":
        lms = pd.read_parquet(data / "interim/faces/landmarks.parquet")
        feats = {}
        for cid, g in lms[lms.clip_id.isin(style)].groupby("clip_id"):
            g = g.sort_values("frame")
            lm = np.stack([np.asarray(x, np.float64).reshape(68, 2) if x is not None else np.full((68, 2), np.nan)
                           for x in g.landmarks])
            feats[cid] = clip_style_features(lm, g.valid.to_numpy(bool))
        x_all = np.stack([feats[c] for c in clips.clip_id])
        x_all = speaker_normalise(x_all, clips.speaker_id.to_numpy())
    else:
        x_all = np.stack([pixel_features(read_clip(c, ("crop256",), root=shards_root).crop256.pixels)
                          for c in clips.clip_id])
    y_all, spk_all, split = clips["style"].to_numpy(), clips.speaker_id.to_numpy(), clips.split.to_numpy()
    train = split == "train"
    clf = classifier().fit(x_all[train], y_all[train])
    styles = sorted(set(y_all[train]))
    name = f"{a.features} ({a.landmarks})" if a.features == "landmarks" else a.features
    print(f"{name} classifier: {train.sum()} real train clips of {len(set(spk_all[train]))} speakers, "
          f"{len(styles)} styles")
    for s in ("val", "test"):
        m = split == s
        if m.any():
            majority = pd.Series(y_all[m]).value_counts().iloc[0] / m.sum()
            print(f"  real {s} clips ({', '.join(sorted(set(spk_all[m])))}, unseen): accuracy "
                  f"{np.mean(clf.predict(x_all[m]) == y_all[m]):.2f} ({m.sum()} clips; majority class "
                  f"{majority:.2f}, 1/styles {1 / len(styles):.2f})")
    hits = []
    for s in np.unique(spk_all):
        m = spk_all == s
        hits += list(classifier().fit(x_all[~m], y_all[~m]).predict(x_all[m]) == y_all[m])
    print(f"  leave-one-speaker-out over {len(np.unique(spk_all))} speakers: accuracy {np.mean(hits):.3f} "
          f"({len(hits)} clips; majority class {pd.Series(y_all).value_counts().iloc[0] / len(y_all):.2f})")

    gen_path = data / "interim/generate_stylemap/generated.parquet"
    if not gen_path.is_file():
        print(f"no {gen_path}: run generate_stylemap to score its outputs")
        return
    gen = pd.read_parquet(gen_path)

    def held(c: str, start: int, end: int) -> np.ndarray:
        """Frame indices [start, end) of clip c, frames without landmarks replaced by the last with them."""
        ok = np.isfinite(crop(c).landmarks).all((1, 2))
        idx = np.where(ok, np.arange(len(ok)), -1)
        idx = np.maximum.accumulate(idx)
        idx[idx < 0] = int(np.flatnonzero(ok)[0])
        return idx[start:end]

    ref_x, ref_spk = None, None
    if a.features == "landmarks":
        # the real clips of every source speaker through the outputs' pipe (dlib re-fit on the 256 crop)
        people = sorted({speaker[c] for c in gen.source_clip})
        real_ids = [c for c in clips.clip_id if speaker[c] in people]
        ref_x = np.stack([refit[c] if c in refit else refit_features(crop(c).pixels, crop(c).landmarks)
                          for c in real_ids])
        ref_spk = np.array([speaker[c] for c in real_ids])
        z = speaker_normalise(ref_x, ref_spk)
        m = np.array([split[clips.clip_id.tolist().index(c)] != "train" for c in real_ids])
        if m.any() and a.landmarks == "faces":
            print(f"  real {', '.join(people)} clips through the outputs' pipe (dlib re-fit on crop256): accuracy "
                  f"{np.mean(clf.predict(z[m]) == np.array([style[c] for c in real_ids])[m]):.2f} ({m.sum()} clips)")
    for variant in sorted(set(gen.variant)):
        for protocol in ("transfer", "reconstruction"):
            rows = gen[(gen.protocol == protocol) & (gen.variant == variant)]
            if rows.empty:
                continue
            xs = []
            for r in rows.itertuples():
                frames = np.stack(list(read_frames(r.output_path)))
                if a.features == "pixels":
                    xs.append(pixel_features(frames))
                    continue
                drv = r.driver_clip or r.source_clip
                lm = crop(drv).landmarks[held(drv, int(r.frame_start), int(r.frame_end))]
                xs.append(refit_features(frames, lm))
            x = np.stack(xs)
            if a.features == "landmarks":
                x = speaker_normalise(x, np.array([speaker[c] for c in rows.source_clip]), ref_x, ref_spk)
            pred = clf.predict(x)
            hits = {who: pred == np.array([style[c] for c in rows[f"{who}_clip"]])
                    for who in (("style", "source") if protocol == "transfer" else ("source",))}
            for who, h in hits.items():
                print(f"{variant} {protocol} outputs vs the {who}'s style: accuracy {h.mean():.2f} "
                      f"({len(rows)} videos)")
            if protocol == "transfer":
                # style moved: classified as the reference's style more often than as the source's, paired by output
                r = paired_bootstrap(hits["style"].astype(float), hits["source"].astype(float), 1000, 0)
                print(f"{variant} transfer: reference - source style rate {r.diff:+.2f} [{r.low:+.2f}, {r.high:+.2f}] "
                      f"(paired bootstrap over {r.n} outputs; moved: {r.winner == 'a'})")


if __name__ == "__main__":
    main()
