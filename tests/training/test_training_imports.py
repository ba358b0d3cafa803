"""training/ knows no family and no stage: an allow-list of what its modules import."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "src/headflow/training"
THIRD_PARTY = {"torch", "lightning", "dvclive", "numpy", "tqdm", "PIL", "matplotlib"}
HEADFLOW = ("headflow.training", "headflow.nn", "headflow.losses", "headflow.augment", "headflow.checks")


def imports_of(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import; use absolute headflow.training imports"
            names.append(node.module)
    return names


def test_training_imports_only_the_allow_list():
    files = sorted(ROOT.glob("*.py"))
    assert len(files) >= 9
    bad = [(f.name, name) for f in files for name in imports_of(f)
           if not (name.split(".")[0] in sys.stdlib_module_names or name.split(".")[0] in THIRD_PARTY
                   or name == "__future__" or name.startswith(HEADFLOW))]
    assert not bad, f"training/ may import only the stdlib, {sorted(THIRD_PARTY)} and {HEADFLOW}: {bad}"


def test_the_allow_list_check_catches_a_family_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import torch\nfrom headflow.sync.train import ExpertStep\n")
    assert "headflow.sync.train" in imports_of(probe)
