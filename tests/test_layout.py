"""The test tree's own rule: pytest's default (rootdir) import mode needs every test module's basename
to be unique, or a full run stops at collection with "import file mismatch" after the subsets pass."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_test_module_basenames_are_unique():
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    clashes = sorted(n for n, k in names.items() if k > 1)
    assert not clashes, f"rename these test modules (one basename per file across tests/): {clashes}"
