"""Benchmark the lip-sync expert on the demo's shards (read only), with the stage's own settings.

    PYTHONPATH=src:. python bench/expert.py                        # params.yaml `train_expert`, split held-out speaker
    PYTHONPATH=src:. python bench/expert.py --set epochs=4 width=0.25   # override any train_expert param: a
        # dotted path (loop.epochs, model.width) or a field name that occurs once in the block (epochs, width)
    PYTHONPATH=src:. python bench/expert.py --loso                 # leave-one-speaker-out over all speakers
    PYTHONPATH=src:. python bench/expert.py --data /path/to/data   # another project's data/ (default: ./data)
    PYTHONPATH=src:. python bench/expert.py --set face_centre=none audio_centre=none face_input=motion \\
        audio_input=norm                                           # the window-normalised inputs of before
    PYTHONPATH=src:. python bench/expert.py --save /tmp/x         # keep the checkpoint(s)
    PYTHONPATH=src:. python bench/expert.py --checkpoint A.pt B.pt C.pt   # score trained experts (no training):
        # held-out balanced accuracy plain and mirror-averaged, on each run's own validation pairs and on
        # one larger common set, with the seeds' mean and sample sd; on a corpus with styles (the demo),
        # the common pairs also by the speaking style of the pair's face clip

Trains into a temporary directory on the training speakers and prints, per epoch, the balanced
accuracy / TPR / TNR of fixed pairs of the held-out speaker(s), then offset recovery of the last
epoch's model on held-out clips whose audio is shifted by -10, -5, +5, +10 frames
(`headflow.sync.train_expert.evaluate_offsets`). Never selects anything on the held-out speaker.

Test-time averaging (issue 16): besides the plain balanced accuracy, every run prints it with the
horizontal mirror averaged in (`headflow.sync.train.evaluate(mirror=True)`), on the same pairs. The
mirror was chosen before measuring (training draws mirrored windows half of the time, so both views are
in the training distribution); no other test-time variant was tried on the held-out speaker.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path
from typing import get_type_hints

import numpy as np
import pandas as pd
import torch
import yaml

from headflow import params as P
from headflow.config import from_dict
from headflow.shards import read_clip
from headflow.sync.data import SyncPairs, clip_arrays, prepare_clip
from headflow.sync.params import TrainExpertParams
from headflow.sync.train_expert import EXPERT_TRAIN_SPLITS, evaluate_offsets
from headflow.sync.train import evaluate, load_expert, train_expert
from headflow.training.checkpoint import load_checkpoint

COMMON_PAIRS, COMMON_SEED = 8192, 1000
"""The larger pair set every checkpoint is also scored on (`--checkpoint`): the same pairs for all seeds."""


def load(data: Path):
    """The shards manifest and the expert's arrays of every shard (`dvc repro shards`: data/interim/shards)."""
    manifest = data / "interim/shards/shards.parquet"
    if not manifest.exists():
        raise SystemExit(f"no shards under {data}/interim/shards: run `dvc repro shards` first")
    clips = pd.read_parquet(manifest)
    arrays = {r.clip_id: clip_arrays(read_clip(r.clip_id, views=("face96", "mel"), root=data / "interim/shards"))
              for r in clips.itertuples()}
    return clips, arrays


def clip_styles(data: Path) -> dict[str, str]:
    """Each clip's speaking style from ingest's clips.parquet (the demo corpus's ground-truth styles;
    {} for a corpus without a `style` column)."""
    path = data / "interim/ingest/clips.parquet"
    if not path.exists():
        return {}
    clips = pd.read_parquet(path)
    if "style" not in clips.columns:
        return {}
    return {c: s for c, s in zip(clips.clip_id, clips["style"]) if isinstance(s, str) and s}


def pair_styles(pairs: SyncPairs, styles: dict[str, str]) -> list[str | None] | None:
    """The style of each pair's face clip (`SyncPairs.face_clip`), None where unknown; None without styles."""
    if not styles:
        return None
    return [styles.get(pairs.clips[pairs.face_clip(i)].clip_id) for i in range(len(pairs))]


def print_styles(result: dict, indent: str = "    ") -> None:
    """One line per style of `evaluate(..., groups=...)`'s breakdown."""
    for style, r in result.get("by_group", {}).items():
        print(f"{indent}{style:12s} bacc {r['balanced_accuracy']:.3f} tpr {r['tpr']:.3f} tnr {r['tnr']:.3f} "
              f"({r['n_pos']} + {r['n_neg']} pairs)", flush=True)


def leaf_paths(cls: type, prefix: str = "") -> list[str]:
    """Dotted names of every setting of a params dataclass (nested dataclasses expanded)."""
    hints = get_type_hints(cls)
    return [p for f in fields(cls) for p in (leaf_paths(hints[f.name], f"{prefix}{f.name}.")
                                             if is_dataclass(hints[f.name]) else [f"{prefix}{f.name}"])]


def parse_overrides(items: list[str]) -> dict:
    """{dotted path: value} from KEY=VALUE items; a bare key must name exactly one setting (epochs -> loop.epochs)."""
    paths = leaf_paths(TrainExpertParams)
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        matches = [p for p in paths if p == key or p.endswith(f".{key}")]
        if len(matches) != 1:
            raise SystemExit(f"--set {item}: {key!r} names {len(matches)} train_expert params {matches or ''}; "
                             f"use one of {paths}")
        out[matches[0]] = _value(value)
    return out


def _value(text: str):
    """A YAML scalar or list; numbers YAML 1.1 reads as strings (3e-4) become floats."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def with_overrides(params: TrainExpertParams, overrides: dict) -> TrainExpertParams:
    """`params` with the dotted overrides applied, type-checked and validated as params.yaml would be."""
    data = asdict(params)
    for path, value in overrides.items():
        *parents, leaf = path.split(".")
        node = data
        for p in parents:
            node = node[p]
        node[leaf] = value
    return from_dict(TrainExpertParams, data, "train_expert")


def run(train, held, params: TrainExpertParams, save: Path | None = None, styles: dict[str, str] | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = save or Path(tmp)
        t = time.perf_counter()
        hist = train_expert(train, held, params, out, progress=False, live_dir=None)
        secs = time.perf_counter() - t
        model = load_expert(out / "last.pt")
    for h in hist:
        print(f"  epoch {h['epoch']:2d} loss {h['train_loss']:.3f} held-out loss {h['val_loss']:.3f} "
              f"bacc {h['val_balanced_accuracy']:.3f} tpr {h['val_tpr']:.3f} tnr {h['val_tnr']:.3f} "
              f"{h['samples_per_s']:.0f} samples/s wait {h['data_wait_fraction']:.3f} "
              f"aug {h['prepare_fraction']:.3f}", flush=True)
    pairs = SyncPairs([prepare_clip(model, c) for c in held], params.val_samples, params.loop.seed + 1,
                      params.min_shift, params.other_clip_fraction)
    groups = pair_styles(pairs, styles or {})
    for mirror in (False, True):
        res = evaluate(model, pairs, params.loop.batch_size, mirror=mirror, groups=groups)
        tail = ", by the style of the pair's face clip:" if groups else ""
        print(f"  held-out bacc{' mirror-averaged' if mirror else ''} {res['balanced_accuracy']:.3f} "
              f"(the validation pairs){tail}", flush=True)
        print_styles(res)
    mirrored = res["balanced_accuracy"]
    ev, _ = evaluate_offsets(model, held, params)
    sh = ev[ev.applied_shift != 0]
    rec = float((sh.recovered_offset == sh.applied_shift).mean())
    zero = float((ev[ev.applied_shift == 0].recovered_offset == 0).mean())
    out = {"bacc": hist[-1]["val_balanced_accuracy"], "bacc_mirror": mirrored, "offset_recovery": rec, "unshifted_zero": zero,
           "train_s": secs, "samples_per_s": float(np.mean([h["samples_per_s"] for h in hist])),
           "data_wait_fraction": float(np.mean([h["data_wait_fraction"] for h in hist]))}
    print(f"  => bacc {out['bacc']:.3f} offset recovery {rec:.3f} unshifted@0 {zero:.3f} train {secs:.0f}s",
          flush=True)
    return out


def score_checkpoints(paths: list[Path], held, batch_size: int = 256, common_pairs: int = COMMON_PAIRS,
                      styles: dict[str, str] | None = None) -> list[dict]:
    """Held-out balanced accuracy of trained experts, plain and mirror-averaged, on (a) each run's own
    validation pairs (SyncPairs with the run's seed + 1, as training scored them) and (b) `COMMON_PAIRS`
    pairs drawn with `COMMON_SEED`, the same for every checkpoint. Prints a row per checkpoint and the
    mean and sample sd over them; with `styles` (clip id -> speaking style), the common pairs broken
    down by the style of the pair's face clip as well."""
    rows = []
    for path in paths:
        fam = load_checkpoint(path, "cpu")["settings"]
        loop, settings = fam["loop"], fam["family"]
        model = load_expert(path)
        clips = [prepare_clip(model, c) for c in held]
        row = {"checkpoint": str(path), "seed": loop["seed"]}
        by_style = {}
        for name, n, seed in (("own", settings["val_samples"], loop["seed"] + 1), ("common", common_pairs, COMMON_SEED)):
            pairs = SyncPairs(clips, n, seed, settings["min_shift"], settings["other_clip_fraction"])
            groups = pair_styles(pairs, styles or {}) if name == "common" else None
            for mirror in (False, True):
                key = f"{name}{'_mirror' if mirror else ''}"
                res = evaluate(model, pairs, batch_size, mirror=mirror, groups=groups)
                row[key] = res["balanced_accuracy"]
                for style, r in res.get("by_group", {}).items():
                    row[f"{key}:{style}"] = r["balanced_accuracy"]
                    by_style.setdefault(style, {})[mirror] = r
        rows.append(row)
        print(f"  {path}: seed {row['seed']} own pairs {row['own']:.3f} -> mirror {row['own_mirror']:.3f}; "
              f"{common_pairs} common pairs {row['common']:.3f} -> mirror {row['common_mirror']:.3f}", flush=True)
        for style, r in by_style.items():
            print(f"    {style:12s} common pairs {r[False]['balanced_accuracy']:.3f} -> mirror "
                  f"{r[True]['balanced_accuracy']:.3f} ({r[True]['n_pos']} + {r[True]['n_neg']} pairs)", flush=True)
    if len(rows) > 1:
        keys = ["own", "own_mirror", "common", "common_mirror"]
        keys += sorted({k for r in rows for k in r if ":" in k}, key=lambda k: (k.split(":")[1], k))
        for key in keys:
            v = np.array([r.get(key, np.nan) for r in rows])
            print(f"  {key:26s} mean {np.nanmean(v):.3f} sd {np.nanstd(v, ddof=1):.3f} over {len(v)} checkpoints",
                  flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("data"), help="the project's data/ directory")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"),
                    help="the params file whose train_expert block is used (default %(default)s)")
    ap.add_argument("--set", nargs="*", action="extend", default=[], metavar="KEY=VALUE",
                    help="override train_expert params (loop.epochs=4 or epochs=4; repeatable)")
    ap.add_argument("--loso", nargs="*", default=None, help="held-out speakers (leave-one-out); default: the split")
    ap.add_argument("--save", type=Path, default=None, help="keep the (last fold's) checkpoints in this folder")
    ap.add_argument("--checkpoint", type=Path, nargs="+", default=None,
                    help="score these trained experts on the held-out split instead of training")
    args = ap.parse_args()
    params = with_overrides(P.load("train_expert", args.params), parse_overrides(args.set))
    torch.set_num_threads(params.threads)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    for name in ("headflow.expert", "headflow.training"):
        logging.getLogger(name).setLevel(logging.INFO)
    clips, arrays = load(args.data)
    speaker = dict(zip(clips.clip_id, clips.speaker_id))
    if args.checkpoint:
        split = dict(zip(clips.clip_id, clips.split))
        score_checkpoints(args.checkpoint, [arrays[c] for c in arrays if split[c] not in EXPERT_TRAIN_SPLITS],
                          styles=clip_styles(args.data))
        return
    print(params, flush=True)
    if args.loso is None:
        split = dict(zip(clips.clip_id, clips.split))
        folds = [[c for c in arrays if split[c] not in EXPERT_TRAIN_SPLITS]]
    else:
        names = args.loso or sorted(set(speaker[c] for c in arrays))
        folds = [[c for c in arrays if speaker[c] == s] for s in names]
    results = []
    for held_ids in folds:
        held = [arrays[c] for c in held_ids]
        train = [a for c, a in arrays.items() if c not in held_ids]
        print(f"held out: {sorted(set(speaker[c] for c in held_ids))} ({len(held)} clips, {len(train)} train)")
        save = args.save / "_".join(sorted(set(speaker[c] for c in held_ids))) if args.save else None
        results.append(run(train, held, params, save, styles=clip_styles(args.data)))
    if len(results) > 1:
        b = [r["bacc"] for r in results]
        print(f"LOSO over {len(results)} speakers: bacc mean {np.mean(b):.3f} min {np.min(b):.3f} max {np.max(b):.3f}; "
              f"offset recovery mean {np.mean([r['offset_recovery'] for r in results]):.3f} "
              f"min {np.min([r['offset_recovery'] for r in results]):.3f}")


if __name__ == "__main__":
    main()
