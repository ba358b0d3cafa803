"""Held-out accuracy of the lip-sync expert split by negative type (which negatives it gets wrong).

    PYTHONPATH=src:. python bench/expert_negatives.py --data ../main/data --set threads=1 min_shift=8
    PYTHONPATH=src:. python bench/expert_negatives.py --data ../main/data --loso t1_3 --keep /tmp/run1
    PYTHONPATH=src:. python bench/expert_negatives.py --data ../main/data --checkpoint /tmp/run1/last.pt

Trains like `bench/expert.py` (or loads `--checkpoint`), then scores *every* pair of held-out windows
of a speaker exhaustively (one embedding per window, a similarity matrix per clip pair), so the
figures have no sampling noise of the pairs (only the training's). Reports, at threshold 0.5:

- TPR on every aligned window;
- TNR of same-clip negatives by |shift| (frames): 1-2, 3-4, 5-7, 8-15, 16+; and of other clips of
  the same speaker (the `SyncPairs` other-clip negatives);
- balanced accuracy under the `SyncPairs` definition for min_shift 5, 8, 12 (negatives half other
  clip, half same clip at least min_shift away, each window weighted equally), whatever min_shift
  the model was trained with; and the stage's own sampled figure (the last epoch's val bacc).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import torch

from bench.expert import load, parse_overrides, with_overrides
from headflow import params as P
from headflow.sync.data import audio_window, face_window, prepare_clip, window_starts
from headflow.sync.train import load_expert, train_expert
from headflow.sync.train_expert import EXPERT_TRAIN_SPLITS

BUCKETS = [(1, 2), (3, 4), (5, 7), (8, 15), (16, 10**6)]
QUIET_DB = -3.0          # mean log-mel of a silent frame is about -3.4 in the demo's mels, speech -2 .. -0.5
QUIET_SHARE = 0.5        # a window is "quiet" when at least this share of its 16 mel frames is silent


def quiet_windows(clip, starts: np.ndarray) -> np.ndarray:
    """(n,) bool: windows whose mel window is mostly silence (pauses, leading and trailing silence)."""
    return np.array([(audio_window(clip, f)[0].mean(0) < QUIET_DB).mean() >= QUIET_SHARE for f in starts])


@torch.no_grad()
def embed(model, clip) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    starts = window_starts(clip)
    fe, ae = [], []
    for i in range(0, len(starts), 128):
        fs = starts[i:i + 128]
        face = torch.from_numpy(np.stack([face_window(clip, f) for f in fs]))
        mel = torch.from_numpy(np.stack([audio_window(clip, f) for f in fs]))
        fe.append(model.embed_face(face))
        ae.append(model.embed_audio(mel))
    return starts, torch.cat(fe), torch.cat(ae)


def breakdown(model, held: list, min_shifts=(5, 8, 12)) -> dict:
    """Exhaustive held-out figures (see the module docstring) for clips grouped by speaker."""
    emb = {c.clip_id: embed(model, prepare_clip(model, c)) for c in held}   # as the expert sees each clip
    pos, same = [], {b: [] for b in BUCKETS}
    far = {m: [] for m in min_shifts}          # per face window: mean correct rejection of same-clip far windows
    other = []                                 # per face window: mean correct rejection of other clips' windows
    q_pos, s_pos, ss_neg, q_neg = [], [], [], []   # by silence: quiet / speech positives; speech-speech / any-quiet negatives
    for c in held:
        s, fe, ae = emb[c.clip_id]
        sim = (fe @ ae.T).numpy()              # cosine of unit vectors = the expert's P(sync)
        pos.append(np.diag(sim) > 0.5)
        q = quiet_windows(c, s)
        q_pos.append(np.diag(sim)[q] > 0.5)
        s_pos.append(np.diag(sim)[~q] > 0.5)
        neg = np.abs(s[:, None] - s[None, :]) >= 5
        both = ~q[:, None] & ~q[None, :]
        ss_neg.append(sim[neg & both] <= 0.5)
        q_neg.append(sim[neg & ~both] <= 0.5)
        d = np.abs(s[:, None] - s[None, :])
        for lo, hi in BUCKETS:
            m = (d >= lo) & (d <= hi)
            same[(lo, hi)].append((sim[m] <= 0.5))
        for ms in min_shifts:
            m = d >= ms
            rej = np.where(m, sim <= 0.5, 0).sum(1) / np.maximum(m.sum(1), 1)
            far[ms].append(rej[m.any(1)])
        others = [o for o in held if o.clip_id != c.clip_id and o.speaker == c.speaker]
        if others:
            rej = np.concatenate([(fe @ emb[o.clip_id][2].T).numpy() <= 0.5 for o in others], axis=1).mean(1)
            other.append(rej)
    tpr = float(np.concatenate(pos).mean())
    tnr_other = float(np.concatenate(other).mean()) if other else float("nan")
    out = {"tpr": tpr, "tnr_other_clip": tnr_other}
    cat = lambda v: np.concatenate(v) if v else np.zeros(0)
    out["quiet_share"] = float(len(cat(q_pos)) / max(len(cat(q_pos)) + len(cat(s_pos)), 1))
    out["tpr_quiet"], out["tpr_speech"] = float(cat(q_pos).mean()), float(cat(s_pos).mean())
    out["tnr5_speech_speech"], out["tnr5_any_quiet"] = float(cat(ss_neg).mean()), float(cat(q_neg).mean())
    for (lo, hi), v in same.items():
        out[f"tnr_shift_{lo}-{hi if hi < 10**6 else ''}"] = float(np.concatenate(v).mean()) if v else float("nan")
    for ms in min_shifts:
        tnr_same = float(np.concatenate(far[ms]).mean())
        tnr = 0.5 * (tnr_same + tnr_other) if other else tnr_same
        out[f"bacc_min_shift_{ms}"] = 0.5 * (tpr + tnr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("data"),
                    help="the project's data/ directory (default %(default)s)")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"),
                    help="the params file whose train_expert block is used (default %(default)s)")
    ap.add_argument("--set", nargs="*", action="extend", default=[], metavar="KEY=VALUE",
                    help="override train_expert params (loop.epochs=4 or epochs=4; repeatable)")
    ap.add_argument("--loso", default=None, help="held-out speaker (default: the split's held-out clips)")
    ap.add_argument("--keep", type=Path, default=None, help="train into this directory (kept)")
    ap.add_argument("--checkpoint", type=Path, default=None, help="evaluate this checkpoint, no training")
    args = ap.parse_args()
    params = with_overrides(P.load("train_expert", args.params), parse_overrides(args.set))
    torch.set_num_threads(params.threads)
    logging.basicConfig(level=logging.WARNING)
    clips, arrays = load(args.data)
    speaker = dict(zip(clips.clip_id, clips.speaker_id))
    split = dict(zip(clips.clip_id, clips.split))
    held_ids = [c for c in arrays if (speaker[c] == args.loso if args.loso else split[c] not in EXPERT_TRAIN_SPLITS)]
    held = [arrays[c] for c in held_ids]
    train = [a for c, a in arrays.items() if c not in held_ids]
    stage_bacc = None
    if args.checkpoint is None:
        import tempfile
        out = args.keep or Path(tempfile.mkdtemp(prefix="expert_neg_"))
        t = time.perf_counter()
        hist = train_expert(train, held, params, out, progress=False, live_dir=None)
        print(f"trained {time.perf_counter() - t:.0f}s; per-epoch sampled val bacc "
              + " ".join(f"{h['val_balanced_accuracy']:.3f}" for h in hist))
        stage_bacc = hist[-1]["val_balanced_accuracy"]
        ckpt = out / "last.pt"
    else:
        ckpt = args.checkpoint
    model = load_expert(ckpt)
    res = breakdown(model, [h for h in held if speaker[h.clip_id] != "bad"])
    print(f"held out {sorted({speaker[c] for c in held_ids})} set {args.set} sampled_val_bacc {stage_bacc}")
    print("  " + " ".join(f"{k} {v:.3f}" for k, v in res.items()), flush=True)


if __name__ == "__main__":
    main()
