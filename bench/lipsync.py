"""Speed of the lip-sync U-Net on the demo's shards: data wait, training samples/s, generation frames/s.

    PYTHONPATH=src:. python bench/lipsync.py                       # params.yaml's train_lipsync (demo size)
    PYTHONPATH=src:. python bench/lipsync.py --width 0.25 --refs 5 # the quality configuration's network
    PYTHONPATH=src:. python bench/lipsync.py --data /path/to/data --threads 2 --steps 20 --clips 3

Measured in one run, on the same data:
- training: `--steps` optimiser steps of stage 1 (G only) and of stage 2 (D, lazy R1 every `loop.r1_every`,
  G) with the stage's own step object, weights and Adam; the time spent building and collating the
  batches (the DataLoader's work) over the time of the whole step = the data wait fraction;
- generation: frames/s end to end (decode the canonical video, the network over 5-frame chunks, paste
  back, encode with the audio) on `--clips` test clips, against decode + encode alone (the floor any
  generator pays), so the ratio says what the network and the blending cost.
The networks are freshly initialised (speed does not depend on the weights); the loss expert is a
fresh network of the `train_expert` stage's configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import default_collate

from headflow import params as P
from headflow.generators.lipsync import losses
from headflow.generators.lipsync.data import LipsyncWindows, generated_range
from headflow.generators.lipsync.generate import generate_crops, write_output
from headflow.generators.lipsync.model import LipsyncGenerator
from headflow.generators.lipsync.train import clip_from_shard, index_clips
from headflow.losses.perceptual import PerceptualLoss
from headflow.manifest import read_manifest
from headflow.media.normalize import encode_video, read_audio, read_frames
from headflow.nn.expert import SyncExpert
from headflow.shards import read_clip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data", help="a project's data/ folder with the shards stage's outputs")
    ap.add_argument("--width", type=float, help="model.width (default: params.yaml)")
    ap.add_argument("--refs", type=int, help="data.n_references (default: params.yaml)")
    ap.add_argument("--batch", type=int, help="loop.batch_size (default: params.yaml)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default %(default)s)")
    ap.add_argument("--steps", type=int, default=20, help="timed optimiser steps per stage (after 2 warm-up steps)")
    ap.add_argument("--clips", type=int, default=3, help="test clips generated")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    p = P.load("train_lipsync")
    p = dataclasses.replace(
        p, model=dataclasses.replace(p.model, width=args.width or p.model.width),
        data=dataclasses.replace(p.data, n_references=args.refs or p.data.n_references),
        loop=dataclasses.replace(p.loop, batch_size=args.batch or p.loop.batch_size))
    root = Path(args.data)
    shards = read_manifest(root / "interim/shards/shards.parquet", "shards")
    train_ids = shards.clip_id[shards.split == "train"].tolist()[:12]
    test = shards[shards.split == "test"].head(args.clips)
    audio_of = dict(read_manifest(root / "interim/ingest/clips.parquet", "clips")[["clip_id", "audio_path"]].values)
    expert_cfg = P.load("train_expert").model
    expert = SyncExpert(expert_cfg).requires_grad_(False).eval()
    clips = [clip_from_shard(read_clip(c, ("face96", "mel"), root=root / "interim/shards"), expert_cfg.audio_centre)
             for c in train_ids]
    indexes, _ = index_clips(clips, p)
    data = LipsyncWindows(indexes, p.data, 10 ** 6, seed=0)
    print(f"width {p.model.width}, {p.data.n_references} references, batch {p.loop.batch_size} windows of 5 frames, "
          f"{args.threads} thread(s), {len(indexes)} training clips")

    generator = LipsyncGenerator(p.model)
    disc = losses.build_discriminator(p.discriminator)
    perceptual = PerceptualLoss("weight_free")
    g_opt = torch.optim.Adam(generator.parameters(), p.loop.lr, betas=tuple(p.loop.betas))
    d_opt = torch.optim.Adam(disc.parameters(), p.loop.lr, betas=tuple(p.loop.betas))
    i = 0
    for stage in (1, 2):
        step = (losses.LipsyncStep(p, generator, perceptual, expert) if stage == 1
                else losses.LipsyncGanStep(p, generator, disc, perceptual, expert))
        step.sync_on = True
        w = step.weights()
        wait = total = 0.0
        for k in range(args.steps + 2):
            t0 = time.perf_counter()
            raw = default_collate([data[j] for j in range(i, i + p.loop.batch_size)])
            i += p.loop.batch_size
            t1 = time.perf_counter()
            batch = step.prepare(raw, torch.Generator().manual_seed(k))
            if stage == 2:
                d = losses.weighted_total(step.d_losses(batch), w)
                d_opt.zero_grad()
                d.backward()
                d_opt.step()
                if k % p.loop.r1_every == 0:
                    real, logits = step.d_real_logits(batch)
                    (g,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
                    d_opt.zero_grad()
                    (w["r1"] * p.loop.r1_every * g.pow(2).flatten(1).sum(1).mean()).backward()
                    d_opt.step()
            g_total = losses.weighted_total(step.g_losses(batch), w)
            g_opt.zero_grad()
            g_total.backward()
            g_opt.step()
            t2 = time.perf_counter()
            if k >= 2:
                wait += t1 - t0
                total += t2 - t0
        n = args.steps * p.loop.batch_size
        print(f"stage {stage}: {n / total:.2f} windows/s ({5 * n / total:.1f} frames/s), {total / args.steps:.3f} s/step, "
              f"data wait {100 * wait / total:.1f}% of step time")

    generator.eval()
    gen_frames = gen_s = floor_s = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for r in test.itertuples():
            t0 = time.perf_counter()
            shard = read_clip(r.clip_id, ("face96", "mel"), root=root / "interim/shards")
            clip = clip_from_shard(shard)
            frames = np.stack(list(read_frames(r.video_path)))
            wav, sr = read_audio(audio_of[r.clip_id])
            res = generate_crops(generator, clip.faces, clip.landmarks, clip.valid, clip.mel, p.data)
            s, e = write_output(frames, res, shard.face96.transform, wav, Path(tmp) / "g.mp4", sample_rate=sr)
            gen_s += time.perf_counter() - t0
            gen_frames += e - s
            t0 = time.perf_counter()
            frames = np.stack(list(read_frames(r.video_path)))
            _, end = generated_range(clip.valid, len(clip.mel))
            encode_video(iter(frames[:end]), Path(tmp) / "floor.mp4",
                         audio=wav[: int(end * sr / 25)], sample_rate=sr, threads=1)
            floor_s += time.perf_counter() - t0
    print(f"generation: {gen_frames / gen_s:.1f} frames/s end to end over {int(gen_frames)} frames of {len(test)} "
          f"clips; decode + encode alone {gen_frames / floor_s:.1f} frames/s (the network and blending cost "
          f"{gen_s / floor_s:.2f}x the floor)")


if __name__ == "__main__":
    main()
