"""Preprocessing cost against corpus size: wall time and peak memory per stage, a fitted power law, and
the time of a no-op `dvc repro`, on synthetic demo corpora of N small clips (one process per stage).
CPU seconds are the figure to fit on a shared machine (wall time there measures the neighbours too).

    PYTHONPATH=src:. python bench/scale.py --sizes 100 300 1000 --work /tmp/headflow-scale
    PYTHONPATH=src:. python bench/scale.py --fit reports/bench/scale.json     # refit saved runs only
    PYTHONPATH=src:. python bench/scale.py --sizes 100 300 --stages faces shards --keep-project \\
        --work /tmp/headflow-scale --out /tmp/after.json     # rerun two stages with this checkout's code

For each N: a copy of the tracked project files in `<work>/n<N>` (git, DVC), params.yaml with the demo
corpus at N clips (3-6 s, as the demo's) at 256x256 (no deliberately bad inputs) and `workers: 1` everywhere; each
stage of demo_corpus..shards runs as `python -m stages.<stage>` in its own process (runpy), timed (wall
and CPU s) and its peak resident memory read from the kernel (getrusage RUSAGE_SELF ru_maxrss, MiB); then `dvc commit -f` adopts the outputs and `dvc repro shards` (nothing to run) is timed.

The fit: for each stage, log(cpu) = a + b log(N) by least squares over the sizes run; b is the
exponent (1.0 = linear cost). Peak memory should stay flat in N (stages stream clip by clip).
Results are appended to `--out` (JSON, one record per (N, stage)) as they come, so a run cut short
keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["demo_corpus", "ingest", "audio_features", "align", "faces", "shards"]


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}",
                PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed in {cwd} ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def make_project(dst: Path, n_clips: int) -> None:
    """A git repository at `dst` with the tracked project files and params for `n_clips` small clips."""
    if dst.exists():
        shutil.rmtree(dst)
    files = _run(["git", "ls-files"], ROOT).stdout.split()
    for rel in files:
        if rel.startswith(("data/", "reports/")) or rel == "dvc.lock" or not (ROOT / rel).is_file():
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dst / rel)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["demo_corpus"].update(n_clips=n_clips, bad_inputs=False, frame_size=256)
    for block in params.values():
        if isinstance(block, dict) and "workers" in block:
            block["workers"] = 1
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git = ["git", "-c", "user.email=bench@headflow", "-c", "user.name=bench"]
    _run(["git", "init", "-q"], dst)
    _run([*git, "add", "-A"], dst)
    _run([*git, "commit", "-qm", "scale bench"], dst)


def run_stage(project: Path, stage: str) -> dict:
    """`python -m stages.<stage>` in `project`: wall and CPU seconds (user + system, the stage's process
    and any it waited for) and its peak resident memory (MiB)."""
    code = ("import resource, runpy, sys, json; sys.argv = ['stages.{0}']; "
            "runpy.run_module('stages.{0}', run_name='__main__'); "
            "print('\\nSCALE-RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)").format(stage)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = _run([sys.executable, "-c", code], project).stdout
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rss_kib = int(out.rsplit("SCALE-RSS", 1)[1].split()[0])
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_mib": round(rss_kib / 1024, 1)}


def noop_repro(project: Path) -> float:
    """Adopt the outputs (`dvc commit -f`), then time `dvc repro shards` (must run nothing)."""
    _run(["dvc", "commit", "-f", "-q", *STAGES], project)
    _run(["dvc", "repro", "shards"], project)                 # warm DVC's state database once
    t = time.perf_counter()
    out = _run(["dvc", "repro", "shards"], project).stdout
    wall = time.perf_counter() - t
    if "Running stage" in out:
        raise SystemExit(f"`dvc repro shards` was not a no-op in {project}:\n{out[-2000:]}")
    return round(wall, 2)


def fit_exponent(sizes: list[float], values: list[float]) -> float | None:
    """b of the least-squares fit log(value) = a + b log(size); None with fewer than 2 distinct sizes."""
    pts = [(math.log(s), math.log(v)) for s, v in zip(sizes, values) if v > 0]
    if len({x for x, _ in pts}) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)


def fit_linear(sizes: list[float], values: list[float]) -> tuple[float, float] | None:
    """(a, c) of the least-squares line value = a + c size: a is the start-up (imports, models), c the
    cost per clip; None with fewer than 2 distinct sizes. Read with the exponent: a stage with a
    start-up of a few seconds has b < 1 at 100 clips although each clip costs the same."""
    if len(set(sizes)) < 2:
        return None
    mx, my = sum(sizes) / len(sizes), sum(values) / len(values)
    c = sum((x - mx) * (y - my) for x, y in zip(sizes, values)) / sum((x - mx) ** 2 for x in sizes)
    return my - c * mx, c


def summarise(records: list[dict]) -> str:
    """A text table: per stage and N the CPU time (wall for dvc), s/clip and peak MiB, then the exponent."""
    sizes = sorted({r["n_clips"] for r in records})
    lines = ["stage          " + "".join(f"| N={n:<5}cpu s s/clip  MiB " for n in sizes) + "| exponent"]
    for stage in [*STAGES, "noop_dvc_repro"]:
        rows = {r["n_clips"]: r for r in records if r["stage"] == stage}
        if not rows:
            continue
        cost = {n: r.get("cpu_s", r["wall_s"]) for n, r in rows.items()}
        cells = "".join(f"| {cost[n]:8.1f} {cost[n] / n:6.3f} {rows[n].get('peak_rss_mib', 0):5.0f} "
                        if n in rows else "|" + " " * 25 for n in sizes)
        b = fit_exponent(list(rows), [cost[n] for n in rows])
        lines.append(f"{stage:<15}{cells}| {'-' if b is None else f'{b:.2f}'}")
    lines.append("linear fit (cost = start-up + per clip x N):")
    for stage in STAGES:
        rows = {r["n_clips"]: r for r in records if r["stage"] == stage}
        line = fit_linear(list(rows), [r.get("cpu_s", r["wall_s"]) for r in rows.values()])
        if line is not None:
            lines.append(f"  {stage:<15}{line[0]:8.1f} s + {line[1]:.3f} s x N")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000],
                    help="corpus sizes N to run, in clips (demo_corpus.n_clips); each one is a project copy and "
                         "one point of the fits (default %(default)s)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/headflow-scale"),
                    help="folder for the project copies <work>/n<N>, each deleted and made anew unless "
                         "--keep-project; holds N clips' data per size (default %(default)s)")
    ap.add_argument("--out", type=Path, default=ROOT / "reports/bench/scale.json",
                    help="results file (JSON list, one record per (N, stage)); records already there are kept "
                         "except those of the sizes (and, with --stages, the stages) being rerun; rewritten after "
                         "each stage (default: reports/bench/scale.json)")
    ap.add_argument("--fit", type=Path, help="only print the table and exponents of this results file")
    ap.add_argument("--stages", nargs="+", choices=STAGES, default=STAGES,
                    help="run only these stages (with --keep-project: rerun them on an earlier run's inputs)")
    ap.add_argument("--keep-project", action="store_true",
                    help="reuse <work>/n<N> as an earlier run left it instead of making it anew (e.g. to measure "
                         "a code change to one stage: the stages import headflow from this checkout)")
    args = ap.parse_args(argv)
    if args.fit:
        print(summarise(json.loads(args.fit.read_text())))
        return
    records = json.loads(args.out.read_text()) if args.out.is_file() else []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    every = args.stages == STAGES
    for n in args.sizes:
        records = [r for r in records if r["n_clips"] != n or (not every and r["stage"] not in args.stages)]
        project = args.work / f"n{n}"
        if not (args.keep_project and (project / "dvc.yaml").is_file()):
            make_project(project, n)
        for stage in args.stages:
            rec = {"n_clips": n, "stage": stage, **run_stage(project, stage)}
            metrics = project / "reports/metrics" / f"{stage}.json"
            if metrics.is_file():
                m = json.loads(metrics.read_text())
                rec["clips_out"] = m.get("accepted", m.get("clips", m.get("good_clips")))
            records.append(rec)
            args.out.write_text(json.dumps(records, indent=1))
            print(json.dumps(rec), flush=True)
        if every:   # a no-op repro needs every stage's outputs from this run
            records.append({"n_clips": n, "stage": "noop_dvc_repro", "wall_s": noop_repro(project)})
            args.out.write_text(json.dumps(records, indent=1))
            print(json.dumps(records[-1]), flush=True)
    print(summarise(records))


if __name__ == "__main__":
    main()
