"""Params of the `expressions` stage (block `expressions` in params.yaml)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ExpressionsParams:
    """Per-frame expression coefficients and head pose of every fitted clip, in one Parquet table."""

    export_mat: bool = False
    """Also write one Deep3DFaceRecon/StyleTalk `.mat` (coeff (T, 257)) per clip; only for BFM fits
    (other models' bases are not the BFM's: the stage refuses)."""
