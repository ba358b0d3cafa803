"""Run by test_ddp.py under `torchrun --nproc_per_node=2`: the toy GAN on CPU with Gloo DDP."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_loop import WEIGHTS, Squares, ToyGAN, loop  # noqa: E402

from headflow.training.loop import fit  # noqa: E402
from headflow.training.runtime import launch  # noqa: E402

out, epochs = Path(sys.argv[1]), int(sys.argv[2])
rt = launch(seed=7, accelerator="cpu")
family = ToyGAN()
history = fit(rt, family, Squares(64), loop(epochs, batch_size=8, r1_every=2), out, loss_weights=WEIGHTS,
              settings={"toy": 1}, fingerprint="toy", select=("fake_mean", "max"), progress=False)
weights = {k: v.tolist() for k, v in family.generator.state_dict().items()}
(out / f"rank{rt.rank}.json").write_text(json.dumps({"world": rt.world_size, "history": history, "g": weights}))
