"""Fixtures of the cluster tests (Dask, Ray): the preprocessed 3-clip project and a Prefect test server."""

from __future__ import annotations

import pytest
from scaleout_project import preprocessed_project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """(root, reference): a 3-clip demo project and, in `reference`, the single-process stage outputs."""
    return preprocessed_project(tmp_path_factory.mktemp("scaleout"))


@pytest.fixture(scope="module")
def prefect_server():
    """A temporary Prefect server (its start-up took ~10 s on an idle machine and > 5 min under a load of 20+
    on 2 cores, 2026-11-29: hence the generous timeout)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=600):
        yield
