"""kill -9 in the middle of a stage, then a rerun: the outputs are those of an undisturbed run.

Every writer goes through `headflow.atomic.atomic_output` (a temporary name, then `os.replace`), so a
killed stage leaves whole files and `.<name>.<hex>.tmp*` leftovers, never a half-written file under
a final name; the rerun recomputes every clip and removes what is not its own output. The test kills
ingest, faces and fit3dmm with SIGKILL once each has written part of its per-clip outputs (media,
crops, fits), reruns it, and compares every output byte for byte with an undisturbed run in
another folder (timings columns aside).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SRC = Path(__file__).resolve().parents[2] / "src"
RUN = {
    "ingest": ("from headflow.ingest.params import IngestParams; from headflow.ingest.stage import run_stage; "
               "run_stage(IngestParams(source='folder', root={root!r}, face_probe_frames=0, workers=1), progress=False)"),
    "faces": ("from headflow.faces.params import FacesParams; from headflow.faces.stage import run_stage; "
              "run_stage(FacesParams(workers=1), progress=False)"),
    "fit3dmm": ("from headflow.fit3dmm.params import Fit3dmmParams; from headflow.fit3dmm.stage import run_stage; "
                "run_stage(Fit3dmmParams(workers=1, truth_root=None), progress=False)"),
}
# per stage: the per-clip folder whose finished files show how far it got, and its final manifest
WATCH = {"ingest": ("media", "clips.parquet"), "faces": ("crops", "faces.parquet"), "fit3dmm": ("fits", "fits.parquet")}


def _stage(project: Path, stage: str, root: Path, kill_after_files: int | None = None) -> None:
    """Run `stage` in a fresh interpreter in `project`; with `kill_after_files`, SIGKILL its process group
    as soon as its artifact folder holds that many finished files."""
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", RUN[stage].format(root=str(root))], cwd=project, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    if kill_after_files is None:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()[-3000:]
        return
    folder = project / "data/interim" / stage / WATCH[stage][0]
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        done = [f for f in folder.glob("*") if not f.name.startswith(".")] if folder.is_dir() else []
        if len(done) >= kill_after_files:
            os.killpg(proc.pid, signal.SIGKILL)     # the group this test started: the stage and its children
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the stage finished before it could be killed: give it more clips"
    assert not (project / "data/interim" / stage / WATCH[stage][1]).exists()


@pytest.fixture(scope="module")
def raw(tmp_path_factory, portrait_frames):
    from headflow.media import encode_video

    root = tmp_path_factory.mktemp("raw")
    sr = 16000
    for k in range(4):
        frames = portrait_frames(k)
        audio = (0.1 * np.sin(2 * np.pi * (180 + 20 * k) * np.arange(len(frames) * sr // 25) / sr)).astype(np.float32)
        encode_video(frames, root / f"spk{k % 2}" / f"clip{k}.mp4", fps=25, audio=audio, sample_rate=sr,
                     preset="ultrafast", threads=1)
    return root


@pytest.fixture(scope="module")
def portrait_frames():
    import cv2

    from headflow.demo.portraits import prepare_portrait

    face = prepare_portrait("tom_hanks", size=160).image

    def frames(k: int) -> list[np.ndarray]:
        out = []
        for t in range(30):
            M = np.float32([[1, 0, 40 + 0.5 * t + 3 * k], [0, 1, 16]])
            out.append(cv2.warpAffine(face, M, (256, 192), borderMode=cv2.BORDER_CONSTANT, borderValue=(120, 120, 120)))
        return out

    return frames


def _outputs(project: Path, stage: str) -> dict[str, bytes]:
    folder = project / "data/interim" / stage
    return {f.relative_to(folder).as_posix(): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()}


def test_killed_stages_rerun_to_the_undisturbed_outputs(raw, tmp_path):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    for project in (clean, killed):
        project.mkdir()
    for stage in ("ingest", "faces", "fit3dmm"):
        _stage(clean, stage, raw)
        _stage(killed, stage, raw, kill_after_files=2)     # mid-way: one or two of the four clips done
        _stage(killed, stage, raw)                         # the rerun
        a, b = _outputs(clean, stage), _outputs(killed, stage)
        assert sorted(a) == sorted(b), f"{stage}: files differ: {sorted(set(a) ^ set(b))}"
        timing = {"faces.parquet", "fits.parquet"}         # per-step seconds: never the same twice
        assert [k for k in a if k not in timing and a[k] != b[k]] == [], stage
    for manifest in ("faces/faces.parquet", "fit3dmm/fits.parquet"):
        tables = [pd.read_parquet(p / "data/interim" / manifest) for p in (clean, killed)]
        same = [c for c in tables[0].columns if not c.endswith("_s")]
        assert len(tables[0]) == 4, manifest                 # every clip made it through (nothing quarantined)
        pd.testing.assert_frame_equal(tables[0][same], tables[1][same])
