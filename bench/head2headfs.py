"""Speed of Head2HeadFS on the demo's shards: masks, training windows/s (initialisation and fine-tuning),
fine-tuning time for 50 and 500 frames, inference frames/s.

    PYTHONPATH=src:. python bench/head2headfs.py                      # params.yaml's train_head2headfs (demo size)
    PYTHONPATH=src:. python bench/head2headfs.py --size 128 --ngf 32  # the quality configuration's network
    PYTHONPATH=src:. python bench/head2headfs.py --synthetic          # no data: synthetic disk clips

Measured in one run, on the same data:
- masks: ms per frame of `masks.clip_masks` (one seeded GrabCut per clip + propagation) over `--clips`
  clips, and the mean IoU of the mask with the head render it was seeded from (how much hair / neck
  it adds: 1.0 would mean it adds nothing);
- training: `--steps` optimiser steps (D then G) of the initialisation step object and of the
  fine-tuning one (personalised G, no E_id), windows/s each; the fine-tuning time for T' = 50 and 500
  frames x `--epochs` epochs (one window per frame, the paper's epoch) follows from the fine-tuning rate;
- inference: frames/s of the personalised G over a whole clip, one frame after the other (the paper's
  real-time claim: 20 fps at 256x256 on an RTX 2080 Ti).
Networks are freshly initialised (speed does not depend on the weights).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import default_collate

from headflow import params as P
from headflow.generators.head2headfs.data import Head2HeadWindows, synthetic_clip
from headflow.generators.head2headfs.finetune import identity_of, personalise
from headflow.generators.head2headfs.generate import render_sequence
from headflow.generators.head2headfs.losses import FinetuneStep, InitialisationStep, loss_weights
from headflow.generators.head2headfs.model import Discriminators, Renderer, SequenceRenderer
from headflow.losses.perceptual import PerceptualLoss
from headflow.training.terms import weighted_sum


def _steps(step, data, n: int, weights: dict) -> float:
    g_opt = torch.optim.Adam(step.generator.parameters(), 2e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(step.discriminator.parameters(), 2e-4, betas=(0.5, 0.999))
    t0 = time.perf_counter()
    for i in range(n):
        batch = default_collate([data[i]])
        d = weighted_sum("d", step.d_losses(batch), weights)
        d_opt.zero_grad()
        d.backward()
        d_opt.step()
        g = weighted_sum("g", step.g_losses(batch), weights)
        g_opt.zero_grad()
        g.backward()
        g_opt.step()
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, help="model.image_size (default: params.yaml)")
    ap.add_argument("--ngf", type=int, help="model.ngf (default: params.yaml)")
    ap.add_argument("--steps", type=int, default=10, help="timed training steps (default %(default)s)")
    ap.add_argument("--epochs", type=int, default=15, help="fine-tuning epochs for the 50/500-frame estimate")
    ap.add_argument("--clips", type=int, default=3, help="clips loaded (default %(default)s)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default %(default)s)")
    ap.add_argument("--synthetic", action="store_true",
                    help="use --clips synthetic 60-frame disk clips (seeded 0..n-1, one speaker each) instead of the "
                         "demo's train shards; skips the mask timing (synthetic clips carry their masks)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    params = P.load("train_head2headfs")
    model = {k: v for k, v in (("image_size", a.size), ("ngf", a.ngf)) if v}
    if model:
        params = dataclasses.replace(params, model=dataclasses.replace(params.model, **model))
    S = params.model.image_size
    if a.synthetic:
        clips = [synthetic_clip(60, f"s{i}", S, seed=i) for i in range(a.clips)]
        print("masks: skipped (synthetic clips carry their masks)")
    else:
        from headflow.generators.head2headfs.masks import clip_masks, mask_iou
        from headflow.generators.head2headfs.train import load_clip
        from headflow.shards import accepted_clips, read_clip

        rows = accepted_clips().query("split == 'train'").groupby("speaker_id").head(1).head(a.clips)
        t_mask, n_frames, ious = 0.0, 0, []
        for r in rows.itertuples():
            s = read_clip(r.clip_id, ("crop256", "nmfc"), decisions=rows)
            t0 = time.perf_counter()
            m = clip_masks(s.crop256.pixels, s.nmfc.mask, s.crop256.landmarks, s.valid, params.masks)
            t_mask += time.perf_counter() - t0
            n_frames += len(m)
            ious += [mask_iou(x, y) for x, y, v in zip(m, s.nmfc.mask, s.valid) if v]
        print(f"masks: {1000 * t_mask / n_frames:.2f} ms/frame over {n_frames} frames of {len(rows)} clips at 256 px; "
              f"IoU with the head render {np.mean(ious):.3f} (the rest is hair, neck, head outside the 3DMM)")
        clips = [load_clip(r.clip_id, S, params.masks, Path("data/interim/shards"), Path("data/interim/shard_labels"),
                           decisions=rows) for r in rows.itertuples()]
    speakers = sorted({c.speaker for c in clips})
    perceptual = PerceptualLoss("weight_free", input_range="[-1,1]")
    renderer, discs = Renderer(params.model), Discriminators(params, len(speakers))
    data = Head2HeadWindows(clips, speakers, params.discriminator, params.data.identity_frames, a.steps, 0)
    init_rate = _steps(InitialisationStep(params, renderer, discs, perceptual), data, a.steps, loss_weights(params))
    h_new = identity_of(renderer, clips[0], 50)
    g, d = personalise(renderer, discs, h_new)
    ft_data = Head2HeadWindows([clips[0]], [clips[0].speaker], params.discriminator, 0, a.steps, 0, end=50)
    ft_rate = _steps(FinetuneStep(params, SequenceRenderer(g), d, perceptual), ft_data, a.steps,
                     loss_weights(params, finetune=True))
    g.eval()
    t0 = time.perf_counter()
    frames, _ = render_sequence(g, clips[0].nmfc, None)
    fps = len(frames) / (time.perf_counter() - t0)
    L = params.discriminator.frames_needed
    print(f"network: {S}x{S}, ngf {params.model.ngf}, n_f {params.model.n_f}, window {L} frames, {a.threads} thread(s)")
    print(f"training: initialisation {init_rate:.2f} windows/s, fine-tuning {ft_rate:.2f} windows/s "
          f"(ratio {ft_rate / init_rate:.2f}: no E_id, no L_mch)")
    for n in (50, 500):
        print(f"fine-tuning T'={n}: {a.epochs} epochs x {n} windows = {a.epochs * n / ft_rate / 60:.1f} min "
              f"(paper: 3-30 min for 50-500 frames on an RTX 2080 Ti at 256x256)")
    print(f"inference: {fps:.1f} frames/s one after the other ({len(frames)} frames; paper: 20 fps at 256x256 on a GPU)")


if __name__ == "__main__":
    main()
