"""Params of the `fit3dmm` and `expressions` stages (blocks `fit3dmm`, `expressions` in params.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FitParams:
    """Video fitting settings; each field is the same-named field of `headflow.morphable.fit.FitConfig`."""

    iterations: int = 4
    """Camera <-> coefficient alternations."""
    id_prior: float = 1e-6
    """Weight of ||alpha||^2 (identity coefficients), per valid frame (data term: mean squared error in IOD units)."""
    exp_prior: float = 1e-7
    """Weight of ||beta_t||^2 (expression coefficients)."""
    exp_smooth: float = 1e-4
    """Weight of the second temporal difference of the expression coefficients."""
    pose_smooth: float = 1e-1
    """Weight of the second temporal difference of the pose (yaw, pitch, roll [rad], tx / IOD, ty / IOD, log scale)."""
    id_bound: float = 3.0
    """|alpha_k| <= id_bound."""
    exp_bounds: list[float] | None = None
    """[low, high] for expression coefficients; null: (0, 1) for blendshape models, (-3, 3) for PCA."""
    contour: bool = True
    """Slide the jaw landmarks 0-7 / 9-16 along the model's jaw-contour candidates as the head turns."""
    jaw_weight: float = 1.0
    """Data weight of the 17 jaw-line landmarks relative to the others (detectors are least sure there)."""

    def validate(self) -> None:
        if self.iterations < 1:
            raise ValueError("fit.iterations must be >= 1")
        if self.exp_bounds is not None and (len(self.exp_bounds) != 2 or self.exp_bounds[0] >= self.exp_bounds[1]):
            raise ValueError(f"fit.exp_bounds must be [low, high] with low < high, got {self.exp_bounds}")


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
    fit: FitParams = field(default_factory=FitParams)
    """Fitting settings (FitConfig)."""
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
        if not 0 < self.max_reproj_iod:
            raise ValueError("max_reproj_iod must be > 0")


@dataclass
class ExpressionsParams:
    """Per-frame expression coefficients and head pose of every fitted clip, in one Parquet table."""

    export_mat: bool = False
    """Also write one Deep3DFaceRecon/StyleTalk `.mat` (coeff (T, 257)) per clip; only for BFM fits
    (other models' bases are not the BFM's: the stage refuses)."""
