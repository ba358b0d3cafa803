"""Source-to-target NMFC (section 3.2 last paragraph, section 3.4 "Synthesis"): the driver's expression and
pose with the target's identity coefficients, rendered in the driver's crop.

Reads fit3dmm's per-clip fit files (arrays `id_coeffs` (K_id,), `exp_coeffs` (T, K_exp), `rotation`
(T, 3, 3), `scale` (T,), `translation` (T, 2), `valid` (T,), `crop_transforms` (T, 2, 3)) as data (a family
does not import fit3dmm); the camera is fit3dmm's weak perspective: u = s R_0 X + t_x, v = -s R_1 X + t_y,
depth = s R_2 X (`fit3dmm.fit.VideoFit.project`, which a test checks this against).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from headflow.morphable.model import MorphableModel


def read_fit(path: str | Path) -> dict[str, np.ndarray]:
    """A fit3dmm fit file's arrays.

    Raises:
        FileNotFoundError: no file.
        ValueError: arrays missing (not a fit file of this version; re-run fit3dmm).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: fit file not found (run `dvc repro fit3dmm`)")
    with np.load(path, allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    missing = [k for k in ("id_coeffs", "exp_coeffs", "rotation", "scale", "translation", "valid", "crop_transforms")
               if k not in out]
    if missing:
        raise ValueError(f"{path}: not a fit3dmm fit file with crop transforms; missing {missing}")
    return out


def project_with_identity(model: MorphableModel, id_coeffs: np.ndarray, fit: dict[str, np.ndarray]) -> np.ndarray:
    """(T, V, 3) source-frame u, v and depth of the mesh with `id_coeffs` and `fit`'s expressions and cameras."""
    k_id, k_exp = len(id_coeffs), fit["exp_coeffs"].shape[1]
    base = (model.mean.reshape(-1) + id_coeffs.astype(np.float32) @ model.id_basis[:k_id].reshape(k_id, -1))
    X = (base[None] + fit["exp_coeffs"].astype(np.float32) @ model.exp_basis[:k_exp].reshape(k_exp, -1))
    X = X.reshape(len(X), -1, 3).astype(np.float32)
    cam = (fit["scale"][:, None, None] * fit["rotation"] * np.array([1, -1, 1], np.float32)[:, None]).astype(np.float32)
    out = np.matmul(X, cam.transpose(0, 2, 1))
    out[..., :2] += fit["translation"][:, None, :].astype(np.float32)
    return out


def reenacted_nmfc(model: MorphableModel, target_fit: dict[str, np.ndarray], driver_fit: dict[str, np.ndarray],
                   size: int = 256, backend: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """NMFC frames of the driver's motion on the target's head shape, in the driver's crop.

    Args:
        model: the morphable model both clips were fitted with.
        target_fit, driver_fit: `read_fit` outputs.
        size: crop side (the fit's `crop_size`).
        backend: the rasteriser ("auto": numba when installed; "numpy": no JIT compilation, slower per frame).

    Returns:
        nmfc (T, size, size, 3) uint8 and head mask (T, size, size) bool; empty where the driver has no fit.

    Raises:
        ValueError: identity coefficients of another length than the model allows.
    """
    from headflow.nmfc.render import render_nmfc, to_crop

    if len(target_fit["id_coeffs"]) > model.id_basis.shape[0]:
        raise ValueError(f"target identity has {len(target_fit['id_coeffs'])} coefficients; the model has "
                         f"{model.id_basis.shape[0]} identity modes (fitted with another model?)")
    crop = to_crop(project_with_identity(model, target_fit["id_coeffs"], driver_fit), driver_fit["crop_transforms"])
    nmfc, mask = render_nmfc(model, crop, size=size, backend=backend)
    bad = ~np.asarray(driver_fit["valid"], bool)
    nmfc[bad] = 0
    mask[bad] = False
    return nmfc, mask


def reenacted_nmfc_at(model: MorphableModel, target_fit: dict[str, np.ndarray], driver_fit: dict[str, np.ndarray],
                      size: int, backend: str = "numpy") -> tuple[np.ndarray, np.ndarray]:
    """`reenacted_nmfc` rendered straight at G's resolution `size` (what `generate_head2headfs` feeds G).

    The driver's crop transforms (source -> the fit's `crop_size` crop, 256 when the file does not say) are
    rescaled to a `size` crop about pixel centres (x' = (x + 0.5) k - 0.5, k = size / crop_size, the rule of
    `cv2.resize` and `headflow.shards.geometry.resize_transform`), so no 256-pixel image is rendered and
    downsampled. The numpy rasteriser is the default: no numba compilation for a few small frames.

    Args:
        model, target_fit, driver_fit: as `reenacted_nmfc`.
        size: G's resolution S in pixels.
        backend: the rasteriser.

    Returns:
        nmfc (T, size, size, 3) uint8 and head mask (T, size, size) bool, T = the driver's frames.
    """
    k = size / float(driver_fit.get("crop_size", 256))
    M = np.asarray(driver_fit["crop_transforms"], np.float64) * k
    M[:, :, 2] += 0.5 * k - 0.5
    return reenacted_nmfc(model, target_fit, dict(driver_fit, crop_transforms=M), size, backend=backend)
