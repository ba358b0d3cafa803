"""The per-clip fit file of the `fit3dmm` stage (`data/interim/fit3dmm/fits/<clip_id>.npz`).

Keys: model (str), n_id, n_exp, id_coeffs (K_id,), exp_coeffs (T, K_exp), rotation (T, 3, 3),
angles (T, 3) degrees (yaw, pitch, roll; R = Rz(roll) Rx(pitch) Ry(yaw)), translation (T, 2) source px,
scale (T,) px per model unit, valid (T,), reproj_px (T,), iod_px (T,), crop_transforms (T, 2, 3)
source -> crop (copied from the faces landmarks so the file is self-contained), crop_size.
Written deterministically (fixed zip timestamps, no compression of timing data): same fit, same bytes.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from headflow.manifest import atomic_output

ARRAYS = ("id_coeffs", "exp_coeffs", "rotation", "angles", "translation", "scale", "valid", "reproj_px", "iod_px")


def save_npz_deterministic(path: str | Path, **arrays) -> Path:
    """Like np.savez_compressed, but the zip entries carry a fixed timestamp (same arrays -> same bytes)."""
    with atomic_output(path, suffix=".npz") as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name in sorted(arrays):
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.asanyarray(arrays[name]), allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, buf.getvalue())
    return Path(path)


def save_fit(path: str | Path, fit, crop_transforms: np.ndarray | None = None, crop_size: int = 256) -> Path:
    """Write a `VideoFit` (and the crop transforms it was rendered with)."""
    arrays = {k: np.asarray(getattr(fit, k)) for k in ARRAYS}
    arrays["model"] = np.str_(fit.model_name)
    arrays["n_id"] = np.int32(arrays["id_coeffs"].shape[-1])
    arrays["n_exp"] = np.int32(arrays["exp_coeffs"].shape[-1])
    if crop_transforms is not None:
        arrays["crop_transforms"] = np.asarray(crop_transforms, np.float64).reshape(-1, 2, 3)
        arrays["crop_size"] = np.int32(crop_size)
    return save_npz_deterministic(path, **arrays)


def load_fit(path: str | Path) -> dict:
    """The fit file as a dict of arrays (`model` as str); see the module docstring for the keys."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: fit file not found (has the fit3dmm stage run?)")
    with np.load(path, allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    missing = [k for k in (*ARRAYS, "model") if k not in out]
    if missing:
        raise ValueError(f"{path}: not a fit3dmm fit file; missing {missing}")
    out["model"] = str(out["model"])
    return out


def fit_from_file(path: str | Path):
    """The fit file as a `VideoFit` (for `project`, `export_deep3d_mat`)."""
    from headflow.fit3dmm.fit import VideoFit

    d = load_fit(path)
    return VideoFit(model_name=d["model"], **{k: d[k] for k in ARRAYS})
