"""Speaking-style features from 68 facial landmarks, normalised per speaker (the style classifier of issue 20).

A speaking style (the demo corpus's neutral / smiling / restrained / exaggerated) shows in how far and how
often the mouth opens, how wide it is and whether its corners lift, more than in any one frame's pixels.
Pixel features learn the training speakers' faces and fail on a new person (bench/stylemap_style.py's
pixel classifier: 0.10 on the held-out speaker); these are geometric ratios, invariant to the face's
position, scale and in-plane rotation, and `speaker_normalise` removes what stays person-specific (a
wide mouth at rest) by z-scoring each speaker's clips against that speaker's own clips, as emotion
recognition's speaker normalisation does (Busso et al. 2013, "Iterative feature normalization scheme for
automatic emotion detection from speech", IEEE T-AC 4(4)): the normalisation sees no labels, so it
applies to an unseen speaker's clips as they are.

Per frame (`geometry_series`), in units of the inter-ocular distance (between the two eye centres, iBUG
points 36-41 and 42-47), with y along the face's downward axis (perpendicular to the eye line):

0. mouth_open: mean distance of the inner-lip pairs (61, 67), (62, 66), (63, 65).
1. mouth_width: distance of the outer mouth corners 48 and 54.
2. corner_lift: height of the corners above the outer lip centre ((51 + 57) / 2), > 0 when they lift.
3. jaw_drop: chin (8) below the nose tip (33).
4. brow_raise: the eye centres' midpoint below the eyebrows' mean (17-26).

Per clip (`clip_style_features`): mean, std, 10th and 90th percentile of each over the valid frames, and
the mean absolute frame-to-frame change of mouth_open (how fast the mouth moves): 21 features.
"""

from __future__ import annotations

import numpy as np

SERIES = ("mouth_open", "mouth_width", "corner_lift", "jaw_drop", "brow_raise")
FEATURES = tuple(f"{s}_{stat}" for s in SERIES for stat in ("mean", "std", "p10", "p90")) + ("mouth_open_speed",)


def geometry_series(landmarks: np.ndarray) -> np.ndarray:
    """Per-frame style geometry of 68 iBUG landmarks (see the module list).

    Args:
        landmarks: (T, 68, 2) or (68, 2) points (x right, y down) in any pixel frame.

    Returns:
        (T, 5) float64 (or (5,)) in inter-ocular distances; NaN rows where a frame's points are not finite or
        its eye centres coincide.

    Raises:
        ValueError: not 68 two-dimensional points.
    """
    lm = np.asarray(landmarks, np.float64)
    single = lm.ndim == 2
    if single:
        lm = lm[None]
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise ValueError(f"geometry_series: expected (T, 68, 2) iBUG landmarks, got {np.shape(landmarks)}")
    left, right = lm[:, 36:42].mean(1), lm[:, 42:48].mean(1)
    io = np.linalg.norm(right - left, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ex = (right - left) / io[:, None]
        ey = np.stack([-ex[:, 1], ex[:, 0]], 1)          # ex turned 90 degrees towards +y: the face's "down"

        def down(v: np.ndarray) -> np.ndarray:
            return (v * ey).sum(1) / io

        def dist(a: int, b: int) -> np.ndarray:
            return np.linalg.norm(lm[:, a] - lm[:, b], axis=1) / io

        out = np.stack([
            (dist(61, 67) + dist(62, 66) + dist(63, 65)) / 3,
            dist(48, 54),
            down((lm[:, 51] + lm[:, 57]) / 2 - (lm[:, 48] + lm[:, 54]) / 2),
            down(lm[:, 8] - lm[:, 33]),
            down((left + right) / 2 - lm[:, 17:27].mean(1)),
        ], 1)
    out[~np.isfinite(lm).all((1, 2)) | ~np.isfinite(out).all(1) | (io <= 1e-9)] = np.nan
    return out[0] if single else out


def clip_style_features(landmarks: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """One clip's 21 style features (`FEATURES`) from its landmarks.

    Args:
        landmarks: (T, 68, 2) per-frame landmarks.
        valid: (T,) frames to use (default: every frame with finite landmarks).

    Returns:
        (21,) float64; NaN when fewer than 2 frames are usable.
    """
    g = geometry_series(landmarks)
    ok = np.isfinite(g).all(1) if valid is None else np.asarray(valid, bool) & np.isfinite(g).all(1)
    if ok.sum() < 2:
        return np.full(len(FEATURES), np.nan)
    x = g[ok]
    stats = np.stack([x.mean(0), x.std(0), np.percentile(x, 10, axis=0), np.percentile(x, 90, axis=0)], 1)
    open_all = np.where(ok, g[:, 0], np.nan)
    speed = np.nanmean(np.abs(np.diff(open_all))) if np.isfinite(np.diff(open_all)).any() else 0.0
    return np.concatenate([stats.ravel(), [speed]])


def speaker_normalise(features: np.ndarray, speakers: np.ndarray, reference: np.ndarray | None = None,
                      reference_speakers: np.ndarray | None = None, eps: float = 1e-6) -> np.ndarray:
    """Z-score each speaker's clip features against that speaker's own clips (no labels used).

    Args:
        features: (N, F) clip features.
        speakers: (N,) each row's speaker.
        reference, reference_speakers: the clips whose mean and standard deviation normalise each speaker
            (default: `features` itself). Generated outputs of a person are normalised by that person's real
            clips this way.
        eps: floor of the standard deviation.

    Returns:
        (N, F) float64.

    Raises:
        ValueError: a speaker of `speakers` has no reference clip.
    """
    x = np.asarray(features, np.float64)
    spk = np.asarray(speakers)
    ref = x if reference is None else np.asarray(reference, np.float64)
    ref_spk = spk if reference_speakers is None else np.asarray(reference_speakers)
    out = np.empty_like(x)
    for s in np.unique(spk):
        r = ref[ref_spk == s]
        if not len(r):
            raise ValueError(f"speaker_normalise: speaker {str(s)!r} has no reference clip; pass its real clips as "
                             "reference")
        out[spk == s] = (x[spk == s] - np.nanmean(r, 0)) / np.maximum(np.nanstd(r, 0), eps)
    return out


__all__ = ["FEATURES", "SERIES", "clip_style_features", "geometry_series", "speaker_normalise"]
