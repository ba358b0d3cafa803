"""DDP on CPU: two Gloo processes train the Head2HeadFS initialisation stage in step, and resume."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).parent


def _torchrun(out: Path, epochs: int) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip(f"torchrun not found beside {sys.executable}")
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE.parents[2] / "src"), str(HERE.parents[2]),
                                          os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([str(torchrun), "--nproc_per_node=2", f"--master_port={port}",
                           str(HERE / "ddp_head2headfs.py"), str(out), str(epochs)],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.slow
def test_two_cpu_ranks_train_in_step_and_resume(tmp_path):
    _torchrun(tmp_path, 1)
    _torchrun(tmp_path, 2)                                   # resumes after epoch 1
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert ranks[0]["history"] == ranks[1]["history"]        # rank 0's rows broadcast
    assert ranks[0]["weights"] == ranks[1]["weights"]        # parameters of G + E_id and the Ds equal on both ranks
    # 4 windows / (1 per rank x 2 ranks) = 2 steps per epoch
    assert [h["step"] for h in ranks[0]["history"]] == [2, 4]
    state = torch.load(tmp_path / "init" / "last.pt", weights_only=True)
    assert state["epoch"] == 2 and (tmp_path / "init.pt").is_file()
