"""Linear 3D morphable face models (3DMM): one interface, several loaders. Fitting comes later.

- `model.MorphableModel`: mean + identity and expression bases, triangles, 68 landmark vertices,
  optional jaw-contour candidates; `shape`, `landmarks`, `validate`, `save_npz` / `load_npz`.
- `ict`: ICT-FaceKit light (MIT), official `FaceXModel/` OBJ folder (cached) or the plain npz.
- `bfm`: BFM 2009 in the Deep3DFaceRecon layout (`BFM_model_front.mat`; user-supplied, licensed).
- `flame`: FLAME `generic_model.pkl` without chumpy (user-supplied, licensed).
- `builtin`: a generated demo model so the demo runs offline.
"""

from headflow.morphable.model import ModelFormatError, MorphableModel

__all__ = ["ModelFormatError", "MorphableModel"]
