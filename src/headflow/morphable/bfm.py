"""Basel Face Model 2009 in the Deep3DFaceRecon / StyleTalk layout (`BFM_model_front.mat`).

The file cannot ship with headflow (BFM licence: registration, non-commercial research only) and is
not available on this machine; tests use a tiny file in the same layout. To make the real file:
1. register and download `01_MorphableModel.mat` (BFM 2009) from
   https://faces.dmi.unibas.ch/bfm/main.php?nav=1-2&id=downloads ;
2. get the expression basis `Exp_Pca.bin` (Guo et al., CoarseData of https://github.com/Juyong/3DFace);
3. run Deep3DFaceRecon_pytorch's `util/load_mats.py` (`transferBFM09`), which writes
   `BFM/BFM_model_front.mat` (35,709 front-face vertices, 80 identity + 64 expression modes).

Keys read (the rest, e.g. texture `meanT`/`texBase`, `point_buf`, `frontmask2_idx`, are ignored):
`meanshape` (1, 3V), `idBase` (3V, 80), `exBase` (3V, 64), `tri` (F, 3) 1-based,
`keypoints` (1, 68) 1-based. Coordinates are interleaved x, y, z per vertex and kept in the file's
units (the coefficient scale matches Deep3DFaceRecon's 257-d `.mat` coefficients, id 80 / exp 64).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from headflow.morphable.model import ModelFormatError, MorphableModel

BFM_URL = "https://faces.dmi.unibas.ch/bfm/main.php?nav=1-2&id=downloads"
HOWTO = (f"BFM_model_front.mat is made by Deep3DFaceRecon_pytorch's util/load_mats.py from BFM 2009 "
         f"({BFM_URL}, registration, non-commercial licence) and Exp_Pca.bin "
         "(https://github.com/Juyong/3DFace); see headflow.morphable.bfm")


def load_bfm_deep3d(path: str | Path, recenter: bool = False) -> MorphableModel:
    """Load `BFM_model_front.mat` (Deep3DFaceRecon layout) as a `MorphableModel`.

    Args:
        path: the .mat file.
        recenter: subtract the mean shape's centroid, as Deep3DFaceRecon's `ParametricFaceModel`
            does by default (`recenter=True` there); off by default to keep the file's coordinates.
    """
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"BFM file {path} not found. {HOWTO}")
    mat = loadmat(str(path))
    needed = ("meanshape", "idBase", "exBase", "tri", "keypoints")
    missing = [k for k in needed if k not in mat]
    if missing:
        raise ModelFormatError(f"{path}: missing keys {missing}; a Deep3DFaceRecon BFM_model_front.mat has "
                               f"{list(needed)} (this loader does not read the raw 01_MorphableModel.mat)")
    mean = np.asarray(mat["meanshape"], dtype=np.float64).reshape(-1)
    if mean.size % 3:
        raise ModelFormatError(f"{path}: meanshape has {mean.size} values, not a multiple of 3")
    V = mean.size // 3
    id_base, ex_base = np.asarray(mat["idBase"]), np.asarray(mat["exBase"])
    for key, base in (("idBase", id_base), ("exBase", ex_base)):
        if base.ndim != 2 or base.shape[0] != 3 * V:
            raise ModelFormatError(f"{path}: {key} must be (3V={3 * V}, K), got {base.shape}")
    mean = mean.reshape(V, 3)
    if recenter:
        mean = mean - mean.mean(axis=0, keepdims=True)
    tri = np.asarray(mat["tri"], dtype=np.int64)
    kp = np.asarray(mat["keypoints"], dtype=np.int64).reshape(-1)
    if tri.size and tri.min() < 1:
        raise ModelFormatError(f"{path}: tri has index {tri.min()}; the Deep3DFaceRecon layout is 1-based")
    if kp.size and kp.min() < 1:
        raise ModelFormatError(f"{path}: keypoints has index {kp.min()}; the Deep3DFaceRecon layout is 1-based")
    n_exp = ex_base.shape[1]
    return MorphableModel(
        name="bfm09_deep3d", mean=mean,
        id_basis=id_base.T.reshape(-1, V, 3), exp_basis=ex_base.T.reshape(-1, V, 3),
        triangles=tri - 1, landmarks68=kp - 1,
        exp_names=tuple(f"exp{j:02d}" for j in range(n_exp)),
        units="as stored in BFM_model_front.mat", source=f"{path} (BFM 2009 + FaceWarehouse expressions)",
        meta={"recentered": recenter},
    ).validate()
