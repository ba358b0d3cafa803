"""Run by test_torchrun.py, alone or under `torchrun --nproc_per_node=2`: the DisCoHead, Style Mapping and
StyleTalk trainers (StyleTalk's discriminator pretraining `train_discriminators` too) at tiny size on the
families' synthetic clips, each rank writing into `<out>/rank<r>/<family>/`.

    python ddp_generators.py OUT SCALE                              # one process, batch 2 x SCALE
    torchrun --nproc_per_node=2 ddp_generators.py OUT SCALE         # two: 2 x SCALE / 2 per process

Rank 0 writes `<out>/histories.json` ({"world", family: history rows}). Every rank writes
`<out>/weights_rank<r>.json` ({family: sha256 of the trained networks' parameters}): under DDP the ranks
must end with equal weights (a network trained outside DDP's forward would drift apart silently, the
averaged loss curve would not show it).
"""

import hashlib
import json
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

import torch  # noqa: E402

import headflow.training.loop as loop  # noqa: E402
from headflow.losses.perceptual import PerceptualLoss  # noqa: E402
from headflow.training.runtime import distributed_env  # noqa: E402

out, scale = Path(sys.argv[1]), int(sys.argv[2])
rank, _, world = distributed_env()
mine = out / f"rank{rank}"
torch.set_num_threads(1)
batch = 2 * scale // world                      # per process: the global batch is 2 x SCALE in both runs
EPOCHS = 3

# Each fit's trained networks, hashed on every rank after training (the step object keeps the originals).
weights: dict[str, str] = {}
_fit = loop.fit


def _hashing_fit(rt, step, *args, name: str = "training", **kwargs):
    history = _fit(rt, step, *args, name=name, **kwargs)
    h = hashlib.sha256()
    for net in (step.generator, getattr(step, "discriminator", None)):
        for t in (net.parameters() if net is not None else ()):   # buffers (BatchNorm statistics) stay per rank
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    weights[name] = h.hexdigest()
    return history


loop.fit = _hashing_fit
histories: dict[str, list] = {}

# DisCoHead: L1 + the weight-free perceptual term, no discriminator; deterministic frame draws.
from headflow.generators.discohead.params import _with as disco_with, tiny_params as disco_tiny  # noqa: E402
from headflow.generators.discohead.train import train_discohead  # noqa: E402
from tests.generators.discohead.conftest import synthetic_clip as disco_clip  # noqa: E402

p = disco_with(disco_tiny(), loop={"epochs": EPOCHS, "batch_size": batch}, samples_per_epoch=4 * scale)
r = train_discohead([disco_clip(30, "a", seed=1), disco_clip(30, "b", seed=2)], [disco_clip(25, "v", seed=3)], p,
                    mine / "discohead", perceptual=PerceptualLoss("weight_free"), accelerator="cpu", progress=False)
histories["discohead"] = r["history"]

# Style Mapping: every term, the multi-scale PatchGAN included.
from headflow.generators.stylemap.params import tiny_params as stylemap_tiny  # noqa: E402
from headflow.generators.stylemap.train import train_stylemap  # noqa: E402
from tests.generators.stylemap.conftest import synthetic_clip as stylemap_clip  # noqa: E402

p = stylemap_tiny()
p = replace(p, loop=replace(p.loop, epochs=EPOCHS, batch_size=batch), samples_per_epoch=4 * scale)
r = train_stylemap([stylemap_clip(10, "a", seed=1), stylemap_clip(10, "b", seed=2)], [stylemap_clip(5, "v", seed=3)],
                   p, mine / "stylemap", perceptual=PerceptualLoss("weight_free"), accelerator="cpu", progress=False)
histories["stylemap"] = r["history"]

# StyleTalk: D_sync + D_style pretraining, then the generator with the frozen pair and D_tem (dropout off:
# its masks are drawn per rank).
from headflow.generators.styletalk.params import _with as st_with, tiny_disc_params, tiny_params as st_tiny  # noqa: E402
from headflow.generators.styletalk.train import train_discriminators, train_styletalk  # noqa: E402
from tests.generators.styletalk.conftest import LOWER, N_EXP, UPPER, mouth_geometry, synthetic_clips  # noqa: E402

dp = st_with(tiny_disc_params(), loop={"epochs": EPOCHS, "batch_size": batch}, samples_per_epoch=4 * scale)
r = train_discriminators(synthetic_clips(4), [], dp, mine / "styletalk_disc", *mouth_geometry(dp.sync.n_points),
                         "synthetic", accelerator="cpu", progress=False)
histories["styletalk_disc"] = r["history"]
# The generator against the same frozen D_sync / D_style in both runs (untrained, drawn from a fixed seed), so
# that its curve does not inherit the discriminator runs' difference.
from headflow.generators.styletalk.train import build_discriminators  # noqa: E402

torch.manual_seed(0)
nets = build_discriminators(dp, N_EXP, ["calm", "lively"])
nets.sync.set_geometry(*mouth_geometry(dp.sync.n_points))
d_sync, d_style = nets.sync.requires_grad_(False).eval(), nets.style.requires_grad_(False).eval()
p = st_with(st_tiny(), model={"dropout": 0.0}, loop={"epochs": EPOCHS, "batch_size": batch},
            samples_per_epoch=4 * scale)
r = train_styletalk(synthetic_clips(4), [], p, mine / "styletalk", "synthetic", N_EXP, LOWER, UPPER, d_sync, d_style,
                    None, accelerator="cpu", progress=False)
histories["styletalk"] = r["history"]

(out / f"weights_rank{rank}.json").write_text(json.dumps(weights))
if rank == 0:
    (out / "histories.json").write_text(json.dumps({"world": world, **histories}))
