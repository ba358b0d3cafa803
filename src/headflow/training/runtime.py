"""Where training runs: Lightning Fabric on CPU, one GPU, or DDP under torchrun; seeding; rank 0 writes.

    python -m stages.train_expert                               # CPU, or the first GPU
    torchrun --nproc_per_node=4 -m stages.train_expert          # DDP: one process per GPU

DDP is detected from torchrun's environment (WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE), as
in nanoGPT, so one script serves all three. Only rank 0 writes files (`Runtime.is_main`).

Seeding: `launch` calls `seed_everything(seed)` on every rank before the family builds its
networks (identical initial weights; DDP broadcasts rank 0's anyway); at each epoch start
`seed_epoch` re-seeds Python, NumPy and torch from (seed, epoch, rank); `step_generator` gives
the per-step torch generator of (seed, step, rank) that a family's augmentation draws from. All
draws are thus functions of the seed and the position in the run, which is what makes a resumed
run equal an uninterrupted one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from headflow.training.config import Precision

if TYPE_CHECKING:
    from lightning.fabric import Fabric

Accelerator = Literal["auto", "cpu", "cuda", "gpu", "mps"]


def distributed_env() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun's environment; (0, 0, 1) outside torchrun.

    Under torchrun the process group is initialised here (NCCL with CUDA, else Gloo) if it is not
    yet, so a stage can exchange data (e.g. broadcast its shard list) before training starts;
    Fabric then reuses that group.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world


def derive_seed(*parts: int) -> int:
    """A 32-bit seed from integers (NumPy's SeedSequence: well mixed, order-sensitive)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


_EPOCH_TAG = 0x45504F43   # "EPOC": keeps epoch seeds apart from the (seed, step, rank) step seeds


@dataclass
class Runtime:
    """A launched Fabric and the run's seed. Build with `launch`."""

    fabric: "Fabric"
    seed: int

    @property
    def rank(self) -> int:
        return self.fabric.global_rank

    @property
    def world_size(self) -> int:
        return self.fabric.world_size

    @property
    def is_main(self) -> bool:
        """True on the one process that logs and writes files (global rank 0)."""
        return self.fabric.global_rank == 0

    @property
    def device(self) -> torch.device:
        return self.fabric.device

    def step_generator(self, step: int) -> torch.Generator:
        """A CPU generator seeded from (seed, step, rank): the draws of one training step."""
        return torch.Generator().manual_seed(derive_seed(self.seed, step, self.rank))

    def seed_epoch(self, epoch: int) -> None:
        """Re-seed Python, NumPy and torch (all devices) from (seed, epoch, rank)."""
        from lightning.fabric.utilities.seed import seed_everything

        seed_everything(derive_seed(self.seed, _EPOCH_TAG, epoch, self.rank), verbose=False)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank (identity in a single process)."""
        return self.fabric.broadcast(obj, src=0) if self.world_size > 1 else obj

    def barrier(self) -> None:
        if self.world_size > 1:
            self.fabric.barrier()


def launch(seed: int, precision: Precision = "32-true", accelerator: Accelerator = "auto") -> Runtime:
    """Create and launch Fabric for this process, then seed every generator with `seed`.

    Args:
        seed: the run's seed (initial weights are drawn right after this call).
        precision: Fabric precision: "32-true" (default; CPU), "bf16-mixed" or "16-mixed" (GPUs,
            autocast inside the networks' forward, losses in float32), "bf16-true".
        accelerator: "auto" (CUDA when available), "cpu", "cuda"/"gpu", "mps".

    Returns:
        The `Runtime`. Under torchrun the strategy is DDP over all ranks (devices = processes per
        node, nodes = WORLD_SIZE / LOCAL_WORLD_SIZE); otherwise a single device.
    """
    import logging

    from lightning.fabric import Fabric

    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)   # no "seed set" / device banners
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        fabric = Fabric(accelerator=accelerator, strategy="ddp", devices=local, num_nodes=world // local,
                        precision=precision)
    else:
        fabric = Fabric(accelerator=accelerator, devices=1, precision=precision)
    fabric.launch()
    fabric.seed_everything(seed, verbose=False)
    return Runtime(fabric, seed)
