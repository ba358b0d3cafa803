"""Params of the `fit3dmm` stage (block `fit3dmm` in params.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field

from headflow.catalog import CATALOG
from headflow.config import require
from headflow.fit3dmm.fit import FitConfig


@dataclass
class Fit3dmmParams:
    """3DMM fitting of every face clip, NMFC rendering in the 256x256 crop."""

    model: str = "builtin"
    """builtin (DEMO model, offline) | ict_npz:<path> | ict_folder:<path> | bfm:<path> | flame:<path>;
    relative paths resolve against the project root. ICT-FaceKit (MIT) is the recommended real model."""
    n_id: int | None = None
    """Identity modes used (the first n; null = all the model has)."""
    n_exp: int | None = None
    """Expression modes used (the first n; null = all)."""
    fit: FitConfig = field(default_factory=FitConfig)
    """Fitting settings: the fitter's own `FitConfig` (one definition of the fields and defaults);
    its mode counts come from `n_id` / `n_exp` above."""
    crop_size: int = 256
    """NMFC image size: the faces stage's aligned crop (faces.crop.size)."""
    min_valid_frames: int = 5
    """Clips with fewer frames of valid landmarks are quarantined as too_few_valid_frames."""
    max_reproj_iod: float = 0.1
    """Clips whose median landmark reprojection error exceeds this fraction of the inter-ocular
    distance are quarantined as fit_error_high."""
    truth_root: str | None = CATALOG.stage("demo_corpus").folder
    """Folder where `<source_path stem>.truth.npz` ground truth lies beside the raw clips (the demo
    corpus writes it); used only for the jaw-open correlation metric, where such files exist. null: none."""
    preview_clips: int = 3
    """Clips shown in reports/fit3dmm/preview.png."""
    max_reject_fraction: float = 0.5
    """Fail the stage when more than this fraction of clips is quarantined."""
    workers: int = 2
    """Processes fitting clips in parallel."""

    def validate(self) -> None:
        require(self.crop_size >= 16, "crop_size", self.crop_size, ">= 16")
        for key in ("n_id", "n_exp"):
            v = getattr(self, key)
            require(v is None or v >= 0, key, v, ">= 0 or null (all modes)")
            require(getattr(self.fit, key) is None, f"fit.{key}", getattr(self.fit, key),
                    f"null only: set fit3dmm.{key} instead")
        require(self.max_reproj_iod > 0, "max_reproj_iod", self.max_reproj_iod, "> 0")
        require(0 <= self.max_reject_fraction <= 1, "max_reject_fraction", self.max_reject_fraction, "a fraction in [0, 1]")
        require(self.workers >= 1, "workers", self.workers, ">= 1")


