"""The fit3dmm stage: every face clip -> a 3DMM video fit and its NMFC images in the 256x256 crop.

Reads the catalog's preprocessing join (ingest's clips x faces' tracked clips, `headflow.catalog`),
faces' `landmarks.parquet` (and its crop videos for the preview); writes under `data/interim/fit3dmm/`:
    fits.parquet        one row per fitted clip (model, basis sizes, reprojection error, paths, timings)
    fits/<clip_id>.npz  the fit (headflow.fit3dmm.fitio: coefficients, pose, valid, reprojection)
    nmfc/<clip_id>.nmfc.zip  NMFC frames + coverage mask in crop pixels (headflow.nmfc.render.write_nmfc)
    quarantine.parquet  too_few_valid_frames | fit_failed | fit_error_high
and `reports/metrics/fit3dmm.json`, `reports/fit3dmm/preview.png`. Frames without valid landmarks get
an empty NMFC image (mask all false): their pose is not observed, so nothing is drawn for them.
DVC (`stages/fit3dmm.py`) and Prefect (`pipelines/preprocess.py`) both call `run_stage`.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from headflow.catalog import CATALOG, preprocessing_clips
from headflow.manifest import Quarantine, check_accounting, read_manifest
from headflow.manifest.schemas import schema_for
from headflow.fit3dmm.params import Fit3dmmParams
from headflow.landmarks68 import MOUTH_OPENING_PAIR
from headflow.parallel import map_jobs
from headflow.stage import Timer, finish_quarantine, log, write_metrics, write_validated

STAGE = "fit3dmm"
REASON_CODES = ("too_few_valid_frames", "fit_failed", "fit_error_high")


def fit_config(params: Fit3dmmParams):
    """The block's FitConfig with the mode counts of the block."""
    return replace(params.fit, n_id=params.n_id, n_exp=params.n_exp)


@dataclass(frozen=True)
class ClipJob:
    clip_id: str
    source_path: str | None
    landmarks: np.ndarray        # (T, 68, 2) float32 source px, NaN where invalid
    valid: np.ndarray            # (T,) bool
    transforms: np.ndarray       # (T, 2, 3) source -> crop
    model_spec: str
    project_root: str
    config: object               # FitConfig
    crop_size: int
    fit_path: str                # absolute
    nmfc_path: str
    truth_path: str | None
    min_valid_frames: int
    max_reproj_iod: float


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if len(a) < 3 or np.std(b) < 1e-9:
        return None                       # no ground-truth variation: r is undefined
    if np.std(a) < 1e-9:
        return 0.0                        # the fit did not move at all: no correlation
    return float(np.corrcoef(a, b)[0, 1])


def jaw_open_signal(model, fit) -> np.ndarray:
    """Per-frame mouth opening of a fit: the `jawOpen` coefficient where the model names one, else the
    inner-lip gap (`landmarks68.mouth_opening`: points 62-66) of the fitted shape in model units (PCA
    models: BFM, FLAME)."""
    if "jawOpen" in model.exp_names and model.exp_index("jawOpen") < fit.exp_coeffs.shape[1]:
        return fit.exp_coeffs[:, model.exp_index("jawOpen")].astype(np.float64)
    sub = model.subset(model.landmarks68[MOUTH_OPENING_PAIR])     # only the two points mouth_opening reads
    pts = sub.shape(np.broadcast_to(fit.id_coeffs, (len(fit.exp_coeffs), len(fit.id_coeffs))), fit.exp_coeffs)
    return np.linalg.norm(pts[:, 0] - pts[:, 1], axis=-1).astype(np.float64)


_RENDER_WARM = False
"""Whether this process has run the NMFC renderer once (its numba kernels compiled or loaded from cache)."""


def warm_render(render, model, crop: np.ndarray, size: int) -> float:
    """Seconds the first NMFC render in this process costs beyond the frames: numba compiles (or loads from
    its cache) the rasteriser on the first call, ~11 s per worker measured on the demo, which made small
    runs report ~14 frames/s for a renderer that does 60-250. One frame is rendered to pay it here, so
    `render_s` holds rendering alone; 0.0 once this process is warm.

    Args:
        render: `headflow.nmfc.render.render_nmfc`; model, crop, size: the clip's (only crop[:1] is used).
    """
    global _RENDER_WARM
    if _RENDER_WARM:
        return 0.0
    t0 = time.perf_counter()
    render(model, crop[:1], size=size)
    _RENDER_WARM = True
    return time.perf_counter() - t0


def fit_clip(job: ClipJob) -> tuple[str, dict | None, tuple[str, str] | None]:
    """Fit, check and render one clip; returns (clip_id, manifest row, None) or (clip_id, None, rejection)."""
    from headflow.fit3dmm.fit import fit_video
    from headflow.fit3dmm.fitio import save_fit
    from headflow.morphable.registry import load_model
    from headflow.nmfc.render import render_nmfc, to_crop, write_nmfc

    n_valid = int(job.valid.sum())
    T = len(job.valid)
    if n_valid < job.min_valid_frames:
        return job.clip_id, None, ("too_few_valid_frames",
                                   f"{job.clip_id}: {n_valid} of {T} frames have valid landmarks "
                                   f"(< fit3dmm.min_valid_frames {job.min_valid_frames})")
    model = load_model(job.model_spec, job.project_root)
    try:
        t0 = time.perf_counter()
        fit = fit_video(model, job.landmarks, job.valid, job.config)
        fit_s = time.perf_counter() - t0
        err = fit.reproj_iod()[fit.valid]
        if not np.isfinite(err).any():
            raise ValueError("no finite reprojection error on any valid frame")
    except Exception as exc:  # noqa: BLE001 - a failed fit is a quarantine row, with the reason
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return job.clip_id, None, ("fit_failed", f"{job.clip_id}: fitting {model.name} failed: "
                                   f"{type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno})")
    med = float(np.nanmedian(err))
    if med > job.max_reproj_iod:
        return job.clip_id, None, ("fit_error_high",
                                   f"{job.clip_id}: median landmark reprojection error {med:.1%} of the "
                                   f"inter-ocular distance (> fit3dmm.max_reproj_iod {job.max_reproj_iod:.1%})")
    compile_s = 0.0
    try:
        crop = to_crop(fit.project(model), job.transforms)
        compile_s = warm_render(render_nmfc, model, crop, job.crop_size)
        t0 = time.perf_counter()
        nmfc, mask = render_nmfc(model, crop, size=job.crop_size)
        nmfc[~fit.valid] = 0
        mask[~fit.valid] = False
        write_nmfc(job.nmfc_path, nmfc, mask)
    except Exception as exc:  # noqa: BLE001
        return job.clip_id, None, ("fit_failed", f"{job.clip_id}: rendering the NMFC images failed: "
                                   f"{type(exc).__name__}: {exc}")
    render_s = time.perf_counter() - t0
    save_fit(job.fit_path, fit, job.transforms, job.crop_size)
    jaw_r = None
    if job.truth_path is not None:
        truth = np.load(job.truth_path)["mouth"][:, 0].astype(np.float64)
        n = min(len(truth), T)
        sig = jaw_open_signal(model, fit)[:n]
        sig[~fit.valid[:n]] = np.nan
        jaw_r = _pearson(sig, truth[:n])
    rel = job.project_root
    row = {
        "clip_id": job.clip_id, "model": fit.model_name, "n_id": int(fit.id_coeffs.shape[-1]),
        "n_exp": int(fit.exp_coeffs.shape[-1]), "n_frames": T, "n_valid": n_valid,
        "reproj_px_median": float(np.nanmedian(fit.reproj_px[fit.valid])),
        "reproj_iod_median": med, "reproj_iod_p90": float(np.nanpercentile(err, 90)),
        "nmfc_coverage": float(mask[fit.valid].mean()) if n_valid else 0.0,
        "jaw_open_r": jaw_r,
        "fit_path": os.path.relpath(job.fit_path, rel), "nmfc_path": os.path.relpath(job.nmfc_path, rel),
        "fit_s": round(fit_s, 4), "render_s": round(render_s, 4),
        "render_compile_s": round(compile_s, 4),   # not a fits.parquet column: summed into the metrics
    }
    return job.clip_id, row, None


def clip_frames(landmarks_path: Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """landmarks.parquet -> {clip_id: (landmarks (T, 68, 2) NaN where invalid, valid (T,), transforms (T, 2, 3))}."""
    table = pq.read_table(landmarks_path, columns=["clip_id", "frame", "valid", "landmarks", "crop_transform"])
    table = table.sort_by([("clip_id", "ascending"), ("frame", "ascending")])
    ids = table.column("clip_id").to_numpy(zero_copy_only=False)
    valid = table.column("valid").to_numpy(zero_copy_only=False).astype(bool)
    lm_arr = table.column("landmarks").combine_chunks()
    lm = lm_arr.values.to_numpy(zero_copy_only=False)[lm_arr.offset * 136:(lm_arr.offset + len(lm_arr)) * 136]
    lm = lm.reshape(-1, 68, 2).astype(np.float32)
    lm[~valid] = np.nan
    tr_arr = table.column("crop_transform").combine_chunks()
    tr = tr_arr.values.to_numpy(zero_copy_only=False)[tr_arr.offset * 6:(tr_arr.offset + len(tr_arr)) * 6]
    tr = tr.reshape(-1, 2, 3).astype(np.float64)
    out = {}
    if len(ids):
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        for s, e in zip(starts, np.r_[starts[1:], len(ids)]):
            out[str(ids[s])] = (lm[s:e], valid[s:e], tr[s:e])
    return out


@dataclass(frozen=True)
class Fit3dmmResult:
    fits: pd.DataFrame
    quarantine: Quarantine
    n_inputs: int
    render_compile_s: float = 0.0
    """Seconds the workers spent before their first NMFC frame (numba compilation or cache load), summed."""


def run_fit3dmm(params: Fit3dmmParams, faces_dir: Path = CATALOG.folder("faces"),
                out_dir: Path = CATALOG.folder("fit3dmm"), clips_path: Path = CATALOG.manifest("ingest", "clips"),
                project_root: Path | None = None, map_fn: Callable | None = None,
                progress: bool = True) -> Fit3dmmResult:
    """Fit every clip of the preprocessing join (`clips_path` x `faces_dir`/faces.parquet); per-clip files are
    written, the manifest returned."""
    project_root = Path(project_root or Path.cwd()).resolve()
    clips = preprocessing_clips(clips_path, faces_dir / "faces.parquet")
    frames = clip_frames(faces_dir / "landmarks.parquet")
    truth_root = project_root / params.truth_root if params.truth_root else None
    config = fit_config(params)
    fits_dir, nmfc_dir = out_dir / "fits", out_dir / "nmfc"
    fits_dir.mkdir(parents=True, exist_ok=True)
    nmfc_dir.mkdir(parents=True, exist_ok=True)
    jobs, quarantine = [], Quarantine(STAGE)
    for clip_id, src in zip(clips.clip_id, clips.source_path):
        if clip_id not in frames:
            quarantine.add(clip_id, "too_few_valid_frames", f"{clip_id}: no rows in {faces_dir / 'landmarks.parquet'}",
                           src)
            continue
        lm, valid, tr = frames[clip_id]
        truth = None
        if truth_root is not None and src is not None:
            cand = truth_root / Path(src).with_suffix(".truth.npz")
            truth = str(cand) if cand.is_file() else None
        jobs.append(ClipJob(clip_id, src, lm, valid, tr, params.model, str(project_root), config, params.crop_size,
                            str((fits_dir / f"{clip_id}.npz").resolve()), str((nmfc_dir / f"{clip_id}.nmfc.zip").resolve()),
                            truth, params.min_valid_frames, params.max_reproj_iod))
    results = map_jobs(fit_clip, jobs, params.workers, map_fn, desc="fit3dmm", progress=progress)
    rows = []
    for job, (clip_id, row, rejection) in zip(jobs, results):
        if row is None:
            quarantine.add(clip_id, rejection[0], rejection[1], job.source_path)
        else:
            rows.append(row)
    keep = {r["clip_id"] for r in rows}
    for folder in (fits_dir, nmfc_dir):   # artifacts of clips rejected now must not linger from a past run
        for f in folder.iterdir():
            if f.name.split(".")[0] not in keep:
                f.unlink()
    fits = pd.DataFrame(rows, columns=schema_for("fits").names).sort_values("clip_id", ignore_index=True)
    check_accounting(list(clips.clip_id), list(fits.clip_id), [q["clip_id"] for q in quarantine.rows], STAGE)
    return Fit3dmmResult(fits=fits, quarantine=quarantine, n_inputs=len(clips),
                         render_compile_s=float(sum(r.get("render_compile_s", 0.0) for r in rows)))


def stage_metrics(result: Fit3dmmResult, seconds: float) -> dict:
    f = result.fits
    n_frames = int(f.n_frames.sum()) if len(f) else 0
    jaw = f.jaw_open_r.dropna() if len(f) else pd.Series(dtype=float)

    def pct(v) -> float | None:
        return round(float(v) * 100, 3) if v is not None and np.isfinite(v) else None

    return {
        "inputs": result.n_inputs, "clips": len(f), "quarantined": len(result.quarantine),
        "quarantine_reasons": dict(sorted(result.quarantine.reasons().items())),
        "model": str(f.model.iloc[0]) if len(f) else None,
        "n_id": int(f.n_id.iloc[0]) if len(f) else None, "n_exp": int(f.n_exp.iloc[0]) if len(f) else None,
        "frames": n_frames,
        "reproj_pct_iod_median": pct(f.reproj_iod_median.median()) if len(f) else None,
        "reproj_pct_iod_p90": pct(np.percentile(f.reproj_iod_median, 90)) if len(f) else None,
        "reproj_px_median": round(float(f.reproj_px_median.median()), 3) if len(f) else None,
        "jaw_open_r_median": round(float(jaw.median()), 4) if len(jaw) else None,
        "jaw_open_r_clips": len(jaw),
        "nmfc_coverage_mean": round(float(f.nmfc_coverage.mean()), 4) if len(f) else None,
        "fit_frames_per_s": round(n_frames / f.fit_s.sum(), 1) if len(f) and f.fit_s.sum() else None,
        "render_frames_per_s": round(n_frames / f.render_s.sum(), 1) if len(f) and f.render_s.sum() else None,
        # numba compilation (or cache load) of the rasteriser, once per worker, kept out of render_frames_per_s
        "render_compile_s": round(result.render_compile_s, 2),
        "seconds": round(seconds, 2),
    }


def write_preview(params: Fit3dmmParams, fits: pd.DataFrame, faces_dir: Path, path: Path,
                  project_root: Path | None = None) -> Path | None:
    """A few crop frames next to their NMFC and shaded renders (one middle valid frame per clip)."""
    from headflow.media import read_frames
    from headflow.fit3dmm.fitio import fit_from_file, load_fit
    from headflow.morphable.registry import load_model
    from headflow.nmfc.render import nmfc_preview, read_nmfc, render_shaded, to_crop

    project_root = Path(project_root or Path.cwd())
    if not len(fits) or params.preview_clips <= 0:
        return None
    faces = read_manifest(faces_dir / "faces.parquet", "faces").set_index("clip_id")
    model = load_model(params.model, project_root)
    crops, nmfcs, masks, shaded, labels = [], [], [], [], []
    picks = np.unique(np.linspace(0, len(fits) - 1, min(params.preview_clips, len(fits))).round().astype(int))
    for row in fits.iloc[picks].itertuples():   # spread over the table (clips sort by speaker)
        fit = fit_from_file(project_root / row.fit_path)
        good = np.flatnonzero(fit.valid)
        t = int(good[len(good) // 2])
        nmfc, mask = read_nmfc(project_root / row.nmfc_path, [t])
        size = nmfc.shape[1]
        frame = np.zeros((size, size, 3), np.uint8)     # no crop video (e.g. tests): a black tile
        crop_video = project_root / str(faces.loc[row.clip_id, "crop_path"])
        if crop_video.is_file():
            for i, f in enumerate(read_frames(crop_video)):
                if i == t:
                    frame = f
                    break
        tr = load_fit(project_root / row.fit_path)["crop_transforms"][t:t + 1]
        proj = to_crop(fit.project(model)[t:t + 1], tr)
        crops.append(frame)
        nmfcs.append(nmfc[0])
        masks.append(mask[0])
        shaded.append(render_shaded(model, proj, size=size)[0])
        labels.append(f"{row.clip_id[:22]} f{t}")
    return nmfc_preview(np.stack(crops), np.stack(nmfcs), np.stack(shaded), path, n=len(nmfcs), mask=np.stack(masks),
                        labels=labels)


def run_stage(params: Fit3dmmParams, faces_dir: Path = CATALOG.folder("faces"),
              out_dir: Path = CATALOG.folder("fit3dmm"), clips_path: Path = CATALOG.manifest("ingest", "clips"),
              metrics_path: Path = CATALOG.metrics("fit3dmm"),
              preview_path: Path | None = CATALOG.plot("fit3dmm", "preview"), map_fn: Callable | None = None,
              progress: bool = True) -> dict:
    """Run the fit3dmm stage and write its manifests, metrics and preview; returns the metrics."""
    with Timer() as t:
        result = run_fit3dmm(params, faces_dir, out_dir, clips_path, map_fn=map_fn, progress=progress)
    write_validated(result.fits, out_dir / "fits.parquet", "fits")
    metrics = stage_metrics(result, t.seconds)
    write_metrics(metrics_path, metrics)
    if preview_path is not None:
        write_preview(params, result.fits, faces_dir, preview_path)
    log.info("fit3dmm: %d clips -> %d fitted (%s), %d quarantined; median reprojection %s %% IOD, jaw-open r %s "
             "(%.1f s)", result.n_inputs, len(result.fits), metrics["model"], len(result.quarantine),
             metrics["reproj_pct_iod_median"], metrics["jaw_open_r_median"], t.seconds)
    finish_quarantine(result.quarantine, out_dir / "quarantine.parquet", result.n_inputs, params.max_reject_fraction)
    return metrics
