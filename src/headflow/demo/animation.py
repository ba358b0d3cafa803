"""Drive a portrait's 68 landmarks: visemes with coarticulation, blinks and natural head motion.

Everything here is pure numpy on landmark arrays; `render.py` turns landmarks into pixels.

Face coordinates: origin at the centre of the two eyes, x along the eye line (left to right in the
image), y down, z toward the camera, unit = the inter-ocular distance (outer eye corners). Mouth
deformations are defined in these units, so they are the same for every portrait size.
"""

from __future__ import annotations

import functools
import importlib.util
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from headflow.landmarks68 import CHIN, JAW, LEFT_EYE, LEFT_EYE_OUTER, NOSE_BRIDGE, RIGHT_EYE, RIGHT_EYE_OUTER
from headflow.rotations import euler_to_matrix

# (open, spread, round) targets per ARPAbet phone. open: jaw/lip opening 0..1; spread: lip corners
# outward (+) or inward (-); round: protrusion/rounding 0..1. Values follow the usual viseme groups
# (bilabial closure, labiodental, dental, alveolar, post-alveolar rounding, velar, open/front/back
# vowels); they are a plausible demo model, not phonetic measurements.
VISEMES: dict[str, tuple[float, float, float]] = {
    "SIL": (0.0, 0.0, 0.0),
    "P": (0.0, 0.0, 0.0), "B": (0.0, 0.0, 0.0), "M": (0.0, 0.0, 0.0),
    "F": (0.07, 0.1, 0.0), "V": (0.07, 0.1, 0.0),
    "TH": (0.15, 0.1, 0.0), "DH": (0.15, 0.1, 0.0),
    "T": (0.16, 0.15, 0.0), "D": (0.16, 0.15, 0.0), "N": (0.16, 0.1, 0.0), "L": (0.22, 0.1, 0.0),
    "S": (0.08, 0.35, 0.0), "Z": (0.08, 0.35, 0.0),
    "SH": (0.14, -0.2, 0.55), "ZH": (0.14, -0.2, 0.55), "CH": (0.14, -0.2, 0.5), "JH": (0.14, -0.2, 0.5),
    "K": (0.22, 0.05, 0.0), "G": (0.22, 0.05, 0.0), "NG": (0.2, 0.05, 0.0), "HH": (0.3, 0.0, 0.0),
    "R": (0.16, -0.15, 0.45), "W": (0.1, -0.45, 0.85), "Y": (0.12, 0.35, 0.0),
    "IY": (0.18, 0.6, 0.0), "IH": (0.27, 0.4, 0.0), "EH": (0.42, 0.3, 0.0), "EY": (0.36, 0.4, 0.0),
    "AE": (0.58, 0.35, 0.0), "AA": (0.78, 0.0, 0.0), "AH": (0.5, 0.0, 0.0), "AO": (0.6, -0.2, 0.45),
    "OW": (0.42, -0.3, 0.65), "UH": (0.3, -0.2, 0.45), "UW": (0.16, -0.5, 0.9), "ER": (0.26, -0.1, 0.35),
    "AY": (0.62, 0.15, 0.0), "AW": (0.56, -0.2, 0.35), "OY": (0.46, -0.3, 0.55),
}
VOWELS = {"IY", "IH", "EH", "EY", "AE", "AA", "AH", "AO", "OW", "UH", "UW", "ER", "AY", "AW", "OY"}
BILABIALS = {"P", "B", "M"}

# Dominance (how strongly a phone imposes its target on its neighbours) per parameter, after
# Cohen & Massaro (1993): bilabial closure wins over neighbouring vowels; vowels own the lip shape.
def _dominance(phone: str) -> np.ndarray:
    if phone == "SIL":
        return np.array([0.6, 0.6, 0.6])
    if phone in BILABIALS:
        return np.array([4.0, 0.4, 0.4])
    if phone in ("F", "V"):
        return np.array([3.0, 0.5, 0.5])
    if phone in VOWELS:
        return np.array([1.0, 1.0, 1.0])
    if phone in ("W", "SH", "ZH", "CH", "JH", "R"):
        return np.array([0.8, 1.2, 1.4])
    return np.array([0.7, 0.35, 0.3])


def mouth_track(phones: Sequence, n_frames: int, fps: float, gain: float = 1.0, articulation: float = 1.0,
                spread_offset: float = 0.0) -> np.ndarray:
    """(T, 3) open/spread/round per video frame from phone intervals (objects with start/end/label).

    Frame f is sampled at its centre (f + 0.5) / fps, the same rule the phone labels use.

    Args:
        phones: intervals with `start`, `end` (seconds) and an ARPAbet `label` (unknown labels: SIL).
        n_frames: T.
        fps: video frame rate.
        gain: per-clip scale of the opening (speaker variability).
        articulation: speaking-style scale of all three channels (open and round clipped to 0..1),
            applied before the bilabial / labiodental closures so lips still meet on P, B, M.
        spread_offset: speaking-style constant added to `spread` on every frame (a smile).

    Returns:
        float32 (T, 3): open 0..1, spread (about -0.5..0.6 plus the offset), round 0..1. With the
        defaults it is the unstyled (neutral) track bit for bit.
    """
    t = (np.arange(n_frames) + 0.5) / fps
    num = np.zeros((n_frames, 3))
    den = np.full((n_frames, 3), 1e-6)
    for ph in phones:
        label = ph.label if ph.label in VISEMES else "SIL"
        centre, dur = 0.5 * (ph.start + ph.end), max(ph.end - ph.start, 1e-3)
        tau = 0.45 * dur + 0.02 if label != "SIL" else 0.25 * dur + 0.02
        # Cohen-Massaro dominance: alpha * exp(-|t - c| / tau), flat (=alpha) inside the phone core.
        dist = np.maximum(np.abs(t - centre) - 0.3 * dur, 0.0)
        d = _dominance(label)[None, :] * np.exp(-dist / tau)[:, None]
        num += d * np.asarray(VISEMES[label])[None, :]
        den += d
    track = num / den
    track[:, 0] = np.clip(track[:, 0] * gain * articulation, 0.0, 1.0)
    if articulation != 1.0:
        track[:, 1] *= articulation
        track[:, 2] = np.clip(track[:, 2] * articulation, 0.0, 1.0)
    if spread_offset:
        track[:, 1] += spread_offset
    # Lips meet during a bilabial and the lower lip touches the teeth during F/V, whatever the
    # neighbours are (blending alone leaves them half open between open vowels).
    for ph in phones:
        cap = 0.0 if ph.label in BILABIALS else 0.08 if ph.label in ("F", "V") else None
        if cap is not None:
            inside = (t >= ph.start) & (t < ph.end)
            track[inside, 0] = np.minimum(track[inside, 0], cap)
    return track.astype(np.float32)


def blink_track(n_frames: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    """(T,) eyelid closure 0..1: blinks every 2-5 s, each ~0.25 s (close fast, open slower)."""
    out = np.zeros(n_frames, np.float32)
    t = rng.uniform(0.4, 2.5)
    duration = n_frames / fps
    while t < duration:
        frames = np.arange(n_frames) / fps - t
        close, reopen = 0.08, 0.17
        shape = np.where(frames < 0, 0.0, np.where(frames < close, frames / close,
                         np.clip(1 - (frames - close) / reopen, 0, 1)))
        out = np.maximum(out, shape.astype(np.float32))
        t += rng.uniform(2.0, 5.0)
    return out


@dataclass(frozen=True)
class HeadMotion:
    """Amplitudes of the random head motion (peak values)."""

    yaw_deg: float = 4.0
    pitch_deg: float = 3.0
    roll_deg: float = 2.0
    shift_frac: float = 0.015     # translation, fraction of the frame side
    scale_frac: float = 0.02


POSE_COLUMNS = ("yaw_deg", "pitch_deg", "roll_deg", "tx_px", "ty_px", "scale")


def head_pose_track(n_frames: int, fps: float, rng: np.random.Generator, frame_size: int,
                    motion: HeadMotion = HeadMotion()) -> np.ndarray:
    """(T, 6) smooth head pose: yaw, pitch, roll (degrees), tx, ty (pixels), scale (1 = photo)."""
    t = np.arange(n_frames) / fps
    amps = [motion.yaw_deg, motion.pitch_deg, motion.roll_deg,
            motion.shift_frac * frame_size, motion.shift_frac * frame_size, motion.scale_frac]
    pose = np.zeros((n_frames, 6))
    for k, amp in enumerate(amps):
        freqs = rng.uniform(0.12, 0.6, size=3)
        phases = rng.uniform(0, 2 * np.pi, size=3)
        weights = rng.dirichlet(np.ones(3))
        # Start from the photo's own pose (value 0 at t=0) and drift smoothly from there.
        signal = sum(w * (np.sin(2 * np.pi * f * t + p) - np.sin(p)) for w, f, p in zip(weights, freqs, phases))
        pose[:, k] = amp * signal / 2.0
    pose[:, 5] += 1.0
    return pose.astype(np.float32)


@functools.lru_cache(maxsize=1)
def _mean_depth_template() -> np.ndarray:
    """68-point 3D mean face (x, y, z; y down, z forward) shipped with insightface."""
    spec = importlib.util.find_spec("insightface")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("insightface (installed with --no-deps by `make env`) provides the 3D mean face")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "objects" / "meanshape_68.pkl"
    with open(path, "rb") as f:
        return np.asarray(pickle.load(f), dtype=np.float64)


@dataclass(frozen=True)
class FaceFrame:
    """Similarity between image pixels and face coordinates (see module docstring)."""

    origin: np.ndarray   # (2,) pixels
    angle: float         # radians, eye line vs image x axis
    unit: float          # pixels per face unit (the inter-ocular distance)

    @classmethod
    def from_landmarks(cls, lm: np.ndarray) -> "FaceFrame":
        left, right = lm[RIGHT_EYE].mean(0), lm[LEFT_EYE].mean(0)
        d = lm[LEFT_EYE_OUTER] - lm[RIGHT_EYE_OUTER]
        return cls(origin=(left + right) / 2, angle=float(np.arctan2(d[1], d[0])), unit=float(np.hypot(*d)))

    def _rot(self, sign: float) -> np.ndarray:
        c, s = np.cos(sign * self.angle), np.sin(sign * self.angle)
        return np.array([[c, -s], [s, c]])

    def to_face(self, pts: np.ndarray) -> np.ndarray:
        return (np.asarray(pts, np.float64) - self.origin) @ self._rot(-1).T / self.unit

    def to_image(self, pts: np.ndarray) -> np.ndarray:
        return np.asarray(pts, np.float64) * self.unit @ self._rot(1).T + self.origin


def landmark_depth(face_xy: np.ndarray) -> np.ndarray:
    """(68,) depth of each landmark (face units): the 3D mean face fitted to this face by Procrustes."""
    mean = _mean_depth_template()
    src, dst = mean[:, :2], face_xy
    src_c, dst_c = src - src.mean(0), dst - dst.mean(0)
    scale = np.sqrt((dst_c ** 2).sum() / (src_c ** 2).sum())
    z = mean[:, 2] * scale
    return z - z[NOSE_BRIDGE].mean() + 0.3   # nose bridge ~0.3 IOD in front of the eye plane


def deform_mouth_and_eyes(face_xy: np.ndarray, open_: float, spread: float, round_: float,
                          blink: float, lip_raise: float = 0.0) -> np.ndarray:
    """Apply one frame's articulation to neutral landmarks in face coordinates. Returns (68, 2).

    Args:
        face_xy: (68, 2) neutral landmarks in face units (see module docstring).
        open_, spread, round_: one row of `mouth_track`.
        blink: eyelid closure 0..1.
        lip_raise: lip corners (48, 54, 60, 64) raised by this many face units (IOD), their
            neighbours by 0.4 of it: a smile's upturn (speaking style); 0 leaves the mouth as is.
    """
    p = face_xy.copy()
    o, e, r = float(open_), float(spread), float(round_)
    dy = np.zeros(68)
    dx = np.zeros(68)
    dy[JAW] = 0.30 * o * np.clip(1 - np.abs(JAW - CHIN) / 8.5, 0, 1) ** 1.3
    dy[[55, 56, 57, 58, 59]] += o * np.array([0.24, 0.33, 0.36, 0.33, 0.24])
    dy[[65, 66, 67]] += o * np.array([0.33, 0.36, 0.33])
    dy[[48, 54, 60, 64]] += 0.10 * o
    dy[[50, 51, 52]] -= 0.02 * o
    dy[[61, 62, 63]] -= 0.03 * o
    # Lip corners: spread pulls them out; rounding pulls them in and opens a small round aperture.
    left_c, left_n = [48, 60], [49, 59, 61, 67]
    right_c, right_n = [54, 64], [53, 55, 63, 65]
    corner = 0.09 * e - 0.07 * r
    dx[left_c] -= corner
    dx[right_c] += corner
    dx[left_n] -= 0.5 * corner
    dx[right_n] += 0.5 * corner
    dx[[48, 60]] += 0.03 * o
    dx[[54, 64]] -= 0.03 * o
    dy[[50, 51, 52]] -= 0.02 * r
    dy[[56, 57, 58]] += 0.02 * r
    dy[[61, 62, 63]] -= 0.025 * r
    dy[[65, 66, 67]] += 0.035 * r
    if lip_raise:
        dy[[48, 54, 60, 64]] -= lip_raise
        dy[[49, 53, 59, 55, 61, 63, 67, 65]] -= 0.4 * lip_raise
    p[:, 0] += dx
    p[:, 1] += dy
    # The inner lower lip never rises above the inner upper lip.
    for up, lo in ((61, 67), (62, 66), (63, 65)):
        p[lo, 1] = max(p[lo, 1], p[up, 1])
    # Blink: upper lids travel most of the way to the lower lids, lower lids rise a little.
    for upper, lower in (((37, 38), (41, 40)), ((43, 44), (47, 46))):
        for u, lo in zip(upper, lower):
            gap = p[lo, 1] - p[u, 1]
            p[u, 1] += 0.88 * blink * gap
            p[lo, 1] -= 0.07 * blink * gap
    return p


def rotation_matrix(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """R = Rz(roll) @ Rx(pitch) @ Ry(yaw) (`headflow.rotations.euler_to_matrix`) applied to face
    coordinates (x right, y DOWN, z forward). Because y points down here, the demo's pitch > 0 raises
    the nose and roll > 0 turns the face clockwise on screen: the demo's (yaw, pitch, roll) is
    headflow's (yaw, -pitch, -roll) (`headflow.rotations.flip_y`); the truth files keep that meaning."""
    return euler_to_matrix(np.array([yaw_deg, pitch_deg, roll_deg]))


PIVOT = np.array([0.0, 0.9, -0.9])  # rotation centre, face units: behind the face, near the neck


def apply_pose(face_xyz: np.ndarray, pose: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """Rotate/scale/shift face-coordinate points (N, 3) by `pose` (6,), project orthographically to pixels."""
    rot = rotation_matrix(*pose[:3])
    moved = (face_xyz - PIVOT) @ rot.T + PIVOT
    xy = moved[:, :2] * pose[5]
    return frame.to_image(xy) + pose[3:5]
