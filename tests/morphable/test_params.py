"""The fit3dmm params block maps onto FitConfig field by field, with the same defaults."""

from __future__ import annotations

import dataclasses

from headflow import params as P
from headflow.morphable.fit import FitConfig
from headflow.morphable.params import Fit3dmmParams, FitParams
from headflow.morphable.stage import fit_config


def test_fit_params_are_fit_config_fields_with_its_defaults(project_root):
    config_defaults = {f.name: f.default for f in dataclasses.fields(FitConfig)}
    for f in dataclasses.fields(FitParams):
        assert f.name in config_defaults, f"fit3dmm.fit.{f.name} is not a FitConfig field"
        assert f.default == config_defaults[f.name], f"fit3dmm.fit.{f.name}: {f.default} vs FitConfig {config_defaults[f.name]}"
    block = P.load("fit3dmm", project_root / "params.yaml")
    cfg = fit_config(block)
    assert isinstance(cfg, FitConfig) and (cfg.n_id, cfg.n_exp) == (block.n_id, block.n_exp)
    assert fit_config(Fit3dmmParams(n_exp=5, fit=FitParams(exp_bounds=[-1.0, 2.0]))).exp_bounds == (-1.0, 2.0)
