"""The Ray worker hook (`headflow.cluster.ray_worker_setup`) without Ray: it is plain Python."""

from __future__ import annotations

import os
import sys

import pytest

from headflow.cluster import (ROOT_ENV, SHA_ENV, ProjectNotVisibleError, digest, ray_runtime_env,
                              ray_worker_setup)


def test_runtime_env_carries_the_folder_and_digest_to_the_hook(tmp_path):
    (tmp_path / "params.yaml").write_text("a: 1\n")
    env = ray_runtime_env(tmp_path)
    assert env["worker_process_setup_hook"] == "headflow.cluster.ray_worker_setup"
    assert env["env_vars"] == {ROOT_ENV: str(tmp_path.resolve()), SHA_ENV: digest(tmp_path / "params.yaml")}


def test_hook_moves_the_worker_into_the_folder_and_onto_sys_path(tmp_path, monkeypatch):
    (tmp_path / "params.yaml").write_text("a: 1\n")
    for key, value in ray_runtime_env(tmp_path)["env_vars"].items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(os.path.dirname(tmp_path))
    monkeypatch.setattr(sys, "path", list(sys.path))
    ray_worker_setup()
    assert os.getcwd() == str(tmp_path.resolve()) and sys.path[0] == str(tmp_path.resolve())


def test_hook_refuses_a_folder_it_cannot_see_or_another_copy(tmp_path, monkeypatch):
    monkeypatch.setenv(ROOT_ENV, str(tmp_path / "elsewhere"))
    monkeypatch.setenv(SHA_ENV, "0" * 64)
    with pytest.raises(ProjectNotVisibleError, match="cannot see the project folder"):
        ray_worker_setup()
    (tmp_path / "params.yaml").write_text("a: 1\n")
    monkeypatch.setenv(ROOT_ENV, str(tmp_path))
    with pytest.raises(ProjectNotVisibleError, match="different"):
        ray_worker_setup()
