"""Fit a 3D morphable model to a clip's 68 landmarks (Head2Head / Head2HeadFS, section 3.1).

One identity vector alpha for the whole clip, and per frame t an expression vector beta_t and a
scaled-orthographic camera (R_t, s_t, t_t), minimising

    sum_t v_t sum_i w_i || proj_t(X_ti(alpha, beta_t)) - y_ti ||^2 / (68 d^2)        data (valid frames)
  + id_prior * n_valid * ||alpha||^2 + exp_prior * sum_t ||beta_t||^2                   priors
  + exp_smooth * sum_t ||beta_{t-1} - 2 beta_t + beta_{t+1}||^2                       expression smoothness
  + pose_smooth * sum_t ||p_{t-1} - 2 p_t + p_{t+1}||^2                               pose smoothness
    subject to |alpha_k| <= id_bound, exp_bounds[0] <= beta_tk <= exp_bounds[1]

with d the clip's median inter-ocular distance (outer eye corners 36, 45) in pixels, so the data
term is the mean squared landmark error in IOD units and the weights do not depend on the image
size; the identity prior counts once per valid frame so the balance does not depend on clip length.
p_t = (yaw, pitch, roll [rad], tx / d, ty / d, log s) (see `headflow.fit3dmm.camera`).

Algorithm (`fit_video`): cameras start from a per-frame closed-form scaled-orthographic fit of the
mean shape's nose and eye corners; then `iterations` times: (1) pose step: Gauss-Newton on all frames'
poses jointly, the pose smoothness included exactly (a banded 6T system); (2) jaw contour: each jaw
landmark 0-7 / 9-16 takes the candidate vertex (`model.jaw_contour` plus the default jaw vertices of
its side) whose projection is nearest to the detected point; (3) identity step: exact bounded solve of
the small K_id system given the expressions; (4) expression + pose step: one Gauss-Newton step on all
frames' expressions and poses jointly (exact in beta, linearised in the pose; block-banded with
blocks of K_exp + 6 and bandwidth 2 frames, both smoothness terms exact), the expression box handled
by ADMM around one banded Cholesky factor. Without (4)'s pose part the camera <-> expression
alternation converged several times slower. A last pose step follows. Pitch and depth-like identity
modes stay weakly determined under the orthographic camera: they converge slowest. Frames without valid landmarks have no data term; the smoothness
terms bridge them (both steps are joint over all frames).

`fit_frames` is the per-frame baseline: no smoothness, every frame its own identity; the same pose
step (without smoothness: independent per frame) and a dense bounded least-squares solve per frame.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import asdict, dataclass

import numpy as np

from headflow.config import require
from headflow.fit3dmm.banded import smooth_apply, solve_box_admm, solve_box_dense
from headflow.fit3dmm.camera import (FLIP, init_pose, interpolate_invalid, pose_jacobian, pose_step, pose_to_camera,
                                       projection)
from headflow.landmarks68 import JAW, JAW_LEFT, JAW_RIGHT, inter_ocular
from headflow.morphable.model import MorphableModel
from headflow.rotations import euler_to_matrix, matrix_to_euler

__all__ = ["FitConfig", "VideoFit", "fit_video", "fit_frames", "euler_to_matrix", "matrix_to_euler",
           "default_exp_bounds"]


@dataclass(frozen=True)
class FitConfig:
    """Weights and switches of the fit (see the module docstring for the energy)."""

    iterations: int = 4
    """Camera <-> coefficient alternations."""
    id_prior: float = 1e-6
    """Weight of ||alpha||^2, per valid frame (the data term is a mean squared error in IOD units)."""
    exp_prior: float = 1e-7
    """Weight of ||beta_t||^2 per frame."""
    exp_smooth: float = 1e-4
    """Weight of ||beta_{t-1} - 2 beta_t + beta_{t+1}||^2."""
    pose_smooth: float = 1e-1
    """Same on the pose vector (yaw, pitch, roll [rad], tx / IOD, ty / IOD, log scale)."""
    id_bound: float = 3.0
    """|alpha_k| <= id_bound."""
    exp_bounds: tuple[float, float] | None = None
    """Box of the expression coefficients; None: `default_exp_bounds(model)`."""
    contour: bool = True
    """Slide jaw landmarks 0-7 / 9-16 along `model.jaw_contour` candidates (when the model has them)."""
    n_id: int | None = None
    """Use only the first n identity modes (None = all)."""
    n_exp: int | None = None
    """Use only the first n expression modes (None = all)."""
    jaw_weight: float = 1.0
    """Data weight of the 17 jaw-line landmarks relative to the others (detectors are least sure there)."""
    pose_steps: int = 2
    """Gauss-Newton steps per pose update."""
    inner_sweeps: int = 1
    """Identity <-> expression sweeps per alternation."""
    admm_iters: int = 10
    """Maximum ADMM iterations of the bounded expression step (warm-started across alternations; 25
    gives the same fits to 0.01% IOD on the GRID and demo benchmarks, 30% slower)."""
    admm_rho: float = 0.1
    """ADMM penalty, relative to the Jacobi scaling of the expression system."""
    admm_tol: float = 1e-4
    """Relative primal / dual residual at which ADMM stops."""
    blas_threads: int | None = 1
    """BLAS threads during the fit (None: leave as is). The systems are small and banded: one thread
    is fastest, and on a loaded machine a multi-threaded BLAS spinning on busy cores is ~10x slower."""

    def validate(self) -> None:
        """Called by `headflow.config` when the fit3dmm params block is loaded."""
        require(self.iterations >= 1, "iterations", self.iterations, ">= 1")
        require(self.exp_bounds is None or (len(self.exp_bounds) == 2 and self.exp_bounds[0] < self.exp_bounds[1]),
                "exp_bounds", None if self.exp_bounds is None else list(self.exp_bounds),
                "[low, high] with low < high, or null")


def default_exp_bounds(model: MorphableModel) -> tuple[float, float]:
    """`model.meta["exp_range"]` if set; (-3, 3) for PCA expression modes (names `exp00`...); else (0, 1)."""
    if "exp_range" in model.meta:
        lo, hi = model.meta["exp_range"]
        return float(lo), float(hi)
    if model.exp_names and all(re.fullmatch(r"exp\d+", n) for n in model.exp_names):
        return -3.0, 3.0
    return 0.0, 1.0


@dataclass
class VideoFit:
    """The fit of one clip. Arrays are float32 unless noted; T frames."""

    model_name: str
    id_coeffs: np.ndarray
    """(K_id,) identity coefficients (K_id = modes used). `fit_frames`: the mean over valid frames."""
    exp_coeffs: np.ndarray
    """(T, K_exp) expression coefficients."""
    rotation: np.ndarray
    """(T, 3, 3) model -> camera rotations."""
    angles: np.ndarray
    """(T, 3) degrees (yaw, pitch, roll), R = Rz(roll) Rx(pitch) Ry(yaw)."""
    translation: np.ndarray
    """(T, 2) pixels."""
    scale: np.ndarray
    """(T,) pixels per model unit."""
    valid: np.ndarray
    """(T,) bool: the frame had landmarks and the data term used them."""
    reproj_px: np.ndarray
    """(T,) mean landmark distance in pixels (NaN where not valid)."""
    iod_px: np.ndarray
    """(T,) detected inter-ocular distance (outer corners 36, 45) in pixels (NaN where not valid)."""
    seconds: float = 0.0
    landmark_vertices: np.ndarray | None = None
    """(T, 68) int32 vertex used for each landmark (jaw landmarks slide along the contour)."""
    id_per_frame: np.ndarray | None = None
    """(T, K_id) per-frame identity (only `fit_frames`)."""
    config: dict | None = None

    def project(self, model: MorphableModel, vertex_ids: np.ndarray | None = None) -> np.ndarray:
        """(T, V, 3) u, v (source-frame pixels) and depth of all (or the given) vertices.

        float32 throughout: the clip's identity shape once, then per chunk of frames one matmul for
        the expressions and one for the cameras (the rendering path of the fit3dmm stage)."""
        ids = None if vertex_ids is None else np.asarray(vertex_ids)
        mean = model.mean if ids is None else model.mean[ids]
        V = len(mean)
        k_id, k_exp = len(self.id_coeffs), self.exp_coeffs.shape[1]
        id_b = model.id_basis[:k_id] if ids is None else model.id_basis[:k_id, ids]
        exp_b = (model.exp_basis[:k_exp] if ids is None else model.exp_basis[:k_exp, ids]).reshape(k_exp, -1)
        base = (mean.reshape(-1) + self.id_coeffs.astype(np.float32) @ id_b.reshape(k_id, -1)).astype(np.float32)
        T = len(self.exp_coeffs)
        out = np.empty((T, V, 3), np.float32)
        # Rows of the camera: u = s R_0 X + tx, v = -s R_1 X + ty, depth = s R_2 X.
        cam = (self.scale[:, None, None] * self.rotation * np.array([1, -1, 1], np.float32)[:, None]).astype(np.float32)
        shift = np.zeros((T, 1, 3), np.float32)
        shift[:, 0, :2] = self.translation
        for a in range(0, T, 64):   # bounded memory for long clips of big meshes
            b = min(T, a + 64)
            X = (base + self.exp_coeffs[a:b].astype(np.float32) @ exp_b).reshape(b - a, V, 3)
            np.matmul(X, cam[a:b].transpose(0, 2, 1), out=out[a:b])
            out[a:b] += shift[a:b]
        return out

    def reproj_iod(self) -> np.ndarray:
        """(T,) reprojection error as a fraction of the inter-ocular distance (NaN where not valid)."""
        return self.reproj_px / self.iod_px


def project_points(X: np.ndarray, R: np.ndarray, scale: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """(T, V, 3) model points -> (T, V, 3) (u, v, depth) with the scaled orthographic camera."""
    cam = np.matmul(np.asarray(X, np.float64), np.swapaxes(np.asarray(R, np.float64), -1, -2))
    s = np.asarray(scale, np.float64)[:, None]
    u = s * cam[..., 0] + translation[:, None, 0]
    v = -s * cam[..., 1] + translation[:, None, 1]
    return np.stack([u, v, s * cam[..., 2]], -1).astype(np.float32)


# ------------------------------------------------------------------------------------------------
class _LandmarkBasis:
    """The model restricted to the landmark vertices and the jaw-contour candidates, in float64.

    Candidates: positions 0..67 are the model's 68 landmark vertices, then the contour vertices that
    are not among them. `sel` (T, 68) arrays index candidates.
    """

    def __init__(self, model: MorphableModel, config: FitConfig) -> None:
        n_id = model.n_id if config.n_id is None else min(config.n_id, model.n_id)
        n_exp = model.n_exp if config.n_exp is None else min(config.n_exp, model.n_exp)
        lm = model.landmarks68.astype(np.int64)
        extra: list[int] = []
        self.contour = bool(config.contour and len(model.jaw_contour) == 2)
        if self.contour:
            for c in model.jaw_contour:
                extra += [int(v) for v in c if int(v) not in set(lm.tolist()) | set(extra)]
        verts = np.concatenate([lm, np.asarray(extra, np.int64)])
        pos = {v: i for i, v in enumerate(verts.tolist())}
        self.verts = verts
        self.mean = model.mean[verts].astype(np.float64)                              # (C, 3)
        self.A = np.ascontiguousarray(model.id_basis[:n_id, verts].transpose(1, 2, 0), np.float64)   # (C, 3, Kid)
        self.B = np.ascontiguousarray(model.exp_basis[:n_exp, verts].transpose(1, 2, 0), np.float64)  # (C, 3, Ke)
        self.n_id, self.n_exp, self.C = n_id, n_exp, len(verts)
        self.A2 = self.A.reshape(-1, n_id)                                        # (3C, Kid) views
        self.B2 = self.B.reshape(-1, n_exp)                                       # (3C, Ke)
        if self.contour:
            right = list(dict.fromkeys(JAW_RIGHT.tolist() + [pos[int(v)] for v in model.jaw_contour[0]]))
            left = list(dict.fromkeys(JAW_LEFT.tolist() + [pos[int(v)] for v in model.jaw_contour[1]]))
            self.sides = ((JAW_RIGHT, np.asarray(right)), (JAW_LEFT, np.asarray(left)))
            self.jaw = np.concatenate([JAW_RIGHT, JAW_LEFT])
        else:
            self.sides = ()
            self.jaw = np.zeros(0, np.int64)
        self.fixed = np.setdiff1d(np.arange(68), self.jaw)
        self.w = np.ones(68)
        self.w[JAW] = config.jaw_weight
        # Per-landmark Gram blocks of the fixed landmarks: S[a, b] = sum_i w_i B_i[a]^T B_i[b].
        self.SA = self._gram(self.A)
        self.SB = self._gram(self.B)

    def _gram(self, basis: np.ndarray) -> np.ndarray:
        f = self.fixed
        return np.einsum("iak,ibl->abkl", basis[f] * self.w[f, None, None], basis[f])

    def candidates(self, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """(T, C, 3) candidate positions for identity alpha (Kid,) and expressions beta (T, Ke)."""
        base = self.mean + self.A @ alpha
        return base[None] + (beta @ self.B2.T).reshape(len(beta), self.C, 3)

    def gather(self, cand: np.ndarray, sel: np.ndarray) -> np.ndarray:
        return np.take_along_axis(cand, sel[:, :, None], axis=1)


def _clip_weights(landmarks: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    y = np.asarray(landmarks, np.float64)
    if y.ndim != 3 or y.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be (T, 68, 2) pixels, got shape {y.shape}")
    finite = np.isfinite(y).all(axis=(1, 2))
    valid = finite if valid is None else (np.asarray(valid, bool) & finite)
    if len(valid) != len(y):
        raise ValueError(f"valid has {len(valid)} entries for {len(y)} frames")
    iod = np.where(valid, inter_ocular(y), np.nan)
    if not valid.any():
        raise ValueError(f"no frame with valid landmarks among {len(y)}: nothing to fit")
    d = float(np.nanmedian(iod))
    if not d > 0:
        raise ValueError(f"degenerate landmarks: median inter-ocular distance {d} px")
    y = np.where(valid[:, None, None], y, 0.0)
    return y, valid, iod, d


def _choose_contour(basis: _LandmarkBasis, cand: np.ndarray, pose: np.ndarray, y: np.ndarray, valid: np.ndarray,
                    d: float, sel: np.ndarray) -> np.ndarray:
    """Each jaw landmark takes its side's candidate vertex whose projection is nearest the detection."""
    if not basis.sides:
        return sel
    R, t, s = pose_to_camera(pose, d)
    P = projection(R, s)
    sel = sel.copy()
    for jaw, cands in basis.sides:
        proj = np.matmul(cand[:, cands], P.transpose(0, 2, 1)) + t[:, None]   # (T, nc, 2)
        dist = ((y[:, jaw, None, :] - proj[:, None]) ** 2).sum(-1)            # (T, 8, nc)
        best = cands[dist.argmin(-1)]
        sel[:, jaw] = np.where(valid[:, None], best, sel[:, jaw])
    return sel


def _residual_terms(basis, cand, sel, pose, y, W, d):
    """Projection matrices, selected shapes, and the data gradient per candidate (T, C, 3)."""
    R, t, s = pose_to_camera(pose, d)
    P = projection(R, s)                                           # (T, 2, 3)
    X = basis.gather(cand, sel)                                    # (T, 68, 3)
    r = np.matmul(X, P.transpose(0, 2, 1)) + t[:, None] - y        # (T, 68, 2)
    w3 = np.matmul(W[:, :, None] * r, P)                           # (T, 68, 3) = P^T W r
    return P, _scatter(sel, w3, basis.C)


def _jaw_gram(P, W, sel, basis_c, jaw, per_frame: bool, chunk: int = 256):
    """sum over jaw landmarks of w (P B_sel)^T (P B_sel), per frame (T, K, K) or summed (K, K)."""
    T, K = len(P), basis_c.shape[-1]
    out = np.zeros((T, K, K)) if per_frame else np.zeros((K, K))
    if len(jaw) == 0:
        return out
    for a in range(0, T, chunk):
        b = min(T, a + chunk)
        Bj = basis_c[sel[a:b][:, jaw]]                                         # (n, J, 3, K)
        Pw = P[a:b, None] * np.sqrt(W[a:b, jaw])[:, :, None, None]             # (n, J, 2, 3)
        # (n, J, 2, K) = Pw @ Bj, as three broadcast products (batched 2x3 @ 3xK matmuls are slow)
        D = Pw[..., 0, None] * Bj[:, :, None, 0] + Pw[..., 1, None] * Bj[:, :, None, 1] \
            + Pw[..., 2, None] * Bj[:, :, None, 2]
        D = D.reshape(b - a, -1, K)
        if per_frame:
            out[a:b] = np.matmul(D.transpose(0, 2, 1), D)
        else:
            D = D.reshape(-1, K)
            out += D.T @ D
    return out


def _data_blocks(P, W, sel, basis, which: str, per_frame: bool):
    """Gauss-Newton (here exact: the model is linear) Hessian of the data term in alpha or beta."""
    S, Bc = (basis.SA, basis.A) if which == "id" else (basis.SB, basis.B)
    K = Bc.shape[-1]
    Q = np.matmul(P.transpose(0, 2, 1), P).reshape(len(P), 9)        # P^T P per frame
    v = basis.frame_weight                                           # valid / (68 d^2)
    if per_frame:
        H = ((v[:, None] * Q) @ S.reshape(9, K * K)).reshape(-1, K, K)
    else:
        H = ((v @ Q) @ S.reshape(9, K * K)).reshape(K, K)
    return H + _jaw_gram(P, W, sel, Bc, basis.jaw, per_frame)


def _scatter(sel: np.ndarray, values: np.ndarray, C: int) -> np.ndarray:
    """Sum per-landmark values (T, 68, ...) into per-candidate slots (T, C, ...).

    Landmarks whose candidate is their own vertex in every frame (all but the sliding jaw ones) are
    copied; the others are added one landmark at a time (two may share a candidate)."""
    T, n = sel.shape
    own = (sel == np.arange(n)).all(0)
    out = np.zeros((T, C) + values.shape[2:])
    out[:, np.flatnonzero(own)] = values[:, own]
    rows = np.arange(T)
    for i in np.flatnonzero(~own):
        out[rows, sel[:, i]] += values[:, i]
    return out


def _expression_pose_step(basis, cand, sel, pose, beta, y, W, d, config, bounds, dual):
    """Joint Gauss-Newton step in (beta_t, p_t) for all frames: exact in beta, linearised in the pose.

    Variables per frame: the new beta_t (K) and the pose increment dp_t (6). The system keeps both
    smoothness terms and is block-banded with blocks K + 6; ADMM handles the expression box.
    """
    T, K = len(y), basis.n_exp
    X = basis.gather(cand, sel)
    resid, Jp = pose_jacobian(pose, X, y, d)                          # (T, 68, 2), (T, 68, 2, 6)
    R, _, s = pose_to_camera(pose, d)
    P = projection(R, s)
    Wr = W[:, :, None] * resid
    Jw = Jp * W[:, :, None, None]
    # Gradients: d/dbeta = B^T P^T W r (scattered per candidate vertex), d/dp = J_p^T W r.
    g_b = _scatter(sel, np.matmul(Wr, P), basis.C).reshape(T, -1) @ basis.B2
    Jw2, Jp2 = Jw.reshape(T, -1, 6), Jp.reshape(T, -1, 6)              # (T, 136, 6)
    g_p = np.matmul(resid.reshape(T, 1, -1), Jw2)[:, 0]
    Hbb = _data_blocks(P, W, sel, basis, "exp", per_frame=True)
    Mc = _scatter(sel, np.matmul(P.transpose(0, 2, 1)[:, None], Jw), basis.C)   # (T, C, 3, 6) = P^T W J_p
    Hbp = np.matmul(basis.B2.T, Mc.reshape(T, -1, 6))                  # (T, K, 6)
    Hpp = np.matmul(Jw2.transpose(0, 2, 1), Jp2)
    Hpp += 1e-6 * (np.trace(Hpp, axis1=1, axis2=2).mean() / 6 + 1e-12) * np.eye(6)
    blocks = np.empty((T, K + 6, K + 6))
    blocks[:, :K, :K] = Hbb
    blocks[:, :K, K:] = Hbp
    blocks[:, K:, :K] = Hbp.transpose(0, 2, 1)
    blocks[:, K:, K:] = Hpp
    x0 = np.concatenate([beta, np.zeros((T, 6))], axis=1)
    rhs = np.matmul(blocks, x0[:, :, None])[..., 0] - np.concatenate([g_b, g_p], axis=1)
    smooth = np.r_[np.full(K, config.exp_smooth), np.full(6, config.pose_smooth)]
    if config.pose_smooth > 0:
        rhs[:, K:] -= smooth_apply(pose, np.full(6, config.pose_smooth))
    prior = np.broadcast_to(np.r_[np.full(K, config.exp_prior), np.zeros(6)], (T, K + 6))
    lo, hi = bounds
    x, dual, _ = solve_box_admm(blocks, rhs, np.r_[np.full(K, lo), np.full(6, -np.inf)],
                                np.r_[np.full(K, hi), np.full(6, np.inf)],
                                smooth=smooth if smooth.any() else None, prior=prior, x0=x0, dual0=dual,
                                rho=config.admm_rho, max_iter=config.admm_iters, tol=config.admm_tol)
    return x[:, :K], pose + x[:, K:], dual


def _finish(model, basis, alpha, beta, pose, sel, y, valid, iod, d, seconds, config, id_per_frame=None) -> VideoFit:
    R, t, s = pose_to_camera(pose, d)
    if id_per_frame is None:
        cand = basis.candidates(alpha, beta)
    else:
        cand = basis.mean[None] + np.einsum("tk,cak->tca", id_per_frame, basis.A) \
            + np.einsum("tk,cak->tca", beta, basis.B)
    X = basis.gather(cand, sel)
    uv = np.einsum("tab,tib->tia", projection(R, s), X) + t[:, None]
    err = np.linalg.norm(uv - y, axis=-1).mean(-1)
    return VideoFit(
        model_name=model.name, id_coeffs=alpha.astype(np.float32), exp_coeffs=beta.astype(np.float32),
        rotation=R.astype(np.float32), angles=matrix_to_euler(R).astype(np.float32),
        translation=t.astype(np.float32), scale=s.astype(np.float32), valid=valid.copy(),
        reproj_px=np.where(valid, err, np.nan).astype(np.float32), iod_px=iod.astype(np.float32),
        seconds=seconds, landmark_vertices=basis.verts[sel].astype(np.int32),
        id_per_frame=None if id_per_frame is None else id_per_frame.astype(np.float32), config=config)


def _prepare(model, landmarks, valid, config):
    basis = _LandmarkBasis(model, config)
    y, valid, iod, d = _clip_weights(landmarks, valid)
    T = len(y)
    basis.frame_weight = valid / (68.0 * d * d)                        # (T,)
    W = basis.frame_weight[:, None] * basis.w[None, :]                 # (T, 68)
    sel = np.broadcast_to(np.arange(68), (T, 68)).copy()
    pose = init_pose(basis.mean[:68], y, valid, d)
    lo, hi = config.exp_bounds if config.exp_bounds is not None else default_exp_bounds(model)
    return basis, y, valid, iod, d, W, sel, pose, (lo, hi)


def _blas_limit(config: FitConfig):
    if config.blas_threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=config.blas_threads, user_api="blas")


def fit_video(model: MorphableModel, landmarks: np.ndarray, valid: np.ndarray | None = None,
              config: FitConfig = FitConfig()) -> VideoFit:
    """Fit one identity and per-frame expressions and cameras to a clip's landmarks.

    Args:
        model: any `MorphableModel` (ICT-FaceKit, BFM, FLAME, builtin).
        landmarks: (T, 68, 2) source pixels (x right, y down); NaN allowed on invalid frames.
        valid: (T,) bool; None: frames whose landmarks are all finite.
        config: weights and switches (`FitConfig`).
    """
    with _blas_limit(config):
        return _fit_video(model, landmarks, valid, config)


def _fit_video(model, landmarks, valid, config) -> VideoFit:
    start = time.perf_counter()
    basis, y, valid, iod, d, W, sel, pose, (lo, hi) = _prepare(model, landmarks, valid, config)
    T, n_valid = len(y), int(valid.sum())
    alpha = np.zeros(basis.n_id)
    beta = np.clip(np.zeros((T, basis.n_exp)), lo, hi)
    dual = None
    exp_smooth = np.full(basis.n_exp, config.exp_smooth) if config.exp_smooth > 0 else None
    for it in range(config.iterations):
        cand = basis.candidates(alpha, beta)
        pose = pose_step(pose, basis.gather(cand, sel), y, W, d, config.pose_smooth, config.pose_steps)
        sel = _choose_contour(basis, cand, pose, y, valid, d, sel)
        for _ in range(config.inner_sweeps):
            # Identity given expressions (exact bounded solve of the K_id system).
            if basis.n_id:
                P, Gc = _residual_terms(basis, cand, sel, pose, y, W, d)
                H = _data_blocks(P, W, sel, basis, "id", per_frame=False)
                g = H @ alpha - Gc.sum(0).reshape(-1) @ basis.A2
                H[np.diag_indices_from(H)] += config.id_prior * n_valid
                alpha = solve_box_dense(H, g, -config.id_bound, config.id_bound)
                cand = basis.candidates(alpha, beta)
            # Expressions and poses given identity: one Gauss-Newton step on all frames jointly
            # (block-banded, blocks K_exp + 6), the expression box by ADMM.
            if basis.n_exp:
                beta, pose, dual = _expression_pose_step(basis, cand, sel, pose, beta, y, W, d, config, (lo, hi), dual)
                cand = basis.candidates(alpha, beta)
    cand = basis.candidates(alpha, beta)
    pose = pose_step(pose, basis.gather(cand, sel), y, W, d, config.pose_smooth, config.pose_steps)
    return _finish(model, basis, alpha, beta, pose, sel, y, valid, iod, d, time.perf_counter() - start,
                   asdict(config))


def fit_frames(model: MorphableModel, landmarks: np.ndarray, valid: np.ndarray | None = None,
               config: FitConfig = FitConfig()) -> VideoFit:
    """Per-frame baseline: each valid frame fitted on its own (own identity, no smoothness).

    Same energy as `fit_video` with exp_smooth = pose_smooth = 0 and alpha per frame; the pose step is
    the same Gauss-Newton (independent per frame without smoothness); the coefficients of each frame
    are one dense bounded least-squares solve (`solve_box_dense`), frame by frame. Invalid frames keep
    zero coefficients and interpolated poses.
    """
    with _blas_limit(config):
        return _fit_frames(model, landmarks, valid, config)


def _fit_frames(model, landmarks, valid, config) -> VideoFit:
    start = time.perf_counter()
    basis, y, valid, iod, d, W, sel, pose, (lo, hi) = _prepare(model, landmarks, valid, config)
    T, Ki, Ke = len(y), basis.n_id, basis.n_exp
    alphas = np.zeros((T, Ki))
    beta = np.clip(np.zeros((T, Ke)), lo, hi)
    joint = np.concatenate([basis.A, basis.B], axis=-1)                        # (C, 3, Ki + Ke)
    lo_v = np.r_[np.full(Ki, -config.id_bound), np.full(Ke, lo)]
    hi_v = np.r_[np.full(Ki, config.id_bound), np.full(Ke, hi)]
    prior = np.r_[np.full(Ki, config.id_prior), np.full(Ke, config.exp_prior)]
    frames = np.flatnonzero(valid)

    def cands():
        return basis.mean[None] + np.einsum("tk,cak->tca", alphas, basis.A) + np.einsum("tk,cak->tca", beta, basis.B)

    for it in range(config.iterations):
        cand = cands()
        pose = pose_step(pose, basis.gather(cand, sel), y, W, d, 0.0, config.pose_steps)
        sel = _choose_contour(basis, cand, pose, y, valid, d, sel)
        R, t, s = pose_to_camera(pose, d)
        P = projection(R, s)
        for f in frames:
            D = np.einsum("ab,ibk->iak", P[f], joint[sel[f]]).reshape(136, -1)
            w = np.repeat(W[f], 2)
            c = (np.einsum("ab,ib->ia", P[f], basis.mean[sel[f]]) + t[f] - y[f]).reshape(136)
            H = D.T @ (w[:, None] * D) + np.diag(prior)
            x = solve_box_dense(H, -D.T @ (w * c), lo_v, hi_v)
            alphas[f], beta[f] = x[:Ki], x[Ki:]
    cand = cands()
    pose = pose_step(pose, basis.gather(cand, sel), y, W, d, 0.0, config.pose_steps)
    pose = np.where(valid[:, None], pose, interpolate_invalid(pose, valid))
    alpha = alphas[valid].mean(0)
    return _finish(model, basis, alpha, beta, pose, sel, y, valid, iod, d, time.perf_counter() - start,
                   asdict(config), id_per_frame=alphas)


# Re-exported for callers that think of the camera as part of the fit.
__all__ += ["project_points", "FLIP"]
