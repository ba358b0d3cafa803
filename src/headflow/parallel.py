"""One way to map per-clip work: a process pool, a caller's `map` (Prefect/Dask), or in-process."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor

from tqdm import tqdm


def map_jobs(fn: Callable, jobs: Iterable, workers: int = 1, map_fn: Callable | None = None,
             desc: str = "", progress: bool = True) -> list:
    """`[fn(job) for job in jobs]`, in order, with a progress bar.

    Args:
        fn: a picklable top-level function (it may run in another process).
        workers: processes in the default pool (1 = in this process).
        map_fn: a `map(fn, jobs)` replacement that wins over `workers` (Prefect shard tasks, Dask).
    """
    jobs = list(jobs)
    if map_fn is not None:
        return list(tqdm(map_fn(fn, jobs), total=len(jobs), desc=desc, disable=not progress))
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(workers, len(jobs))) as pool:
            return list(tqdm(pool.map(fn, jobs), total=len(jobs), desc=desc, disable=not progress))
    return [fn(job) for job in tqdm(jobs, desc=desc, disable=not progress)]
