"""One interface for a linear 3D morphable model (3DMM): geometry only, no texture.

    shape(alpha, beta) = mean + sum_k alpha_k * id_basis[k] + sum_j beta_j * exp_basis[j]

Every loader (`headflow.morphable.ict`, `.bfm`, `.flame`, `.builtin`) returns a `MorphableModel`
in the model's native basis and units; nothing is rescaled or re-normalised here. `save_npz` /
`load_npz` write and read the compact cache format (`FORMAT_VERSION`), so a slow import (155 OBJ
files for ICT-FaceKit) runs once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from headflow.atomic import atomic_output

FORMAT_VERSION = 1
"""Version of the cache layout written by `save_npz`; `load_npz` rejects other versions."""


class ModelFormatError(ValueError):
    """A morphable model file or array does not have the expected layout."""


@dataclass(frozen=True, eq=False)
class MorphableModel:
    """A linear face shape model. Arrays are read-only after construction."""

    name: str
    """Short model name, e.g. `ict_facekit_light`, `bfm_deep3d`, `flame2020`, `builtin_demo`."""
    mean: np.ndarray
    """(V, 3) float32: the mean / neutral / template mesh."""
    id_basis: np.ndarray
    """(K_id, V, 3) float32: identity displacement fields (already scaled by any std-dev)."""
    exp_basis: np.ndarray
    """(K_exp, V, 3) float32: expression displacement fields (blendshape deltas or PCA modes)."""
    triangles: np.ndarray
    """(F, 3) int32: 0-based vertex indices, counter-clockwise seen from the front where known."""
    landmarks68: np.ndarray
    """(68,) int32: vertex index of each iBUG / Multi-PIE 68 landmark (0-based)."""
    exp_names: tuple[str, ...] = ()
    """Name of each expression mode (ARKit-style for ICT, `exp00`.. for PCA models)."""
    id_names: tuple[str, ...] = ()
    """Name of each identity mode (may be empty: then `id00`, `id01`, ... are implied)."""
    jaw_contour: tuple[np.ndarray, ...] = ()
    """Optional candidate vertex lists for the jaw line, `(right, left)`, each (n,) int32: a fitter
    slides landmarks 0-7 / 9-16 along them as the head turns (contour-aware landmarks)."""
    units: str = "unknown"
    """Length unit of `mean` and the bases: `cm` (ICT), `m` (FLAME), `mm` (BFM), `arbitrary`."""
    source: str = ""
    """Where it came from (file / folder, licence), for provenance in manifests."""
    meta: dict = field(default_factory=dict)
    """Small JSON-able extras (e.g. the face-area vertex count)."""

    def __post_init__(self) -> None:
        coerce = {"mean": np.float32, "id_basis": np.float32, "exp_basis": np.float32,
                  "triangles": np.int32, "landmarks68": np.int32}
        for key, dtype in coerce.items():
            arr = np.ascontiguousarray(np.asarray(getattr(self, key)), dtype=dtype)
            arr.setflags(write=False)
            object.__setattr__(self, key, arr)
        contour = tuple(np.asarray(c, dtype=np.int32) for c in self.jaw_contour)
        for c in contour:
            c.setflags(write=False)
        object.__setattr__(self, "jaw_contour", contour)
        object.__setattr__(self, "exp_names", tuple(str(n) for n in self.exp_names))
        object.__setattr__(self, "id_names", tuple(str(n) for n in self.id_names))

    # -- sizes ---------------------------------------------------------------------------------
    @property
    def n_vertices(self) -> int:
        return int(self.mean.shape[0])

    @property
    def n_id(self) -> int:
        return int(self.id_basis.shape[0])

    @property
    def n_exp(self) -> int:
        return int(self.exp_basis.shape[0])

    def exp_index(self, name: str) -> int:
        """Index of the expression mode called `name` (KeyError lists the available names)."""
        try:
            return self.exp_names.index(name)
        except ValueError:
            raise KeyError(f"{self.name}: no expression mode {name!r}; available: "
                           f"{', '.join(self.exp_names) or '(unnamed)'}") from None

    # -- evaluation ----------------------------------------------------------------------------
    def shape(self, id_coeffs: np.ndarray | None = None, exp_coeffs: np.ndarray | None = None) -> np.ndarray:
        """Vertices for the given coefficients.

        Args:
            id_coeffs: (K,) or (T, K) with K <= n_id (missing trailing modes are zero); None: zeros.
            exp_coeffs: (J,) or (T, J) with J <= n_exp; None: zeros.

        Returns:
            (V, 3) float32, or (T, V, 3) when either coefficient array is 2-D (broadcast over T).
        """
        a = self._coeffs(id_coeffs, self.n_id, "id_coeffs")
        b = self._coeffs(exp_coeffs, self.n_exp, "exp_coeffs")
        batched = a.ndim == 2 or b.ndim == 2
        out = self.mean.reshape(1, -1).astype(np.float32)
        out = out + _combine(a, self.id_basis) + _combine(b, self.exp_basis)
        return out.reshape(-1, self.n_vertices, 3) if batched else out.reshape(self.n_vertices, 3)

    def landmarks(self, id_coeffs: np.ndarray | None = None, exp_coeffs: np.ndarray | None = None) -> np.ndarray:
        """The 68 landmark positions, (68, 3) or (T, 68, 3); evaluates only the landmark vertices."""
        sub = self.subset(self.landmarks68)
        return sub.shape(id_coeffs, exp_coeffs)

    def subset(self, vertex_ids: np.ndarray) -> "_VertexSubset":
        """A cheap view of the model restricted to some vertices (for fitting landmarks)."""
        return _VertexSubset(self, np.asarray(vertex_ids, dtype=np.int64))

    def _coeffs(self, coeffs, n_max: int, what: str) -> np.ndarray:
        if coeffs is None:
            return np.zeros((0,), np.float32)
        c = np.asarray(coeffs, dtype=np.float32)
        if c.ndim not in (1, 2) or c.shape[-1] > n_max:
            raise ValueError(f"{self.name}: {what} must be (K,) or (T, K) with K <= {n_max}, got shape {c.shape}")
        return c

    # -- checks --------------------------------------------------------------------------------
    def validate(self) -> "MorphableModel":
        """Check shapes, dtypes, finiteness and index ranges; raise `ModelFormatError` naming the problem."""
        V = self.n_vertices
        problems = []
        if self.mean.ndim != 2 or self.mean.shape[1] != 3 or V < 3:
            problems.append(f"mean must be (V, 3) with V >= 3, got {self.mean.shape}")
        for key in ("id_basis", "exp_basis"):
            arr = getattr(self, key)
            if arr.ndim != 3 or arr.shape[1:] != self.mean.shape:
                problems.append(f"{key} must be (K, {V}, 3), got {arr.shape}")
            elif not np.isfinite(arr).all():
                problems.append(f"{key} has non-finite values")
        if not np.isfinite(self.mean).all():
            problems.append("mean has non-finite values")
        tri = self.triangles
        if tri.ndim != 2 or tri.shape[1] != 3 or len(tri) == 0:
            problems.append(f"triangles must be (F, 3) with F >= 1, got {tri.shape}")
        elif tri.min() < 0 or tri.max() >= V:
            problems.append(f"triangles index range [{tri.min()}, {tri.max()}] outside [0, {V}) "
                            "(1-based indices not converted?)")
        lm = self.landmarks68
        if lm.shape != (68,):
            problems.append(f"landmarks68 must be (68,), got {lm.shape}")
        elif lm.min() < 0 or lm.max() >= V:
            problems.append(f"landmarks68 index range [{lm.min()}, {lm.max()}] outside [0, {V})")
        if self.exp_names and len(self.exp_names) != self.n_exp:
            problems.append(f"{len(self.exp_names)} exp_names for {self.n_exp} expression modes")
        if self.id_names and len(self.id_names) != self.n_id:
            problems.append(f"{len(self.id_names)} id_names for {self.n_id} identity modes")
        for i, c in enumerate(self.jaw_contour):
            if c.ndim != 1 or len(c) == 0 or c.min() < 0 or c.max() >= V:
                problems.append(f"jaw_contour[{i}] must be a non-empty list of indices in [0, {V})")
        if problems:
            raise ModelFormatError(f"morphable model {self.name!r} ({self.source or 'no source'}) is invalid: "
                                   + "; ".join(problems))
        return self

    # -- cache format --------------------------------------------------------------------------
    def save_npz(self, path: str | Path, compress: bool = True) -> Path:
        """Write the compact cache (atomically, `headflow.atomic`)."""
        path = Path(path)
        arrays = {
            "format_version": np.int32(FORMAT_VERSION), "name": np.str_(self.name),
            "mean": self.mean, "id_basis": self.id_basis, "exp_basis": self.exp_basis,
            "triangles": self.triangles, "landmarks68": self.landmarks68,
            "exp_names": np.asarray(self.exp_names, dtype=str), "id_names": np.asarray(self.id_names, dtype=str),
            "units": np.str_(self.units), "source": np.str_(self.source),
            "meta_json": np.str_(_json_dumps(self.meta)), "n_jaw_contour": np.int32(len(self.jaw_contour)),
        }
        for i, c in enumerate(self.jaw_contour):
            arrays[f"jaw_contour_{i}"] = c
        with atomic_output(path, suffix=".npz") as tmp:          # np.savez appends .npz to other names
            (np.savez_compressed if compress else np.savez)(tmp, **arrays)
        return path

    @classmethod
    def load_npz(cls, path: str | Path) -> "MorphableModel":
        """Read a cache written by `save_npz` (not the ICT plain npz: see `headflow.morphable.ict`)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"morphable model cache {path} not found")
        with np.load(path, allow_pickle=False) as z:
            if "format_version" not in z.files:
                raise ModelFormatError(f"{path} is not a headflow morphable-model cache (no format_version); "
                                       "plain ICT npz files load with headflow.morphable.ict.load_ict_npz")
            version = int(z["format_version"])
            if version != FORMAT_VERSION:
                raise ModelFormatError(f"{path}: cache format {version}, this code reads {FORMAT_VERSION}; "
                                       "delete the file to rebuild it")
            contour = tuple(z[f"jaw_contour_{i}"] for i in range(int(z["n_jaw_contour"])))
            return cls(name=str(z["name"]), mean=z["mean"], id_basis=z["id_basis"], exp_basis=z["exp_basis"],
                       triangles=z["triangles"], landmarks68=z["landmarks68"],
                       exp_names=tuple(z["exp_names"].tolist()), id_names=tuple(z["id_names"].tolist()),
                       jaw_contour=contour, units=str(z["units"]), source=str(z["source"]),
                       meta=_json_loads(str(z["meta_json"])))


class _VertexSubset:
    """The model restricted to some vertices; `shape` works as on the full model."""

    def __init__(self, model: MorphableModel, vertex_ids: np.ndarray) -> None:
        self.model = model
        self.vertex_ids = vertex_ids
        self.mean = model.mean[vertex_ids]
        self.id_basis = model.id_basis[:, vertex_ids]
        self.exp_basis = model.exp_basis[:, vertex_ids]

    def shape(self, id_coeffs=None, exp_coeffs=None) -> np.ndarray:
        m = self.model
        a = m._coeffs(id_coeffs, m.n_id, "id_coeffs")
        b = m._coeffs(exp_coeffs, m.n_exp, "exp_coeffs")
        n = len(self.vertex_ids)
        out = self.mean.reshape(1, -1) + _combine(a, self.id_basis) + _combine(b, self.exp_basis)
        return out.reshape(-1, n, 3) if (a.ndim == 2 or b.ndim == 2) else out.reshape(n, 3)


def _combine(coeffs: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """(K,) or (T, K) coefficients times the first K modes -> (1, 3V) or (T, 3V); zeros if K == 0."""
    k = coeffs.shape[-1]
    if k == 0:
        return np.zeros((1, basis.shape[1] * 3), np.float32)
    flat = basis[:k].reshape(k, -1)
    return np.atleast_2d(coeffs) @ flat


def _json_dumps(obj) -> str:
    return json.dumps(obj, sort_keys=True)


def _json_loads(text: str) -> dict:
    return json.loads(text) if text else {}
