"""Speed of DisCoHead on the demo's shards: training samples/s with the data wait, generation frames/s.

    PYTHONPATH=src:. python bench/discohead.py                                  # params.yaml's train_discohead
    PYTHONPATH=src:. python bench/discohead.py --head-motion tps --encoder neural_mix
    PYTHONPATH=src:. python bench/discohead.py --size 128 --width 0.25 --batch 8     # the quality network

Measured in one run, on the same data:
- training: `--steps` optimiser steps (after 2 warm-up steps) with the family's step object (L1 + the
  perceptual loss the params pick) and Adam; the time spent drawing and collating the batches (the
  DataLoader's work, eye masks and mel windows included) over the whole step = the data wait fraction;
- generation: reconstruction of `--clips` test clips, frames/s of the network alone and end to end
  (network, resize to 256, encode the output and the source-warp video with the audio).
Networks are freshly initialised (speed does not depend on the weights).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from headflow import params as P
from headflow.generators.discohead.data import DisCoHeadFrames, clip_from_shard
from headflow.generators.discohead.generate import generate_frames, write_video
from headflow.generators.discohead.losses import DisCoHeadStep
from headflow.generators.discohead.model import DisCoHeadGenerator
from headflow.manifest import read_manifest
from headflow.media.normalize import read_audio
from headflow.perceptual_weights import perceptual_from_params
from headflow.shards import read_clip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data", help="a project's data/ folder with the shards stage's outputs")
    ap.add_argument("--head-motion", choices=("affine", "tps"), help="model.head_motion (default: params.yaml)")
    ap.add_argument("--encoder", choices=("dense_motion", "neural_mix"), help="model.encoder (default: params.yaml)")
    ap.add_argument("--size", type=int, help="model.image_size")
    ap.add_argument("--width", type=float, help="model.width")
    ap.add_argument("--batch", type=int, help="loop.batch_size")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default %(default)s)")
    ap.add_argument("--steps", type=int, default=20, help="timed training steps (default %(default)s)")
    ap.add_argument("--train-clips", type=int, default=8, help="training clips loaded (default %(default)s)")
    ap.add_argument("--clips", type=int, default=2, help="test clips generated")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    p = P.load("train_discohead")
    m = p.model
    p = dataclasses.replace(p, model=dataclasses.replace(
        m, head_motion=args.head_motion or m.head_motion, encoder=args.encoder or m.encoder,
        image_size=args.size or m.image_size, width=args.width or m.width),
        loop=dataclasses.replace(p.loop, batch_size=args.batch or p.loop.batch_size))
    p.validate()
    root = Path(args.data)
    shards = read_manifest(root / "interim/shards/shards.parquet", "shards")
    train_ids = list(shards[shards.split == "train"].clip_id)[: args.train_clips]
    test_ids = list(shards[shards.split == "test"].clip_id)[: args.clips]
    load = lambda c: clip_from_shard(read_clip(c, ("crop256", "mel"), root=root / "interim/shards"), p.model.image_size)  # noqa: E731
    clips = [load(c) for c in train_ids]
    torch.manual_seed(0)
    gen = DisCoHeadGenerator(p.model)
    step = DisCoHeadStep(p, gen, perceptual_from_params(p.loss.perceptual_backend))
    weights = step.weights()
    opt = torch.optim.Adam(gen.parameters(), lr=p.loop.lr)
    ds = DisCoHeadFrames(clips, p.data, (args.steps + 2) * p.loop.batch_size, seed=0)
    loader = iter(DataLoader(ds, batch_size=p.loop.batch_size, shuffle=True))
    wait = total = 0.0
    for i in range(args.steps + 2):
        t0 = time.perf_counter()
        raw = next(loader)
        t1 = time.perf_counter()
        terms = step.g_losses(step.prepare(raw, None))
        loss = sum(weights[k] * v for k, v in terms.items())
        opt.zero_grad()
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        if i >= 2:
            wait, total = wait + t1 - t0, total + t2 - t0
    n = args.steps * p.loop.batch_size
    print(f"discohead {p.variant_name} {p.model.image_size}px width {p.model.width} batch {p.loop.batch_size} "
          f"({sum(q.numel() for q in gen.parameters()) / 1e6:.2f} M params, perceptual {step.perceptual.name}), "
          f"{args.threads} thread(s)")
    print(f"training: {n / total:.1f} samples/s, data wait {100 * wait / total:.1f}% of step time")
    gen.eval()
    clips_info = read_manifest(root / "interim/ingest/clips.parquet", "clips").set_index("clip_id")
    net_s = e2e_s = 0.0
    frames = 0
    with tempfile.TemporaryDirectory() as tmp:
        for c in test_ids:
            clip = load(c)
            t0 = time.perf_counter()
            out = generate_frames(gen, clip, clip, clip, clip, p.data.eye_margin)
            t1 = time.perf_counter()
            wav, sr = read_audio(clips_info.at[c, "audio_path"])
            for k, arr in enumerate((out.frames, out.source_warp)):
                write_video(arr, wav, sr, out.frame_start, out.frame_end, Path(tmp) / f"{c}.{k}.mp4")
            t2 = time.perf_counter()
            net_s, e2e_s = net_s + t1 - t0, e2e_s + t2 - t0
            frames += out.frame_end - out.frame_start
    print(f"generation: {frames} frames of {len(test_ids)} clips, network {frames / net_s:.1f} frames/s, "
          f"end to end (+ resize to 256 and two encodes) {frames / e2e_s:.1f} frames/s")


if __name__ == "__main__":
    main()
