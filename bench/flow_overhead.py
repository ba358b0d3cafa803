"""What running a stage as the Prefect flow on a real Dask cluster costs per shard task, against the plain
DVC stage (`python -m stages.<stage>`) on the same project, and the shard size that keeps it small.

    # a 1,000-clip project with the inputs of align (bench/scale.py builds it; ~25 CPU-min)
    PYTHONPATH=src:. python bench/scale.py --sizes 1000 --stages demo_corpus ingest audio_features align \\
        --keep-project --work ../scale3proj --out ../scale3proj/scale.json
    # the timings: plain stage, then the flow at each shard size and worker count, each `--repeats` times
    PYTHONPATH=src:. nice -n 10 python bench/flow_overhead.py --project ../scale3proj/n1000 --stage align \\
        --shard-sizes 8 32 128 --workers 1 2 --repeats 2 --out ../scale3proj/overhead.json
    PYTHONPATH=src:. python bench/flow_overhead.py --report ../scale3proj/overhead.json   # the table again

What runs. One Prefect server (`prefect server start` on loopback, its own PREFECT_HOME under `--work`)
serves every flow run; its start-up is not timed. Each plain run is `bench.scale.run_stage` (a fresh
process, `workers: 1` as bench/scale.py's projects have it). Each flow run is a fresh process
(`python bench/flow_overhead.py --flow-child ...`) that starts a `distributed.LocalCluster` of
`n_workers` worker processes (one thread each, a nanny each) and runs `pipelines.preprocess.main(
["--dask", <scheduler>, "--skip-demo", "--stages", <stage>, "--shard-size", <k>])` against it: the stage
runs in the flow process and its per-clip jobs go to the workers in shard tasks of k clips.

What is recorded per run (JSON, one record a run, appended to `--out` as it comes):
- wall_s: the whole process (imports, for the flow also the cluster's start); `flow_wall_s`: the flow
  call alone; `cluster_start_s`.
- cpu_s: user + system of the process and every process it waited for (the flow's workers and nannies,
  the plain stage's ffmpeg); for the flow split into `flow_cpu_s` (the flow process itself) and
  `workers_cpu_s` (the worker processes, read in each worker before the cluster closes); `server_cpu_s`:
  the Prefect server's CPU during the run (psutil, the server and its children).
- tasks: the Dask tasks the scheduler ran (its task stream): one per shard task.
- load: the 1-minute load average before and after the run (the machine's other jobs).
- same_outputs: every file of the stage's folder equals the first plain run's (Parquet files as read
  by `pq.read_table(...).equals`, other files byte for byte; metrics JSON, which holds timings, is not
  compared).

The figures (`summarise`): per (n_workers, shard size) the min wall of the repeats, and
overhead per task = (flow wall - plain wall) / tasks against the min plain wall, with n_workers = 1
the like-for-like one. `fit_per_task` also fits flow wall = fixed + per task x tasks over the shard
sizes (n_workers = 1): the slope is the per-task cost without the fixed start-up (cluster, imports)
that the plain division spreads over the tasks.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench.scale import _env, run_stage

PER_CLIP_CPU = {"faces": 0.52, "ingest": 0.41, "shards": 0.33, "align": 0.095, "audio_features": 0.003}
"""CPU s per demo clip of each stage (docs/results/scaleout.md, the linear fits at 100-1,000 clips)."""


# ---------------------------------------------------------------- arithmetic (tested without a project)

def overhead_per_task(flow_wall_s: float, plain_wall_s: float, tasks: int) -> float:
    """(flow wall - plain wall) / tasks, in seconds per shard task.

    Raises:
        ValueError: `tasks` < 1.
    """
    if tasks < 1:
        raise ValueError(f"tasks must be >= 1 to spread an overhead over, got {tasks}")
    return (flow_wall_s - plain_wall_s) / tasks


def fit_per_task(tasks: list[int], walls: list[float]) -> tuple[float, float] | None:
    """(fixed s, s per task) of the least-squares line wall = fixed + per_task x tasks; None with fewer
    than 2 distinct task counts."""
    if len(set(tasks)) < 2:
        return None
    mx, my = sum(tasks) / len(tasks), sum(walls) / len(walls)
    slope = sum((x - mx) * (y - my) for x, y in zip(tasks, walls)) / sum((x - mx) ** 2 for x in tasks)
    return my - slope * mx, slope


def overhead_fraction(per_task_s: float, shard_size: int, cpu_per_clip_s: float) -> float:
    """The overhead of one shard task as a fraction of its work: per_task / (shard_size x cpu per clip)."""
    return per_task_s / (shard_size * cpu_per_clip_s)


def smallest_shard(per_task_s: float, cpu_per_clip_s: float, target: float = 0.05) -> int:
    """The smallest power-of-two shard size whose overhead fraction is at most `target` (>= 1)."""
    need = max(per_task_s, 0.0) / (target * cpu_per_clip_s)
    return 1 if need <= 1 else 2 ** math.ceil(math.log2(need))


def _min_by(records: list[dict], key) -> dict:
    groups: dict = {}
    for r in records:
        groups.setdefault(key(r), []).append(r)
    return groups


def summarise(records: list[dict]) -> str:
    """A text table: the plain runs, then per (workers, shard size) the walls of every repeat, the min,
    tasks, CPU split and the overhead per task (against the min plain wall), then the fit."""
    plain = [r for r in records if r["kind"] == "plain"]
    flows = [r for r in records if r["kind"] == "flow"]
    if not plain:
        return "no plain run recorded"
    base = min(r["wall_s"] for r in plain)
    lines = [f"stage {plain[0]['stage']}, {plain[0].get('n_clips', '?')} clips",
             "plain: wall " + " / ".join(f"{r['wall_s']:.1f}" for r in plain) + f" s (min {base:.1f}), cpu "
             + " / ".join(f"{r['cpu_s']:.1f}" for r in plain) + " s, load "
             + " / ".join(f"{r['load'][0]:.1f}" for r in plain),
             "workers shard tasks | wall s (each)      min  | flow wall | cpu s: all  flow  workers server | "
             "s/task | load"]
    for (n_workers, shard), rs in sorted(_min_by(flows, lambda r: (r["n_workers"], r["shard_size"])).items()):
        best = min(rs, key=lambda r: r["wall_s"])
        per_task = overhead_per_task(best["wall_s"], base, best["tasks"])
        walls = " / ".join(f"{r['wall_s']:.1f}" for r in rs)
        lines.append(
            f"{n_workers:>7} {shard:>5} {best['tasks']:>5} | {walls:<18} "
            f"{best['wall_s']:6.1f} | {best['flow_wall_s']:9.1f} | {best['cpu_s']:9.1f} {best['flow_cpu_s']:5.1f} "
            f"{best['workers_cpu_s']:7.1f} {best.get('server_cpu_s', float('nan')):6.1f} | {per_task:6.3f} | "
            + " / ".join(f"{r['load'][0]:.1f}" for r in rs)
            + ("" if all(r["same_outputs"] for r in rs) else "  OUTPUTS DIFFER"))
    one = [r for r in flows if r["n_workers"] == 1]
    groups = _min_by(one, lambda r: r["tasks"])
    fit = fit_per_task(sorted(groups), [min(r["wall_s"] for r in groups[t]) for t in sorted(groups)])
    if fit is not None:
        lines.append(f"fit (n_workers = 1, min walls): wall = {fit[0]:.1f} s + {fit[1]:.3f} s x tasks "
                     f"(plain {base:.1f} s)")
        lines.append("overhead fraction at the fitted s/task, by shard size: " + "; ".join(
            f"{st} " + " ".join(f"{k}:{overhead_fraction(fit[1], k, c):.0%}" for k in (8, 32, 64, 128, 256))
            for st, c in PER_CLIP_CPU.items()))
    return "\n".join(lines)


# ---------------------------------------------------------------- outputs

def snapshot(folder: Path, dst: Path) -> None:
    """Copy the stage's output folder to `dst` (the reference the later runs are compared with)."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(folder, dst)


def differences(reference: Path, folder: Path) -> list[str]:
    """Files of `reference` missing from or different in `folder` (and files only in `folder`): Parquet
    compared as tables, metrics JSON skipped, anything else byte for byte."""
    import pyarrow.parquet as pq

    ref = {p.relative_to(reference) for p in reference.rglob("*") if p.is_file()}
    new = {p.relative_to(folder) for p in folder.rglob("*") if p.is_file()}
    out = [f"only in {folder}: {p}" for p in sorted(new - ref)] + [f"missing: {p}" for p in sorted(ref - new)]
    for rel in sorted(ref & new):
        a, b = reference / rel, folder / rel
        if rel.suffix == ".parquet":
            same = pq.read_table(a).equals(pq.read_table(b))
        elif rel.suffix == ".json":
            continue
        else:
            same = a.read_bytes() == b.read_bytes()
        if not same:
            out.append(f"differs: {rel}")
    return out


# ---------------------------------------------------------------- the runs

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path) -> tuple[subprocess.Popen, str]:
    """`prefect server start` on a free loopback port with its own PREFECT_HOME; (process, API URL)."""
    import urllib.request

    port = _free_port()
    env = dict(_env(), PREFECT_HOME=str(home), DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_UI_ENABLED="false")
    home.mkdir(parents=True, exist_ok=True)
    log = open(home / "server.log", "w")   # noqa: SIM115 - open for the server's lifetime
    proc = subprocess.Popen([str(Path(sys.executable).parent / "prefect"), "server", "start", "--host",
                             "127.0.0.1", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.time() + 900
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"prefect server exited ({proc.returncode}); see {home / 'server.log'}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(1)
    proc.kill()
    raise SystemExit(f"prefect server did not answer in 15 min; see {home / 'server.log'}")


def server_cpu(proc: subprocess.Popen) -> float:
    """User + system CPU s of the server process and its live children so far."""
    import psutil

    p = psutil.Process(proc.pid)
    total = 0.0
    for q in [p, *p.children(recursive=True)]:
        try:
            t = q.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def run_flow(project: Path, stage: str, shard_size: int | None, n_workers: int, api_url: str) -> dict:
    """One flow run in a fresh process (see the module docstring); its record without load or outputs."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--flow-child", "--stage", stage,
           "--workers", str(n_workers)] + (["--shard-sizes", str(shard_size)] if shard_size else [])
    env = dict(_env(), PREFECT_API_URL=api_url, DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    shutil.rmtree(project / "data/.flow_cache", ignore_errors=True)   # an interrupted run's shards: rerun all
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"flow run failed ({proc.returncode}) in {project}:\n{proc.stderr[-4000:]}")
    inner = json.loads(proc.stdout.rsplit("FLOW-RECORD", 1)[1].strip().splitlines()[0])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), **inner}


def flow_child(stage: str, shard_size: int | None, n_workers: int) -> None:
    """In the project folder: a LocalCluster, the flow on it, then print the FLOW-RECORD line."""
    from distributed import Client, LocalCluster, get_task_stream

    t0 = time.perf_counter()
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None) as lc, \
            Client(lc.scheduler_address, set_as_default=False) as client:
        started = time.perf_counter() - t0
        from pipelines.preprocess import main

        args = ["--dask", lc.scheduler_address, "--skip-demo", "--stages", stage]
        args += ["--shard-size", str(shard_size)] if shard_size else []
        with get_task_stream(client) as stream:
            t1 = time.perf_counter()
            main(args)
            flow_wall = time.perf_counter() - t1
        workers = client.run(lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2]))
        tasks = len(stream.data)
    me = resource.getrusage(resource.RUSAGE_SELF)
    rec = {"cluster_start_s": round(started, 2), "flow_wall_s": round(flow_wall, 2), "tasks": tasks,
           "flow_cpu_s": round(me.ru_utime + me.ru_stime, 2), "workers_cpu_s": round(sum(workers.values()), 2)}
    print("\nFLOW-RECORD " + json.dumps(rec), flush=True)


def default_shard(stage: str) -> int:
    """The flow's own shard size for `stage` (pipelines.preprocess.STAGES)."""
    from pipelines.preprocess import STAGES

    return STAGES[stage][2]


def _append(out: Path, records: list[dict], rec: dict) -> None:
    records.append(rec)
    out.write_text(json.dumps(records, indent=1))
    print(json.dumps(rec), flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", type=Path, help="a project (bench/scale.py's <work>/n<N>) with the stage's inputs")
    ap.add_argument("--stage", default="align", choices=sorted(PER_CLIP_CPU),
                    help="the stage timed (default %(default)s)")
    ap.add_argument("--shard-sizes", type=int, nargs="+", default=[8, 32, 128],
                    help="clips per shard task (0: the flow's default)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Dask worker processes per run")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each setting (default %(default)s)")
    ap.add_argument("--plain-only", action="store_true", help="time the plain stage only (and keep its outputs)")
    ap.add_argument("--work", type=Path, help="server home and reference outputs (default: <project>/../overhead)")
    ap.add_argument("--out", type=Path, help="results (JSON, appended run by run)")
    ap.add_argument("--report", type=Path, help="only print the table of this results file")
    ap.add_argument("--flow-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.report:
        print(summarise(json.loads(args.report.read_text())))
        return
    if args.flow_child:
        flow_child(args.stage, args.shard_sizes[0] if args.shard_sizes and args.shard_sizes[0] else None,
                   args.workers[0])
        return
    if args.project is None or not (args.project / "params.yaml").is_file():
        ap.error("--project must be a project folder (with params.yaml); see the module docstring")
    if args.repeats < 1 or any(k < 0 for k in args.shard_sizes) or any(w < 1 for w in args.workers):
        ap.error("--repeats and --workers must be >= 1 and --shard-sizes >= 0")
    project = args.project.resolve()
    work = (args.work or project.parent / "overhead").resolve()
    out = args.out or work / "overhead.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    records = json.loads(out.read_text()) if out.is_file() else []
    import yaml

    n_clips = yaml.safe_load((project / "params.yaml").read_text())["demo_corpus"]["n_clips"]
    folder = project / "data/interim" / args.stage
    reference = work / f"reference-{args.stage}"

    def record(kind: str, rec: dict, load0: float, **extra) -> None:
        diff = differences(reference, folder)
        _append(out, records, {"kind": kind, "stage": args.stage, "n_clips": n_clips, **extra, **rec,
                               "load": [round(load0, 2), round(os.getloadavg()[0], 2)], "same_outputs": not diff,
                               **({"differences": diff[:10]} if diff else {})})

    server, url = (None, "") if args.plain_only else start_server(work / "prefect-home")
    try:
        for i in range(args.repeats):   # a plain run, then every flow run, per repeat: load drifts over both
            load0 = os.getloadavg()[0]
            rec = run_stage(project, args.stage)
            if not reference.exists():
                snapshot(folder, reference)
            record("plain", rec, load0, repeat=i)
            if server is not None:
                for n_workers in args.workers:
                    for k in args.shard_sizes:
                        load0, s0 = os.getloadavg()[0], server_cpu(server)
                        rec = run_flow(project, args.stage, k or None, n_workers, url)
                        rec["server_cpu_s"] = round(server_cpu(server) - s0, 2)
                        record("flow", rec, load0, n_workers=n_workers, shard_size=k or default_shard(args.stage),
                               repeat=i)
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
    print(summarise(records))


if __name__ == "__main__":
    main()
