"""The preprocess flow on a local Ray head (`ray start --head` on loopback) through `--ray ADDRESS`.

Ray is an optional extra (`pip install -e '.[ray]'`: ~80 MB of wheels and a head that takes seconds to
start), not part of `make test`'s environment: these tests skip there with that message and were run
with the extra installed (README, "Prefect and scale-out").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("prefect_ray", reason="Ray is an optional extra: pip install -e '.[ray]' to run the Ray tests")
from scaleout_project import PREPROCESS, cwd, differences  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """The address of a local Ray head with 2 CPUs (its own temp folder), stopped afterwards."""
    ray = str(Path(sys.executable).parent / "ray")
    tmp = tmp_path_factory.mktemp("ray_tmp")
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    port = 6390 + os.getpid() % 500
    start = subprocess.run([ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                            "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats",
                            f"--temp-dir={tmp}"], env=env, capture_output=True, text=True, timeout=300)
    assert start.returncode == 0, start.stdout + start.stderr
    try:
        yield f"127.0.0.1:{port}", tmp
    finally:
        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_ray_flow_writes_what_the_single_process_run_writes(project, ray_head, prefect_server):
    from pipelines.preprocess import main

    root, reference = project
    address, ray_tmp = ray_head
    shutil.rmtree(root / "data/interim")
    with cwd(root):
        main(["--ray", address, "--skip-demo", "--shard-size", "1", "--stages", *PREPROCESS])
    assert differences(reference, root / "data/interim") == []
    # the shard tasks ran in Ray worker processes: their logs (worker-<id>-<job>-<pid>.out) name the tasks
    ran = {int(log.stem.rsplit("-", 1)[1]) for log in ray_tmp.glob("session_*/logs/worker-*")
           if log.suffix in (".out", ".err") and "faces-clips-" in log.read_text(errors="replace")}
    assert ran and os.getpid() not in ran, ran
