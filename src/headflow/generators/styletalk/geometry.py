"""What StyleTalk needs from a morphable model: the lower/upper-face mode split, the mouth vertices of
D_sync, and expressions -> mesh -> projected landmarks (the fit's identity and camera).

The paper's split is for the 64-d BFM basis of Deep3DFaceRecon: 13 mouth-related modes (released
`configs/default.py`: lower_face3d_indices). Other models split by their mode names: ARKit-style names
(ICT-FaceKit, the built-in demo model) put jaw*, mouth*, cheek*, tongue* modes in the lower face, the
rest (eyes, brows, nose) in the upper face. The fit file (`data/interim/fit3dmm/fits/<clip_id>.npz`) is
read as the plain npz its writer documents (`headflow.fit3dmm.fitio`; a family may not import fit3dmm).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from headflow.morphable.model import MorphableModel

BFM_LOWER = (0, 1, 2, 3, 4, 5, 7, 9, 10, 11, 12, 13, 14)
"""StyleTalk's 13 mouth-related modes of the 64-d Deep3DFaceRecon expression basis (released config)."""
LOWER_PREFIXES = ("jaw", "mouth", "cheek", "tongue", "lip", "chin")
"""Mode-name prefixes (case-insensitive) of the lower face for named (ARKit-style) bases."""
MOUTH_LANDMARKS = tuple(range(48, 68))
"""iBUG 68 mouth landmarks (outer and inner lip contours)."""


def mode_subsets(model_name: str, exp_names: tuple[str, ...] | list[str], n_exp: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(lower, upper) expression-mode indices of a morphable model.

    Args:
        model_name: `MorphableModel.name` (bfm models: a name starting with "bfm").
        exp_names: its mode names (may be empty for PCA bases).
        n_exp: its number of expression modes.

    Returns:
        Two disjoint sorted tuples covering 0..n_exp-1.

    Raises:
        ValueError: a model the rule cannot split (a BFM basis that is not 64-d, unnamed modes, or names that
            put every mode on one side), naming the model and what to do.
    """
    if model_name.lower().startswith("bfm"):
        if n_exp != 64:
            raise ValueError(f"model {model_name!r}: StyleTalk's BFM split is for the 64-d Deep3DFaceRecon basis, got "
                             f"{n_exp} modes")
        lower = BFM_LOWER
    else:
        if len(exp_names) != n_exp:
            raise ValueError(f"model {model_name!r}: {n_exp} expression modes but {len(exp_names)} names; StyleTalk "
                             "splits named (ARKit-style) modes or the 64-d BFM basis")
        lower = tuple(i for i, n in enumerate(exp_names) if n.lower().startswith(LOWER_PREFIXES))
    upper = tuple(i for i in range(n_exp) if i not in lower)
    if not lower or not upper:
        raise ValueError(f"model {model_name!r}: the mode split leaves a side empty (lower {list(lower)}, upper "
                         f"{list(upper)}; names {list(exp_names)})")
    return tuple(lower), upper


def mouth_vertices(model: MorphableModel, n_points: int) -> np.ndarray:
    """(n_points,) int64 vertex ids of the mouth region: the vertices of the mean face nearest the 20 mouth
    landmark vertices, taken round-robin over the landmarks (so the points cover both lips evenly), in
    ascending id order. Deterministic.

    Raises:
        ValueError: the model has fewer vertices than `n_points`.
    """
    if n_points > model.n_vertices:
        raise ValueError(f"{n_points} mouth points asked of model {model.name!r} with {model.n_vertices} vertices")
    mean = np.asarray(model.mean, np.float64)
    centres = mean[np.asarray(model.landmarks68)[list(MOUTH_LANDMARKS)]]
    order = np.argsort(((mean[None] - centres[:, None]) ** 2).sum(-1), axis=1, kind="stable")   # (20, V)
    chosen: list[int] = []
    seen: set[int] = set()
    col = 0
    while len(chosen) < n_points:
        for row in order[:, col]:
            if int(row) not in seen:
                seen.add(int(row))
                chosen.append(int(row))
                if len(chosen) == n_points:
                    break
        col += 1
    return np.sort(np.asarray(chosen, np.int64))


class MouthMesh(nn.Module):
    """Expressions -> mouth vertices of the mesh (mean + expression modes only: D_sync judges the mouth
    motion, not the identity), normalised by the model's inter-ocular distance so that units do not matter.

    Buffers: `mean` (P, 3), `basis` (K, P, 3). forward: exp (..., K) -> (..., P, 3)."""

    def __init__(self, model: MorphableModel, n_points: int):
        super().__init__()
        ids = mouth_vertices(model, n_points)
        lm = np.asarray(model.mean, np.float64)[np.asarray(model.landmarks68)]
        iod = float(np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0))) or 1.0
        mean = np.asarray(model.mean, np.float64)[ids]
        self.register_buffer("mean", torch.tensor((mean - mean.mean(0)) / iod, dtype=torch.float32))
        self.register_buffer("basis", torch.tensor(np.asarray(model.exp_basis, np.float64)[:, ids] / iod, dtype=torch.float32))

    def forward(self, exp: torch.Tensor) -> torch.Tensor:
        return self.mean + torch.einsum("...k,kpc->...pc", exp, self.basis)


def read_fit(path: str | Path) -> dict[str, np.ndarray]:
    """A fit3dmm fit file (plain npz): id_coeffs (K_id,), exp_coeffs (T, K), rotation (T, 3, 3), translation
    (T, 2) source px, scale (T,), valid (T,), crop_transforms (T, 2, 3), model (str).

    Raises:
        FileNotFoundError, ValueError: missing file or keys (names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: fit file not found (run `dvc repro fit3dmm`)")
    with np.load(path, allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    need = ("id_coeffs", "exp_coeffs", "rotation", "translation", "scale", "valid", "crop_transforms", "model")
    missing = [k for k in need if k not in out]
    if missing:
        raise ValueError(f"{path}: not a fit3dmm fit file with crop transforms; missing {missing}")
    out["model"] = str(out["model"])
    return out


def project(model: MorphableModel, id_coeffs: np.ndarray, exp: np.ndarray, rotation: np.ndarray,
            scale: np.ndarray, translation: np.ndarray, vertex_ids: np.ndarray | None = None) -> np.ndarray:
    """(T, V, 3) source-frame u, v (pixels) and depth with fit3dmm's scaled orthographic camera:
    u = s R_0 X + t_x, v = -s R_1 X + t_y, depth = s R_2 X (`headflow.fit3dmm.fit.VideoFit.project`).

    Args:
        id_coeffs: (K_id,); exp: (T, K); rotation (T, 3, 3); scale (T,); translation (T, 2).
        vertex_ids: only these vertices (None: all).
    """
    ids = slice(None) if vertex_ids is None else np.asarray(vertex_ids)
    k_id = len(id_coeffs)
    base = model.mean[ids].astype(np.float64) + np.tensordot(np.asarray(id_coeffs, np.float64),
                                                             model.id_basis[:k_id][:, ids].astype(np.float64), 1)
    k = exp.shape[1]
    X = base[None] + np.tensordot(np.asarray(exp, np.float64), model.exp_basis[:k][:, ids].astype(np.float64), 1)
    cam = np.einsum("tij,tvj->tvi", np.asarray(rotation, np.float64), X)
    s = np.asarray(scale, np.float64)[:, None]
    u = s * cam[..., 0] + translation[:, None, 0]
    v = -s * cam[..., 1] + translation[:, None, 1]
    return np.stack([u, v, s * cam[..., 2]], -1).astype(np.float32)


def to_crop_points(uv: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """(T, N, 2) source pixels -> crop pixels through per-frame (T, 2, 3) affines."""
    M = np.asarray(transforms, np.float64)
    return (np.einsum("tij,tnj->tni", M[:, :, :2], uv[..., :2].astype(np.float64)) + M[:, None, :, 2]).astype(np.float32)
