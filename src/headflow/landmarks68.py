"""The 68-point iBUG 300-W / Multi-PIE landmark layout: index groups and the measures built on them.

One definition for every stage (faces, fit3dmm, demo, benches). Indices are 0-based, in the order
dlib's `shape_predictor_68_face_landmarks`, FAN (face-alignment) and the 300-W annotations use
(Sagonas et al., "300 Faces in-the-Wild Challenge", 2013; the 1-based figure there minus one):

    jaw 0-16 (chin 8)        brows 17-21 | 22-26     nose bridge 27-30 (tip 30), lower nose 31-35
    eyes 36-41 | 42-47       outer lips 48-59        inner lips 60-67 (mouth 48-67)

Right and left are the SUBJECT's, as in imutils' `FACIAL_LANDMARKS_68_IDXS` and in the ARKit/ICT
expression names: in an unmirrored frontal photo the subject's right eye (36-41) is on the image's
left. Point order within a group runs clockwise on the image for eyes and lips, starting at the
corner nearest the image's left (36, 42, 48, 60).

Inter-ocular distance (IOD): between the OUTER eye corners 36 and 45 (the 300-W normalisation), not
between the eye centres; every headflow figure in "% IOD" (landmark error, jitter, fit residuals)
uses this one. Eye centres (`eye_centres`) are the means of the six points of each eye.

Index groups are read-only int64 arrays (`lm[..., MOUTH, :]` selects them; fancy indexing copies).
Only numpy here: every room may import it.
"""

from __future__ import annotations

import numpy as np

N_POINTS = 68
"""Points per face in this layout."""


def _ids(*parts: int | range) -> np.ndarray:
    out = np.array([i for p in parts for i in (p if isinstance(p, range) else [p])], np.int64)
    out.flags.writeable = False          # shared constants: an in-place edit would change every user
    return out


JAW = _ids(range(0, 17))
"""Jaw line 0-16, from the subject's right ear (image left) over the chin to the left ear."""
CHIN = 8
"""The chin point (middle of the jaw line)."""
JAW_RIGHT = _ids(range(0, 8))
"""Subject's right half of the jaw line, chin excluded (0-7): slides along the contour as the head turns."""
JAW_LEFT = _ids(range(9, 17))
"""Subject's left half of the jaw line, chin excluded (9-16)."""
RIGHT_BROW = _ids(range(17, 22))
"""Subject's right eyebrow (17-21)."""
LEFT_BROW = _ids(range(22, 27))
"""Subject's left eyebrow (22-26)."""
BROWS = _ids(range(17, 27))
"""Both eyebrows (17-26)."""
NOSE_BRIDGE = _ids(range(27, 31))
"""Nose bridge from between the eyes down to the tip (27-30)."""
NOSE_TIP = 30
"""The nose tip (last bridge point)."""
NOSE_LOWER = _ids(range(31, 36))
"""Lower nose from the subject's right nostril wing to the left (31-35); 33 is below the tip."""
NOSE = _ids(range(27, 36))
"""Bridge and lower nose (27-35)."""
RIGHT_EYE = _ids(range(36, 42))
"""Subject's right eye (36-41): outer corner 36, upper lid 37-38, inner corner 39, lower lid 40-41."""
LEFT_EYE = _ids(range(42, 48))
"""Subject's left eye (42-47): inner corner 42, upper lid 43-44, outer corner 45, lower lid 46-47."""
EYES = _ids(range(36, 48))
"""Both eyes (36-47)."""
RIGHT_EYE_OUTER, RIGHT_EYE_INNER, LEFT_EYE_INNER, LEFT_EYE_OUTER = 36, 39, 42, 45
"""The four eye corners."""
EYE_CORNERS = _ids(36, 39, 42, 45)
"""The four eye corners, in index order."""
OUTER_LIPS = _ids(range(48, 60))
"""Outer lip contour (48-59): right corner 48, upper lip 49-53 (51 its middle), left corner 54,
lower lip 55-59 (57 its middle)."""
INNER_LIPS = _ids(range(60, 68))
"""Inner lip contour (60-67): right corner 60, upper 61-63, left corner 64, lower 65-67."""
MOUTH = _ids(range(48, 68))
"""Outer and inner lips (48-67)."""
MOUTH_CORNERS = _ids(48, 54)
"""Outer lip corners: subject's right (48), left (54)."""
INNER_LIP_UPPER = _ids(61, 62, 63)
"""Upper inner lip, image left to right."""
INNER_LIP_LOWER = _ids(67, 66, 65)
"""Lower inner lip, each facing the `INNER_LIP_UPPER` point at the same position (67-61, 66-62, 65-63)."""
MOUTH_OPENING_PAIR = _ids(62, 66)
"""Middles of the upper and lower inner lip: `mouth_opening` is their distance."""
UPPER_FACE = _ids(range(17, 48))
"""Brows, nose and eyes (17-47): they move with the head and not with the jaw, so a frame built on
them (centroid, radius) does not grow when the mouth opens."""
RIGID = _ids(range(27, 36), 36, 39, 42, 45)
"""Nose (27-35) and eye corners: the points least moved by expressions (13). The 3DMM fitter
initialises its cameras on them."""
RIGID_JITTER = _ids(27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45)
"""`RIGID` without the nostril points 32 and 34 (11 points): the set on which the faces stage has
always measured head speed and landmark jitter; kept as it is so those published figures stay comparable."""


def _check(landmarks: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks)
    if lm.ndim < 2 or lm.shape[-2] != N_POINTS:
        raise ValueError(f"landmarks must be (..., {N_POINTS}, D) in iBUG 68-point order, got shape {lm.shape}")
    return lm


def inter_ocular(landmarks: np.ndarray) -> np.ndarray:
    """Inter-ocular distance: between the outer eye corners 36 and 45, per face.

    Args:
        landmarks: (..., 68, D) points, D = 2 (pixels) or 3 (model units).

    Returns:
        (...) distances in the landmarks' unit (NaN where a corner is NaN).

    Raises:
        ValueError: the second-to-last axis is not 68 long.
    """
    lm = _check(landmarks)
    return np.linalg.norm(lm[..., RIGHT_EYE_OUTER, :] - lm[..., LEFT_EYE_OUTER, :], axis=-1)


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the subject's right eye (mean of 36-41) and left eye (mean of 42-47).

    Args:
        landmarks: (..., 68, D) points.

    Returns:
        (right, left), each (..., D); for a frontal unmirrored face `right` is the one on the image's left.

    Raises:
        ValueError: the second-to-last axis is not 68 long.
    """
    lm = _check(landmarks)
    return lm[..., RIGHT_EYE, :].mean(axis=-2), lm[..., LEFT_EYE, :].mean(axis=-2)


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """Mouth opening: distance between the middles of the upper and lower inner lip (62 and 66).

    About 0 for closed lips; in the landmarks' unit (divide by `inter_ocular` for a size-free value).

    Args:
        landmarks: (..., 68, D) points.

    Returns:
        (...) distances.

    Raises:
        ValueError: the second-to-last axis is not 68 long.
    """
    lm = _check(landmarks)
    upper, lower = MOUTH_OPENING_PAIR
    return np.linalg.norm(lm[..., upper, :] - lm[..., lower, :], axis=-1)


__all__ = ["BROWS", "CHIN", "EYES", "EYE_CORNERS", "INNER_LIPS", "INNER_LIP_LOWER", "INNER_LIP_UPPER", "JAW",
           "JAW_LEFT", "JAW_RIGHT", "LEFT_BROW", "LEFT_EYE", "LEFT_EYE_INNER", "LEFT_EYE_OUTER", "MOUTH",
           "MOUTH_CORNERS", "MOUTH_OPENING_PAIR", "NOSE", "NOSE_BRIDGE", "NOSE_LOWER", "NOSE_TIP", "N_POINTS",
           "OUTER_LIPS", "RIGHT_BROW", "RIGHT_EYE", "RIGHT_EYE_INNER", "RIGHT_EYE_OUTER", "RIGID", "RIGID_JITTER",
           "UPPER_FACE", "eye_centres", "inter_ocular", "mouth_opening"]
