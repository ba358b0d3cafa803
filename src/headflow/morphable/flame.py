"""FLAME head model (`generic_model.pkl`), loaded without chumpy.

The file cannot ship with headflow and is not available on this machine (tests use a tiny pickle in
the same layout). Get it by registering at https://flame.is.tue.mpg.de (FLAME licence: free for
non-commercial research; commercial use needs a licence from the Max Planck Institute); FLAME 2020
ships `generic_model.pkl` (5,023 vertices, 9,976 triangles, metres).

The official pickle was written in Python 2 with chumpy objects (`chumpy.ch.Ch`) around some arrays
(`shapedirs`, `v_template`, ...). chumpy does not install on current Python/numpy, so
`ChumpyFreeUnpickler` maps every `chumpy.*` class to `ChStandIn`, which keeps the pickled state and
exposes its `x` array. Only numpy, scipy.sparse, chumpy and pickle-internal helpers may be
referenced by the file; anything else is refused (unpickling otherwise runs arbitrary code).

Keys used: `v_template` (V, 3), `shapedirs` (V, 3, 400: 300 shape + 100 expression), `f` (F, 3).
Pose (`posedirs`, `J_regressor`, `weights`, `kintree_table`) is ignored here: headflow fits rigid head
pose separately and the jaw/neck/eye joints are not part of this linear interface yet.
FLAME has no 68-landmark vertex list in the pickle: landmarks come from `landmarks68` (vertex
indices) or from DECA's `landmark_embedding.npy` (barycentric; each landmark takes the corner with the
largest weight).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from headflow.morphable.model import ModelFormatError, MorphableModel

FLAME_URL = "https://flame.is.tue.mpg.de"
N_SHAPE = 300
"""FLAME's shapedirs hold 300 identity (shape) modes, then the expression modes."""

_ALLOWED_PREFIXES = ("numpy", "scipy.sparse", "chumpy", "copy_reg", "copyreg", "_codecs", "collections")


class ChStandIn:
    """Minimal stand-in for any chumpy class: keeps the pickled state; `x` is its array."""

    def __init__(self, *args, **kwargs) -> None:
        self.x = np.asarray(args[0]) if args else None

    def __setstate__(self, state) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)
        elif isinstance(state, tuple) and state and isinstance(state[-1], dict):
            self.__dict__.update(state[-1])
        else:
            self.__dict__["_state"] = state

    def __array__(self, dtype=None, copy=None):
        x = self.__dict__.get("x")
        if x is None:
            raise ModelFormatError(f"chumpy object {type(self).__name__} in the pickle has no 'x' array")
        return np.asarray(x, dtype=dtype)


class ChumpyFreeUnpickler(pickle.Unpickler):
    """Unpickler for SMPL/FLAME-family pickles that maps chumpy classes to `ChStandIn`."""

    def find_class(self, module: str, name: str):
        if module.startswith("chumpy"):
            return ChStandIn
        if module == "builtins" and name in {"object", "set", "frozenset", "slice", "complex"}:
            return super().find_class(module, name)
        if not module.startswith(_ALLOWED_PREFIXES):
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a model pickle "
                                         "(only numpy, scipy.sparse and chumpy objects are expected)")
        return super().find_class(module, name)


def load_flame_pickle(path: str | Path) -> dict:
    """The raw pickle contents with every chumpy object replaced by its numpy array."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FLAME model {path} not found; register at {FLAME_URL} (non-commercial "
                                "research licence), download FLAME 2020 and pass generic_model.pkl")
    with open(path, "rb") as fh:
        raw = ChumpyFreeUnpickler(fh, encoding="latin1").load()
    if not isinstance(raw, dict):
        raise ModelFormatError(f"{path}: expected a dict pickle (FLAME generic_model.pkl), got {type(raw).__name__}")
    return {k: (np.asarray(v) if isinstance(v, ChStandIn) else v) for k, v in raw.items()}


def landmarks_from_embedding(path: str | Path, triangles: np.ndarray) -> np.ndarray:
    """68 vertex indices from DECA's `landmark_embedding.npy` (`full_lmk_faces_idx`, `full_lmk_bary_coords`)."""
    emb = np.load(path, allow_pickle=True, encoding="latin1")[()]
    faces = np.asarray(emb["full_lmk_faces_idx"]).reshape(-1)
    bary = np.asarray(emb["full_lmk_bary_coords"]).reshape(-1, 3)
    if len(faces) != 68:
        raise ModelFormatError(f"{path}: {len(faces)} full landmarks, expected 68")
    return triangles[faces, bary.argmax(axis=1)]


def load_flame(path: str | Path, landmarks68: np.ndarray | None = None,
               landmark_embedding: str | Path | None = None, n_shape: int = N_SHAPE,
               n_exp: int | None = None) -> MorphableModel:
    """FLAME `generic_model.pkl` as a `MorphableModel` (identity = shape modes, metres).

    Args:
        landmarks68: (68,) vertex indices of the iBUG landmarks, or
        landmark_embedding: DECA's `landmark_embedding.npy` (one of the two is required).
        n_shape: identity modes at the front of `shapedirs` (300 in FLAME 2017/2020).
        n_exp: expression modes to keep after them (default: all that follow).
    """
    data = load_flame_pickle(path)
    for key in ("v_template", "shapedirs", "f"):
        if key not in data:
            raise ModelFormatError(f"{path}: missing key {key!r}; a FLAME generic_model.pkl has "
                                   "v_template, shapedirs, f, posedirs, J_regressor, weights, kintree_table")
    v = np.asarray(data["v_template"], dtype=np.float64)
    dirs = np.asarray(data["shapedirs"], dtype=np.float64)
    tri = np.asarray(data["f"], dtype=np.int64)
    if dirs.ndim != 3 or dirs.shape[:2] != v.shape or dirs.shape[2] <= n_shape:
        raise ModelFormatError(f"{path}: shapedirs must be (V, 3, >{n_shape}) for v_template {v.shape}, "
                               f"got {dirs.shape}")
    basis = dirs.transpose(2, 0, 1)  # (K, V, 3)
    exp = basis[n_shape:] if n_exp is None else basis[n_shape:n_shape + n_exp]
    if landmarks68 is None:
        if landmark_embedding is None:
            raise ValueError("FLAME's pickle has no 68-landmark list: pass landmarks68 (vertex indices) or "
                             "landmark_embedding (DECA's data/landmark_embedding.npy)")
        landmarks68 = landmarks_from_embedding(landmark_embedding, tri)
    return MorphableModel(
        name="flame", mean=v, id_basis=basis[:n_shape], exp_basis=exp, triangles=tri, landmarks68=landmarks68,
        exp_names=tuple(f"exp{j:03d}" for j in range(len(exp))), units="m",
        source=f"{path} (FLAME, {FLAME_URL}, non-commercial licence)",
    ).validate()
