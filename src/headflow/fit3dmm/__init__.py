"""The `fit3dmm` stage: one identity + per-frame expressions and scaled-orthographic head pose per
clip from 68 landmarks (`fit.fit_video`), camera helpers (`camera`), the banded smoothing solver
(`banded`), the per-clip fit file (`fitio`) and the stage edge (`stage`)."""
