"""Face descriptors on real portraits, CSIM / AED definitions, and the Fréchet distance."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from headflow.metrics.identity import aed, csim, face_descriptors, frechet_distance


@pytest.fixture(scope="module")
def portraits():
    """Two different people from images inside installed packages, plus a resampled copy of the first.

    Returns (astronaut, astronaut rotated 3 deg / scaled 0.95 / shifted, grace_hopper) and their HOG boxes.
    """
    from matplotlib import cbook
    from skimage.data import astronaut

    from headflow.faces.dlib_backend import detect_faces

    ast = astronaut()
    hopper = cv2.cvtColor(cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))), cv2.COLOR_BGR2RGB)
    m = cv2.getRotationMatrix2D((256, 256), 3, 0.95)
    m[:, 2] += [2.5, -1.5]
    moved = cv2.warpAffine(ast, m, (512, 512), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    images = [ast, moved, hopper]
    boxes = [np.array(detect_faces(im)[0][:4], float) for im in images]  # re-detected, as an evaluation would
    return images, boxes


@pytest.fixture(scope="module")
def descriptors(portraits):
    (ast, moved, hopper), (b0, b1, b2) = portraits
    pair = face_descriptors(np.stack([ast, moved]), np.stack([b0, b1]))
    return pair[0], pair[1], face_descriptors(hopper, b2)


def test_same_person_resampled_scores_near_one(descriptors):
    a, moved, _ = descriptors
    assert a.shape == (128,)
    assert csim(a, moved) > 0.99
    assert aed(a, moved) < 0.3  # dlib's same-person threshold is 0.6


def test_different_people_score_lower(descriptors):
    a, moved, hopper = descriptors
    assert aed(a, hopper) > 0.6
    assert csim(a, hopper) < csim(a, moved) - 0.05


def test_landmarks_path_equals_box_path_and_nan_rows(portraits, descriptors):
    from headflow.faces.dlib_backend import landmarks68

    (ast, _, _), (b0, _, _) = portraits
    lm = landmarks68(ast, tuple(b0))
    assert np.array_equal(face_descriptors(ast, lm), descriptors[0])
    two = face_descriptors(np.stack([ast, ast]), np.stack([b0, np.full(4, np.nan)]))
    assert np.isnan(two[1]).all() and np.array_equal(two[0], descriptors[0])
    with pytest.raises(ValueError, match=r"\(T, 4\)"):
        face_descriptors(ast, np.zeros(5))


def test_csim_modes_known_values():
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    b = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert csim(a, b, "per_frame") == pytest.approx(0.0)  # cos 90 deg in both frames
    assert csim(a, b, "mean") == pytest.approx(1.0)  # both means point along (1, 1)
    assert csim(a, b, "all_pairs") == pytest.approx(0.5)  # ViCo: mean of [[0, 1], [1, 0]]
    assert csim(3 * a, a) == pytest.approx(1.0)  # scale-free
    a_nan = np.vstack([a, [np.nan, np.nan]])
    b_extra = np.vstack([b, [1.0, 0.0]])
    assert csim(a_nan, b_extra) == pytest.approx(0.0)  # the pair with a missing face is skipped
    assert math.isnan(csim(np.full((2, 2), np.nan), b))
    with pytest.raises(ValueError, match="frame-aligned"):
        csim(a, b_extra)
    with pytest.raises(ValueError, match="mode"):
        csim(a, b, "median")


def test_aed_known_values():
    a = np.zeros((2, 2))
    b = np.array([[3.0, 4.0], [6.0, 8.0]])
    assert aed(a, b) == pytest.approx(7.5)  # (5 + 10) / 2
    assert aed(a, b, squared=True) == pytest.approx(62.5)  # FOMM cmp.py: (25 + 100) / 2
    assert math.isnan(aed(np.full((2, 2), np.nan), b))


def whitened(n: int, d: int, seed: int) -> np.ndarray:
    """n samples whose sample mean is exactly 0 and sample covariance (ddof 1) exactly I."""
    x = np.random.default_rng(seed).normal(size=(n, d))
    x -= x.mean(axis=0)
    chol = np.linalg.cholesky(np.atleast_2d(np.cov(x, rowvar=False)))
    return x @ np.linalg.inv(chol).T


def test_frechet_distance_known_value():
    d = 5
    x = whitened(200, d, 0)
    y = 2 * whitened(150, d, 1) + 3
    # mu: 0 vs 3 * 1 -> ||diff||^2 = 9 d; covariances I and 4 I -> Tr(I + 4I - 2 (4I)^(1/2)) = d
    assert frechet_distance(x, y) == pytest.approx(10 * d, rel=1e-9)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    # 1-D Gaussians: (m1 - m2)^2 + s1 + s2 - 2 sqrt(s1 s2) with s = variances
    u = whitened(50, 1, 2)
    assert frechet_distance(u, 3 * u - 1) == pytest.approx(1 + 1 + 9 - 2 * 3)


def test_frechet_distance_small_sets_and_errors():
    rng = np.random.default_rng(3)
    # 10 samples in 16 dimensions: singular covariances, still a finite non-negative number
    fd = frechet_distance(rng.normal(size=(10, 16)), rng.normal(size=(10, 16)) + 1)
    assert np.isfinite(fd) and fd > 0
    with pytest.raises(ValueError, match="2 samples"):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full((3, 2), np.nan), np.zeros((3, 2)))
