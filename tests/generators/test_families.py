"""The shared per-family test: every registered family's tiny params set loads, trains two steps and resumes."""

from __future__ import annotations

import pytest

from headflow.config import from_dict, to_dict
from headflow.generators import FAMILIES


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_registry_entry_is_complete(name):
    fam = FAMILIES[name]
    tiny = fam.tiny()
    assert isinstance(tiny, fam.params) and fam.name == name and fam.description
    assert from_dict(fam.params, to_dict(tiny), name) == tiny
    assert callable(fam.train) and callable(fam.generate)
    assert fam.train.target.endswith(":run_stage") and fam.generate.target.endswith(":run_stage")


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_tiny_params_train_two_steps_and_resume(name, family_smoke, tmp_path):
    if name not in family_smoke:
        pytest.fail(f"family {name!r} has no smoke run in tests/generators/conftest.py SMOKE")
    first = family_smoke[name](FAMILIES[name].tiny(), tmp_path / "run")
    assert first["steps"] == 2
    again = family_smoke[name](FAMILIES[name].tiny(), tmp_path / "run")   # everything done: resumes, trains nothing
    assert again["rows"] == first["rows"] and again["checkpoint_sha256"] == first["checkpoint_sha256"]
