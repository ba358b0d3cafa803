"""Linear 3D morphable face models (3DMM): one interface, several loaders, a video fitter.

- `model.MorphableModel`: mean + identity and expression bases, triangles, 68 landmark vertices,
  optional jaw-contour candidates; `shape`, `landmarks`, `validate`, `save_npz` / `load_npz`.
- `ict`: ICT-FaceKit light (MIT), official `FaceXModel/` OBJ folder (cached) or the plain npz.
- `bfm`: BFM 2009 in the Deep3DFaceRecon layout (`BFM_model_front.mat`; user-supplied, licensed).
- `flame`: FLAME `generic_model.pkl` without chumpy (user-supplied, licensed).
- `builtin`: a generated demo model so the demo runs offline.
- `render`: NMFC images and shaded previews (z-buffer rasteriser in `raster`, files in `nmfc_io`).
- `fit`: one identity + per-frame expressions and scaled-orthographic cameras from 68 landmarks
  (`fit_video`, joint over the clip with temporal smoothness; `fit_frames`, the per-frame baseline).
"""

from headflow.morphable.fit import FitConfig, VideoFit, fit_frames, fit_video
from headflow.morphable.model import ModelFormatError, MorphableModel
from headflow.morphable.render import (face_triangles, nmfc_colors, nmfc_preview, rasterize, read_nmfc,
                                       render_nmfc, render_shaded, to_crop, write_nmfc)

__all__ = ["FitConfig", "ModelFormatError", "MorphableModel", "VideoFit", "fit_frames", "fit_video",
           "face_triangles", "nmfc_colors", "nmfc_preview", "rasterize", "read_nmfc", "render_nmfc",
           "render_shaded", "to_crop", "write_nmfc"]
