"""Run by test_torchrun.py, alone or under `torchrun --nproc_per_node=2`: the expert's and the lip-sync
generator's trainers at tiny size on synthetic clips, each rank writing into `<out>/rank<r>/`.

    python ddp_trainers.py OUT EXPERT_BATCH LIPSYNC_BATCH      # one process, these global batches
    torchrun --nproc_per_node=2 ddp_trainers.py OUT EXPERT_BATCH LIPSYNC_BATCH   # two: half each per process

Rank 0 also writes `<out>/histories.json` ({"world", "expert": rows, "lipsync": rows}).
"""

import json
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "sync")]

import torch  # noqa: E402

from headflow.training.runtime import distributed_env  # noqa: E402

out, expert_batch, lipsync_batch = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rank, _, world = distributed_env()
mine = out / f"rank{rank}"
torch.set_num_threads(1)

# The expert: augmentation off (its draws come from per-rank generators by design), so one process with
# batch B and two with B/2 each see the same samples in every step (RankSampler's interleaved shares).
from headflow.nn.expert import PUBLISHED_EXPERT  # noqa: E402
from headflow.sync.train import TrainConfig, train_expert  # noqa: E402
from headflow.training.config import LoopConfig  # noqa: E402
from synthetic import synthetic_clip as sync_clip  # noqa: E402

cfg = TrainConfig(model=replace(PUBLISHED_EXPERT, width=0.125, depth=1), augment=False, augment_mel_warp=0.0,
                  loop=LoopConfig(epochs=3, batch_size=expert_batch // world, lr=1e-3, seed=0), samples_per_epoch=128,
                  val_samples=32)
expert = train_expert([sync_clip(f"t{i}", 40, i) for i in range(4)], [sync_clip("v", 40, 9)], cfg,
                      mine / "expert", accelerator="cpu", progress=False)

# The lip-sync generator: stage 1 (no discriminator), reference augmentation off.
from headflow.generators.lipsync.params import _with, tiny_params  # noqa: E402
from headflow.generators.lipsync.train import train_lipsync  # noqa: E402
from tests.generators.lipsync.conftest import synthetic_clip as face_clip  # noqa: E402

params = _with(tiny_params(), data={"reference_augment": False}, loop={"epochs": 3, "batch_size": lipsync_batch // world},
               stage2_epochs=0, samples_per_epoch=8)
lipsync = train_lipsync([face_clip(30, "a", seed=1), face_clip(30, "b", seed=2)], [face_clip(25, "v", seed=3)],
                        params, mine / "lipsync", accelerator="cpu", progress=False)

if rank == 0:
    (out / "histories.json").write_text(json.dumps({"world": world, "expert": expert,
                                                    "lipsync": lipsync["history"]["stage1"]}))
