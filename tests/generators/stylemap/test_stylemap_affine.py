"""The landmark-affine reconstruction baseline: known transforms come back, and the warp moves pixels by them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from headflow.generators.stylemap.affine import fit_transform, warp_source


def _landmarks(seed: int = 0) -> np.ndarray:
    """68 points spread over a 256 crop like a face's (not collinear)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(60, 200, (68, 2))


def _apply(m: np.ndarray, p: np.ndarray) -> np.ndarray:
    return p @ m[:, :2].T + m[:, 2]


def _similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def test_similarity_of_moved_landmarks_is_returned():
    p = _landmarks()
    known = _similarity(12.0, 1.07, -5.5, 8.25)
    m = fit_transform(p, _apply(known, p), "similarity")
    assert np.allclose(m, known, atol=1e-9)


def test_affine_of_moved_landmarks_is_returned_and_similarity_is_its_best_4_dof_fit():
    p = _landmarks(1)
    known = np.array([[1.1, 0.15, -3.0], [-0.05, 0.9, 6.0]])       # shear + anisotropic scale
    q = _apply(known, p)
    assert np.allclose(fit_transform(p, q, "affine"), known, atol=1e-9)
    sim = fit_transform(p, q, "similarity")
    # a similarity cannot shear: its residual is larger than the affine's (zero) but it is the least-squares one:
    # perturbing its parameters never lowers the summed squared error
    base = ((_apply(sim, p) - q) ** 2).sum()
    assert base > 1.0
    a, b = sim[0, 0], sim[1, 0]
    for da, db, dt in [(1e-3, 0, 0), (0, 1e-3, 0), (0, 0, 1e-2), (-1e-3, 0, 0)]:
        m = np.array([[a + da, -(b + db), sim[0, 2] + dt], [b + db, a + da, sim[1, 2]]])
        assert ((_apply(m, p) - q) ** 2).sum() >= base


def test_least_squares_fits_agree_with_opencv_on_noise_free_points():
    p = _landmarks(2).astype(np.float32)
    known = _similarity(-7.0, 0.95, 4.0, -2.0)
    q = _apply(known, p).astype(np.float32)
    cv_sim, _ = cv2.estimateAffinePartial2D(p, q, method=cv2.LMEDS)
    assert np.allclose(fit_transform(p, q, "similarity"), cv_sim, atol=1e-3)
    aff = np.array([[1.05, 0.1, 2.0], [0.02, 0.97, -1.0]])
    q2 = _apply(aff, p).astype(np.float32)
    cv_aff, _ = cv2.estimateAffine2D(p, q2, method=cv2.LMEDS)
    assert np.allclose(fit_transform(p, q2, "affine"), cv_aff, atol=1e-3)


def test_affine_fit_is_kornias_least_squares_affine_on_noisy_points():
    # with noise neither fit is exact; both minimise the same sum of squares, so they agree
    import torch
    from kornia.geometry.solvers import find_affine

    p = _landmarks(4)
    q = _apply(np.array([[0.9, 0.2, 5.0], [-0.1, 1.1, -3.0]]), p) + np.random.default_rng(5).normal(0, 2.0, p.shape)
    ours = fit_transform(p, q, "affine")
    theirs = find_affine(torch.from_numpy(p)[None], torch.from_numpy(q)[None])[0, :2].numpy()
    assert np.allclose(ours, theirs, atol=1e-6)


def test_the_warp_moves_a_marked_point_to_where_the_transform_sends_it():
    # a bright Gaussian blob at (100, 90) in the source; landmarks moved by a known similarity;
    # the warped image's blob centroid lies at known @ (100, 90, 1) = expected (within a fraction of a pixel)
    yy, xx = np.mgrid[0:256, 0:256]
    blob = np.exp(-((xx - 100.0) ** 2 + (yy - 90.0) ** 2) / (2 * 4.0 ** 2))
    img = np.repeat((blob * 250).astype(np.uint8)[..., None], 3, axis=2)
    p = _landmarks(3)
    known = _similarity(20.0, 1.2, 10.0, -15.0)
    out = warp_source(img, p, np.stack([p, _apply(known, p)]), "similarity")
    assert out.shape == (2, 256, 256, 3) and out.dtype == np.uint8
    assert np.array_equal(out[0], img)                     # identical landmarks: the identity warp
    w = out[1, ..., 0].astype(np.float64)
    centroid = np.array([(w * xx).sum(), (w * yy).sum()]) / w.sum()
    expected = _apply(known, np.array([[100.0, 90.0]]))[0]
    assert np.allclose(centroid, expected, atol=0.3)


def test_bad_points_raise_naming_the_problem():
    p = _landmarks()
    with pytest.raises(ValueError, match="finite"):
        fit_transform(p, np.full_like(p, np.nan))
    with pytest.raises(ValueError, match="same|one N"):
        fit_transform(p, p[:10])
    with pytest.raises(ValueError, match="collinear"):
        line = np.stack([np.arange(10.0), 2 * np.arange(10.0)], 1)
        fit_transform(line, line, "affine")
    with pytest.raises(ValueError, match="kind"):
        fit_transform(p, p, "projective")
    with pytest.raises(ValueError, match="driving frame 1"):
        warp_source(np.zeros((8, 8, 3), np.uint8), p, np.stack([p, np.full_like(p, np.nan)]))
