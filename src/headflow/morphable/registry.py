"""Model specs of params.yaml (`fit3dmm.model`) -> a loaded `MorphableModel`.

    builtin                 the generated DEMO model (offline, no download; not for real work)
    ict_npz:<path>          ICT-FaceKit light, plain npz conversion (recommended real model, MIT)
    ict_folder:<path>       ICT-FaceKit light, the official FaceXModel/ folder (imported once, cached)
    bfm:<path>              BFM_model_front.mat (Deep3DFaceRecon layout; BFM 2009 licence)
    flame:<path>            FLAME generic_model.pkl (+ landmark_embedding.npy beside it; FLAME licence)

Relative paths resolve against the project root. Errors name the spec and say where the real model
files come from (none of the real models can ship with headflow except ICT-FaceKit, which is MIT but
large; all are user-supplied).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from headflow.morphable.model import MorphableModel

KINDS = ("builtin", "ict_npz", "ict_folder", "bfm", "flame")

WHERE = {
    "ict_npz": "ICT-FaceKit (MIT): https://github.com/ICT-VGL/ICT-FaceKit (FaceXModel folder; use "
               "ict_folder:<path> on it directly, or a plain npz conversion with ict_npz:<path>)",
    "ict_folder": "ICT-FaceKit (MIT): https://github.com/ICT-VGL/ICT-FaceKit (clone it and point "
                  "ict_folder:<path> at its FaceXModel folder)",
    "bfm": "BFM: Deep3DFaceRecon_pytorch's BFM_model_front.mat, built by its util/load_mats.py from the "
           "Basel Face Model 2009 (registration at https://faces.dmi.unibas.ch/bfm) plus Exp_Pca.bin "
           "(https://github.com/Juyong/3DFace)",
    "flame": "FLAME: generic_model.pkl from https://flame.is.tue.mpg.de (registration), with DECA's "
             "landmark_embedding.npy beside it for the 68 landmarks",
}


class ModelSpecError(ValueError):
    """A `fit3dmm.model` spec that cannot be parsed or whose files are missing."""


@dataclass(frozen=True)
class ModelSpec:
    kind: str
    path: Path | None = None

    def __str__(self) -> str:
        return self.kind if self.path is None else f"{self.kind}:{self.path}"


def parse_spec(spec: str, project_root: str | Path | None = None) -> ModelSpec:
    """`builtin` or `<kind>:<path>`; relative paths resolve against `project_root` (default: cwd)."""
    text = str(spec).strip()
    kind, sep, rest = text.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise ModelSpecError(f"fit3dmm.model: unknown model spec {spec!r}; expected one of: builtin, "
                             "ict_npz:<path>, ict_folder:<path>, bfm:<path>, flame:<path>")
    if kind == "builtin":
        if sep and rest.strip():
            raise ModelSpecError(f"fit3dmm.model: {spec!r}: the builtin model takes no path")
        return ModelSpec("builtin")
    if not sep or not rest.strip():
        raise ModelSpecError(f"fit3dmm.model: {spec!r}: {kind} needs a path ({kind}:<path>); get the model "
                             f"from {WHERE[kind]}")
    path = Path(rest.strip()).expanduser()
    if not path.is_absolute():
        path = Path(project_root or Path.cwd()) / path
    return ModelSpec(kind, path)


def load_model(spec: str | ModelSpec, project_root: str | Path | None = None) -> MorphableModel:
    """The model a spec names (see the module docstring). Raises ModelSpecError naming what is missing."""
    s = spec if isinstance(spec, ModelSpec) else parse_spec(spec, project_root)
    return _load(s.kind, str(s.path) if s.path is not None else None)


@lru_cache(maxsize=4)
def _load(kind: str, path: str | None) -> MorphableModel:
    if kind == "builtin":
        from headflow.morphable.builtin import builtin_model

        return builtin_model()
    p = Path(path)
    if kind == "ict_folder":
        if not p.is_dir():
            raise ModelSpecError(f"fit3dmm.model: ICT-FaceKit folder {p} not found; get it from {WHERE[kind]}")
    elif not p.is_file():
        raise ModelSpecError(f"fit3dmm.model: {kind} file {p} not found; get it from {WHERE[kind]}")
    if kind == "ict_npz":
        from headflow.morphable.ict import load_ict_npz

        return load_ict_npz(p, face_only=True)
    if kind == "ict_folder":
        from headflow.morphable.ict import load_ict_folder

        try:
            return load_ict_folder(p)
        except FileNotFoundError as err:
            raise ModelSpecError(f"fit3dmm.model: {err}") from err
    if kind == "bfm":
        from headflow.morphable.bfm import load_bfm_deep3d

        # recentred like Deep3DFaceRecon's ParametricFaceModel, so exported poses mean the same there
        return load_bfm_deep3d(p, recenter=True)
    from headflow.morphable.flame import load_flame

    emb = p.parent / "landmark_embedding.npy"
    if not emb.is_file():
        raise ModelSpecError(f"fit3dmm.model: FLAME needs DECA's landmark_embedding.npy beside {p} (not found: "
                             f"{emb}); {WHERE['flame']}")
    return load_flame(p, landmark_embedding=emb)
