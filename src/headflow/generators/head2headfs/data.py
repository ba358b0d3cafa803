"""Head2HeadFS training data: per-clip arrays (frames, NMFC, foreground masks, landmarks) and windows.

A window (section 3.3) is L = D^V's span of consecutive frames t0 .. t0+L-1 of one clip, with the two
frames before it: the NMFC X_{t0-2 : t0+L-1}, the real frames t0-2, t0-1 (they start the sequential
generation, as vid2vid starts its training sequences from real frames), the background-removed real
frames and masks of the window, mouth boxes from the landmarks, the optical flow between the real frames
each temporal scale of D^V sees, and M random frames of the same identity for E_id (eq. 4).

Random draws come from a generator seeded by (seed, epoch, index): a resumed run draws what an
uninterrupted one does.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from headflow.generators.head2headfs.params import DiscriminatorParams, FlowMethod


class ClipError(ValueError):
    """A clip that cannot train; `reason_code` goes to the quarantine row."""

    def __init__(self, reason_code: str, message: str):
        super().__init__(message)
        self.reason_code = reason_code


@dataclass
class Head2HeadClip:
    """One clip at the renderer's resolution S.

    frames (T, S, S, 3) uint8 RGB crops; nmfc (T, S, S, 3) uint8; masks (T, S, S) bool foreground;
    landmarks (T, 68, 2) float32 in S-pixel coordinates (0 where not valid); valid (T,) bool frames with a
    fit, landmarks and a non-empty head render; inside (T, S, S) bool pixels sampled inside the source frame
    (crop256's mask resized by `headflow.shards.geometry.resize_inside`; False is the edge smear of a tight
    source, left out of the vgg and mask terms), or None: every pixel valid (shards older than the mask).
    """

    clip_id: str
    speaker: str
    frames: np.ndarray
    nmfc: np.ndarray
    masks: np.ndarray
    landmarks: np.ndarray
    valid: np.ndarray
    inside: np.ndarray | None = None

    def __post_init__(self) -> None:
        T = len(self.frames)
        if self.inside is not None and self.inside.shape != self.frames.shape[:3]:
            raise ValueError(f"clip {self.clip_id}: inside must be {self.frames.shape[:3]} (T, S, S) like the frames, "
                             f"got {self.inside.shape}; resize it with headflow.shards.geometry.resize_inside")
        if not (len(self.nmfc) == len(self.masks) == len(self.landmarks) == len(self.valid) == T):
            raise ClipError("frame_count_mismatch", f"{self.clip_id}: {T} crop frames but {len(self.nmfc)} NMFC "
                            f"frames, {len(self.masks)} masks, {len(self.landmarks)} landmark frames; re-run "
                            "fit3dmm and shard_labels for this clip")


def resize_clip(clip_id: str, speaker: str, crops: np.ndarray, nmfc: np.ndarray, head: np.ndarray,
                masks: np.ndarray, landmarks: np.ndarray, valid: np.ndarray, size: int,
                inside: np.ndarray | None = None) -> Head2HeadClip:
    """A `Head2HeadClip` at `size` from 256-pixel arrays (area for frames, nearest for NMFC and masks; crop256's
    validity mask `inside` (T, 256, 256) bool or None by `headflow.shards.geometry.resize_inside`: area +
    threshold).

    Raises:
        ClipError: frame counts that disagree ("frame_count_mismatch") or no usable frame ("no_fit").
    """
    T = len(crops)
    if not (len(nmfc) == len(head) == len(masks) == len(landmarks) == len(valid) == T):
        raise ClipError("frame_count_mismatch", f"{clip_id}: {T} crop frames, {len(nmfc)} NMFC frames, {len(masks)} "
                        f"masks, {len(landmarks)} landmark frames; re-run fit3dmm and shard_labels for this clip")
    ok = np.asarray(valid, bool) & np.isfinite(landmarks).all(axis=(1, 2)) & head.reshape(T, -1).any(1)
    if not ok.any():
        raise ClipError("no_fit", f"{clip_id}: no frame has a 3DMM fit (NMFC coverage) and landmarks")
    src = crops.shape[1]
    k = size / src

    def rs(a, interp):
        return np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in a]) if src != size else a.copy()

    f = rs(crops, cv2.INTER_AREA)
    n = rs(nmfc, cv2.INTER_NEAREST)
    m = rs(masks.astype(np.uint8), cv2.INTER_NEAREST).astype(bool)
    lm = np.where(ok[:, None, None], (np.nan_to_num(landmarks) + 0.5) * k - 0.5, 0).astype(np.float32)
    from headflow.shards.geometry import resize_inside

    return Head2HeadClip(clip_id, speaker, f, n, m & ok[:, None, None], lm, ok, resize_inside(inside, size))


def to_unit(images: np.ndarray) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float32 in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(images)).float().div(127.5).sub(1.0)
    return t.movedim(-1, -3)


def remove_background(frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Frames with the background set to black: (T, H, W, 3) uint8, (T, H, W) bool -> uint8."""
    return frames * masks[..., None].astype(frames.dtype)


def optical_flow(a: np.ndarray, b: np.ndarray, method: FlowMethod = "dis") -> np.ndarray:
    """Dense flow from RGB frame a to b (both (H, W, 3) uint8) -> (2, H, W) float32, in units of H/32 pixels.

    OpenCV DIS (ultrafast preset) or Farneback (pyr 0.5, 3 levels, window 15, 3 iterations, poly 5 / 1.2):
    the classical stand-ins for the paper's FlowNet2 (no weights offline).
    """
    ga, gb = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
    if method == "dis":
        flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST).calc(ga, gb, None)
    else:
        flow = cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    return (flow.transpose(2, 0, 1) * (32.0 / a.shape[0])).astype(np.float32)


def usable_starts(clip: Head2HeadClip, span: int, end: int | None = None) -> np.ndarray:
    """Start frames t0 >= 2 whose frames t0-2 .. t0+span-1 are all valid (and < `end`)."""
    v = clip.valid[: end if end is not None else len(clip.valid)]
    if len(v) < span + 2:
        return np.zeros(0, np.int64)
    run = np.convolve(v.astype(np.int64), np.ones(span + 2, np.int64), "valid")   # run[i]: valid count in [i, i+span+2)
    return np.flatnonzero(run == span + 2) + 2


class Head2HeadWindows(Dataset):
    """Training windows over clips (module docstring). Item: a dict of tensors

        nmfc (2+L, 3, S, S), previous (2, 3, S, S), frames (L, 3, S, S), masks (L, 1, S, S) (all in
        [-1, 1] but masks [0, 1]), inside (L, 1, S, S) bool (the frames' validity masks; all True for a
        clip without one), mouth (L, 4) boxes, identity () long, identity_frames (M, 3, S, S)
        (when M > 0), flow<s> (K-1, 2, S, S) per temporal scale s of D^V.

    Args:
        clips: the clips (identity index = position of the clip's speaker in `speakers`).
        speakers: the identities in W's row order.
        disc: D^V's window and scales (span L) and D^M's box scale.
        identity_frames: M (0: none, the fine-tuning stage).
        samples: windows per epoch.
        seed: draws are seeded by (seed, epoch, index).
        end: only frames < end of every clip (fine-tuning on the first T' frames).

    Raises:
        ClipError: no clip has a usable window ("too_short").
    """

    def __init__(self, clips: list[Head2HeadClip], speakers: list[str], disc: DiscriminatorParams, identity_frames: int,
                 samples: int, seed: int, end: int | None = None):
        from headflow.generators.head2headfs.model import mouth_boxes

        self.clips, self.disc, self.m, self.samples, self.seed = clips, disc, identity_frames, samples, seed
        self.span = disc.frames_needed
        self.index = {s: i for i, s in enumerate(speakers)}
        self.starts = [(c, int(t)) for c, clip in enumerate(clips) for t in usable_starts(clip, self.span, end)]
        if not self.starts:
            raise ClipError("too_short", f"no clip among {[c.clip_id for c in clips][:5]} has {self.span + 2} "
                            "consecutive frames with a fit")
        self.pool = {s: [(c, int(t)) for c, clip in enumerate(clips) if clip.speaker == s
                         for t in np.flatnonzero(clip.valid[:end])] for s in speakers}
        self.epoch = 0
        self._boxes = mouth_boxes

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.samples

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        c, t0 = self.starts[int(rng.integers(len(self.starts)))]
        clip = self.clips[c]
        a, b = t0 - 2, t0 + self.span
        clean = remove_background(clip.frames[a:b], clip.masks[a:b])
        item = {"nmfc": to_unit(clip.nmfc[a:b]), "previous": to_unit(clean[:2]), "frames": to_unit(clean[2:]),
                "masks": torch.from_numpy(clip.masks[t0:b, None].astype(np.float32)),
                "inside": torch.from_numpy(np.ascontiguousarray(clip.inside[t0:b, None])) if clip.inside is not None
                else torch.ones((b - t0, 1, *clip.frames.shape[1:3]), dtype=torch.bool),
                "mouth": self._boxes(torch.from_numpy(clip.landmarks[t0:b]), self.disc.mouth_scale),
                "identity": torch.tensor(self.index[clip.speaker], dtype=torch.long)}
        if self.m > 0:
            pool = self.pool[clip.speaker]
            picks = [pool[j] for j in rng.choice(len(pool), self.m, replace=len(pool) < self.m)]
            item["identity_frames"] = to_unit(np.stack([remove_background(self.clips[pc].frames[pt:pt + 1],
                                                                          self.clips[pc].masks[pt:pt + 1])[0]
                                                        for pc, pt in picks]))
        if self.disc.dynamics:
            from headflow.generators.head2headfs.model import scale_indices

            real = clean[2:]
            for s in range(self.disc.time_scales):
                ix = scale_indices(self.span, self.disc.window, s)
                item[f"flow{s}"] = torch.from_numpy(np.stack([optical_flow(real[p], real[q], self.disc.flow)
                                                              for p, q in zip(ix[:-1], ix[1:])]))
        return item


def synthetic_clip(n_frames: int, speaker: str, size: int = 32, seed: int = 0, clip_id: str | None = None) -> Head2HeadClip:
    """A moving coloured disk on a plain background with a matching NMFC and landmarks (tests and the bench).

    The disk (the "head") drifts by one pixel every other frame; its NMFC is a fixed colour ramp over the
    disk; the mask is the disk; landmarks are 68 points on the disk (the mouth points in its lower part).
    """
    rng = np.random.default_rng(seed)
    colour = rng.integers(60, 255, 3)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    frames = np.zeros((n_frames, size, size, 3), np.uint8)
    nmfc = np.zeros_like(frames)
    masks = np.zeros((n_frames, size, size), bool)
    lms = np.zeros((n_frames, 68, 2), np.float32)
    r = size * 0.3
    base = rng.uniform(-2, 2, (68, 2)) + np.stack([np.linspace(-r / 2, r / 2, 68), np.zeros(68)], 1)
    base[48:68, 1] += r * 0.5
    for t in range(n_frames):
        cx, cy = size / 2 + (t // 2) % 4 - 2, size / 2
        disk = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        frames[t] = (30, 40, 50)
        frames[t][disk] = colour
        nmfc[t][disk] = np.stack([(xx[disk] - cx + r) / (2 * r) * 255, (yy[disk] - cy + r) / (2 * r) * 255,
                                  np.full(disk.sum(), 128)], 1).clip(0, 255).astype(np.uint8)
        masks[t] = disk
        lms[t] = base + (cx, cy)
    return Head2HeadClip(clip_id or f"{speaker}_{seed}", speaker, frames, nmfc, masks, lms, np.ones(n_frames, bool))
