"""Fixtures of the evaluation tests: a tiny project of real faces, scored once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from evaluate_fixture import CLIPS, copy_project, fixture_catalog, tiny_params, write_generated_outputs  # noqa: E402


@pytest.fixture(scope="session")
def eval_project(tmp_path_factory) -> Path:
    """The tiny project (ingest, faces, audio_features manifests, media, mels, untrained judge and expert)."""
    from evaluate_fixture import build_project

    root = tmp_path_factory.mktemp("evaluate") / "project"
    build_project(root, CLIPS)
    return root


@pytest.fixture(scope="session")
def evaluated(eval_project, tmp_path_factory):
    """The fixture project with generated outputs, after one run of the evaluate stage: (root, metrics, seconds)."""
    import time

    from headflow.evaluate.stage import run_stage

    root = copy_project(eval_project, tmp_path_factory.mktemp("evaluated") / "project")
    verdicts = write_generated_outputs(root)
    t = time.perf_counter()
    # the evaluation reads what the catalog's generate stages wrote (here the fixture's generate_copycat)
    metrics = run_stage(tiny_params(), project_root=root, generated_paths=fixture_catalog().generated_manifests(),
                        progress=False)
    return root, metrics, verdicts, time.perf_counter() - t
