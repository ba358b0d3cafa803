"""A tiny headflow project on disk (params.yaml shrunk, a 3-clip demo corpus) for the scale-out tests."""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[2]
PREPROCESS = ["ingest", "audio_features", "align", "faces", "shards"]
# Per-clip timing columns (faces.parquet's decode_s ... cpu_s): the only values two identical runs may differ in.
TIMING = re.compile(r"seconds|per_s$|^(decode|detect|landmarks|smooth|warp|encode|total|cpu)_s$")


@contextlib.contextmanager
def cwd(path: Path) -> Iterator[None]:
    """Run the block in `path` (the stages read and write relative to the project root)."""
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def run(cmd: list[str], cwd: Path) -> str:
    """Run a command of the venv (dvc, git) in `cwd`; its stdout. Raises AssertionError with its output."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def copy_project(dst: Path) -> None:
    """A git repository at `dst` holding the tracked project files (no data, reports or dvc.lock) and
    the tiny params of `write_params`: `dvc status` and `dvc commit` work there."""
    files = run(["git", "ls-files", "-co", "--exclude-standard"], ROOT).split()
    for rel in files:
        if rel.startswith(("data/", "reports/")) or rel == "dvc.lock" or not (ROOT / rel).is_file():
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dst / rel)
    write_params(dst)
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    run(["git", "init", "-q"], dst)
    run([*git, "add", "-A"], dst)
    run([*git, "commit", "-qm", "init"], dst)


def write_params(root: Path) -> None:
    """The project's params.yaml with 3 short demo clips, no bad inputs and one process per stage."""
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    data["demo_corpus"].update(n_clips=3, bad_inputs=False, frame_size=256, workers=1,
                               min_duration_s=2.0, max_duration_s=4.0)
    data["ingest"].update(face_probe_frames=2, max_reject_fraction=0.8)
    data["ingest"]["split"]["min_speaker_clips"] = 1
    for block in data.values():
        if isinstance(block, dict) and "workers" in block:
            block["workers"] = 1
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def run_stages(root: Path, stages: list[str]) -> dict:
    """`run_stage` of each stage in this process, as `python -m stages.<stage>` does; their metrics."""
    from headflow import params as P
    from pipelines.preprocess import STAGES

    out = {}
    with cwd(root):
        for stage in stages:
            module = importlib.import_module(STAGES[stage][0])
            out[stage] = module.run_stage(P.load(stage, "params.yaml"), progress=False)
    return out


def differences(a: Path, b: Path) -> list[str]:
    """Files under folders `a` and `b` that differ: missing on one side, or other bytes (a Parquet file
    may differ in its TIMING columns only, every other column exactly equal)."""
    fa = {p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file()}
    fb = {p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file()}
    out = [f"only in {a}: {n}" for n in sorted(fa - fb)] + [f"only in {b}: {n}" for n in sorted(fb - fa)]
    for name in sorted(fa & fb):
        x, y = (a / name).read_bytes(), (b / name).read_bytes()
        if x == y:
            continue
        if name.endswith(".parquet"):
            dx, dy = pd.read_parquet(a / name), pd.read_parquet(b / name)
            keep = [c for c in dx.columns if not TIMING.search(c)]
            if list(dx.columns) == list(dy.columns) and len(keep) < len(dx.columns) and dx[keep].equals(dy[keep]):
                continue
        out.append(f"differ: {name}")
    return out


def preprocessed_project(parent: Path) -> tuple[Path, Path]:
    """(root, reference): a 3-clip demo project under `parent` with demo_corpus..shards run in this
    process, and a copy of its data/interim in `reference` (what a cluster run must reproduce)."""
    root = parent / "project"
    copy_project(root)
    run_stages(root, ["demo_corpus", *PREPROCESS])
    reference = parent / "reference"
    shutil.copytree(root / "data/interim", reference)
    return root, reference
