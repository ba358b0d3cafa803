"""Benchmark the lip-sync expert on the precomputed demo shards (read only).

    PYTHONPATH=src:. python bench/expert.py --face-input motion --epochs 8
    PYTHONPATH=src:. python bench/expert.py --loso          # leave-one-speaker-out over several speakers

Trains into a temporary directory on the training speakers and prints, per epoch, the balanced
accuracy / TPR / TNR of fixed pairs of the held-out speaker(s), then offset recovery of the last
epoch's model on held-out clips whose audio is shifted by -10, -5, +5, +10 frames
(`headflow.sync.stage.evaluate_offsets`). Never selects anything on the held-out speaker.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from headflow.sync.model import ExpertConfig
from headflow.sync.params import TrainExpertParams
from headflow.sync.shards import load_shard
from headflow.sync.stage import evaluate_offsets
from headflow.sync.train import TrainConfig, load_expert, train_expert

DATA = Path("data/interim")  # run from the project root after `dvc repro train_expert`


def load(cmvn: bool):
    clips = pd.read_parquet(DATA / "ingest/clips.parquet")
    arrays = {}
    for r in clips.itertuples():
        path = DATA / "train_expert/shards" / f"{r.clip_id}.npz"
        if path.exists():
            a = load_shard(path, r.clip_id, speaker=r.speaker_id)
            if cmvn:
                a.mel = ((a.mel - a.mel.mean(0)) / (a.mel.std(0) + 1e-3)).astype(np.float32)
            arrays[r.clip_id] = a
    return clips, arrays


def run(train, held, args) -> dict:
    cfg = TrainConfig(model=ExpertConfig(args.width, args.depth, args.face_input, args.audio_input, args.dropout),
                      epochs=args.epochs, samples_per_epoch=args.samples, val_samples=1024,
                      batch_size=args.batch, lr=args.lr, warmup_steps=50, min_shift=5,
                      other_clip_fraction=0.5, augment=not args.no_augment, seed=args.seed,
                      weight_decay=args.wd)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        hist = train_expert(train, held, cfg, Path(tmp), progress=False)
        secs = time.perf_counter() - t
        model = load_expert(Path(tmp) / "last.pt")
    for h in hist:
        print(f"  epoch {h['epoch']:2d} loss {h['train_loss']:.3f} held-out bacc {h['val_balanced_accuracy']:.3f} "
              f"tpr {h['val_tpr']:.3f} tnr {h['val_tnr']:.3f}", flush=True)
    ev, _ = evaluate_offsets(model, held, TrainExpertParams())
    sh = ev[ev.applied_shift != 0]
    rec = float((sh.recovered_offset == sh.applied_shift).mean())
    zero = float((ev[ev.applied_shift == 0].recovered_offset == 0).mean())
    out = {"bacc": hist[-1]["val_balanced_accuracy"], "offset_recovery": rec, "unshifted_zero": zero,
           "train_s": secs}
    print(f"  => bacc {out['bacc']:.3f} offset recovery {rec:.3f} unshifted@0 {zero:.3f} train {secs:.0f}s",
          flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--depth", type=int, default=1)
    ap.add_argument("--face-input", default="rgb")
    ap.add_argument("--audio-input", default="raw")
    ap.add_argument("--cmvn", action="store_true", help="per-clip mel CMVN")
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--samples", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-augment", action="store_true")
    ap.add_argument("--loso", nargs="*", default=None, help="held-out speakers (leave-one-out); default: the split")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logging.getLogger("headflow.expert").setLevel(logging.INFO)
    clips, arrays = load(args.cmvn)
    speaker = dict(zip(clips.clip_id, clips.speaker_id))
    print(vars(args), flush=True)
    if args.loso is None:
        split = dict(zip(clips.clip_id, clips.split))
        folds = [[c for c in arrays if split[c] != "train"]]
    else:
        names = args.loso or sorted(set(speaker[c] for c in arrays))
        folds = [[c for c in arrays if speaker[c] == s] for s in names]
    results = []
    for held_ids in folds:
        held = [arrays[c] for c in held_ids]
        train = [a for c, a in arrays.items() if c not in held_ids]
        print(f"held out: {sorted(set(speaker[c] for c in held_ids))} ({len(held)} clips, {len(train)} train)")
        results.append(run(train, held, args))
    if len(results) > 1:
        print("mean bacc %.3f offset recovery %.3f" % (np.mean([r["bacc"] for r in results]),
                                                     np.mean([r["offset_recovery"] for r in results])))


if __name__ == "__main__":
    main()
