"""`make demo`: run the pipeline with `dvc repro` and print what happened.

    python -m headflow.demo_run [--target STAGE] [--force]

The demo's size and cost are ordinary params (`demo_corpus.n_clips`, `demo_corpus.frame_size`,
...); `--target` stops the pipeline at a stage.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from headflow.catalog import CATALOG
from headflow.summary import render

RAN = re.compile(r"Running stage '([^']+)'")
SKIPPED = re.compile(r"Stage '([^']+)' didn't change, skipping")
FAILED = re.compile(r"failed to reproduce '([^']+)'")


def _dvc() -> str:
    local = Path(sys.executable).parent / "dvc"
    return str(local) if local.exists() else (shutil.which("dvc") or "dvc")


def follow_repro(lines: Iterable[str], clock: Callable[[], float] = time.perf_counter,
                 echo: Callable[[str], object] | None = None) -> tuple[dict[str, str], dict[str, float]]:
    """Read `dvc repro`'s output as it comes: each stage's status and the wall time of each stage that ran.

    Args:
        lines: the output lines, in order (read as they are printed, so `clock` times them).
        clock: seconds (monotonic); echo: where each line goes on (default: standard output).

    Returns:
        (status: stage -> "ran" / "cached" / "FAILED", wall: stage -> seconds from its
        `Running stage` line to the next stage's line or the end of the output; DVC runs stages one
        at a time, so this is its command plus DVC's hashing and lock-file update).
    """
    status: dict[str, str] = {}
    wall: dict[str, float] = {}
    running: tuple[str, float] | None = None
    echo = echo or sys.stdout.write
    for line in lines:
        echo(line)
        found = [(m.group(1), st) for rx, st in ((RAN, "ran"), (SKIPPED, "cached"), (FAILED, "FAILED"))
                 if (m := rx.search(line))]
        if not found:
            continue
        name, st = found[0]
        now = clock()
        if running is not None:        # the next stage's line (or the running one's failure) ends it
            wall[running[0]] = now - running[1]
            running = None
        status[name] = st
        if st == "ran":
            running = (name, now)
    if running is not None:
        wall[running[0]] = clock() - running[1]
    return status, wall


def run_repro(target: str | None = None, force: bool = False) -> tuple[int, dict[str, str], dict[str, float]]:
    """Run `dvc repro`, echoing its output; returns the exit code, each stage's status and the wall
    time (s) of each stage that ran (`follow_repro`)."""
    cmd = [_dvc(), "repro", *(["--force"] if force else []), *([target] if target else [])]
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, bufsize=1)
    assert proc.stdout is not None
    status, wall = follow_repro(proc.stdout)
    return proc.wait(), status, wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", help="stop at this stage (default: the whole pipeline)")
    ap.add_argument("--force", action="store_true", help="re-run stages even if nothing changed")
    args = ap.parse_args(argv)
    if not Path("dvc.yaml").exists():
        print("error: run from the project root (dvc.yaml not found)", file=sys.stderr)
        return 2
    start = time.perf_counter()
    code, status, wall = run_repro(args.target, args.force)
    print(render(status, time.perf_counter() - start, stage_wall_s=wall))
    report = CATALOG.report("evaluate", "page")
    if report.exists():
        print(f"\nevaluation report: {report} (open {report.resolve().as_uri()} in a browser; works offline)")
    if code:
        print(f"\ndvc repro failed with exit code {code}; see the log above.", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
