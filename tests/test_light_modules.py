"""The one-definition modules import nothing heavy and no other headflow module, so every room may use them."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _imported_by(module: str) -> set[str]:
    """Top-level packages (and headflow modules) a fresh interpreter loads to import `module`."""
    code = (f"import sys; before = set(sys.modules); import {module}; "
            "print(' '.join(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return {m if m.startswith("headflow") else m.split(".")[0] for m in out}


@pytest.mark.parametrize("module, heavy", [
    ("headflow.landmarks68", {"pandas", "pyarrow", "torch", "cv2", "scipy"}),   # numpy only: nn/, families
    ("headflow.rotations", {"pandas", "pyarrow", "torch", "cv2", "scipy"}),     # numpy only
    # standard library only: media and models use it without pandas
    ("headflow.atomic", {"numpy", "pandas", "pyarrow", "torch", "cv2", "scipy"}),
])
def test_imports_no_other_headflow_module_and_nothing_heavy(module, heavy):
    loaded = _imported_by(module)
    assert {m for m in loaded if m.startswith("headflow")} <= {"headflow", module}
    assert not loaded & heavy
