"""ICT-FaceKit light face model (MIT, USC ICT 2020): https://github.com/ICT-VGL/ICT-FaceKit

Two inputs give the same `MorphableModel` (units ~cm, 26,719 vertices, face area `[0, 9409)`):

- the official folder layout `FaceXModel/`: `generic_neutral_mesh.obj`, `identity000..099.obj`,
  one `<expression>.obj` per ARKit-style blendshape (53, names and order in `vertex_indices.json`),
  `vertex_indices.json`. Bases are `mesh - neutral`; mixed tri/quad faces are split into triangles
  (quad a,b,c,d -> (a,b,c), (a,c,d)). `load_ict_folder` imports it once and caches a compact npz
  keyed by a hash of the folder's file names and sizes.
- a plain npz conversion (`neutral`, `faces_tri`, `id_basis`, `exp_basis`, `exp_names`,
  `landmarks68_multipie`, `right_jawline`, `left_jawline`): `load_ict_npz`.

Vertex order: the OBJ `v` lines are in the model's own vertex order, the order every index list of
the official README and `vertex_indices.json` refers to; the plain npz uses the same order (checked
in tests/morphable/test_ict.py: neutral, triangles and the sample bases agree exactly).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np

from headflow.morphable.model import ModelFormatError, MorphableModel

URL = "https://github.com/ICT-VGL/ICT-FaceKit"
NEUTRAL_OBJ = "generic_neutral_mesh.obj"
INDEX_JSON = "vertex_indices.json"
N_IDENTITIES = 100
FACE_AREA_VERTICES = 9409
"""Vertices `[0, 9409)` are the face area (official README); all 68 landmarks lie inside it."""

# From the official README ("Facial Landmarks"), 0-based.
RIGHT_JAWLINE = (1278, 1272, 12, 1834, 243, 781, 2199, 1447)
LEFT_JAWLINE = (3661, 4390, 3022, 2484, 4036, 2253, 3490, 3496)
RIGHT_JAWLINE_EXTENDED = (1280, 1278, 1275, 1272, 1248, 12, 820, 1834, 1902, 243, 844, 781, 1673, 2199,
                          801, 1447, 800)
LEFT_JAWLINE_EXTENDED = (3041, 3661, 3042, 4390, 3880, 3022, 3085, 2484, 4102, 4036, 3061, 2253, 3466,
                         3490, 3493, 3496, 3498)


def parse_obj(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) float32 and triangles (F, 3) int32 (0-based) of a Wavefront OBJ.

    Polygons with n > 3 corners are fan-triangulated; `v/vt/vn` corner tokens keep only `v`;
    negative (relative) indices are resolved.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"OBJ file {path} not found")
    verts: list[bytes] = []
    tris: list[tuple[int, int, int]] = []
    with open(path, "rb") as fh:
        for line in fh:
            if line.startswith(b"v "):
                verts.append(line[2:])
            elif line.startswith(b"f "):
                corners = [int(tok.split(b"/", 1)[0]) for tok in line[2:].split()]
                n_v = len(verts)
                corners = [c - 1 if c > 0 else n_v + c for c in corners]
                if len(corners) < 3:
                    raise ModelFormatError(f"{path}: face with {len(corners)} corners: {line!r}")
                for i in range(1, len(corners) - 1):
                    tris.append((corners[0], corners[i], corners[i + 1]))
    if not verts:
        raise ModelFormatError(f"{path}: no vertices ('v x y z' lines)")
    v = np.array(b" ".join(verts).split(), dtype=np.float64)
    if v.size % 3:
        # v lines with a w or colour component: keep the first three numbers per line.
        v = np.array([ln.split()[:3] for ln in verts], dtype=np.float64).ravel()
    return v.reshape(-1, 3).astype(np.float32), np.asarray(tris, dtype=np.int32).reshape(-1, 3)


def _obj_vertices(path: Path, n_vertices: int) -> np.ndarray:
    """Only the vertices of an OBJ (faster than `parse_obj`; blendshape OBJs share the neutral's faces)."""
    with open(path, "rb") as fh:
        verts = [line[2:] for line in fh if line.startswith(b"v ")]
    v = np.array(b" ".join(verts).split(), dtype=np.float32)
    if v.size != n_vertices * 3:
        raise ModelFormatError(f"{path}: {v.size // 3} vertices, the neutral mesh has {n_vertices}; "
                               "is it from the same ICT-FaceKit version?")
    return v.reshape(-1, 3)


def folder_key(folder: str | Path) -> str:
    """sha256 (hex) of the folder's `*.obj` and `vertex_indices.json` names and sizes (the cache key)."""
    folder = Path(folder)
    h = hashlib.sha256()
    for p in sorted(folder.glob("*.obj")) + [folder / INDEX_JSON]:
        if p.is_file():
            h.update(f"{p.name}\t{p.stat().st_size}\n".encode())
    return h.hexdigest()


def import_ict_folder(folder: str | Path, require_complete: bool = False) -> MorphableModel:
    """Build the model from the official `FaceXModel/` folder (slow: parses every OBJ).

    Args:
        folder: the folder holding `generic_neutral_mesh.obj`, `identityNNN.obj`, `<expression>.obj`
            and `vertex_indices.json`.
        require_complete: raise when identity or expression OBJs listed by the official layout are
            absent (otherwise the present ones are used, in official order, with a warning).
    """
    folder = Path(folder)
    for needed in (NEUTRAL_OBJ, INDEX_JSON):
        if not (folder / needed).is_file():
            raise FileNotFoundError(
                f"ICT-FaceKit file {folder / needed} not found; get the FaceXModel folder from {URL} "
                "(MIT licence) and pass its path")
    index = json.loads((folder / INDEX_JSON).read_text())
    neutral, triangles = parse_obj(folder / NEUTRAL_OBJ)
    V = len(neutral)

    id_files = sorted(folder.glob("identity[0-9][0-9][0-9].obj"))
    exp_names = [n for n in index["expressions"] if (folder / f"{n}.obj").is_file()]
    missing_id = N_IDENTITIES - len(id_files)
    missing_exp = [n for n in index["expressions"] if n not in exp_names]
    if missing_id > 0 or missing_exp:
        msg = (f"ICT-FaceKit folder {folder} is incomplete: {len(id_files)}/{N_IDENTITIES} identity OBJs, "
               f"{len(exp_names)}/{len(index['expressions'])} expression OBJs (missing e.g. "
               f"{(missing_exp or ['identity'])[:3]}); the full model is at {URL}")
        if require_complete:
            raise FileNotFoundError(msg)
        warnings.warn(msg, stacklevel=2)

    id_basis = np.stack([_obj_vertices(p, V) - neutral for p in id_files]) if id_files \
        else np.zeros((0, V, 3), np.float32)
    exp_basis = np.stack([_obj_vertices(folder / f"{n}.obj", V) - neutral for n in exp_names]) if exp_names \
        else np.zeros((0, V, 3), np.float32)
    return MorphableModel(
        name="ict_facekit_light", mean=neutral, id_basis=id_basis, exp_basis=exp_basis, triangles=triangles,
        landmarks68=np.asarray(index["idx_to_landmark_verts"]), exp_names=tuple(exp_names),
        id_names=tuple(p.stem for p in id_files), jaw_contour=(RIGHT_JAWLINE, LEFT_JAWLINE), units="cm",
        source=f"ICT-FaceKit folder {folder} (MIT, USC ICT 2020)",
        meta={"face_area_vertices": FACE_AREA_VERTICES, "complete": not (missing_id > 0 or missing_exp),
              "folder_key": folder_key(folder)},
    ).validate()


def load_ict_folder(folder: str | Path, cache_dir: str | Path | None = None,
                    require_complete: bool = False) -> MorphableModel:
    """The official folder, through a compact npz cache (`<cache_dir>/ict_facekit_<key>.npz`).

    `cache_dir` defaults to `$HEADFLOW_MODELS/morphable_cache`. The cache key changes whenever a file
    is added, removed or changes size, so a half-copied folder is never served from an old cache.
    """
    from headflow.models import models_dir

    folder = Path(folder)
    if not (folder / NEUTRAL_OBJ).is_file():
        raise FileNotFoundError(f"ICT-FaceKit file {folder / NEUTRAL_OBJ} not found; get the FaceXModel "
                                f"folder from {URL} (MIT licence)")
    cache_dir = Path(cache_dir) if cache_dir is not None else models_dir() / "morphable_cache"
    cache = cache_dir / f"ict_facekit_{folder_key(folder)[:20]}.npz"
    if cache.is_file():
        model = MorphableModel.load_npz(cache)
        if require_complete and not model.meta.get("complete", False):
            raise FileNotFoundError(f"ICT-FaceKit folder {folder} is incomplete (cached import {cache}); "
                                    f"the full model is at {URL}")
        return model
    model = import_ict_folder(folder, require_complete=require_complete)
    model.save_npz(cache)
    return model


def load_ict_npz(path: str | Path, face_only: bool = False) -> MorphableModel:
    """The plain npz conversion of the full light model (see ../shared/README.md for its keys).

    Args:
        face_only: keep only the face area (vertices `[0, 9409)` and the triangles inside it);
            6-10x less memory and time for landmark fitting. Landmarks and jaw lines are all inside.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ICT-FaceKit npz {path} not found; build it from the FaceXModel folder "
                                f"({URL}, MIT) or use load_ict_folder on that folder directly")
    with np.load(path, allow_pickle=False) as z:
        needed = ("neutral", "faces_tri", "id_basis", "exp_basis", "exp_names", "landmarks68_multipie")
        missing = [k for k in needed if k not in z.files]
        if missing:
            raise ModelFormatError(f"{path}: missing keys {missing}; expected {list(needed)}")
        mean, tri = z["neutral"], z["faces_tri"]
        id_basis, exp_basis = z["id_basis"], z["exp_basis"]
        contour = tuple(z[k] for k in ("right_jawline", "left_jawline") if k in z.files)
        id_names = tuple(z["id_names"].tolist()) if "id_names" in z.files else ()
        exp_names, lm = tuple(z["exp_names"].tolist()), z["landmarks68_multipie"]
    name = "ict_facekit_light"
    if face_only:
        n = FACE_AREA_VERTICES
        mean, id_basis, exp_basis = mean[:n], id_basis[:, :n], exp_basis[:, :n]
        tri = tri[(tri < n).all(axis=1)]
        name += "_face"
    return MorphableModel(
        name=name, mean=mean, id_basis=id_basis, exp_basis=exp_basis, triangles=tri, landmarks68=lm,
        exp_names=exp_names, id_names=id_names, jaw_contour=contour, units="cm",
        source=f"{path} (ICT-FaceKit, MIT, USC ICT 2020)",
        meta={"face_area_vertices": min(FACE_AREA_VERTICES, len(mean))},
    ).validate()
