"""StyleTalk's training data: clips of phoneme labels + expression coefficients with a style label.

- `StyleTalkClip`: one clip's per-frame StyleTalk phoneme indices (41-symbol phindex, SIL = 31) and
  expressions (T, K) in its morphable model's native basis, its speaker and style.
- `check_clip`: the bad inputs of the issue (too short, label/expression counts that disagree, unknown
  phone symbols, another morphable model) -> `ClipRejected` with a reason code; never truncation or padding.
- `phone_windows`: the 2w + 1 phoneme window of each frame (the middle token is frame t).
- `StyleTalkSamples`: the generator's samples: L consecutive frames, a style clip cut from the same clip
  (self-driven reconstruction, paper "Total Loss"), and a positive and a negative style clip for the
  triplet constraint (paper eq. 7: same / another style).
- `DiscSamples`: D_sync's (phoneme window, expression window, in sync?) pairs and D_style's (sequence, class).

Every sample is drawn from `numpy.random.default_rng([seed, epoch, index])`: the same sample for the same
index, epoch and seed (resumed runs see the data an uninterrupted run would).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from headflow.generators.styletalk.params import N_PHONEMES, SILENCE, EdgeRule

REASON_CODES = ("too_short", "frame_count_mismatch", "unknown_phone", "wrong_expression_model", "no_valid_window", "no_fit",
                "audio_shifted",
                "unknown_style", "no_phones", "no_expressions")


class ClipRejected(ValueError):
    """A clip StyleTalk cannot use; `reason_code` is one of `REASON_CODES`."""

    def __init__(self, reason_code: str, message: str):
        super().__init__(message)
        self.reason_code = reason_code


@dataclass
class StyleTalkClip:
    """One clip's inputs."""

    clip_id: str
    phones: np.ndarray
    """(T,) int StyleTalk phoneme indices in [0, 41)."""
    exp: np.ndarray
    """(T, K) float32 expression coefficients."""
    valid: np.ndarray
    """(T,) bool frames with fitted expressions."""
    expression_model: str
    """The morphable model the expressions belong to (`MorphableModel.name`)."""
    style: str = ""
    """The style label (see `DataParams.style_rule`)."""
    speaker: str = ""

    @property
    def n_frames(self) -> int:
        return len(self.phones)


def check_clip(clip: StyleTalkClip, min_frames: int, expression_model: str, n_exp: int) -> None:
    """Raise `ClipRejected` when a clip cannot be used as it is (the message names the clip and the counts).

    Args:
        min_frames: the shortest usable clip (the training window L, or 2w + 1 at inference).
        expression_model, n_exp: the morphable model the network was built for.
    """
    T = len(clip.phones)
    if clip.exp.ndim != 2 or len(clip.exp) != T or len(clip.valid) != T:
        raise ClipRejected("frame_count_mismatch", f"clip {clip.clip_id}: {T} phone-label frames but "
                           f"{len(clip.exp)} expression frames ({len(clip.valid)} validity flags)")
    if clip.expression_model != expression_model or clip.exp.shape[1] != n_exp:
        raise ClipRejected("wrong_expression_model", f"clip {clip.clip_id}: expressions of model "
                           f"{clip.expression_model!r} ({clip.exp.shape[1]} modes); this run uses {expression_model!r} "
                           f"({n_exp} modes)")
    bad = (clip.phones < 0) | (clip.phones >= N_PHONEMES)
    if bad.any():
        raise ClipRejected("unknown_phone", f"clip {clip.clip_id}: {int(bad.sum())} frame(s) with phone indices outside "
                           f"StyleTalk's 41-symbol table, e.g. {sorted(set(clip.phones[bad].tolist()))[:5]}")
    if T < min_frames:
        raise ClipRejected("too_short", f"clip {clip.clip_id}: {T} frames, shorter than the {min_frames}-frame window")


def phone_windows(phones: np.ndarray, frames: np.ndarray, w: int, edge: EdgeRule = "silence") -> np.ndarray:
    """The phoneme window of each frame: row i is phones[frames[i] - w : frames[i] + w + 1], so its middle
    entry (index w) is frame `frames[i]` itself (the frame the decoder's middle token predicts).

    Args:
        phones: (T,) phoneme indices.
        frames: (N,) frame indices.
        w: half-width.
        edge: "silence": positions outside [0, T) are SIL (31; released `get_audio_window`); "inside": such a
            position is an error.

    Returns:
        (N, 2w + 1) int64.

    Raises:
        ValueError: with edge "inside", a window that leaves the clip (names the frame and T).
    """
    phones = np.asarray(phones, np.int64)
    T = len(phones)
    idx = np.asarray(frames, np.int64)[:, None] + np.arange(-w, w + 1)[None]
    outside = (idx < 0) | (idx >= T)
    if outside.any() and edge == "inside":
        f = int(np.asarray(frames)[outside.any(1)][0])
        raise ValueError(f"frame {f}: its {2 * w + 1}-frame phoneme window leaves the clip of {T} frames (edge 'inside')")
    return np.where(outside, SILENCE, phones[np.clip(idx, 0, max(T - 1, 0))])


def window_starts(clip: StyleTalkClip, length: int, margin: int = 0) -> np.ndarray:
    """Starts s of windows [s, s + length) with every frame valid and `margin` frames of clip on each side."""
    T = clip.n_frames
    lo, hi = margin, T - length - margin
    if hi < lo:
        return np.zeros(0, np.int64)
    bad = np.concatenate([[0], np.cumsum(~np.asarray(clip.valid, bool))])
    starts = np.arange(lo, hi + 1)
    return starts[bad[starts + length] - bad[starts] == 0]


def style_window(exp: np.ndarray, length: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random `length`-frame cut of a clip's expressions; a shorter clip is taken whole with the rest of the
    slots masked (pad mask True; the masked slots hold zeros the encoder never attends to).

    Returns:
        (length, K) float32 and (length,) bool pad mask.
    """
    T = len(exp)
    out = np.zeros((length, exp.shape[1]), np.float32)
    pad = np.ones(length, bool)
    if T >= length:
        s = int(rng.integers(0, T - length + 1))
        out[:] = exp[s:s + length]
        pad[:] = False
    else:
        out[:T] = exp
        pad[:T] = False
    return out, pad


class _Seeded(Dataset):
    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def rng(self, i: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(i)])


class StyleTalkSamples(_Seeded):
    """The generator's training samples (see the module docstring).

    Each item: phones (L, 2w+1) int64, exp (L, K) float32, style / pos_style / neg_style (S, K) float32 with
    style_pad / pos_pad / neg_pad (S,) bool, style_label int64.

    Raises:
        ValueError: no clip has an all-valid window of L frames, or the triplet needs two styles and the
            clips have one.
    """

    def __init__(self, clips: list[StyleTalkClip], classes: list[str], clip_len: int, style_len: int, w: int,
                 edge: EdgeRule, n: int, seed: int, fixed_epoch: int | None = None):
        super().__init__(n, seed)
        margin = w if edge == "inside" else 0
        self.clips = [c for c in clips if len(window_starts(c, clip_len, margin))]
        if not self.clips:
            raise ValueError(f"none of {len(clips)} clips has {clip_len} consecutive valid frames")
        self.starts = [window_starts(c, clip_len, margin) for c in self.clips]
        self.classes = list(classes)
        self.by_style: dict[str, list[int]] = {}
        for i, c in enumerate(self.clips):
            self.by_style.setdefault(c.style, []).append(i)
        self.L, self.S, self.w, self.edge = clip_len, style_len, w, edge
        self.fixed_epoch = fixed_epoch

    def set_epoch(self, epoch: int) -> None:
        if self.fixed_epoch is None:
            super().set_epoch(epoch)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = self.rng(i)
        ci = int(rng.integers(len(self.clips)))
        c = self.clips[ci]
        s = int(rng.choice(self.starts[ci]))
        frames = np.arange(s, s + self.L)
        style, pad = style_window(c.exp, self.S, rng)
        same = self.by_style[c.style]
        pos = same[int(rng.integers(len(same)))] if len(same) == 1 else \
            [j for j in same if j != ci][int(rng.integers(len(same) - 1))]
        others = [j for j in range(len(self.clips)) if self.clips[j].style != c.style]
        neg = others[int(rng.integers(len(others)))] if others else ci
        p_style, p_pad = style_window(self.clips[pos].exp, self.S, rng)
        n_style, n_pad = style_window(self.clips[neg].exp, self.S, rng)
        return {"phones": torch.from_numpy(phone_windows(c.phones, frames, self.w, self.edge)),
                "exp": torch.from_numpy(np.ascontiguousarray(c.exp[frames], np.float32)),
                "style": torch.from_numpy(style), "style_pad": torch.from_numpy(pad),
                "pos_style": torch.from_numpy(p_style), "pos_pad": torch.from_numpy(p_pad),
                "neg_style": torch.from_numpy(n_style), "neg_pad": torch.from_numpy(n_pad),
                "style_label": torch.tensor(self.classes.index(c.style) if c.style in self.classes else -1)}


class DiscSamples(_Seeded):
    """D_sync and D_style samples: a (phoneme window, expression window) pair in sync (label 1: the window
    of the expression window's middle frame) or not (label 0: the window of a frame at least `min_shift`
    away in the same clip), and an L-frame expression sequence with its style class.

    Each item: sync_phones (2w+1,) int64, sync_exp (F, K) float32, sync_label float32, style_exp (L, K), style_label int64.
    """

    def __init__(self, clips: list[StyleTalkClip], classes: list[str], w: int, frames: int, clip_len: int,
                 min_shift: int, edge: EdgeRule, n: int, seed: int):
        super().__init__(n, seed)
        self.clips = [c for c in clips if len(window_starts(c, clip_len)) and c.n_frames > 2 * min_shift + frames]
        if not self.clips:
            raise ValueError(f"none of {len(clips)} clips has {clip_len} valid frames and room for shifted pairs")
        self.classes = list(classes)
        self.w, self.F, self.L, self.min_shift, self.edge = w, frames, clip_len, min_shift, edge

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = self.rng(i)
        c = self.clips[int(rng.integers(len(self.clips)))]
        half = self.F // 2
        centres = window_starts(c, self.F) + half
        t = int(rng.choice(centres))
        label = float(rng.random() < 0.5)
        a = t
        if label == 0.0:
            far = np.arange(c.n_frames)
            far = far[np.abs(far - t) >= self.min_shift]
            a = int(rng.choice(far))
        starts = window_starts(c, self.L)
        s = int(rng.choice(starts))
        return {"sync_phones": torch.from_numpy(phone_windows(c.phones, np.array([a]), self.w, "silence")[0]),
                "sync_exp": torch.from_numpy(np.ascontiguousarray(c.exp[t - half:t + half + 1], np.float32)),
                "sync_label": torch.tensor(label, dtype=torch.float32),
                "style_exp": torch.from_numpy(np.ascontiguousarray(c.exp[s:s + self.L], np.float32)),
                "style_label": torch.tensor(self.classes.index(c.style))}
