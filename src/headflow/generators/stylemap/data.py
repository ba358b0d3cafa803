"""Training data of the Style Mapping module: clips, (source, driving) pairs and the equivariance transform.

Training is self-supervised as face-vid2vid's (section 4): source and driving frames are two frames of
the same clip; the driving frame is the target. Each frame carries fit3dmm's fitted head pose, turned
into the pose *in the aligned crop* (`crop_angles`), which supervises the 66-bin heads.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.nn import functional as F


class PairError(ValueError):
    """A clip that cannot give a training pair or an output; `reason_code` names why (quarantine rows)."""

    def __init__(self, reason_code: str, message: str):
        super().__init__(message)
        self.reason_code = reason_code


def crop_angles(angles: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """Fitted head poses (source frame) -> the poses seen in the aligned crops.

    The crop transform is a similarity M = s [[cos a, -sin a], [sin a, cos a]] | t in y-down pixels; its
    in-plane angle a turns the image clockwise on screen for a > 0, i.e. it composes Rz(-a) with the head
    rotation. Since R = Rz(roll) Rx(pitch) Ry(yaw) (`headflow.rotations`), Rz(-a) R = Rz(roll - a) Rx Ry:
    only roll changes, to roll - a. Scale and translation do not change the angles.

    Args:
        angles: (T, 3) yaw, pitch, roll in degrees in the source frame (fit3dmm).
        transforms: (T, 2, 3) source -> crop similarity transforms.

    Returns:
        (T, 3) float32 yaw, pitch, roll in degrees in the crop; roll wrapped to [-180, 180).
    """
    angles = np.asarray(angles, np.float64)
    m = np.asarray(transforms, np.float64)
    if angles.shape[-1] != 3 or m.shape != (len(angles), 2, 3):
        raise ValueError(f"crop_angles: angles must be (T, 3) and transforms (T, 2, 3), got {angles.shape} and "
                         f"{m.shape}")
    a = np.rad2deg(np.arctan2(m[:, 1, 0], m[:, 0, 0]))
    out = angles.copy()
    out[:, 2] = (angles[:, 2] - a + 180.0) % 360.0 - 180.0
    return out.astype(np.float32)


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, S, S, 3) uint8 square crops -> (T, size, size, 3) uint8 (area interpolation when shrinking).

    Raises:
        ValueError: frames that are not square RGB (no resize changes an aspect ratio here).
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[1] != frames.shape[2]:
        raise ValueError(f"resize_frames: expected square RGB crops (T, S, S, 3), got {frames.shape}; the family "
                         "reads the shards' 256x256 crop256 view")
    if frames.shape[1] == size:
        return np.ascontiguousarray(frames)
    interp = cv2.INTER_AREA if size < frames.shape[1] else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in frames])


@dataclass
class StylemapClip:
    """One clip's arrays at the model's image size (everything decoded once)."""

    clip_id: str
    frames: np.ndarray
    """(T, S, S, 3) uint8 aligned crops resized to the model's image_size."""
    angles: np.ndarray
    """(T, 3) float32 yaw, pitch, roll in degrees in the crop (`crop_angles`); 0 where not `valid`."""
    valid: np.ndarray
    """(T,) bool: a face in the crop and a fitted pose."""
    speaker: str | None = None
    inside: np.ndarray | None = None
    """(T, S, S) bool: pixels sampled inside the source frame (crop256's mask resized by
    `headflow.shards.geometry.resize_inside`); False is the edge smear of a tight source, left out of the
    reconstruction losses. None: every pixel is valid (shards written before the mask existed)."""

    def __post_init__(self) -> None:
        t = len(self.frames)
        if self.frames.ndim != 4 or self.frames.shape[1] != self.frames.shape[2] or self.frames.dtype != np.uint8:
            raise ValueError(f"clip {self.clip_id}: frames must be uint8 (T, S, S, 3), got {self.frames.dtype} "
                             f"{self.frames.shape}")
        if self.angles.shape != (t, 3) or self.valid.shape != (t,):
            raise ValueError(f"clip {self.clip_id}: angles must be ({t}, 3) and valid ({t},), got {self.angles.shape} "
                             f"and {self.valid.shape}")
        if self.inside is not None and self.inside.shape != self.frames.shape[:3]:
            raise ValueError(f"clip {self.clip_id}: inside must be {self.frames.shape[:3]} (T, S, S) like the frames, "
                             f"got {self.inside.shape}; resize it with headflow.shards.geometry.resize_inside")

    @property
    def usable(self) -> np.ndarray:
        """Indices of the valid frames."""
        return np.flatnonzero(self.valid)


def check_clip(clip: StylemapClip) -> StylemapClip:
    """The clip, or `PairError` "no_fitted_pose" when no frame has both a face and a fitted pose."""
    if len(clip.usable) == 0:
        raise PairError("no_fitted_pose", f"clip {clip.clip_id}: no frame has a face crop and a fitted head pose "
                        "(run fit3dmm and shard_labels on it)")
    return clip


class PairDataset(torch.utils.data.Dataset):
    """`samples_per_epoch` (source, driving) pairs per epoch: a clip uniformly over the usable frames of all
    clips, then two usable frames of that clip (face-vid2vid's sampling). Sample i of epoch e depends only
    on (seed, e, i), so a resumed run sees the same pairs (the harness calls `set_epoch`)."""

    def __init__(self, clips: list[StylemapClip], samples_per_epoch: int, seed: int = 0):
        if not clips:
            raise ValueError("PairDataset: no clip to train on (every clip was quarantined?)")
        self.clips, self.n, self.seed, self.epoch = clips, samples_per_epoch, seed, 0
        self.offsets = np.concatenate([[0], np.cumsum([len(c.usable) for c in clips])])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        w = int(rng.integers(self.offsets[-1]))
        clip = self.clips[int(np.searchsorted(self.offsets, w, side="right") - 1)]
        s, d = rng.choice(clip.usable, size=2, replace=len(clip.usable) < 2)
        return pair_sample(clip, int(s), int(d))


def pair_sample(clip: StylemapClip, source: int, driving: int) -> dict[str, np.ndarray]:
    """One collatable sample: source_u8, driving_u8 (S, S, 3) uint8; source_angles, driving_angles (3,) float32;
    driving_inside (S, S) bool, the driving (= target) frame's validity mask (all True for a clip without one)."""
    inside = clip.inside[driving] if clip.inside is not None else np.ones(clip.frames.shape[1:3], bool)
    return {"source_u8": clip.frames[source], "driving_u8": clip.frames[driving],
            "source_angles": clip.angles[source], "driving_angles": clip.angles[driving], "driving_inside": inside}


def fixed_pairs(clips: list[StylemapClip], n: int, seed: int) -> list[dict[str, np.ndarray]]:
    """n pairs for validation: (first usable frame, a usable frame drawn with `seed`), clip after clip."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n if clips else 0):
        clip = clips[i % len(clips)]
        out.append(pair_sample(clip, int(clip.usable[0]), int(rng.choice(clip.usable))))
    return out


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float (..., 3, H, W) in [0, 1]."""
    return images.movedim(-1, -3).float() / 255.0


def data_fingerprint(clips: list[StylemapClip]) -> str:
    """blake2b-128 of the clips' ids, frames, angles, valid masks and (when a clip has one) its pixel validity
    mask `inside`, in order (clips without one, or with an all-True one, which trains identically, hash as
    before the mask existed)."""
    h = hashlib.blake2b(digest_size=16)
    for clip in clips:
        h.update(clip.clip_id.encode())
        extra = () if clip.inside is None or clip.inside.all() else (clip.inside,)
        for arr in (clip.frames, clip.angles, clip.valid, *extra):
            arr = np.ascontiguousarray(arr)
            h.update(f"{arr.dtype}|{arr.shape}".encode())
            h.update(arr.data)
    return h.hexdigest()


# ------------------------------------------------------------------------------ equivariance transform

@dataclass
class RandomTransform:
    """A known random affine + thin-plate-spline map T of normalised 2D points (FOMM `Transform`, the
    equivariance constraint of face-vid2vid section 3.3):

        T(p) = A p + b + sum_n w_n U(|p - c_n|),   U(r) = r^2 log r^2,

    control points c_n on a P x P grid over [-1, 1]^2, A = I + N(0, sigma_affine), b ~ N(0, sigma_affine),
    w_n ~ N(0, sigma_tps) per coordinate (FOMM draws one weight per point added to both coordinates).

    `warp(image)` is the backward warp: output(p) = image(T(p)) (reflected borders); so a feature at output
    position q sits at T(q) in the input, and an equivariant detector satisfies kp(image) = T(kp(warp(image))).
    """

    theta: torch.Tensor
    """(B, 2, 3) [A | b]."""
    control_points: torch.Tensor
    """(N, 2) TPS centres."""
    weights: torch.Tensor
    """(B, N, 2) TPS weights."""

    @classmethod
    def sample(cls, batch: int, sigma_affine: float, sigma_tps: float, points: int,
               generator: torch.Generator | None = None) -> RandomTransform:
        """Draw a transform per batch item (FOMM's `Transform` parameters; `points` control points per side)."""
        eye = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        theta = eye + sigma_affine * torch.randn(batch, 2, 3, generator=generator)
        axis = torch.linspace(-1.0, 1.0, points)
        gy, gx = torch.meshgrid(axis, axis, indexing="ij")
        control = torch.stack([gx.flatten(), gy.flatten()], -1)
        weights = sigma_tps * torch.randn(batch, points * points, 2, generator=generator)
        return cls(theta, control, weights)

    @classmethod
    def from_tensors(cls, theta: torch.Tensor, weights: torch.Tensor) -> RandomTransform:
        """Rebuild from a prepared batch's `eq_theta` (B, 2, 3) and `eq_weights` (B, P*P, 2)."""
        points = int(round(math.sqrt(weights.shape[1])))
        axis = torch.linspace(-1.0, 1.0, points, device=theta.device, dtype=theta.dtype)
        gy, gx = torch.meshgrid(axis, axis, indexing="ij")
        return cls(theta, torch.stack([gx.flatten(), gy.flatten()], -1), weights)

    def points(self, p: torch.Tensor) -> torch.Tensor:
        """T(p) for p (B, M, 2) normalised (x, y) -> (B, M, 2)."""
        theta = self.theta.to(p)
        out = torch.einsum("bij,bmj->bmi", theta[:, :, :2], p) + theta[:, None, :, 2]
        d2 = (p[:, :, None, :] - self.control_points.to(p)[None, None]).pow(2).sum(-1)   # (B, M, N)
        u = d2 * torch.log(d2 + 1e-6)
        return out + torch.einsum("bmn,bnc->bmc", u, self.weights.to(p))

    def warp(self, image: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W): output(p) = image(T(p)), bilinear, reflected borders."""
        b, _, h, w = image.shape
        grid = _identity_grid(h, w, image).reshape(1, h * w, 2).expand(b, -1, -1)
        return F.grid_sample(image, self.points(grid).view(b, h, w, 2), mode="bilinear", padding_mode="reflection",
                             align_corners=True)


def _identity_grid(h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    ys = torch.linspace(-1.0, 1.0, h, device=like.device, dtype=like.dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=like.device, dtype=like.dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], -1)


def prepare_batch(batch, sigma_affine: float, sigma_tps: float, points: int,
                  generator: torch.Generator | None) -> dict[str, torch.Tensor]:
    """Collated raw pairs -> float images (B, 3, S, S) in [0, 1], angles (B, 3), the equivariance
    transform's draws (`eq_theta`, `eq_weights`), made with `generator` (so a resumed run repeats them), and,
    when the pairs carry it, the driving frame's validity mask `driving_inside` (B, 1, S, S) bool (absent:
    every pixel valid)."""
    source = to_float(batch["source_u8"])
    t = RandomTransform.sample(source.shape[0], sigma_affine, sigma_tps, points, generator)
    out = {"source": source, "driving": to_float(batch["driving_u8"]),
           "source_angles": batch["source_angles"].float(), "driving_angles": batch["driving_angles"].float(),
           "eq_theta": t.theta.to(source.device), "eq_weights": t.weights.to(source.device)}
    if "driving_inside" in batch:
        out["driving_inside"] = batch["driving_inside"].bool().unsqueeze(-3)
    return out
