"""Shared fixtures: the real params shrunk for tests, the shared test material, a small demo corpus."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

ROOT = Path(__file__).resolve().parents[1]
# ../shared beside the checkout (CI lays it there); HEADFLOW_SHARED points elsewhere (a worktree).
SHARED = Path(os.environ.get("HEADFLOW_SHARED") or ROOT.parent / "shared")
# .ci/run sets HEADFLOW_REQUIRE_SHARED=1: CI has ../shared, so a `shared` test that skips there means
# real-data gates silently stopped running; it fails instead. `make test` without it keeps skipping.
REQUIRE_SHARED = os.environ.get("HEADFLOW_REQUIRE_SHARED") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    needs_shared = item.get_closest_marker("shared") or "shared_dir" in getattr(item, "fixturenames", ())
    if REQUIRE_SHARED and report.skipped and needs_shared and not hasattr(report, "wasxfail"):
        why = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (f"HEADFLOW_REQUIRE_SHARED=1: the test {item.nodeid} (marked shared or using "
                           f"shared_dir) skipped ({why}); CI must run it. Lay the real material at {SHARED} "
                           "(or set HEADFLOW_SHARED), or unset HEADFLOW_REQUIRE_SHARED where ../shared is not expected.")


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared (real test material; HEADFLOW_SHARED overrides); tests that need it skip when it is absent
    (and fail under HEADFLOW_REQUIRE_SHARED=1)."""
    if not SHARED.is_dir():
        pytest.skip(f"shared test material not found at {SHARED} (only developer and CI machines have it)")
    return SHARED


@pytest.fixture(scope="session")
def grid_dir(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "grid"
    if not path.is_dir():
        pytest.skip(f"GRID clips not found at {path}")
    return path


@pytest.fixture(scope="session")
def demo_params():
    """The real demo_corpus params from params.yaml."""
    from headflow import params

    return params.load("demo_corpus", ROOT / "params.yaml")


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory, demo_params):
    """The default demo corpus (real params.yaml), built once per test session."""
    from headflow.demo.corpus import build_corpus

    out = tmp_path_factory.mktemp("demo") / "demo"
    corpus = build_corpus(demo_params, out, progress=False)
    return out, corpus
