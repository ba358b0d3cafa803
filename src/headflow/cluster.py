"""What a Dask worker needs to run headflow's stage tasks: the project folder, seen at the same path.

Every stage reads and writes paths relative to the project root (`headflow.catalog`), so a worker must
see the project's `data/` (a shared filesystem mounted at the same absolute path on every machine) and
run with that folder as its working directory. `ProjectRoot` is a Dask worker plugin that checks both
on every worker, including workers that join or are restarted by their nanny later, and moves the
worker process into the folder; a worker that cannot see it fails the registration with an error that
says which worker, what it saw and what to do.

Reference: the Dask `WorkerPlugin` interface (distributed/diagnostics/plugin.py, `setup(worker)`).
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

MARKER = "params.yaml"
"""The file whose bytes identify the project (same path, same sha256 on the client and on each worker)."""


class ProjectNotVisibleError(RuntimeError):
    """A worker cannot see the client's project folder (or sees another copy of it)."""


def digest(path: Path) -> str:
    """The sha256 (hex, 64 characters) of the file at `path`."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_project_root(root: str, expected_sha256: str, where: str = "", kind: str = "Dask") -> str:
    """Check that this process sees the project at `root` (an absolute path) and chdir into it.

    Args:
        root: the client's project folder, absolute.
        expected_sha256: the sha256 of the client's `root/params.yaml`.
        where: the worker's name for the message (default: this host's name and process id).
        kind: "Dask" or "Ray", for the message and the command it suggests.

    Returns:
        The folder this process now runs in (`root`).

    Raises:
        ProjectNotVisibleError: `root` is not absolute, `root/params.yaml` is missing here, or its bytes
            differ from the client's (a stale local copy instead of the shared folder).
    """
    where = where or f"{socket.gethostname()} pid {os.getpid()}"
    fix = ("Mount the project's shared storage at the same path on every worker machine (NFS, Lustre, a "
           "cloud filesystem mount), or start the workers from the project folder: "
           + (f"`cd {root} && ray start --address HEAD_ADDRESS`" if kind == "Ray" else
              f"`cd {root} && dask worker SCHEDULER_ADDRESS`") + ". See README.md, 'Prefect and scale-out'.")
    if not Path(root).is_absolute():
        raise ProjectNotVisibleError(f"project root {root!r} is not an absolute path; pass the resolved folder")
    marker = Path(root) / MARKER
    if not marker.is_file():
        raise ProjectNotVisibleError(f"{kind} worker {where} cannot see the project folder {root} "
                                     f"({marker} does not exist there). {fix}")
    seen = digest(marker)
    if seen != expected_sha256:
        raise ProjectNotVisibleError(f"{kind} worker {where} sees a different {marker} (sha256 {seen[:12]} != "
                                     f"the client's {expected_sha256[:12]}): another copy of the project, not "
                                     f"the shared folder. {fix}")
    if Path.cwd() != Path(root):
        os.chdir(root)
    return root


@dataclass
class ProjectRoot(WorkerPlugin):
    """Dask worker plugin: `check_project_root` on every worker (now and on any worker that joins later).

    Register with `client.register_plugin(ProjectRoot.of(Path.cwd()))`; the registration raises
    `ProjectNotVisibleError` (from the first worker that fails) when a worker cannot see the folder.
    Workers should run one thread each (`--nthreads 1`): the stages use the process's working directory.
    """

    root: str
    sha256: str
    name: str = "headflow-project-root"

    @classmethod
    def of(cls, root: Path) -> ProjectRoot:
        """The plugin for the project at `root` (its params.yaml must exist)."""
        root = Path(root).resolve()
        if not (root / MARKER).is_file():
            raise FileNotFoundError(f"{root / MARKER} not found: run from the project root")
        return cls(str(root), digest(root / MARKER))

    def setup(self, worker: Any) -> None:
        """Called by the Dask worker when the plugin is registered or the worker starts."""
        check_project_root(self.root, self.sha256, where=f"{getattr(worker, 'address', '?')} "
                                                             f"(host {socket.gethostname()}, pid {os.getpid()})")



def connect(address: str, root: Path) -> Any:
    """A `distributed.Client` to the scheduler at `address`, every worker checked by `ProjectRoot`.

    Raises:
        ProjectNotVisibleError: a worker cannot see `root` (see `check_project_root`).
        OSError: no scheduler answers at `address` (Dask's own timeout error).
    """
    from distributed import Client

    client = Client(address, set_as_default=False)
    try:
        plugin = ProjectRoot.of(root)
        client.register_plugin(plugin, name=plugin.name)
    except BaseException:
        client.close()
        raise
    return client


ROOT_ENV, SHA_ENV = "HEADFLOW_PROJECT_ROOT", "HEADFLOW_PROJECT_SHA256"
"""Environment variables that carry the client's project folder and params.yaml digest to Ray workers."""


def ray_runtime_env(root: Path) -> dict[str, Any]:
    """The Ray `runtime_env` that runs `ray_worker_setup` in every Ray worker of the job.

    Ray has no worker plugins; its `worker_process_setup_hook` (a "module.function" path, run once in
    each worker process before any task) plays the role `ProjectRoot` plays for Dask, with the folder
    and digest passed as environment variables of the job.

    Raises:
        FileNotFoundError: `root/params.yaml` does not exist.
    """
    plugin = ProjectRoot.of(root)
    return {"env_vars": {ROOT_ENV: plugin.root, SHA_ENV: plugin.sha256},
            "worker_process_setup_hook": "headflow.cluster.ray_worker_setup"}


def ray_worker_setup() -> None:
    """Ray worker hook: `check_project_root` with the job's folder and digest, and the folder on sys.path
    (the flow's task functions live in the project's `pipelines` package, imported by name on unpickling).

    Raises:
        ProjectNotVisibleError: the worker cannot see the folder (Ray fails the task with this error).
        KeyError: the job was started without `ray_runtime_env`.
    """
    import sys

    root = check_project_root(os.environ[ROOT_ENV], os.environ[SHA_ENV],
                              where=f"(host {socket.gethostname()}, pid {os.getpid()})", kind="Ray")
    if root not in sys.path:
        sys.path.insert(0, root)
