"""StyleTalk on the demo: training sequences/s, generation frames/s, and the 3D-landmark figures against
two baselines, in one run.

    PYTHONPATH=src:. python bench/styletalk.py                   # trained model of data/models/styletalk
    PYTHONPATH=src:. python bench/styletalk.py --steps 10 --clips 3 --split test

Measured, on the same data:
- training: `--steps` optimiser steps (D_tem, then E_a + E_s + E_d with every term) of a fresh network of
  params.yaml's `train_styletalk` on the train split: sequences (L-frame clips) per second;
- generation: frames/s of the network alone and end to end (network, mesh, NMFC and shaded render, encode)
  on `--clips` clips;
- quality, on every reconstruction task of `--split` (the clip's own phonemes, its identity and head pose;
  style clip as generate_styletalk picks it): `m_lmd_3d` / `f_lmd_3d` = M-LMD / F-LMD (metrics.landmarks,
  pixels of the 256 aligned crop) between the 68 landmarks projected from the generated expressions and
  those projected from the clip's fitted expressions (same identity, same camera: only the expressions
  differ), `style_acc` = the style accuracy of the independent classifier trained on the train split's real
  sequences only (`styletalk.style_classifier`; generated sequences centred on their speaker's real `--split`
  clips), and `dstyle_acc` = that of D_style on each clip's middle L-frame window. Systems: `styletalk`,
  `replay` and `neutral`: the baselines generate_styletalk writes as variants `<v>+replay` / `<v>+neutral`
  (`generate.replay_expressions`, `generate.neutral_style_code`). Wins by a paired bootstrap 95% interval
  (metrics.stats.paired_bootstrap) over clips.
- the classifier on real sequences: its accuracy on the real `--split` clips and on the real val clips
  (held-out speakers), against chance (1 / number of styles) and the majority style of the training clips.
D_style is also the frozen discriminator the generator trained against, so `dstyle_acc` on generated
sequences favours StyleTalk; `style_acc` does not.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import default_collate

from headflow import params as P
from headflow.catalog import CATALOG, expert_clips
from headflow.generators.styletalk.data import StyleTalkSamples
from headflow.generators.styletalk.discriminators import SequencePatchDiscriminator
from headflow.generators.styletalk.generate import (choose_style_clip, landmarks_of, neutral_style_code, predict,
                                                    render, replay_expressions, style_code)
from headflow.generators.styletalk.geometry import mode_subsets, read_fit
from headflow.generators.styletalk.losses import StyleTalkGanStep
from headflow.generators.styletalk.style_classifier import StyleClassifier
from headflow.generators.styletalk.model import StyleTalkNet, load_model
from headflow.generators.styletalk.train import _split_rows, load_discriminators, stage_rows
from headflow.manifest import read_manifest
from headflow.media.normalize import encode_video
from headflow.metrics.landmarks import f_lmd, m_lmd
from headflow.metrics.stats import paired_bootstrap
from headflow.morphable.registry import load_model as load_morphable


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=10,
                    help="timed optimiser steps (D_tem, then the generator) of a fresh network, each on a batch of "
                         "train_styletalk's loop.batch_size train-split sequences; the training rate in "
                         "sequences/s is over these (default %(default)s)")
    ap.add_argument("--clips", type=int, default=2, help="clips for the generation speed")
    ap.add_argument("--split", default="test", help="the clips' split (default %(default)s)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default %(default)s)")
    ap.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default %(default)s)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tp, gp = P.load("train_styletalk"), P.load("generate_styletalk")
    shards_path, labels_path = CATALOG.manifest("shards", "shards"), CATALOG.manifest("shard_labels", "shard_labels")
    rows = stage_rows(shards_path, CATALOG.manifest("sync_check", "clips"), CATALOG.manifest("ingest", "clips"),
                      labels_path, ("train", "val", "test"))
    by_split, _ = _split_rows(rows[rows.split != "test"], shards_path, labels_path, tp.data.style_rule)
    model = load_morphable(tp.morphable_model)
    lower, upper = mode_subsets(model.name, model.exp_names, model.n_exp)
    d_sync, d_style, _ = load_discriminators(CATALOG.model("train_styletalk_disc", "discriminators") / "discriminators.pt")

    # -- training speed: a fresh network, every term
    torch.manual_seed(0)
    fresh = StyleTalkNet(tp.model, model.n_exp, lower, upper)
    step = StyleTalkGanStep(fresh, SequencePatchDiscriminator(model.n_exp, tp.tem), tp.loss, d_sync, d_style)
    ds = StyleTalkSamples(by_split["train"], d_style.classes, tp.data.clip_len, tp.data.style_len, tp.model.window,
                          tp.data.edge, args.steps * tp.loop.batch_size, 0)
    g_opt = torch.optim.Adam(fresh.parameters(), tp.loop.lr)
    d_opt = torch.optim.Adam(step.discriminator.parameters(), tp.loop.lr)
    w = step.weights()
    t0 = time.perf_counter()
    for i in range(args.steps):
        batch = default_collate([ds[i * tp.loop.batch_size + j] for j in range(tp.loop.batch_size)])
        d_opt.zero_grad()
        sum(w[k] * v for k, v in step.d_losses(batch).items()).backward()
        d_opt.step()
        g_opt.zero_grad()
        sum(w[k] * v for k, v in step.g_losses(batch).items()).backward()
        g_opt.step()
    train_sps = args.steps * tp.loop.batch_size / (time.perf_counter() - t0)

    # -- the trained model on the evaluation split
    net, saved = load_model(CATALOG.model("train_styletalk", "generator") / "styletalk.pt")
    style_len, edge = int(saved["params"]["data"]["style_len"]), saved["params"]["data"]["edge"]
    clips = expert_clips(CATALOG.manifest("ingest", "clips"), CATALOG.manifest("faces", "faces"),
                         CATALOG.manifest("audio_features", "audio_features"))
    clips = clips[clips.split == args.split].reset_index(drop=True)
    ev, _ = _split_rows(rows[rows.split == args.split].assign(split="val"), shards_path, labels_path, tp.data.style_rule)
    ev = {c.clip_id: c for c in ev["val"]}
    fits = read_manifest(CATALOG.manifest("fit3dmm", "fits"), "fits").set_index("clip_id")
    mean_s = neutral_style_code(net, [c.exp for c in by_split["train"]], style_len)
    # the style classifier: real training clips only; centres of the evaluation speakers from their real clips
    real = by_split["train"]
    clf = StyleClassifier(tuple(lower)).fit([c.exp for c in real], [c.style for c in real], [c.speaker for c in real],
                                            [c.valid for c in real])
    ev_real = [ev[k] for k in sorted(ev)]
    centres = clf.speaker_centres([c.exp for c in ev_real], [c.speaker for c in ev_real], [c.valid for c in ev_real])
    styles = [c.style for c in real]
    majority = max(sorted(set(styles)), key=styles.count)
    real_acc = {}
    for name, cs in ((args.split, ev_real), ("val", by_split["val"])):
        acc = clf.accuracy([c.exp for c in cs], [c.style for c in cs], [c.speaker for c in cs],
                           valids=[c.valid for c in cs])
        real_acc[name] = (acc, len(cs), float(np.mean([c.style == majority for c in cs])) if cs else float("nan"))
    scores: dict[str, dict[str, list[float]]] = {s: {"m_lmd_3d": [], "f_lmd_3d": [], "style_acc": [], "dstyle_acc": []}
                                                 for s in ("styletalk", "replay", "neutral")}
    net_s, net_frames, e2e_s, e2e_frames = 0.0, 0, 0.0, 0
    L = tp.data.clip_len
    for k, cid in enumerate(sorted(ev)):
        c = ev[cid]
        sid = choose_style_clip(cid, clips, gp.style_source)
        style = ev.get(sid, c)
        fit = read_fit(fits.at[cid, "fit_path"])
        frames = np.arange(1, c.n_frames)                    # scored from frame 1, as the evaluate stage
        t0 = time.perf_counter()
        pred = predict(net, c.phones, frames, style_code(net, style.exp, style_len), edge)
        t_net = time.perf_counter() - t0
        net_s += t_net
        net_frames += len(frames)
        if k < args.clips:
            t1 = time.perf_counter()
            out = render(model, fit, pred, frames)
            encode_video(out["shaded"], Path(tempfile.gettempdir()) / "bench_styletalk.mp4", fps=25, threads=1)
            e2e_s += t_net + time.perf_counter() - t1
            e2e_frames += len(frames)
        systems = {"styletalk": pred, "replay": replay_expressions(style.exp, frames),
                   "neutral": predict(net, c.phones, frames, mean_s, edge)}
        gt = landmarks_of(model, fit, fit["exp_coeffs"][frames], frames)
        mid = max(0, (len(frames) - L) // 2)
        for name, exp in systems.items():
            lm = landmarks_of(model, fit, exp, frames)
            scores[name]["m_lmd_3d"].append(m_lmd(lm, gt))
            scores[name]["f_lmd_3d"].append(f_lmd(lm, gt))
            with torch.no_grad():
                logits = d_style(torch.from_numpy(np.ascontiguousarray(exp[mid:mid + L], np.float32))[None])
            scores[name]["dstyle_acc"].append(float(d_style.classes[int(logits.argmax())] == c.style))
            scores[name]["style_acc"].append(float(clf.predict([exp], [c.speaker], centres)[0] == c.style))
    print(f"training: {train_sps:.2f} sequences/s ({tp.loop.batch_size} x {L} frames per step, {args.steps} steps, "
          f"{args.threads} thread(s))")
    print(f"generation: network {net_frames / net_s:.1f} frames/s; network + mesh + NMFC + shaded render + encode "
          f"{e2e_frames / e2e_s:.1f} frames/s ({args.clips} clips)")
    print(f"style classifier (fitted on {len(real)} real train clips, {len(clf.classes)} styles, chance "
          f"{1 / len(clf.classes):.3f}, majority style '{majority}'):")
    for name, (acc, n, maj) in real_acc.items():
        print(f"  real {name} clips: accuracy {acc:.3f} on {n} clips (always '{majority}': {maj:.3f})")
    print(f"quality on {len(ev)} {args.split} clips (reconstruction; mean, lower is better for LMD):")
    for name, s in scores.items():
        print(f"  {name:10s} " + "  ".join(f"{m} {np.nanmean(v):.3f}" for m, v in s.items()))
    for base in ("replay", "neutral"):
        for metric, higher in (("m_lmd_3d", False), ("f_lmd_3d", False), ("style_acc", True), ("dstyle_acc", True)):
            r = paired_bootstrap(np.array(scores["styletalk"][metric]), np.array(scores[base][metric]), args.n_boot,
                                 higher_is_better=higher)
            print(f"  styletalk - {base:8s} {metric:9s} diff {r.diff:+.3f} [{r.low:+.3f}, {r.high:+.3f}] winner {r.winner}")


if __name__ == "__main__":
    main()
