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
from pathlib import Path

from headflow.catalog import CATALOG
from headflow.summary import render

RAN = re.compile(r"Running stage '([^']+)'")
SKIPPED = re.compile(r"Stage '([^']+)' didn't change, skipping")
FAILED = re.compile(r"failed to reproduce '([^']+)'")


def _dvc() -> str:
    local = Path(sys.executable).parent / "dvc"
    return str(local) if local.exists() else (shutil.which("dvc") or "dvc")


def run_repro(target: str | None = None, force: bool = False) -> tuple[int, dict[str, str]]:
    """Run `dvc repro`, echoing its output; returns the exit code and each stage's status."""
    cmd = [_dvc(), "repro", *(["--force"] if force else []), *([target] if target else [])]
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, bufsize=1)
    status: dict[str, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        if m := RAN.search(line):
            status[m.group(1)] = "ran"
        elif m := SKIPPED.search(line):
            status[m.group(1)] = "cached"
        elif m := FAILED.search(line):
            status[m.group(1)] = "FAILED"
    return proc.wait(), status


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", help="stop at this stage (default: the whole pipeline)")
    ap.add_argument("--force", action="store_true", help="re-run stages even if nothing changed")
    args = ap.parse_args(argv)
    if not Path("dvc.yaml").exists():
        print("error: run from the project root (dvc.yaml not found)", file=sys.stderr)
        return 2
    start = time.perf_counter()
    code, status = run_repro(args.target, args.force)
    print(render(status, time.perf_counter() - start))
    report = CATALOG.report("evaluate", "page")
    if report.exists():
        print(f"\nevaluation report: {report} (open {report.resolve().as_uri()} in a browser; works offline)")
    if code:
        print(f"\ndvc repro failed with exit code {code}; see the log above.", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
