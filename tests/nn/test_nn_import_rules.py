"""The allow-list of docs/DESIGN.md: nn/, losses/, augment/ import only torch, kornia, the standard library,
typing helpers and each other."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "headflow"
SHARED = ("nn", "losses", "augment", "checks")  # checks: the stdlib-only `require` every config validates with
THIRD_PARTY = {"torch", "kornia", "typing_extensions", "jaxtyping"}


def _violations(source: str, package: str) -> list[str]:
    """Imports in `source` (a module of headflow.<package>) that the allow-list forbids."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against headflow.<package>
                base = ["headflow", package][: max(0, 2 - (node.level - 1))]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            modules = [(name, [a.name for a in node.names])]
        else:
            continue
        for name, imported in modules:
            parts = name.split(".")
            if parts[0] == "headflow":
                targets = [parts[1]] if len(parts) > 1 else (imported or [])
                bad += [f"{name} ({t})" for t in targets if t not in SHARED]
            elif parts[0] not in THIRD_PARTY and parts[0] not in sys.stdlib_module_names:
                bad.append(name)
    return bad


def _modules() -> list[Path]:
    return sorted(p for pkg in SHARED for p in (SRC / pkg).rglob("*.py"))


def test_the_checker_catches_forbidden_imports():
    assert _violations("import numpy as np", "nn") == ["numpy"]
    assert _violations("from headflow import models", "losses") == ["headflow (models)"]
    assert _violations("from headflow.sync.model import SyncExpert", "nn") == ["headflow.sync.model (sync)"]
    assert _violations("from .. import catalog", "nn") == ["headflow (catalog)"]
    assert _violations("import torch\nfrom kornia.geometry import transform\nfrom typing import Literal\n"
                       "from headflow.nn.perceptual import LAYERS\nfrom . import blocks", "nn") == []


def test_the_shared_folders_have_their_modules():
    names = {f"{p.parent.name}/{p.name}" for p in _modules()}
    for expected in ("nn/blocks.py", "nn/modconv.py", "nn/warp.py", "nn/discriminators.py", "nn/perceptual.py",
                     "losses/gan.py", "losses/image.py", "losses/perceptual.py", "losses/sync.py",
                     "augment/diffaugment.py"):
        assert expected in names


@pytest.mark.parametrize("path", _modules(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shared_module_imports_only_allowed_packages(path: Path):
    bad = _violations(path.read_text(), path.relative_to(SRC).parts[0])
    assert not bad, f"{path.relative_to(SRC)} imports {bad}; nn/, losses/, augment/ may import only torch, kornia, " \
                    "the standard library and headflow.nn/losses/augment (docs/DESIGN.md, import rules)"
