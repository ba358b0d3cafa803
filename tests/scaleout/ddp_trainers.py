"""Run by test_torchrun.py, alone or under `torchrun --nproc_per_node=2`: the expert's, the lip-sync
generator's and (ddp_generators.py) DisCoHead's, Style Mapping's and StyleTalk's trainers at tiny size on
synthetic clips, each rank writing into `<out>/rank<r>/`.

    python ddp_trainers.py OUT EXPERT_BATCH LIPSYNC_BATCH GENERATORS_BATCH       # one process, these global batches
    torchrun --nproc_per_node=2 ddp_trainers.py OUT ...                         # two: half each per process

Rank 0 also writes `<out>/histories.json` ({"world", trainer: rows}). Every rank writes
`<out>/weights_rank<r>.json` ({fit's name: sha256 of the trained networks' parameters}): under DDP the
ranks must end with equal parameters; a network trained past DDP's forward drifts apart without an error,
and the all-reduced loss curve alone would not show it.
"""

import hashlib
import json
import sys
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "sync"), str(HERE)]

import torch  # noqa: E402

import headflow.training.loop as loop  # noqa: E402
from headflow.training.runtime import distributed_env  # noqa: E402

out, expert_batch, lipsync_batch, generators_batch = Path(sys.argv[1]), *map(int, sys.argv[2:5])
rank, _, world = distributed_env()
mine = out / f"rank{rank}"
torch.set_num_threads(1)

# Every fit's trained parameters, hashed on each rank (BatchNorm statistics are buffers and stay per rank).
# Patched before the trainers are imported, so that those importing `fit` at module level get this one.
weights: dict[str, str] = {}
_fit = loop.fit


def _hashing_fit(rt, step, *args, name: str = "training", **kwargs):
    history = _fit(rt, step, *args, name=name, **kwargs)
    h = hashlib.sha256()
    for net in (step.generator, getattr(step, "discriminator", None)):
        for t in (net.parameters() if net is not None else ()):
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    weights[name] = h.hexdigest()
    return history


loop.fit = _hashing_fit

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

from ddp_generators import train_generators  # noqa: E402

generators = train_generators(mine, generators_batch, world)

out.mkdir(parents=True, exist_ok=True)
(out / f"weights_rank{rank}.json").write_text(json.dumps(weights))
if rank == 0:
    (out / "histories.json").write_text(json.dumps({"world": world, "expert": expert,
                                                    "lipsync": lipsync["history"]["stage1"], **generators}))
