"""Serve headflow's flows as deployments, so a run can be started from the Prefect UI with parameters.

    make ui       # terminal 1: the Prefect server (http://127.0.0.1:4200)
    make serve    # terminal 2: this process; in the UI, Deployments -> pipeline/headflow -> Run -> Custom run
                  # (params_path, stages, experiment, ...); the run executes here, in the project folder

`flow.serve`-style (Prefect's `serve`): no work pool or worker to set up. prefect.yaml describes the same
deployments for a work pool instead (`prefect deploy --all`, then `prefect worker start -p headflow`).
Reference: Prefect 3 docs, "Run flows in local processes" (`prefect.serve`, `Flow.to_deployment`).
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from pipelines.flows import FLOWS  # noqa: E402

DEPLOYMENT = "headflow"
"""Every flow's deployment name: `pipeline/headflow`, `train/headflow`, ..."""


def deployments() -> list[Any]:
    """One `RunnerDeployment` per flow of `pipelines.flows.FLOWS` (no server needed to build them)."""
    return [f.to_deployment(name=DEPLOYMENT, tags=["headflow"], description=(f.description or "").split("\n")[0])
            for f in FLOWS.values()]


def main() -> None:
    from prefect import serve

    serve(*deployments())


if __name__ == "__main__":
    main()
