"""Run by test_head2headfs_ddp.py under `torchrun --nproc_per_node=2`: the initialisation stage, tiny params,
synthetic clips, Gloo DDP on CPU."""

import dataclasses
import json
import sys
from pathlib import Path

from headflow.generators.head2headfs.data import synthetic_clip
from headflow.generators.head2headfs.params import tiny_params
from headflow.generators.head2headfs.train import train_head2headfs
from headflow.losses.perceptual import PerceptualLoss
from headflow.training.runtime import distributed_env

out, epochs = Path(sys.argv[1]), int(sys.argv[2])
p = tiny_params()
p = dataclasses.replace(p, data=dataclasses.replace(p.data, samples_per_epoch=4),
                        loop=dataclasses.replace(p.loop, epochs=epochs))
clips = [synthetic_clip(12, "a", 32, seed=1), synthetic_clip(12, "b", 32, seed=2)]
result = train_head2headfs(clips, p, out, PerceptualLoss("weight_free", input_range="[-1,1]"), accelerator="cpu",
                           progress=False)
rank, _, world = distributed_env()
(out / f"rank{rank}.json").write_text(json.dumps({"world": world, "history": result["history"],
                                                    "weights": result["parameters_sha256"]}))
