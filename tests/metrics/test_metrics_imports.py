"""Import rule (docs/DESIGN.md): metrics import no generator, no stage and no heavy module at import time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import headflow.metrics as metrics

ROOT = Path(__file__).resolve().parents[2]


def test_public_names_resolve():
    assert all(callable(getattr(metrics, name)) for name in metrics.__all__)


def test_import_pulls_no_generator_stage_or_torch():
    code = ("import sys, headflow.metrics; bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'stages', 'dlib', 'cpbd') or m.startswith(('headflow.generators', 'headflow.evaluate', "
            "'headflow.sync'))); print(','.join(bad))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "", f"importing headflow.metrics loaded: {out.stdout.strip()}"
