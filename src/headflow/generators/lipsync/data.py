"""Inputs of the lip-sync generator: windows, reference frames, masks (coursework sections 3.2, 3.5, 3.6).

Pure functions over one clip's arrays (numpy; torch for the batched, per-step image operations):

* `window_starts`: target windows of 5 frames whose faces are valid and whose every frame has a full
  mel window (frames without one are outside the generated range, never padded).
* `cluster_frames` / `select_references`: KMeans (K = 10) on lip and chin landmarks over the clip, one
  frame per cluster, never from the target window; clusters left without a frame are filled with
  copies of the chosen frames flagged for affine augmentation (section 3.5). `random_references`:
  the table 4.1 baselines (uniform over the clip, or within a neighbourhood of the target).
* `mask_lower_half`: the generator's input mask, the whole lower half (section 3.6: a landmark-derived
  input mask leaks the mouth opening).
* `hull_mask`: the mask head's target, the convex hull of the lower jaw and the nose tip dilated with an
  11x11 kernel (section 3.5).
* `prepare_references`: affine augmentation of flagged copies, Gaussian blur, optional lower-half crop.
* `blend`: X = blur(sg(M)) * X_gen + (1 - blur(sg(M))) * X (eq. 10, blur k = 5, sigma = 3).

Landmarks are 68 points in iBUG order, in pixel coordinates of the 96x96 face crop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from kornia.filters import gaussian_blur2d
from kornia.geometry.conversions import normalize_homography
from kornia.geometry.transform import get_rotation_matrix2d

from headflow import landmarks68
from headflow.audio.mel import WAV2LIP, mel_window_start
from headflow.generators.lipsync.params import IMAGE_SIZE, WINDOW
from headflow.nn.warp import affine_warp

LIP_POINTS = tuple(int(i) for i in landmarks68.MOUTH)
"""iBUG indices of the outer (48-59) and inner (60-67) lip contours."""
CHIN_POINTS = tuple(range(4, 13))
"""iBUG jaw points around the chin (4-12, chin 8 in the middle), clustered with the lips (section 3.5:
"lips and chin")."""
HULL_JAW_POINTS = tuple(range(2, 15))
"""Lower jaw points (2-14, from below the ears' level round the chin) of the blending-mask hull (section
3.5: "landmarks from bottom chin part"; the paper does not list the indices)."""
NOSE_TIP = landmarks68.NOSE_TIP
"""iBUG index of the nose tip, the hull's top point (section 3.5)."""
BLEND_KERNEL, BLEND_SIGMA = 5, 3.0
"""Gaussian blur of the blending mask (section 3.7, eq. 10: k = 5, sigma = 3)."""


class ReferenceError(ValueError):
    """A clip cannot give the generator what it needs; `reason_code` goes to the quarantine table."""

    def __init__(self, reason_code: str, message: str):
        super().__init__(message)
        self.reason_code = reason_code


# ---------------------------------------------------------------------------------------------- windows

def window_starts(valid: np.ndarray, n_mel: int, fps: float = 25.0, window: int = WINDOW) -> np.ndarray:
    """First frames f of the usable target windows f .. f + window - 1.

    A window is usable when all its frames have a valid face and landmarks, and the last frame's
    16-frame mel window ends inside the spectrogram (so every frame of it has a full window; the
    expert's window, that of frame f, then fits too).

    Args:
        valid: (T,) bool, frames with a usable face and landmarks.
        n_mel: mel frames of the clip's audio (80 per second).
        fps: video frame rate.
        window: frames per window (5).

    Returns:
        (W,) int64 ascending; empty when the clip has no usable window.
    """
    valid = np.asarray(valid, bool)
    n = len(valid) - window + 1
    if n <= 0:
        return np.zeros(0, np.int64)
    run = np.convolve(valid.astype(np.int64), np.ones(window, np.int64), mode="valid")[:n] == window
    fits = np.array([mel_window_start(f + window - 1, fps) + WAV2LIP.window_frames <= n_mel for f in range(n)])
    return np.flatnonzero(run & fits).astype(np.int64)


def generated_range(valid: np.ndarray, n_mel: int, fps: float = 25.0) -> tuple[int, int]:
    """[frame_start, frame_end) of the frames that get generated: from 0 to the last frame whose mel window
    fits (docs/DESIGN.md generation contract: frames without a full audio window are outside the range).

    Frames inside the range without a valid face are copied unchanged by generation. Returns (0, 0) when
    no frame has a full mel window.
    """
    end = 0
    while end < len(valid) and mel_window_start(end, fps) + WAV2LIP.window_frames <= n_mel:
        end += 1
    return 0, end


def frame_mels(mel: np.ndarray, frames: np.ndarray, fps: float = 25.0) -> np.ndarray:
    """The (1, 80, 16) mel window of each frame: (F, 1, 80, 16) float32, frequency-major as the encoders take.

    Raises:
        IndexError: a frame's window runs off the spectrogram (use `window_starts` / `generated_range`).
    """
    out = np.empty((len(frames), 1, mel.shape[1], WAV2LIP.window_frames), np.float32)
    for i, f in enumerate(np.asarray(frames)):
        s = mel_window_start(int(f), fps)
        if f < 0 or s + WAV2LIP.window_frames > len(mel):
            raise IndexError(f"mel window of frame {f} is [{s}, {s + WAV2LIP.window_frames}) but the spectrogram "
                             f"has {len(mel)} frames; pick frames with window_starts() or generated_range()")
        out[i, 0] = mel[s:s + WAV2LIP.window_frames].T
    return out


# ------------------------------------------------------------------------------------------- references

def reference_features(landmarks: np.ndarray) -> np.ndarray:
    """Lip and chin landmarks flattened: (T, 68, 2) crop pixels -> (T, 58) float64 (section 3.5)."""
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be (T, 68, 2), got {lm.shape}")
    return lm[:, list(LIP_POINTS) + list(CHIN_POINTS)].reshape(len(lm), -1)


@dataclass(frozen=True)
class ReferenceClusters:
    """KMeans clusters of a clip's frames; each cluster's frames ranked by distance to its centroid."""

    labels: np.ndarray
    """(T,) int: cluster of each frame, -1 for frames without valid landmarks."""
    ranked: tuple[np.ndarray, ...]
    """Per cluster, its frame indices, nearest to the centroid first."""
    n_slots: int
    """K asked for (the number of references a window gets); may exceed len(ranked) for short clips."""


def cluster_frames(landmarks: np.ndarray, valid: np.ndarray, k: int = 10, seed: int = 0) -> ReferenceClusters:
    """KMeans (scikit-learn) on the lip and chin landmarks of the clip's valid frames (section 3.5).

    Clips with fewer distinct landmark vectors than k get that many clusters (the rest are filled by
    `select_references`).

    Args:
        landmarks: (T, 68, 2) in crop pixels.
        valid: (T,) bool.
        k: clusters (10 in the paper).
        seed: KMeans' random_state.

    Raises:
        ReferenceError("no_landmarks"): no valid frame.
    """
    from sklearn.cluster import KMeans

    valid = np.asarray(valid, bool)
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        raise ReferenceError("no_landmarks", "no frame of the clip has valid landmarks to choose references from")
    feats = reference_features(np.asarray(landmarks)[idx])
    n_distinct = len(np.unique(feats.round(3), axis=0))
    n_clusters = max(1, min(k, n_distinct))
    labels = np.full(len(valid), -1, np.int64)
    if n_clusters == 1:
        lab, centres = np.zeros(len(idx), np.int64), feats.mean(0, keepdims=True)
    else:
        km = KMeans(n_clusters=n_clusters, n_init=4, random_state=seed).fit(feats)
        lab, centres = km.labels_.astype(np.int64), km.cluster_centers_
    labels[idx] = lab
    dist = np.linalg.norm(feats - centres[lab], axis=1)
    ranked = []
    for c in range(n_clusters):
        members = np.flatnonzero(lab == c)
        if len(members):
            ranked.append(idx[members[np.lexsort((idx[members], dist[members]))]])
    return ReferenceClusters(labels, tuple(ranked), k)


def _fill(chosen: list[int], n: int, augment: bool) -> tuple[np.ndarray, np.ndarray]:
    """`chosen` frames, then copies of them (cycled) up to n slots; copies flagged when `augment`."""
    frames = [chosen[i % len(chosen)] for i in range(n)]
    flags = [augment and i >= len(chosen) for i in range(n)]
    return np.asarray(frames, np.int64), np.asarray(flags, bool)


def select_references(clusters: ReferenceClusters, start: int, window: int = WINDOW,
                      augment: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """One frame per cluster, the one nearest its centroid outside the target window [start, start + window).

    The same frames serve every window that does not contain them (section 3.5: "we use the same K
    frames for each identity frame"). Clusters whose frames all lie in the window, and the slots of a
    clip with fewer than K clusters, are filled with copies of the chosen frames, flagged for affine
    augmentation when `augment`.

    Returns:
        (frames (K,) int64, augmented (K,) bool), K = clusters.n_slots; frames never in the window.

    Raises:
        ReferenceError("no_reference_frames"): every valid frame lies in the target window.
    """
    lo, hi = start, start + window
    chosen = []
    for members in clusters.ranked:
        outside = members[(members < lo) | (members >= hi)]
        if len(outside):
            chosen.append(int(outside[0]))
    if not chosen:
        raise ReferenceError("no_reference_frames", f"no valid frame outside the target window [{lo}, {hi}) "
                             "to take references from (the clip is too short)")
    return _fill(chosen, clusters.n_slots, augment)


def random_references(valid: np.ndarray, start: int, n: int, rng: np.random.Generator, window: int = WINDOW,
                      neighbourhood: int | None = None, augment: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Table 4.1's baselines: n distinct valid frames drawn uniformly outside the target window.

    Args:
        valid: (T,) bool.
        start: the target window's first frame.
        n: references (1 in the table's "Random 1" rows).
        rng: numpy Generator.
        neighbourhood: None = anywhere in the clip (LipGAN / Wav2Lip); else only frames within this many
            frames of the window ("Random 1 in neigh. of 30").
        augment: flag copies (when fewer than n frames are available) for affine augmentation.

    Returns:
        (frames (n,), augmented (n,)) as `select_references`.

    Raises:
        ReferenceError("no_reference_frames"): no valid frame outside the window (in the neighbourhood).
    """
    valid = np.asarray(valid, bool)
    lo, hi = start, start + window
    frames = np.arange(len(valid))
    ok = valid & ((frames < lo) | (frames >= hi))
    if neighbourhood is not None:
        ok &= (frames >= lo - neighbourhood) & (frames < hi + neighbourhood)
    pool = np.flatnonzero(ok)
    if len(pool) == 0:
        raise ReferenceError("no_reference_frames", f"no valid frame outside the target window [{lo}, {hi})"
                             + (f" within {neighbourhood} frames" if neighbourhood is not None else ""))
    picked = rng.choice(pool, size=min(n, len(pool)), replace=False)
    return _fill([int(f) for f in picked], n, augment)


# ------------------------------------------------------------------------------------------------ masks

def lower_half_mask(size: int = IMAGE_SIZE) -> np.ndarray:
    """(size, size) float32: 1 on rows >= size // 2 (the region the generator fills), 0 above."""
    mask = np.zeros((size, size), np.float32)
    mask[size // 2:] = 1.0
    return mask


def mask_lower_half(images: torch.Tensor) -> torch.Tensor:
    """The generator's identity input: images (..., H, W) with rows >= H // 2 set to 0 (section 3.6)."""
    out = images.clone()
    out[..., images.shape[-2] // 2:, :] = 0
    return out


def hull_mask(landmarks: np.ndarray, size: int = IMAGE_SIZE, dilation: int = 11) -> np.ndarray:
    """The mask head's target: convex hull of the lower jaw and the nose tip, dilated (section 3.5).

    Args:
        landmarks: (68, 2) in pixels of the size x size crop.
        size: crop side.
        dilation: side of the square structuring element (11 in the paper).

    Returns:
        (size, size) uint8 in {0, 1}.
    """
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"hull_mask: landmarks must be (68, 2), got {lm.shape}")
    pts = lm[list(HULL_JAW_POINTS) + [NOSE_TIP]]
    hull = cv2.convexHull(np.round(pts).astype(np.int32))
    mask = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(mask, hull, 1)
    if dilation > 1:
        mask = cv2.dilate(mask, np.ones((dilation, dilation), np.uint8))
    return mask


def hull_masks(landmarks: np.ndarray, valid: np.ndarray, size: int = IMAGE_SIZE, dilation: int = 11) -> np.ndarray:
    """`hull_mask` of every valid frame: (T, size, size) uint8; invalid frames stay 0."""
    out = np.zeros((len(landmarks), size, size), np.uint8)
    for t in np.flatnonzero(np.asarray(valid, bool)):
        out[t] = hull_mask(landmarks[t], size, dilation)
    return out


# ------------------------------------------------------------------------------ torch image operations

def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float (..., 3, H, W) in [0, 1]."""
    return images.movedim(-1, -3).float() / 255.0


def affine_augment(images: torch.Tensor, gen: torch.Generator | None, rotation_deg: float = 5.0,
                   scale: float = 0.05, shift: float = 0.05) -> torch.Tensor:
    """Random rotation, zoom and shift about the image centre (kornia `warp_affine`, reflected borders).

    Args:
        images: (B, C, H, W) float.
        gen: torch Generator (CPU) for the draws.
        rotation_deg, scale, shift: ranges: angle in +-rotation_deg, zoom in 1 +- scale, shift in +-shift
            of the side.

    Returns:
        (B, C, H, W).
    """
    b, _, h, w = images.shape
    if b == 0:
        return images

    def u() -> torch.Tensor:
        return torch.rand(b, generator=gen) * 2 - 1

    angle, zoom = u() * rotation_deg, 1 + u() * scale
    centre = torch.tensor([[(w - 1) / 2, (h - 1) / 2]]).expand(b, 2)
    m = get_rotation_matrix2d(centre, angle, torch.stack([zoom, zoom], 1))
    m[:, 0, 2] += u() * shift * w
    m[:, 1, 2] += u() * shift * h
    # kornia's `warp_affine` (align_corners=True, reflected borders): its pixel -> normalised conversion, then
    # the shared `affine_warp`, whose sampler has the second derivative the discriminator's R1 takes through
    # this warp (PyTorch's CUDA grid sampler lacks it; a test checks the output equals `warp_affine`'s)
    m3 = torch.cat([m, torch.tensor([[[0.0, 0.0, 1.0]]]).expand(b, 1, 3)], 1)
    src_from_dst = torch.linalg.inv(normalize_homography(m3, (h, w), (h, w)))[:, :2]
    return affine_warp(images, src_from_dst.to(images), padding_mode="reflection")


def blur_sigma_kernel(sigma: float) -> int:
    """Odd Gaussian kernel side covering +-3 sigma."""
    return 2 * math.ceil(3 * sigma) + 1


def prepare_references(references: torch.Tensor, augmented: torch.Tensor, gen: torch.Generator | None,
                       blur_sigma: float = 1.0, region: str = "face", rotation_deg: float = 5.0,
                       scale: float = 0.05, shift: float = 0.05) -> torch.Tensor:
    """Reference frames as the reference encoder takes them (sections 3.5-3.6).

    Flagged copies get a random affine transform, every reference a Gaussian blur, and with region
    "lower_half" the upper half is zeroed.

    Args:
        references: (B, N, 3, H, W) float in [0, 1].
        augmented: (B, N) bool, the copies to augment.
        gen: torch Generator for the augmentation.
        blur_sigma: Gaussian sigma in pixels (0 = none).
        region: "face" | "lower_half".

    Returns:
        (B, N, 3, H, W) float.
    """
    if references.dim() != 5 or augmented.shape != references.shape[:2]:
        raise ValueError(f"prepare_references: references must be (B, N, 3, H, W) and augmented (B, N), got "
                         f"{tuple(references.shape)} and {tuple(augmented.shape)}")
    if region not in ("face", "lower_half"):
        raise ValueError(f"prepare_references: region must be 'face' or 'lower_half', got {region!r}")
    b, n = references.shape[:2]
    flat = references.flatten(0, 1)
    flags = augmented.flatten()
    if bool(flags.any()):
        flat = flat.clone()
        flat[flags] = affine_augment(flat[flags], gen, rotation_deg, scale, shift)
    if blur_sigma > 0:
        k = blur_sigma_kernel(blur_sigma)
        flat = gaussian_blur2d(flat, (k, k), (blur_sigma, blur_sigma), border_type="reflect")
    if region == "lower_half":
        flat = flat.clone()
        flat[..., : flat.shape[-2] // 2, :] = 0
    return flat.view(b, n, *flat.shape[1:])


def blur_mask(mask: torch.Tensor, kernel: int = BLEND_KERNEL, sigma: float = BLEND_SIGMA) -> torch.Tensor:
    """Gaussian blur of a (B, 1, H, W) mask, zero outside the crop, so the mask fades out at the crop's
    border and the pasted crop leaves no seam in the full frame (`generate.paste_back` blurs the same
    way with OpenCV). Values stay in [0, 1]."""
    return gaussian_blur2d(mask, (kernel, kernel), (sigma, sigma), border_type="constant")


def blend(generated: torch.Tensor, frame: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Eq. 10: blur(sg(M)) * X_gen + (1 - blur(sg(M))) * X, blur k = 5, sigma = 3.

    The mask is detached (stop-gradient), so no loss can reshape the mask through the blend (section 3.7).

    Args:
        generated, frame: (B, 3, H, W) in [0, 1].
        mask: (B, 1, H, W) in [0, 1], or None (no mask head: the generated crop as is).

    Returns:
        (B, 3, H, W).
    """
    if mask is None:
        return generated
    m = blur_mask(mask.detach())
    return m * generated + (1 - m) * frame


# ------------------------------------------------------------------------------------ training windows

def expert_mel(mel: np.ndarray, audio_centre: str) -> np.ndarray:
    """The clip's mel as the loss expert expects it: per-utterance CMVN (each band minus its clip mean,
    over the clip's overall std) when the expert is audio-centred ("clip"), else unchanged.

    The definition is `headflow.sync.data.cmvn_mel` (a family may not import `sync/`; a test checks that
    both agree).
    """
    if audio_centre == "none":
        return mel
    if audio_centre != "clip":
        raise ValueError(f"expert_mel: audio_centre must be 'none' or 'clip', got {audio_centre!r}")
    centred = mel - mel.mean(0, keepdims=True)
    return (centred / (centred.std() + 1e-3)).astype(np.float32)


@dataclass
class LipsyncClip:
    """One clip's arrays, as the shards give them (all frames; nothing decoded per sample)."""

    clip_id: str
    faces: np.ndarray
    """(T, 96, 96, 3) uint8 Wav2Lip face crops."""
    landmarks: np.ndarray
    """(T, 68, 2) float32 landmarks in crop pixels."""
    valid: np.ndarray
    """(T,) bool: frames with a face and landmarks."""
    mel: np.ndarray
    """(T_mel, 80) float32 Wav2Lip mel spectrogram of the clip's audio."""
    expert_mel: np.ndarray | None = None
    """(T_mel, 80) the mel as the lip-sync expert expects it (per-utterance CMVN for a clip-centred
    expert, `headflow.sync.data.prepare_clip`); None = `mel`."""
    fps: float = 25.0
    speaker: str | None = None

    def __post_init__(self) -> None:
        t = len(self.faces)
        if self.faces.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3) or self.faces.dtype != np.uint8:
            raise ValueError(f"clip {self.clip_id}: faces must be uint8 (T, {IMAGE_SIZE}, {IMAGE_SIZE}, 3), got "
                             f"{self.faces.dtype} {self.faces.shape}")
        if self.landmarks.shape != (t, 68, 2) or self.valid.shape != (t,):
            raise ValueError(f"clip {self.clip_id}: landmarks must be ({t}, 68, 2) and valid ({t},), got "
                             f"{self.landmarks.shape} and {self.valid.shape}")
        if self.mel.ndim != 2 or self.mel.shape[1] != WAV2LIP.n_mels:
            raise ValueError(f"clip {self.clip_id}: mel must be (T_mel, {WAV2LIP.n_mels}), got {self.mel.shape}")

    @property
    def mouth_reference(self) -> np.ndarray:
        """(48, 96, 3) float32: the clip's mean mouth image over valid frames (the expert's centring)."""
        return self.faces[self.valid, IMAGE_SIZE // 2:].astype(np.float32).mean(0)


@dataclass(frozen=True)
class ClipIndex:
    """What sampling needs of a clip, computed once: its usable windows and reference clusters."""

    clip: LipsyncClip
    starts: np.ndarray
    clusters: ReferenceClusters
    mouth_reference: np.ndarray


def index_clip(clip: LipsyncClip, params, seed: int = 0) -> ClipIndex:
    """Windows and reference clusters of a clip; a clip that cannot train raises `ReferenceError`.

    Args:
        clip: the clip's arrays.
        params: `DataParams`.
        seed: KMeans seed.

    Raises:
        ReferenceError: "no_landmarks" (no valid frame), "too_short" (no 5-frame window with valid faces
            and full mel windows), "no_reference_frames" (no valid frame outside a window).
    """
    if not np.asarray(clip.valid, bool).any():
        raise ReferenceError("no_landmarks", f"clip {clip.clip_id}: no frame has a valid face and landmarks")
    starts = window_starts(clip.valid, len(clip.mel), clip.fps)
    if len(starts) == 0:
        raise ReferenceError("too_short", f"clip {clip.clip_id}: no {WINDOW}-frame window of valid faces with "
                             f"full mel windows ({len(clip.faces)} frames, {int(clip.valid.sum())} valid)")
    try:
        clusters = cluster_frames(clip.landmarks, clip.valid, params.n_references, seed)
        select_references(clusters, int(starts[0]))      # raises no_reference_frames for a too-short clip
    except ReferenceError as err:
        raise ReferenceError(err.reason_code, f"clip {clip.clip_id}: {err}") from None
    return ClipIndex(clip, starts, clusters, clip.mouth_reference)


def window_sample(index: ClipIndex, start: int, params, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One training sample: the window at `start` with its references, mels and masks (numpy, collatable).

    Returns a dict: faces_u8 (5, 96, 96, 3) uint8; mels (5, 1, 80, 16) float32; expert_mel (1, 80, 16)
    float32 (the first frame's window); references_u8 (N, 96, 96, 3) uint8; ref_augment (N,) bool;
    hull_u8 (5, 96, 96) uint8; mouth_reference (48, 96, 3) float32.
    """
    clip = index.clip
    if params.reference_sampling == "kmeans":
        refs, flags = select_references(index.clusters, start, augment=params.reference_augment)
    else:
        refs, flags = random_references(clip.valid, start, params.n_references, rng,
                                        neighbourhood=params.neighbourhood if params.reference_sampling ==
                                        "neighbourhood" else None, augment=params.reference_augment)
    frames = np.arange(start, start + WINDOW)
    expert_mel = clip.mel if clip.expert_mel is None else clip.expert_mel
    return {
        "faces_u8": clip.faces[frames],
        "mels": frame_mels(clip.mel, frames, clip.fps),
        "expert_mel": frame_mels(expert_mel, frames[:1], clip.fps)[0],
        "references_u8": clip.faces[refs],
        "ref_augment": flags,
        "hull_u8": np.stack([hull_mask(clip.landmarks[f], IMAGE_SIZE, params.hull_dilation) for f in frames]),
        "mouth_reference": index.mouth_reference,
    }


class LipsyncWindows(torch.utils.data.Dataset):
    """`samples_per_epoch` windows per epoch, drawn uniformly over all usable windows of all clips.

    Sample i of epoch e is a function of (seed, e, i) only, so epochs differ, runs repeat, and a
    resumed run sees the same samples (the harness calls `set_epoch`).
    """

    def __init__(self, indexes: list[ClipIndex], params, samples_per_epoch: int, seed: int = 0):
        if not indexes:
            raise ValueError("LipsyncWindows: no clip to train on (every clip was quarantined?)")
        self.indexes, self.params, self.n, self.seed, self.epoch = indexes, params, samples_per_epoch, seed, 0
        counts = np.array([len(ix.starts) for ix in indexes])
        self.offsets = np.concatenate([[0], np.cumsum(counts)])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def locate(self, i: int) -> tuple[int, int, np.random.Generator]:
        """(clip number, window start, rng) of sample i in the current epoch."""
        rng = np.random.default_rng([self.seed, self.epoch, i])
        w = int(rng.integers(self.offsets[-1]))
        c = int(np.searchsorted(self.offsets, w, side="right") - 1)
        return c, int(self.indexes[c].starts[w - self.offsets[c]]), rng

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        c, start, rng = self.locate(i)
        return window_sample(self.indexes[c], start, self.params, rng)


def prepare_batch(batch, params, gen: torch.Generator | None) -> dict[str, torch.Tensor]:
    """Collated raw windows -> what `LipsyncStep` computes on (on the batch's device).

    faces (B, 5, 3, 96, 96) and references (B, N, 3, 96, 96) float in [0, 1] (references augmented where
    flagged, blurred, optionally cropped: `prepare_references`), hull (B, 5, 1, 96, 96) float; mels,
    expert_mel, mouth_reference and ref_augment pass through.
    """
    refs = prepare_references(to_float(batch["references_u8"]), batch["ref_augment"].bool(), gen,
                              params.reference_blur_sigma, params.reference_region, params.augment_rotation_deg,
                              params.augment_scale, params.augment_shift)
    return {"faces": to_float(batch["faces_u8"]), "references": refs,
            "hull": batch["hull_u8"].float().unsqueeze(2), "mels": batch["mels"].float(),
            "expert_mel": batch["expert_mel"].float(), "mouth_reference": batch["mouth_reference"].float(),
            "ref_augment": batch["ref_augment"].bool()}
