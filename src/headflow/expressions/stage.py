"""The expressions stage: per-frame expression coefficients and head pose of every fitted clip.

Reads `data/interim/fit3dmm/fits.parquet` and the fit files; writes
    data/interim/expressions/expressions.parquet   one row per frame of every fitted clip:
        clip_id, frame, valid, exp list<float32, K_exp>, angles (3, degrees), translation (2, px), scale;
        schema metadata: model, n_exp, n_id (identity coefficients stay per clip, in the fit files)
    data/interim/expressions/deep3d/<clip_id>.mat  with `expressions.export_mat` (BFM fits only)
and `reports/metrics/expressions.json`.

`export_deep3d_mat` writes the Deep3DFaceRecon / StyleTalk / PIRender coefficient layout:
`coeff` (T, 257) = [id 80 | exp 64 | tex 80 | angles 3 | gamma 27 | trans 3] (StyleTalk reads
`coeff[:, 80:144]` as expression, `224:227` angles and `254:257` translation). Texture and lighting
(gamma) are zeros: headflow fits geometry only.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from headflow.catalog import CATALOG
from headflow.manifest import atomic_output, check_accounting, read_manifest
from headflow.manifest.schemas import expressions_schema
from headflow.expressions.params import ExpressionsParams
from headflow.rotations import euler_factors
from headflow.stage import Timer, log, write_metrics
from headflow.validation import validate_manifest

STAGE = "expressions"

DEEP3D_SLICES = {"id": (0, 80), "exp": (80, 144), "tex": (144, 224), "angles": (224, 227),
                 "gamma": (227, 254), "trans": (254, 257)}
"""Column ranges of Deep3DFaceRecon's 257-d coefficient vector."""
DEEP3D_FOCAL, DEEP3D_CENTER, DEEP3D_SIZE, DEEP3D_CAMERA_D = 1015.0, 112.0, 224, 10.0
"""Deep3DFaceRecon's camera: focal length and principal point (px) of its 224x224 crop, camera at z = 10."""


def deep3d_angles(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations -> Deep3DFaceRecon angles (x, y, z) radians with R = Rz(z) @ Ry(y) @ Rx(x).

    Deep3DFaceRecon's file convention (`compute_rotation` in its models/bfm.py), kept because the .mat
    files must read back in StyleTalk / PIRender. Same axes, signs and frame (y up, z towards the
    camera) as `headflow.rotations`, whose R = Rz(roll) Rx(pitch) Ry(yaw): only the order of the two
    inner factors differs, so x ~ pitch, y ~ yaw, z ~ roll (radians), exactly when yaw or pitch is 0.
    From headflow angles: `deep3d_angles(euler_to_matrix([yaw, pitch, roll]))`.
    """
    R = np.asarray(R, np.float64)
    y = np.arcsin(np.clip(-R[..., 2, 0], -1.0, 1.0))
    x = np.arctan2(R[..., 2, 1], R[..., 2, 2])
    z = np.arctan2(R[..., 1, 0], R[..., 0, 0])
    return np.stack([x, y, z], axis=-1)


def deep3d_rotation(angles: np.ndarray) -> np.ndarray:
    """Inverse of `deep3d_angles`: (..., 3) Deep3DFaceRecon angles (x, y, z) radians -> (..., 3, 3)
    R = Rz(z) @ Ry(y) @ Rx(x) (its compute_rotation, for column vectors), built from the elementary
    rotations of `headflow.rotations` (x is the pitch axis, y the yaw axis, z the roll axis)."""
    a = np.asarray(angles, np.float64)
    ry, rx, rz = euler_factors(a[..., [1, 0, 2]])        # (yaw, pitch, roll) slots <- (y, x, z)
    return rz @ ry @ rx


def pose_in_crop(rotation: np.ndarray, translation: np.ndarray, scale: np.ndarray,
                 transforms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The scaled orthographic camera moved into the crop: source -> crop similarity A x + b per frame.

    With F A F = c Rot(phi) (F flips y to point up), the crop camera is R' = Rz(phi) R, s' = c s,
    t' = A t + b (the crop's in-plane rotation composes with roll; depth order is kept).
    """
    A = np.asarray(transforms, np.float64).reshape(-1, 2, 3)
    M, b = A[:, :, :2], A[:, :, 2]
    F = np.diag([1.0, -1.0])
    G = F @ M @ F
    c = np.sqrt(np.abs(np.linalg.det(M)))
    phi = np.arctan2(G[:, 1, 0], G[:, 0, 0])
    rz = np.zeros((len(A), 3, 3))
    rz[:, 0, 0], rz[:, 0, 1], rz[:, 1, 0], rz[:, 1, 1] = np.cos(phi), -np.sin(phi), np.sin(phi), np.cos(phi)
    rz[:, 2, 2] = 1.0
    R = rz @ np.asarray(rotation, np.float64)
    t = np.einsum("tij,tj->ti", M, np.asarray(translation, np.float64)) + b
    return R, t, c * np.asarray(scale, np.float64)


def is_bfm_fit(model_name: str, n_id: int, n_exp: int) -> bool:
    return "bfm" in model_name.lower() and n_id <= 80 and n_exp <= 64


def deep3d_coefficients(fit, crop_transforms: np.ndarray | None = None, crop_size: int = 256) -> np.ndarray:
    """(T, 257) float32 Deep3DFaceRecon coefficients of a BFM `VideoFit` (see `export_deep3d_mat`)."""
    K_id, K_exp = int(np.shape(fit.id_coeffs)[-1]), int(np.shape(fit.exp_coeffs)[-1])
    if not is_bfm_fit(fit.model_name, K_id, K_exp):
        raise ValueError(f"export to the Deep3DFaceRecon/StyleTalk .mat layout needs a BFM fit (BFM_model_front.mat: "
                         f"80 identity + 64 expression PCA modes); this fit is of model {fit.model_name!r} with "
                         f"{K_id} identity / {K_exp} expression modes, whose bases are not the BFM's, so the "
                         "coefficients would mean nothing there. Fit with fit3dmm.model: bfm:<path>")
    T = len(fit.exp_coeffs)
    out = np.zeros((T, 257), np.float64)
    out[:, 0:K_id] = np.asarray(fit.id_coeffs, np.float64)[None]
    out[:, 80:80 + K_exp] = fit.exp_coeffs
    if crop_transforms is None:
        R = np.asarray(fit.rotation, np.float64)
    else:
        R, t, s = pose_in_crop(fit.rotation, fit.translation, fit.scale, crop_transforms)
        k = DEEP3D_SIZE / float(crop_size)           # our crop -> Deep3D's 224 px crop
        s, t = s * k, t * k
        # weak perspective at the face's depth: s = focal / (camera_d - tz); u = s (x + tx) + centre;
        # v = size - (s (y + ty) + centre) (Deep3D flips y after projecting)
        out[:, 256] = DEEP3D_CAMERA_D - DEEP3D_FOCAL / s
        out[:, 254] = (t[:, 0] - DEEP3D_CENTER) / s
        out[:, 255] = (DEEP3D_SIZE - DEEP3D_CENTER - t[:, 1]) / s
    out[:, 224:227] = deep3d_angles(R)
    return out.astype(np.float32)


def export_deep3d_mat(fit, path: str | Path, crop_transforms: np.ndarray | None = None, crop_size: int = 256) -> Path:
    """Write a BFM fit as a Deep3DFaceRecon / StyleTalk / PIRender `.mat`: `coeff` (T, 257) float32.

    Layout [id 80 | exp 64 | tex 80 | angles 3 | gamma 27 | trans 3]; fewer fitted id / exp modes are
    zero-padded (the first modes of the same basis). Angles in radians, Deep3DFaceRecon's convention
    (R = Rz Ry Rx). With `crop_transforms` (source -> `crop_size` crop, as in the fit file) the pose is
    expressed in the crop scaled to Deep3D's 224 px, and the translation converts the scaled orthographic
    camera to Deep3D's perspective one (focal 1015, camera at z = 10) at the face's depth; without them
    the angles are in the source frame and the translation is zeros. Texture and lighting are zeros
    (headflow fits geometry only). Raises ValueError for fits of non-BFM models.
    """
    from scipy.io import savemat

    coeff = deep3d_coefficients(fit, crop_transforms, crop_size)
    buf = io.BytesIO()
    savemat(buf, {"coeff": coeff}, do_compression=False)
    data = bytearray(buf.getvalue())
    # the 116-byte text header carries the creation time: fix it so the same fit gives the same bytes
    data[:116] = b"MATLAB 5.0 MAT-file, written by headflow (Deep3DFaceRecon coeff layout)".ljust(116, b" ")
    with atomic_output(path, suffix=".mat") as tmp:
        tmp.write_bytes(bytes(data))
    return Path(path)


def expressions_table(fit_files: list[tuple[str, Path]]) -> pa.Table:
    """One row per frame of each (clip_id, fit file); `exp` a fixed-size list, model in the metadata."""
    from headflow.fit3dmm.fitio import load_fit

    cols: dict[str, list] = {k: [] for k in ("clip_id", "frame", "valid", "exp", "angles", "translation", "scale")}
    model, n_exp, n_id = None, None, None
    for clip_id, path in fit_files:
        d = load_fit(path)
        T, K = d["exp_coeffs"].shape
        if model is None:
            model, n_exp, n_id = d["model"], K, int(d["id_coeffs"].shape[-1])
        elif (d["model"], K) != (model, n_exp):
            raise ValueError(f"{path}: fit of {d['model']} with {K} expression modes; the other clips use {model} "
                             f"with {n_exp} (one model per table; re-run fit3dmm)")
        cols["clip_id"].append(np.full(T, clip_id, dtype=object))
        cols["frame"].append(np.arange(T, dtype=np.int32))
        cols["valid"].append(d["valid"].astype(bool))
        cols["exp"].append(d["exp_coeffs"].astype(np.float32))
        cols["angles"].append(d["angles"].astype(np.float32))
        cols["translation"].append(d["translation"].astype(np.float32))
        cols["scale"].append(d["scale"].astype(np.float32))
    schema = expressions_schema(n_exp or 0, model or "", n_id)
    if not fit_files:
        return schema.empty_table()

    def fixed(key: str, n: int) -> pa.Array:
        values = np.concatenate(cols[key]).reshape(-1)
        return pa.FixedSizeListArray.from_arrays(pa.array(values, pa.float32()), n)

    arrays = [pa.array(np.concatenate(cols["clip_id"]), pa.string()), pa.array(np.concatenate(cols["frame"])),
              pa.array(np.concatenate(cols["valid"])), fixed("exp", n_exp), fixed("angles", 3),
              fixed("translation", 2), pa.array(np.concatenate(cols["scale"]), pa.float32())]
    return pa.Table.from_arrays(arrays, schema=schema)


def write_expressions(table: pa.Table, path: str | Path) -> None:
    """Validate (suite `expressions`), then write atomically keeping the fixed-size list and metadata."""
    import pyarrow.parquet as pq

    report = validate_manifest(table.to_pandas(), "expressions")
    with atomic_output(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)
    log.info("wrote %s: %d rows, %d expectations passed", path, report.n_rows, report.n_expectations)


def run_stage(params: ExpressionsParams, fits_path: Path = CATALOG.manifest("fit3dmm", "fits"),
              out_dir: Path = CATALOG.folder("expressions"), metrics_path: Path = CATALOG.metrics("expressions"),
              project_root: Path | None = None, map_fn: Callable | None = None, progress: bool = True) -> dict:
    """Write expressions.parquet (and the .mat exports) for every clip of fit3dmm's `fits_path`, whose
    `fit_path`s are relative to `project_root` (default: the current folder); returns the metrics."""
    from headflow.fit3dmm.fitio import fit_from_file, load_fit

    project_root = Path(project_root or Path.cwd())
    with Timer() as t:
        fits = read_manifest(fits_path, "fits")
        files = [(r.clip_id, project_root / r.fit_path) for r in fits.itertuples()]
        table = expressions_table(files)
        check_accounting(list(fits.clip_id), sorted(set(table.column("clip_id").to_pylist())), [], STAGE)
        mat_dir = out_dir / "deep3d"
        n_mat = 0
        if params.export_mat:
            mat_dir.mkdir(parents=True, exist_ok=True)
            for clip_id, path in files:
                d = load_fit(path)
                export_deep3d_mat(fit_from_file(path), mat_dir / f"{clip_id}.mat", d.get("crop_transforms"),
                                  int(d.get("crop_size", 256)))
                n_mat += 1
        if mat_dir.is_dir():   # exports of clips gone (or of a switched-off option) must not linger
            keep = {c for c, _ in files} if params.export_mat else set()
            for f in mat_dir.iterdir():
                if f.stem not in keep:
                    f.unlink()
    write_expressions(table, out_dir / "expressions.parquet")
    meta = table.schema.metadata or {}
    metrics = {"clips": len(fits), "frames": table.num_rows,
               "valid_frames": int(np.sum(table.column("valid").to_numpy(zero_copy_only=False))),
               "model": meta.get(b"model", b"").decode() or None, "n_exp": int(meta.get(b"n_exp", b"0")),
               "mat_files": n_mat, "seconds": round(t.seconds, 2)}
    write_metrics(metrics_path, metrics)
    log.info("expressions: %d clips, %d frames, %s with %d expression modes; %d .mat exports (%.1f s)",
             metrics["clips"], metrics["frames"], metrics["model"], metrics["n_exp"], n_mat, t.seconds)
    return metrics
