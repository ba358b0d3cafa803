"""Params of the `fit3dmm` stage (block `fit3dmm` in params.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    truth_root: str | None = "data/raw/demo"
    """Folder where `<source_path stem>.truth.npz` ground truth lies beside the raw clips (the demo
    corpus writes it); used only for the jaw-open correlation metric, where such files exist. null: none."""
    preview_clips: int = 3
    """Clips shown in reports/fit3dmm/preview.png."""
    max_reject_fraction: float = 0.5
    """Fail the stage when more than this fraction of clips is quarantined."""
    workers: int = 2
    """Processes fitting clips in parallel."""

    def validate(self) -> None:
        if self.crop_size < 16:
            raise ValueError("crop_size must be >= 16")
        for key in ("n_id", "n_exp"):
            v = getattr(self, key)
            if v is not None and v < 0:
                raise ValueError(f"{key} must be >= 0 or null")
            if getattr(self.fit, key) is not None:
                raise ValueError(f"set fit3dmm.{key}, not fit3dmm.fit.{key}")
        if not 0 < self.max_reproj_iod:
            raise ValueError("max_reproj_iod must be > 0")


