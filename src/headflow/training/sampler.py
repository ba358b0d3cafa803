"""A seeded per-epoch permutation of the training set, split across DDP ranks."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class RankSampler(Sampler[int]):
    """Indices of a dataset of `n` items for one rank: a permutation drawn from (seed, epoch).

    Rank r takes positions r, r + world, r + 2 world, ... of the epoch's permutation, so the ranks'
    shares are disjoint and their union is the whole permutation whatever `world` is. The order is a
    pure function of (seed, epoch): a resumed run at epoch e draws what an uninterrupted one drew.
    Unlike `torch.utils.data.DistributedSampler` it never pads or repeats items.

    Args:
        n: dataset length.
        seed: base seed of the permutations.
        rank: this process's rank in [0, world).
        world: number of processes.
    """

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1):
        if not 0 <= rank < world:
            raise ValueError(f"rank must lie in [0, world={world}), got {rank}")
        self.n, self.seed, self.rank, self.world, self.epoch = n, seed, rank, world, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        perm = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        return iter(perm[self.rank::self.world].tolist())

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world))
