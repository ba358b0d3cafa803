"""Import rules (DESIGN): evaluate/ imports no generator family and no stage; families reach the contract
(headflow.manifest.generated) without importing evaluate/."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _loaded(modules: str, prefixes: tuple[str, ...]) -> list[str]:
    code = (f"import sys, {modules}; print(','.join(sorted(m for m in sys.modules "
            f"if m.split('.')[0] == 'stages' or m.startswith({prefixes!r}))))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def test_evaluate_imports_no_generator_and_no_stage():
    modules = "headflow.evaluate.stage, headflow.evaluate.report, headflow.evaluate.compare, headflow.evaluate.judge"
    assert _loaded(modules, ("headflow.generators",)) == []


def test_the_generation_contract_does_not_pull_the_evaluation():
    assert _loaded("headflow.manifest.generated", ("headflow.evaluate", "headflow.generators")) == []
