"""Linear 3D morphable face models (3DMM): one interface and its loaders. No fitting, no rendering.

- `model.MorphableModel`: mean + identity and expression bases, triangles, 68 landmark vertices,
  optional jaw-contour candidates; `shape`, `landmarks`, `validate`, `save_npz` / `load_npz`.
- `ict`: ICT-FaceKit light (MIT), official `FaceXModel/` OBJ folder (cached) or the plain npz.
- `bfm`: BFM 2009 in the Deep3DFaceRecon layout (`BFM_model_front.mat`; user-supplied, licensed).
- `flame`: FLAME `generic_model.pkl` without chumpy (user-supplied, licensed).
- `builtin`: a generated demo model so the demo runs offline.
- `registry.load_model`: a model from its `fit3dmm.model` spec string.

The fitter lives in `headflow.fit3dmm`, NMFC rendering and files in `headflow.nmfc`, the expression
table and the Deep3D export in `headflow.expressions`: a renderer imports NMFC without the fitter.
"""

from headflow.morphable.model import ModelFormatError, MorphableModel

__all__ = ["ModelFormatError", "MorphableModel"]
