"""The video 3DMM fitter: camera conventions, solvers, synthetic recovery, demo and GRID gates."""

from __future__ import annotations

import numpy as np
import pytest

from headflow.fit3dmm.fit import FitConfig, VideoFit, fit_frames, fit_video
from headflow.fit3dmm.banded import assemble, second_difference_gram, solve_box_admm, solve_box_dense
from headflow.morphable.builtin import builtin_model
from headflow.fit3dmm.fit import project_points
from headflow.morphable.model import MorphableModel
from headflow.rotations import euler_to_matrix, matrix_to_euler


# -- camera conventions -----------------------------------------------------------------------------
def test_euler_round_trip_and_convention():
    rng = np.random.default_rng(0)
    ang = rng.uniform([-80, -80, -170], [80, 80, 170], size=(50, 3))
    R = euler_to_matrix(ang)
    np.testing.assert_allclose(R @ np.swapaxes(R, 1, 2), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    np.testing.assert_allclose(matrix_to_euler(R), ang, atol=1e-9)
    # R = Rz(roll) Rx(pitch) Ry(yaw): composing single-axis rotations gives the same matrix.
    y, p, r = euler_to_matrix([[30, 0, 0], [0, 20, 0], [0, 0, 10]])
    np.testing.assert_allclose(euler_to_matrix([30, 20, 10]), r @ p @ y, atol=1e-12)
    # single axes written out (y up, z toward the camera): yaw 90 turns +x onto -z, pitch 90 turns +y
    # onto +z, roll 90 turns +x onto +y
    np.testing.assert_allclose(euler_to_matrix([90, 0, 0]) @ [1, 0, 0], [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(euler_to_matrix([0, 90, 0]) @ [0, 1, 0], [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(euler_to_matrix([0, 0, 90]) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    # Positive yaw turns the nose (+z) towards +x (image right); +y is model up = image up.
    X = np.array([[[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]])
    uvd = project_points(X, y[None], np.array([10.0]), np.array([[100.0, 50.0]]))[0]
    assert uvd[0, 0] > 100 and uvd[1, 1] < 50 and abs(uvd[1, 0] - 100) < 1e-4


# -- solvers ----------------------------------------------------------------------------------------
def test_banded_assembly_and_box_solvers_match_dense():
    rng = np.random.default_rng(1)
    T, K, mu = 7, 3, 0.7
    A = rng.normal(size=(T, 5, K))
    blocks = np.einsum("tik,til->tkl", A, A) + 0.1 * np.eye(K)
    d0, d1, d2 = second_difference_gram(T)
    D2 = np.diff(np.eye(T), 2, axis=0)
    G = D2.T @ D2
    np.testing.assert_allclose([np.diag(G), np.r_[np.diag(G, -1), 0], np.r_[np.diag(G, -2), 0, 0]], [d0, d1, d2])
    dense = np.zeros((T * K, T * K))
    for t in range(T):
        dense[t * K:(t + 1) * K, t * K:(t + 1) * K] = blocks[t]
    dense += mu * np.kron(G, np.eye(K))
    ab = assemble(blocks, np.full(K, mu))
    for i in range(T * K):
        for j in range(max(0, i - 2 * K), i + 1):
            assert ab[i - j, j] == pytest.approx(dense[i, j])
    rhs = rng.normal(size=(T, K)) * 3
    x_dense = solve_box_dense(dense, rhs.ravel(), 0.0, 1.0)
    assert x_dense.min() >= 0 and x_dense.max() <= 1 and ((x_dense == 0) | (x_dense == 1)).any()
    z, _, _ = solve_box_admm(blocks, rhs, 0.0, 1.0, smooth=np.full(K, mu), max_iter=3000, tol=1e-10)
    np.testing.assert_allclose(z.ravel(), x_dense, atol=1e-5)
    # Projected Newton is the exact box QP: compare with scipy's BVLS.
    from scipy.optimize import lsq_linear
    L = np.linalg.cholesky(dense)
    ref = lsq_linear(L.T, np.linalg.solve(L, rhs.ravel()), bounds=(0.0, 1.0), method="bvls", tol=1e-12).x
    np.testing.assert_allclose(x_dense, ref, atol=1e-8)


# -- synthetic recovery -----------------------------------------------------------------------------
def synthetic_clip(model: MorphableModel, T: int = 100, noise: float = 0.5, seed: int = 0, exp_scale: float = 1.0,
                   exp_range=(0.0, 1.0)):
    """Known identity, slowly varying expressions and pose, projected with pixel noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)
    alpha = rng.normal(size=model.n_id) * 0.7
    lo, hi = exp_range
    wave = 0.5 + 0.5 * np.sin(2 * np.pi * t[:, None] / rng.uniform(40, 90, model.n_exp) + rng.uniform(0, 6, model.n_exp))
    active = rng.uniform(size=model.n_exp) < 0.5
    active[0] = True   # builtin: jawOpen
    beta = lo + (hi - lo) * wave * active * exp_scale
    if lo < 0:
        beta = (wave - 0.5) * 2 * exp_scale
    ang = np.stack([12 * np.sin(t / 25), 6 * np.sin(t / 19 + 1), 4 * np.sin(t / 31 + 2)], 1)
    scale = 12 * (1 + 0.03 * np.sin(t / 40))
    trans = np.stack([320 + 8 * np.sin(t / 30), 240 + 5 * np.cos(t / 23)], 1)
    X = model.landmarks(alpha, beta)
    clean = project_points(X, euler_to_matrix(ang), scale, trans)[..., :2].astype(np.float64)
    noisy = clean + rng.normal(size=clean.shape) * noise
    return dict(alpha=alpha, beta=beta, angles=ang, scale=scale, trans=trans, clean=clean, landmarks=noisy)


def random_model(seed: int = 3) -> MorphableModel:
    """A small random PCA-style model: 300 vertices on a bumpy patch, 6 identity and 8 expression modes."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-8, 8, size=(300, 2))
    z = 5 * np.exp(-(xy ** 2).sum(1) / 60)
    mean = np.c_[xy, z]
    smooth = lambda c: np.exp(-((xy - c) ** 2).sum(1) / 20)[:, None]  # noqa: E731
    id_basis = np.stack([smooth(rng.uniform(-6, 6, 2)) * rng.normal(size=3) * 0.6 for _ in range(6)])
    exp_basis = np.stack([smooth(rng.uniform(-6, 6, 2)) * rng.normal(size=3) * 0.4 for _ in range(8)])
    return MorphableModel(name="random", mean=mean, id_basis=id_basis, exp_basis=exp_basis,
                          triangles=[[0, 1, 2]], landmarks68=rng.choice(300, 68, replace=False),
                          exp_names=tuple(f"exp{i:02d}" for i in range(8))).validate()


# Figures of `test_synthetic_recovery_builtin_with_a_gap` (seed 0), measured 2026-11-29 with
#   pytest -s tests/fit3dmm/test_fit.py -k gap
# Each gate is the measured figure x 1.25 (for the correlation: 1 - r x 1.25). Why the default fit
# sat at its old gates (expression error 0.199 < 0.2, reprojection 0.946 < 1.0 px): not the noise (with
# noise 0 the default fit's error is the same, 0.201, and its reprojection 0.72 px), but (1) 4
# alternations do not converge on 17 interacting expression modes plus pose (16 x 3 sweeps: 0.099), and
# (2) the fixture's jaw landmarks are fixed vertices while `contour=True` slides them along the jaw line.
# Over seeds 0-4 the default fit's expression error ranges 0.142-0.211 (gap 0.119-0.223), so a gate of
# 0.2 failed 2 of 5 seeds. Now the converged fit (fixture and model agree) carries the tight recovery
# gates and the production default keeps its own, each from its measured figure.
RECOVERY = {
    # name: (config, {figure: measured})
    "converged": (FitConfig(contour=False, iterations=16, inner_sweeps=3),
                  dict(reproj_px=0.628, angle_mean=0.652, angle_max=1.66, exp_err=0.099, jaw_1_minus_r=0.0006,
                       gap_angle_max=1.63, gap_exp_err=0.090, gap_px=0.351)),
    "default": (FitConfig(),
                dict(reproj_px=0.946, angle_mean=1.235, angle_max=3.10, exp_err=0.199, jaw_1_minus_r=0.0069,
                     gap_angle_max=3.10, gap_exp_err=0.171, gap_px=1.315)),
}


def test_synthetic_recovery_builtin_with_a_gap():
    model = builtin_model()
    clip = synthetic_clip(model, noise=0.5)
    y = clip["landmarks"].copy()
    valid = np.ones(len(y), bool)
    valid[45:52] = False
    y[45:52] = np.nan
    j = model.exp_index("jawOpen")
    got = {}
    for name, (cfg, measured) in RECOVERY.items():
        fit = fit_video(model, y, valid, cfg)
        assert isinstance(fit, VideoFit) and fit.exp_coeffs.shape == (len(y), model.n_exp)
        assert np.isnan(fit.reproj_px[~valid]).all() and np.isfinite(fit.reproj_px[valid]).all()
        ang_err = np.abs(fit.angles - clip["angles"])
        exp_err = np.abs(fit.exp_coeffs - clip["beta"])
        # The gap is bridged by the smoothness terms: poses, expressions and the projected landmarks
        # stay close to the truth there.
        gap = fit.project(model, model.landmarks68)[~valid, :, :2]
        fig = dict(reproj_px=float(np.median(fit.reproj_px[valid])), angle_mean=float(ang_err[valid].mean()),
                   angle_max=float(ang_err.max()), exp_err=float(exp_err[valid].mean()),
                   jaw_1_minus_r=float(1 - np.corrcoef(fit.exp_coeffs[valid, j], clip["beta"][valid, j])[0, 1]),
                   gap_angle_max=float(ang_err[~valid].max()), gap_exp_err=float(exp_err[~valid].mean()),
                   gap_px=float(np.linalg.norm(gap - clip["clean"][~valid], axis=-1).mean()))
        # Pure noise of sigma 0.5 px per axis gives a mean distance of 0.63 px (0.5 sqrt(pi/2)): an
        # exact fit reprojects at about that, an unconverged one above it.
        print(f"builtin synthetic, {name}: " + ", ".join(f"{k} {v:.4f}" for k, v in fig.items()))
        for k, v in fig.items():
            assert v < 1.25 * measured[k], (name, k, v, measured[k])
        # `project` reproduces the reported error on the landmark vertices the fit used.
        uv = np.stack([fit.project(model, fit.landmark_vertices[t])[t, :, :2] for t in (0, 30)])
        err = np.linalg.norm(uv - y[[0, 30]], axis=-1).mean(-1)
        np.testing.assert_allclose(err, fit.reproj_px[[0, 30]], rtol=1e-3)
        got[name] = fig
    # The converged fit reaches the noise floor (0.63 px) where the default does not, and halves the
    # expression error: more alternations must help, or the solver stalls.
    assert got["converged"]["reproj_px"] < 0.7 and got["converged"]["exp_err"] < 0.6 * got["default"]["exp_err"]


def test_synthetic_recovery_random_pca_model_and_per_frame_baseline():
    model = random_model()
    clip = synthetic_clip(model, noise=0.3, exp_range=(-3, 3), exp_scale=1.5)
    cfg = FitConfig(contour=False, iterations=6, id_prior=1e-6, exp_prior=1e-7, exp_smooth=1e-4)
    fit = fit_video(model, clip["landmarks"], config=cfg)
    base = fit_frames(model, clip["landmarks"], config=cfg)
    print(f"random model: reprojection video {np.median(fit.reproj_px):.3f} px, frames {np.median(base.reproj_px):.3f} px")
    assert np.median(fit.reproj_px) < 0.6   # noise floor 0.38 px
    assert np.abs(fit.angles - clip["angles"]).mean() < 2.5
    assert np.abs(fit.exp_coeffs - clip["beta"]).mean() < 0.45   # range (-3, 3)
    assert base.id_per_frame.shape == (len(clip["beta"]), model.n_id)
    # Same data, no smoothness, pose and coefficients alternated frame by frame (no joint step): it
    # converges more slowly (0.90 px after 6 alternations here, 0.47 px after 30) and jitters more.
    assert np.median(base.reproj_px) < 1.2
    d2 = lambda a: np.abs(np.diff(a, 2, axis=0)).mean()  # noqa: E731
    assert d2(fit.angles) < 0.5 * d2(base.angles)
    assert d2(fit.exp_coeffs) < 0.5 * d2(base.exp_coeffs)


def test_bad_input_names_the_problem():
    model = builtin_model()
    with pytest.raises(ValueError, match=r"\(T, 68, 2\)"):
        fit_video(model, np.zeros((5, 66, 2)))
    with pytest.raises(ValueError, match="no frame with valid landmarks"):
        fit_video(model, np.full((5, 68, 2), np.nan))


# -- demo corpus (exact ground truth) ------------------------------------------------------------------
@pytest.mark.slow
def test_demo_corpus_truth_landmarks_builtin_model(demo_corpus):
    """Ground-truth landmarks of the demo corpus, builtin model: reprojection and jawOpen vs mouth opening."""
    root, corpus = demo_corpus
    model = builtin_model()
    jaw = model.exp_index("jawOpen")
    errors, rs, jaws, opens = [], [], [], []
    for row in corpus[corpus.kind == "good"].itertuples():
        truth = np.load(root / row.truth_path)
        fit = fit_video(model, truth["landmarks"])
        errors.append(fit.reproj_iod())
        rs.append(np.corrcoef(fit.exp_coeffs[:, jaw], truth["mouth"][:, 0])[0, 1])
        # The truth opening is relative to the portrait's own mouth (0 = as in the photo), which the
        # fit sees as part of the face: pool within clips (each clip's mean removed from both).
        jaws.append(fit.exp_coeffs[:, jaw] - fit.exp_coeffs[:, jaw].mean())
        opens.append(truth["mouth"][:, 0] - truth["mouth"][:, 0].mean())
    med = float(np.median(np.concatenate(errors)))
    pooled = float(np.corrcoef(np.concatenate(jaws), np.concatenate(opens))[0, 1])
    print(f"demo truth, builtin: median reprojection {med:.2%} IOD; jawOpen vs mouth open r per clip "
          f"min {min(rs):.3f} median {np.median(rs):.3f}, pooled within clips {pooled:.3f}")
    assert med <= 0.025          # the gate
    assert np.median(rs) > 0.9 and min(rs) > 0.85 and pooled > 0.9


# -- GRID clips, ICT-FaceKit --------------------------------------------------------------------------
@pytest.mark.shared
def test_grid_ict_fit_error_jitter_and_identity(grid_dir, shared_dir):
    from headflow.faces.faces import process_clip
    from headflow.faces.params import FacesParams
    from headflow.morphable.ict import load_ict_npz

    npz = shared_dir / "models" / "ict_facekit" / "ict_face_model_light_full.npz"
    if not npz.is_file():
        pytest.skip(f"{npz} not found")
    model = load_ict_npz(npz, face_only=True)
    cfg = FitConfig(n_id=50)
    videos = sorted(grid_dir.glob("*.mpg"))
    assert videos, f"no .mpg clips in {grid_dir}"
    errors, jit_video, jit_frames, parts = [], [], [], {}
    for v in videos:
        lm = process_clip(v, FacesParams(), None).landmarks
        fit, base = fit_video(model, lm, config=cfg), fit_frames(model, lm, config=cfg)
        errors.append(fit.reproj_iod())
        # Still frames: the slower half by the speed of the eye-nose centroid.
        c = lm[:, [27, 30, 36, 45]].mean(1)
        speed = np.linalg.norm(np.gradient(c, axis=0), axis=-1)
        still = (speed < np.median(speed))[1:-1]
        iod = float(np.nanmedian(fit.iod_px))
        for f, out in ((fit, jit_video), (base, jit_frames)):
            pose = np.c_[f.angles, 100 * f.translation / iod]    # degrees, % of IOD
            out.append(np.abs(np.diff(pose, 2, axis=0))[still].mean(0))
        parts[v.stem] = [fit_video(model, lm[p], config=cfg).id_coeffs for p in np.array_split(np.arange(len(lm)), 3)]
    med = float(np.median(np.concatenate(errors)))
    jv, jf = np.mean(jit_video, 0), np.mean(jit_frames, 0)
    same = [np.linalg.norm(a[i] - a[j]) for a in parts.values() for i in range(3) for j in range(i + 1, 3)]
    keys = list(parts)
    diff = [np.linalg.norm(parts[a][i] - parts[b][j]) for n, a in enumerate(keys) for b in keys[n + 1:]
            for i in range(3) for j in range(3)]
    print(f"GRID ICT: median reprojection {med:.2%} IOD; still-frame jitter (yaw, pitch, roll deg, tx, ty %IOD) "
          f"video {np.round(jv, 3)} frames {np.round(jf, 3)}; identity distance same speaker "
          f"{np.mean(same):.3f}, different {np.mean(diff):.3f}")
    assert med <= 0.04
    assert (jv < 0.75 * jf).all() and (jv / jf).mean() < 0.5
    assert np.mean(same) < 0.6 * np.mean(diff) and np.median(same) < np.percentile(diff, 25)


def test_scatter_and_project_match_their_references():
    """The fast paths: per-candidate scatter (shared candidates add up) and float32 `VideoFit.project`."""
    from headflow.fit3dmm.fit import _scatter

    rng = np.random.default_rng(5)
    T, C = 6, 90
    sel = np.broadcast_to(np.arange(68), (T, 68)).copy()
    sel[:, :8] = rng.integers(68, C, size=(T, 8))
    sel[:, 3] = sel[:, 2]                                     # two landmarks on one candidate
    values = rng.normal(size=(T, 68, 3, 2))
    ref = np.zeros((T, C, 3, 2))
    for t in range(T):
        for i in range(68):
            ref[t, sel[t, i]] += values[t, i]
    np.testing.assert_allclose(_scatter(sel, values, C), ref, atol=1e-12)
    model = builtin_model()
    clip = synthetic_clip(model, T=20)
    fit = fit_video(model, clip["landmarks"], config=FitConfig(iterations=1))
    ids = np.arange(0, model.n_vertices, 7)
    X = model.subset(ids).shape(fit.id_coeffs, fit.exp_coeffs)
    ref = project_points(X, fit.rotation, fit.scale, fit.translation)
    np.testing.assert_allclose(fit.project(model, ids), ref, atol=2e-3)
    np.testing.assert_allclose(fit.project(model)[:, ids], ref, atol=2e-3)
