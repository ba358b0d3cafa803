"""Shared fixtures: the real params shrunk for tests, the shared test material, a small demo corpus."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

ROOT = Path(__file__).resolve().parents[1]
# pytest-xdist workers (`make test` runs two) each get their own Prefect home: flows run in one worker
# must not share the other's SQLite database.
if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("PREFECT_HOME"):
    os.environ["PREFECT_HOME"] = os.path.join(os.environ["PREFECT_HOME"], os.environ["PYTEST_XDIST_WORKER"])
# ../shared beside the checkout (CI lays it there); HEADFLOW_SHARED points elsewhere (a worktree).
SHARED = Path(os.environ.get("HEADFLOW_SHARED") or ROOT.parent / "shared")
# .ci/run sets HEADFLOW_REQUIRE_SHARED=1: CI has ../shared, so a `shared` test that skips there means
# real-data gates silently stopped running; it fails instead. `make test` without it keeps skipping.
REQUIRE_SHARED = os.environ.get("HEADFLOW_REQUIRE_SHARED") == "1"


# The longest test files (seconds on an idle 2-core machine, 2026-11-29) run first: under pytest-xdist
# (`--dist loadfile`) a file goes whole to one worker, so the 4-minute e2e demo run must not be the
# last file handed out while the other worker idles.
FIRST = ("tests/e2e/test_pipeline.py", "tests/align/test_accuracy.py", "tests/e2e/test_kill_rerun.py",
         "tests/fit3dmm/test_fit.py", "tests/e2e/test_cases.py", "tests/scaleout/test_dask_cluster.py",
         "tests/demo/test_corpus.py", "tests/faces/test_gates.py", "tests/scaleout/test_torchrun.py",
         "tests/scaleout/test_flow_resume.py")


def pytest_collection_modifyitems(config, items):
    rank = {path: i for i, path in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(FIRST)))   # stable: order kept within


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

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        out = tmp_path_factory.mktemp("demo") / "demo"
        return out, build_corpus(demo_params, out, progress=False)
    # Under pytest-xdist (`make test` runs 2 workers) each worker has its own session: the first one to
    # get here builds the corpus (~60 s) in the run's common temp folder, the others wait and reuse it.
    import pandas as pd
    from filelock import FileLock

    common = tmp_path_factory.getbasetemp().parent
    out, index = common / "demo_shared" / "demo", common / "demo_shared" / "index.pkl"
    with FileLock(str(common / "demo_shared.lock")):
        if not index.is_file():
            corpus = build_corpus(demo_params, out, progress=False)
            corpus.to_pickle(index)
    return out, pd.read_pickle(index)
