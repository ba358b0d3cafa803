"""The fit3dmm params block maps onto FitConfig field by field, with the same defaults."""

from __future__ import annotations

import dataclasses

import pytest

from headflow import params as P
from headflow.config import ConfigError, from_dict
from headflow.fit3dmm.fit import FitConfig
from headflow.fit3dmm.params import Fit3dmmParams
from headflow.fit3dmm.stage import fit_config


def test_fit_params_are_fit_config_fields_with_its_defaults(project_root):
    config_defaults = {f.name: f.default for f in dataclasses.fields(FitConfig)}
    for f in dataclasses.fields(Fit3dmmParams().fit):
        assert f.name in config_defaults, f"fit3dmm.fit.{f.name} is not a FitConfig field"
        assert getattr(Fit3dmmParams().fit, f.name) == config_defaults[f.name], f"fit3dmm.fit.{f.name}"
    block = P.load("fit3dmm", project_root / "params.yaml")
    cfg = fit_config(block)
    assert isinstance(cfg, FitConfig) and (cfg.n_id, cfg.n_exp) == (block.n_id, block.n_exp)
    parsed = from_dict(Fit3dmmParams, {"n_exp": 5, "fit": {"exp_bounds": [-1.0, 2.0]}}, "fit3dmm")
    assert fit_config(parsed).exp_bounds == (-1.0, 2.0) and fit_config(parsed).n_exp == 5


@pytest.mark.parametrize("block, message", [
    ({"fit": {"exp_bounds": [1.0, 0.0]}}, "exp_bounds"),
    ({"fit": {"iterations": 0}}, "iterations"),
    ({"fit": {"n_id": 10}}, "set fit3dmm.n_id"),
    ({"fit": {"admm_iter": 10}}, "admm_iters"),       # unknown key: did-you-mean names the real one
])
def test_bad_fit_params_name_the_key(block, message):
    with pytest.raises((ConfigError, ValueError), match=message):
        from_dict(Fit3dmmParams, block, "fit3dmm")
