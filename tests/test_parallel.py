"""headflow.parallel.map_jobs: results in order; an iterator of jobs is consumed as work frees up."""

from __future__ import annotations

from headflow.parallel import AHEAD_PER_WORKER, _bounded_pool_map, map_jobs


def test_in_process_an_iterator_is_made_one_job_at_a_time():
    log = []

    def jobs():
        for i in range(4):
            log.append(f"made {i}")
            yield i

    def square(i):
        log.append(f"ran {i}")
        return i * i

    assert map_jobs(square, jobs(), total=4, progress=False) == [0, 1, 4, 9]
    assert log == ["made 0", "ran 0", "made 1", "ran 1", "made 2", "ran 2", "made 3", "ran 3"]
    assert map_jobs(square, [2, 3], progress=False) == [4, 9]          # a list: as before


def test_the_pool_takes_at_most_its_window_ahead_and_keeps_the_order():
    made = [0]

    def jobs():
        for i in range(-12, 0):
            made[0] += 1
            yield i

    out = []
    for k, r in enumerate(_bounded_pool_map(abs, jobs(), 2)):
        # result k is yielded once job k + window - 1 is submitted and before job k + window is made
        assert made[0] <= k + AHEAD_PER_WORKER * 2
        out.append(r)
    assert out == list(range(12, 0, -1))
    made[0] = 0
    assert map_jobs(abs, jobs(), workers=2, total=12, progress=False) == list(range(12, 0, -1))
