"""The preprocess flow on a real Dask cluster: separate worker processes, `--dask ADDRESS`, a worker killed.

One module-scoped `distributed.LocalCluster` (2 worker processes with a nanny each, 1 thread each) and
one Prefect test server serve every test here (starting them is most of the time).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("prefect_dask", reason="prefect-dask is pinned in requirements.lock")
from distributed import Client, LocalCluster, get_task_stream  # noqa: E402
from scaleout_project import PREPROCESS, cwd, differences, run  # noqa: E402

from headflow.cluster import ProjectNotVisibleError, ProjectRoot, check_project_root, digest  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster():
    """(cluster, client, {worker address: pid}) of a LocalCluster of 2 single-thread worker processes."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc, \
            Client(lc.scheduler_address, set_as_default=False) as client:
        yield lc, client


def _flow(root: Path, address: str, *args: str) -> None:
    from pipelines.preprocess import main

    with cwd(root):
        main(["--dask", address, "--skip-demo", "--shard-size", "1", *args])


def test_dask_flow_writes_what_the_single_process_run_writes(project, cluster, prefect_server):
    root, reference = project
    lc, client = cluster
    shutil.rmtree(root / "data/interim")
    with get_task_stream(client) as stream:
        _flow(root, lc.scheduler_address, "--stages", *PREPROCESS)
    workers = {t["worker"] for t in stream.data}
    # 3 clips, one shard task per clip, 5 stages: 15 tasks, spread over both worker processes
    assert len(stream.data) == 15 and len(workers) == 2, (len(stream.data), workers)
    assert all(pid != os.getpid() for pid in client.run(os.getpid).values())
    assert differences(reference, root / "data/interim") == []


def test_killed_worker_loses_no_rows(project, cluster, prefect_server):
    """kill -9 of the worker process running a faces shard: Dask reruns the shard on a live worker."""
    root, reference = project
    lc, client = cluster
    pids = client.run(os.getpid)
    killed: list[str] = []
    stop = threading.Event()

    def killer() -> None:
        while not stop.is_set() and not killed:
            for address, keys in client.processing().items():
                if keys and address in pids:
                    os.kill(pids[address], signal.SIGKILL)
                    killed.append(address)
                    break
            time.sleep(0.005)

    shutil.rmtree(root / "data/interim/faces")
    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        _flow(root, lc.scheduler_address, "--stages", "faces")
    finally:
        stop.set()
        thread.join()
    assert len(killed) == 1, "no faces shard was seen running"
    assert differences(reference / "faces", root / "data/interim/faces") == []
    client.wait_for_workers(2, timeout=60)      # the nanny restarts the killed worker (plugin set up again)
    assert set(client.run(os.getcwd).values()) == {str(root.resolve())}


def test_worker_that_cannot_see_the_project_is_a_clear_error(project, cluster, tmp_path):
    root, _ = project
    _, client = cluster
    missing = tmp_path / "not-shared" / "project"
    with pytest.raises(ProjectNotVisibleError, match=r"cannot see the project folder .*not-shared.*dask worker"):
        client.register_plugin(ProjectRoot(str(missing), digest(root / "params.yaml")), name="probe-missing")
    other = tmp_path / "stale-copy"
    other.mkdir()
    (other / "params.yaml").write_text("ingest: {}\n")
    with pytest.raises(ProjectNotVisibleError, match=r"sees a different .*stale-copy/params.yaml.*not the shared"):
        client.register_plugin(ProjectRoot(str(other), digest(root / "params.yaml")), name="probe-stale")
    for name in ("probe-missing", "probe-stale"):
        client.unregister_worker_plugin(name)
    # the error names the worker (its address) and what to do
    with pytest.raises(ProjectNotVisibleError, match=r"Dask worker tcp://127\.0\.0\.1:\d+ .*Mount the project"):
        client.register_plugin(ProjectRoot(str(missing), "0" * 64), name="probe-address")
    client.unregister_worker_plugin("probe-address")


def test_check_project_root_moves_into_the_folder(tmp_path):
    (tmp_path / "params.yaml").write_text("a: 1\n")
    sha = digest(tmp_path / "params.yaml")
    # sha256 of b"a: 1\n" computed independently: hashlib.sha256(b"a: 1\n").hexdigest()
    import hashlib

    assert sha == hashlib.sha256(b"a: 1\n").hexdigest()
    with cwd(Path("/")):
        assert check_project_root(str(tmp_path), sha) == str(tmp_path)
        assert Path.cwd() == tmp_path
    with pytest.raises(ProjectNotVisibleError, match="not an absolute path"):
        check_project_root("relative/project", sha)


def test_dvc_round_trip_after_a_flow_run(project, prefect_server):
    """Flow run -> `dvc status` names the changed stage -> `dvc commit -f` adopts its outputs -> up to date."""
    import yaml

    from pipelines.flows import main

    root, _ = project
    run(["dvc", "commit", "-f", "-q", "demo_corpus", *PREPROCESS], root)     # adopt what the flows wrote
    assert "up to date" in run(["dvc", "status", "audio_features"], root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["audio_features"]["clip_level"] = 0.98
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # dvc 3.67 words it "changed deps: params.yaml: modified: audio_features"
    changed = re.compile(r"audio_features:\s+changed deps:\s+params\.yaml:\s+modified:\s+audio_features")
    status = run(["dvc", "status", "audio_features"], root)
    assert changed.search(status), status
    with cwd(root):
        main(["pipeline", "--stages", "audio_features"])
    assert changed.search(run(["dvc", "status", "audio_features"], root))   # DVC has not adopted it yet
    run(["dvc", "commit", "-f", "-q", "audio_features"], root)
    assert "up to date" in run(["dvc", "status", "audio_features"], root)
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]["audio_features"]
    assert lock["params"]["params.yaml"]["audio_features"]["clip_level"] == 0.98
