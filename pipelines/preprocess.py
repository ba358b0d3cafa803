"""Prefect flow `preprocess`: the same stage functions as dvc.yaml, as Prefect tasks mapped over shards.

Run it:
    make ui      # terminal 1: Prefect server on http://127.0.0.1:4200 (telemetry off)
    make flow    # terminal 2: this flow against it; the runs show in the UI
    python -m pipelines.preprocess                       # no server: a temporary local one
    python -m pipelines.preprocess --dask tcp://host:8786  # tasks on an existing Dask cluster
    python -m pipelines.preprocess --ray ray://host:10001  # ... or an existing Ray cluster

DVC remains the cache of record: the flow writes the same files as `dvc repro`, so run
`dvc commit` afterwards if you want DVC to adopt them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.futures import as_completed  # noqa: E402
from prefect.artifacts import create_markdown_artifact, create_table_artifact  # noqa: E402

from headflow import params as P  # noqa: E402
from headflow.catalog import CATALOG  # noqa: E402
from pipelines.resume import RESUMABLE, ShardCache, stage_context  # noqa: E402

SHARD_SIZE = 32
"""Clips per shard task of the per-clip stages. Measured (bench/flow_overhead.py, align on 1,000 demo clips,
one Dask worker against the plain stage, 2026-11-30): a shard task costs ~0.2-0.5 s of wall time besides
its clips' work, so 32 clips keep it under ~5 % for faces, ingest and shards (0.33-0.52 CPU s a clip; 8
clips cost 11-17 %). docs/results/scaleout.md (README "Prefect and scale-out")."""
SHARD_SIZE_LIGHT = 128
"""Clips per shard task of the stages that cost ~0.1 CPU s a clip or less (align's map, audio_features):
at 32 align's task overhead would be ~15 %, at 128 ~4 %."""


@task(name="shard", cache_policy=NO_CACHE)
def run_shard(fn: Callable, jobs: list) -> list:
    """One Prefect task per shard of clips (paths in, rows out)."""
    return [fn(job) for job in jobs]


def sharded_map(label: str, shard_size: int = SHARD_SIZE,
                cache: ShardCache | None = None) -> Callable[[Callable, Iterable], list]:
    """A `map(fn, items)` that submits one Prefect task per shard (named `label-k`), keeping the order.

    With a `cache` (`pipelines.resume.ShardCache`), a shard whose rows a previous, interrupted run of the
    same stage stored is not submitted again, and each shard's rows are stored as it returns.
    """

    def _map(fn: Callable, items: Iterable) -> list:
        items = list(items)
        shards = [items[i:i + shard_size] for i in range(0, len(items), shard_size)]
        keys = [cache.key(fn, s) if cache else None for s in shards]
        done = [cache.get(k) if cache else None for k in keys]
        futures = {k: run_shard.with_options(name=f"{label}-{k}").submit(fn, s)
                   for k, s in enumerate(shards) if done[k] is None}
        if cache and len(futures) < len(shards):
            print(f"{label}: {len(shards) - len(futures)} of {len(shards)} shards finished in an interrupted "
                  "run; not run again")
        # Each shard's rows are stored as it finishes (not in order), and a failed shard is raised only
        # once every other one has finished and been stored: the restart then redoes the failures only.
        index = {id(fut): k for k, fut in futures.items()}
        failures = []
        for fut in as_completed(list(futures.values())):
            k = index[id(fut)]
            try:
                done[k] = fut.result()
            except Exception as err:  # noqa: BLE001 - re-raised below, after the others are stored
                failures.append(err)
                continue
            if cache:
                cache.put(keys[k], done[k])
        if failures:
            raise failures[0]
        return [row for rows in done for row in rows]

    return _map


# stage -> (module whose run_stage the DVC stage calls too, shard task label, clips per shard), in the
# catalog's (dvc.yaml's) order; each run_stage writes where headflow.catalog says, as under DVC.
STAGES: dict[str, tuple[str, str, int]] = {
    "demo_corpus": ("headflow.demo.stage", "render-clips", 4),
    "ingest": ("headflow.ingest.stage", "ingest-clips", SHARD_SIZE),
    "audio_features": ("headflow.audio.stage", "mel-clips", SHARD_SIZE_LIGHT),
    "align": ("headflow.align.stage", "align-clips", SHARD_SIZE_LIGHT),
    "faces": ("headflow.faces.stage", "faces-clips", SHARD_SIZE),
    "shards": ("headflow.shards.stage", "shard-clips", SHARD_SIZE),
    "train_expert": ("headflow.sync.train_expert", "expert-shards", SHARD_SIZE),
    "sync_check": ("headflow.sync.sync_check", "sync-check-clips", SHARD_SIZE),
    "fit3dmm": ("headflow.fit3dmm.stage", "fit3dmm-clips", SHARD_SIZE),
    "expressions": ("headflow.expressions.stage", "expressions", SHARD_SIZE),
    "shard_labels": ("headflow.shards.labels", "shard-labels", SHARD_SIZE),
    "train_judge": ("headflow.evaluate.judge", "judge-shards", SHARD_SIZE),
    "evaluate": ("headflow.evaluate.stage", "evaluate-clips", 2),
}


@task(cache_policy=NO_CACHE)
def stage_task(stage: str, params_path: str, shard_size: int | None = None) -> dict:
    """One pipeline stage: the same `run_stage` as `python -m stages.<stage>`, its clips in shard tasks
    of `shard_size` clips (default: the stage's own size in STAGES)."""
    module, label, size = STAGES[stage]
    run_stage = importlib.import_module(module).run_stage
    params = P.load(stage, params_path)
    cache = ShardCache(stage, stage_context(stage, params)) if stage in RESUMABLE else None
    metrics = run_stage(params, map_fn=sharded_map(label, shard_size or size, cache), progress=False)
    if cache:
        cache.clear()
    return metrics


def _table(rows: list[dict]) -> list[dict]:
    return rows or [{"rows": "none"}]


def stage_artifacts(stage: str, metrics: dict | None) -> None:
    """The stage's quarantine table (by reason code) and metrics table as Prefect artifacts."""
    import pandas as pd

    key = stage.replace("_", "-")
    outs = CATALOG.stage(stage)
    if "quarantine" in getattr(outs, "manifests", ()):
        path = CATALOG.quarantine(stage)
        if path.is_file():
            q = pd.read_parquet(path)
            counts = q.groupby("reason_code").size() if "reason_code" in q and len(q) else pd.Series(dtype=int)
            create_table_artifact(key=f"{key}-quarantine", description=f"{stage}: quarantined rows by reason code",
                                  table=_table([{"reason_code": k, "rows": int(v)} for k, v in counts.items()]))
    if metrics:
        rows = [{"metric": k, "value": v if isinstance(v, (int, float, str, bool)) or v is None else json.dumps(v)}
                for k, v in metrics.items()]
        create_table_artifact(key=f"{key}-metrics", table=_table(rows), description=f"{stage}: metrics")


def _report(metrics: dict[str, Any]) -> None:
    """Per stage its `<stage>-quarantine` and `<stage>-metrics` tables (`stage_artifacts`, as the train and
    generate flows make them), then the `preprocess-summary` markdown and the evaluation's tables."""
    for stage, m in metrics.items():
        stage_artifacts(stage, m)
    lines = [f"| stage | {' | '.join(['metric', 'value'])} |", "|---|---|---|"]
    for stage, m in metrics.items():
        lines.append(f"| {stage} | outputs | {', '.join(CATALOG.outs(stage))} |")
        for k, v in m.items():
            if not isinstance(v, dict):
                lines.append(f"| {stage} | {k} | {v} |")
    create_markdown_artifact(key="preprocess-summary", markdown="\n".join(lines),
                             description="headflow preprocess: stage metrics")
    if "evaluate" in metrics:
        _report_evaluation(metrics["evaluate"])


def _report_evaluation(m: dict[str, Any]) -> None:
    """The evaluation's table (a row per protocol/system, its main metrics) and a link to the report page."""
    rows: dict[str, dict] = {}
    for key, value in m.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] != "speed" and parts[2] in ("lse_c", "lse_d", "ssim", "psnr_masked", "cpbd",
                                                                    "csim", "m_lmd", "n_failed"):
            rows.setdefault(f"{parts[0]}/{parts[1]}", {"system": f"{parts[0]}/{parts[1]}"})[parts[2]] = value
    create_table_artifact(key="evaluation", table=list(rows.values()) or [{"system": "none"}],
                          description="headflow evaluate: means over the test clips (intervals in the report)")
    report = CATALOG.report("evaluate", "page").resolve()
    # a path to copy, not a file:// link: browsers do not open those from the UI's http page
    create_markdown_artifact(key="evaluation-report",
                             markdown=f"The evaluation report ({m.get('clips')} clips, {m.get('quarantined')} "
                                      f"quarantined outputs) is the self-contained page `{report}`: open it in a "
                                      f"browser on a machine that sees the project folder.",
                             description="the self-contained report page")


@flow(name="preprocess", log_prints=True)
def preprocess(params_path: str = "params.yaml", build_demo: bool | None = None,
               stages: list[str] | None = None, shard_size: int | None = None) -> dict:
    """Every stage of STAGES in order (the demo corpus only when ingest reads it); returns their metrics.

    Args:
        params_path: the params file (relative to the project root, the working directory).
        build_demo: build the demo corpus first (default: when `ingest.source` is `demo`).
        stages: run only these stages of STAGES (in STAGES' order; their inputs must exist).
        shard_size: clips per shard task for every stage (default: each stage's size in STAGES).

    Raises:
        ValueError: a name in `stages` is not a stage of STAGES.
    """
    unknown = sorted(set(stages or ()) - set(STAGES))
    if unknown:
        raise ValueError(f"stages {unknown} are not stages of this flow; choose from {list(STAGES)}")
    ingest_params = P.load("ingest", params_path)
    metrics: dict[str, Any] = {}
    build = build_demo if build_demo is not None else ingest_params.source == "demo"
    for stage in STAGES:
        if stages is not None and stage not in stages:
            continue
        if stage != "demo_corpus" or build:
            metrics[stage] = stage_task.with_options(name=stage)(stage, params_path, shard_size)
    _report(metrics)
    return metrics


def dask_runner(address: str, root: Path) -> Any:
    """A `DaskTaskRunner` on the scheduler at `address`, after checking that every worker sees `root`.

    Raises:
        SystemExit: a worker cannot see the project folder (`headflow.cluster.ProjectNotVisibleError`'s
            message: which worker, what it saw, what to do), or prefect-dask is not installed.
    """
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise SystemExit("--dask needs prefect-dask: .venv/bin/pip install -r requirements.lock") from None
    from headflow.cluster import ProjectNotVisibleError, connect

    try:
        connect(address, root).close()          # registers the ProjectRoot plugin on every worker
    except ProjectNotVisibleError as err:
        raise SystemExit(f"error: {err}") from None
    return DaskTaskRunner(address=address)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml", help="the params file (default %(default)s)")
    ap.add_argument("--skip-demo", action="store_true", help="do not rebuild the demo corpus")
    ap.add_argument("--stages", nargs="+", choices=list(STAGES), help="run only these stages (default: all)")
    ap.add_argument("--shard-size", type=int, help="clips per shard task (default: each stage's own)")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--dask", metavar="ADDRESS", help="run tasks on an existing Dask scheduler")
    group.add_argument("--ray", metavar="ADDRESS", help="run tasks on an existing Ray cluster")
    args = ap.parse_args(argv)
    if not Path(args.params).exists():
        raise SystemExit(f"{args.params} not found: run from the project root")
    runner_flow = preprocess
    if args.dask:
        runner_flow = preprocess.with_options(task_runner=dask_runner(args.dask, Path.cwd()))
    elif args.ray:
        try:
            from prefect_ray import RayTaskRunner
        except ImportError:
            raise SystemExit("--ray needs the ray extra: .venv/bin/pip install -e '.[ray]' (prefect-ray and ray, "
                             "pinned in pyproject.toml)") from None

        from headflow.cluster import ray_runtime_env

        runner = RayTaskRunner(address=args.ray, init_kwargs={"runtime_env": ray_runtime_env(Path.cwd())})
        runner_flow = preprocess.with_options(task_runner=runner)
    runner_flow(params_path=args.params, build_demo=False if args.skip_demo else None, stages=args.stages,
               shard_size=args.shard_size)


if __name__ == "__main__":
    main()
