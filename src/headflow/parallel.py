"""One way to map per-clip work: a process pool, a caller's `map` (Prefect/Dask), or in-process."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from tqdm import tqdm

AHEAD_PER_WORKER = 2
"""Jobs a pool holds per worker when `map_jobs` gets an iterator (its inputs are made as the pool frees)."""


def map_jobs(fn: Callable, jobs: Iterable, workers: int = 1, map_fn: Callable | None = None,
             desc: str = "", progress: bool = True, total: int | None = None) -> list:
    """`[fn(job) for job in jobs]`, in order, with a progress bar.

    Args:
        fn: a picklable top-level function (it may run in another process).
        jobs: a sequence, or an iterator whose jobs are made as they are needed: in one process one
            job at a time, in the pool `AHEAD_PER_WORKER` per worker ahead, so a stage whose jobs
            carry arrays (shards) holds a few of them, not all. A `map_fn` gets them as a list.
        workers: processes in the default pool (1 = in this process).
        map_fn: a `map(fn, jobs)` replacement that wins over `workers` (Prefect shard tasks, Dask).
        total: the number of jobs, for the progress bar and the pool size, when `jobs` has no len().
    """
    if map_fn is not None or not isinstance(jobs, Iterator):   # a list, a tuple, ...: as before
        jobs = list(jobs)
        if map_fn is not None:
            return list(tqdm(map_fn(fn, jobs), total=len(jobs), desc=desc, disable=not progress))
        if workers > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(min(workers, len(jobs))) as pool:
                return list(tqdm(pool.map(fn, jobs), total=len(jobs), desc=desc, disable=not progress))
        return [fn(job) for job in tqdm(jobs, desc=desc, disable=not progress)]
    if workers > 1 and (total is None or total > 1):
        n = workers if total is None else min(workers, total)
        return list(tqdm(_bounded_pool_map(fn, jobs, n), total=total, desc=desc, disable=not progress))
    return [fn(job) for job in tqdm(jobs, total=total, desc=desc, disable=not progress)]


def _bounded_pool_map(fn: Callable, jobs: Iterator, workers: int) -> Iterator:
    """`pool.map(fn, jobs)` that takes a job from `jobs` only when fewer than `AHEAD_PER_WORKER x workers`
    are submitted and not yet returned (Executor.map would take every job at once)."""
    with ProcessPoolExecutor(workers) as pool:
        pending: deque[Future] = deque()
        for job in jobs:
            pending.append(pool.submit(fn, job))
            if len(pending) >= AHEAD_PER_WORKER * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
