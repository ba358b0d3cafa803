"""kill -9 of a training run mid-way, then a rerun: the same networks, EMA and history as a run left alone.

The training harness (`headflow.training.loop.fit`, which every family's trainer calls) writes
`last.pt` atomically after each epoch and resumes from it. A child process trains the toy GAN of
`test_loop.py` for four epochs; it is killed with SIGKILL once the first checkpoint exists (each
later epoch starts with a 0.4 s pause in `set_epoch`, which changes no number, so the kill lands
inside the run), and the same command run again must finish with what an undisturbed child wrote.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import logging, sys, time
logging.basicConfig(level=logging.INFO)
sys.path.insert(0, {tests!r})
import test_loop

class Slow(test_loop.Squares):
    def set_epoch(self, epoch):
        if epoch >= 2:
            time.sleep(0.4)
        super().set_epoch(epoch)

test_loop.Squares = Slow
test_loop.train({out!r}, epochs=4, live_dir=None)
"""


def _train(out: Path, kill_on_checkpoint: bool = False) -> str:
    """Train in a child process; return its log (stderr). With `kill_on_checkpoint`, SIGKILL it as soon
    as `last.pt` exists."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    code = CHILD.format(tests=str(ROOT / "tests/training"), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    if not kill_on_checkpoint:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-3000:]
        return err.decode()
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and not (out / "last.pt").exists():
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)             # the group this test started
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    return ""


def test_a_killed_training_run_resumes_to_the_undisturbed_result(tmp_path):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    _train(clean)
    _train(killed, kill_on_checkpoint=True)
    # what the kill left is whole: last.pt loads (an epoch-1 or later checkpoint, never a torn file)
    left = torch.load(killed / "last.pt", weights_only=True)
    assert 1 <= left["epoch"] < 4, left["epoch"]
    log = _train(killed)                             # the rerun resumes and finishes
    assert f"resumed from {killed / 'last.pt'} after epoch {left['epoch']}" in log, log[-2000:]
    a, b = (torch.load(p / "last.pt", weights_only=True) for p in (clean, killed))
    assert a["epoch"] == b["epoch"] == 4
    for part in ("generator", "discriminator"):
        assert all(torch.equal(a["networks"][part][k], b["networks"][part][k]) for k in a["networks"][part]), part
    assert all(torch.equal(a["ema"][k], b["ema"][k]) for k in a["ema"])
    timing = {"samples_per_s", "data_wait_fraction", "prepare_fraction", "seconds"}
    history = [[{k: v for k, v in r.items() if k not in timing} for r in json.loads((p / "history.json").read_text())]
               for p in (clean, killed)]
    assert history[0] == history[1] and len(history[0]) == 4
