"""Speed and memory of the Style Mapping module: training samples/s with the data wait, generation frames/s,
and the memory of its 3D volumes (computed at the published size, measured at the run's size).

    PYTHONPATH=src:. python bench/stylemap.py                      # params.yaml's train_stylemap (demo size)
    PYTHONPATH=src:. python bench/stylemap.py --steps 20 --clips 2 --threads 1

Measured in one run, on the demo's shards (data/interim/shards + shard_labels):
Wall-clock rates depend on what else runs; the per-CPU-second rates are what one idle core would give.
- training: `--steps` optimiser steps (D then G, Adam, the stage's step object and weights) on pairs of the
  train clips; the time spent building and collating the batches over the whole step = the data wait;
- generation: frames/s of the network alone (one source, every frame of `--clips` test clips driving it,
  `generate.animate` incl. the resize to 256), and of video encoding alone;
- memory: the bytes of F_s, of the K + 1 warped copies and of the hourglass input, from the sizes
  (`model.volume_bytes`) at the published configuration and at the run's, and the run's measured from the
  tensors of one forward pass (batch 1).
Networks are freshly initialised: speed does not depend on the weights.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import default_collate

from headflow import params as P
from headflow.generators.stylemap.data import PairDataset
from headflow.generators.stylemap.generate import animate
from headflow.generators.stylemap.losses import StylemapStep, build_discriminator
from headflow.generators.stylemap.model import StylemapGenerator, volume_bytes
from headflow.generators.stylemap.params import published_params
from headflow.generators.stylemap.train import clip_from_shard
from headflow.losses.perceptual import PerceptualLoss
from headflow.manifest import read_manifest
from headflow.media.normalize import encode_video
from headflow.shards import read_clip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data", help="project data folder (interim/shards, interim/shard_labels)")
    ap.add_argument("--steps", type=int, default=12, help="timed training steps (default %(default)s)")
    ap.add_argument("--clips", type=int, default=2, help="test clips generated (default %(default)s)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default %(default)s)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    params = P.load("train_stylemap")
    data = Path(a.data)
    shards = read_manifest(data / "interim/shards/shards.parquet", "shards")
    labels = data / "interim/shard_labels"

    def load(split: str, n: int):
        ids = sorted(shards[shards.split == split].clip_id)[:n]
        return [clip_from_shard(read_clip(c, ("crop256", "expressions"), root=data / "interim/shards",
                                          labels_root=labels), params.model.image_size) for c in ids]

    train = load("train", 6)
    torch.manual_seed(0)
    g = StylemapGenerator(params.model)
    step = StylemapStep(params, g, build_discriminator(params.loss), PerceptualLoss("weight_free"))
    ds = PairDataset(train, params.loop.batch_size * (a.steps + 1))
    opt_g = torch.optim.Adam(g.parameters(), params.loop.lr, betas=params.loop.betas)
    opt_d = torch.optim.Adam(step.discriminator.parameters(), params.loop.lr, betas=params.loop.betas)
    w = step.weights()
    gen = torch.Generator().manual_seed(0)
    wait = total = cpu = 0.0
    bs = params.loop.batch_size
    for i in range(a.steps + 1):                # step 0 warms up and is not counted
        t0, c0 = time.perf_counter(), time.process_time()
        batch = step.prepare(default_collate([ds[j] for j in range(i * bs, (i + 1) * bs)]), gen)
        t1 = time.perf_counter()
        d = step.d_losses(batch)
        opt_d.zero_grad()
        sum(w[k] * v for k, v in d.items()).backward()
        opt_d.step()
        terms = step.g_losses(batch)
        opt_g.zero_grad()
        sum(w[k] * v for k, v in terms.items()).backward()
        opt_g.step()
        if i:
            wait += t1 - t0
            total += time.perf_counter() - t0
            cpu += time.process_time() - c0
    print(f"training: {a.steps * bs / total:.2f} samples/s wall ({total / a.steps * 1000:.0f} ms/step of {bs}; "
          f"{a.steps * bs / cpu:.2f} samples per CPU-second), data wait {wait / total:.1%}")

    g.eval()
    test = load("test", a.clips)
    frames = 0
    t0, c0 = time.perf_counter(), time.process_time()
    outs = []
    for clip in test:
        outs.append(animate(g, clip.frames[int(clip.usable[0])], clip.frames, 8))
        frames += len(clip.frames)
    net, net_cpu = time.perf_counter() - t0, time.process_time() - c0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for k, out in enumerate(outs):
            encode_video(list(out.frames), Path(tmp) / f"{k}.mp4", fps=25, threads=1)
        enc = time.perf_counter() - t0
    print(f"generation: network {frames / net:.1f} frames/s wall, {frames / net_cpu:.1f} per CPU-second ({frames} "
          f"frames, {len(test)} clips); "
          f"encoding alone {frames / enc:.1f} frames/s")

    mib = 2 ** 20
    pub = volume_bytes(published_params().model)
    run = volume_bytes(params.model)
    print("3D volumes per sample (MiB, float32): "
          + ", ".join(f"{k} published {pub[k] / mib:.1f} / run {run[k] / mib:.3f}" for k in pub))
    s = params.model.image_size
    with torch.no_grad():
        x = torch.rand(1, 3, s, s)
        canonical, pose, volume = g.encode_source(x)
        out = g.animate(canonical, pose, volume, x)
    print(f"measured at the run's size: F_s {volume.nelement() * 4 / mib:.3f} MiB, w(F_s) "
          f"{out.warped.volume.nelement() * 4 / mib:.3f} MiB, masks {out.warped.masks.nelement() * 4 / mib:.3f} MiB")


if __name__ == "__main__":
    main()
