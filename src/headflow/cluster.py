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


def check_project_root(root: str, expected_sha256: str, where: str = "") -> str:
    """Check that this process sees the project at `root` (an absolute path) and chdir into it.

    Args:
        root: the client's project folder, absolute.
        expected_sha256: the sha256 of the client's `root/params.yaml`.
        where: the worker's name for the message (default: this host's name and process id).

    Returns:
        The folder this process now runs in (`root`).

    Raises:
        ProjectNotVisibleError: `root` is not absolute, `root/params.yaml` is missing here, or its bytes
            differ from the client's (a stale local copy instead of the shared folder).
    """
    where = where or f"{socket.gethostname()} pid {os.getpid()}"
    fix = ("Mount the project's shared storage at the same path on every worker machine (NFS, Lustre, a "
           "cloud filesystem mount), or start the workers from the project folder: "
           f"`cd {root} && dask worker SCHEDULER_ADDRESS`. See README.md, 'Prefect and scale-out'.")
    if not Path(root).is_absolute():
        raise ProjectNotVisibleError(f"project root {root!r} is not an absolute path; pass the resolved folder")
    marker = Path(root) / MARKER
    if not marker.is_file():
        raise ProjectNotVisibleError(f"Dask worker {where} cannot see the project folder {root} "
                                     f"({marker} does not exist there). {fix}")
    seen = digest(marker)
    if seen != expected_sha256:
        raise ProjectNotVisibleError(f"Dask worker {where} sees a different {marker} (sha256 {seen[:12]} != "
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
