"""Training pairs for the lip-sync expert, drawn from per-clip arrays already in memory (or memory-mapped).

A clip contributes `ClipArrays`: its mouth crops (the lower half of the 96x96 face crop, every video
frame) and its mel spectrogram. Nothing is decoded in `__getitem__`; a sample is two array slices.

Window rule: the 5-frame face window starting at frame f pairs with the 16-frame mel window of frame f
(`headflow.audio.mel.mel_window`), as in Wav2Lip. A start f is usable when frames f..f+4 all have a
valid face and the mel window lies inside the spectrogram.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from headflow.audio.mel import WAV2LIP, mel_window_start

N_FRAMES = 5          # face frames per window
MOUTH_SHAPE = (48, 96)  # lower half of the 96x96 face crop


@dataclass
class ClipArrays:
    clip_id: str
    mouths: np.ndarray            # (T, 48, 96, 3) uint8
    mel: np.ndarray               # (T_mel, 80) float32
    valid: np.ndarray | None = None   # (T,) bool: frames with a usable face (None = all)
    fps: float = 25.0
    speaker: str | None = None        # other-clip negatives come from the same speaker (None: the clip itself)

    def __post_init__(self) -> None:
        if self.mouths.ndim != 4 or self.mouths.shape[1:] != (*MOUTH_SHAPE, 3):
            raise ValueError(f"clip {self.clip_id}: mouths must be (T, 48, 96, 3), got {self.mouths.shape}")
        if self.mel.ndim != 2 or self.mel.shape[1] != WAV2LIP.n_mels:
            raise ValueError(f"clip {self.clip_id}: mel must be (T_mel, 80), got {self.mel.shape}")


def clip_arrays(shard) -> ClipArrays:
    """The expert's arrays of a `headflow.shards.ClipShard` read with views ("face96", "mel").

    mouths = rows 48-95 of the Wav2Lip 96x96 face crop (`headflow.faces.crops.mouth_crop`'s rule, the
    same bytes the expert was trained on before shards existed), the shard's mel (sync_check's shifted
    mel when read with its decisions), valid mask, fps and speaker.
    """
    mouths = np.ascontiguousarray(shard.face96.pixels[:, 48:])     # the lower half: (T, 48, 96, 3)
    return ClipArrays(shard.clip_id, mouths, shard.mel, shard.valid, shard.fps, shard.speaker)


CLIP_NORMS = ("none", "clip")


def centre_mouths(mouths: np.ndarray, valid: np.ndarray | None = None,
                  reference: np.ndarray | None = None) -> np.ndarray:
    """Mouth crops minus the clip's mean mouth image, stored as uint8 around 128.

    `reference` (48, 96, 3) float: the mean image to subtract; by default the mean over the clip's
    valid frames. The speaker's appearance (skin, lips, teeth, beard, lighting) is the same in every
    frame of a clip, so it cancels, while the mouth's opening relative to the clip's average stays (a
    held vowel stays open, which a window's own mean frame, `face_input: motion`, removes). Invalid
    frames stay zero. Differences beyond +-127 grey levels saturate (rare: the mean of a mouth that
    opens and closes lies between the two).
    """
    valid = np.ones(len(mouths), bool) if valid is None else np.asarray(valid, bool)
    out = np.zeros_like(mouths)
    if not valid.any():
        return out
    if reference is None:
        reference = mouths[valid].astype(np.float32).mean(0)
    out[valid] = np.clip(mouths[valid].astype(np.float32) - reference + 128.0, 0, 255).astype(np.uint8)
    return out


def cmvn_mel(mel: np.ndarray) -> np.ndarray:
    """Per-utterance CMVN: each mel band minus its mean over the clip, over the clip's overall std.

    The voice's spectral envelope and the recording's level cancel, but a window's loudness relative
    to the rest of the clip (a vowel versus a pause) stays, which the per-window `audio_input: norm`
    removes.
    """
    centred = mel - mel.mean(0, keepdims=True)
    return (centred / (centred.std() + 1e-3)).astype(np.float32)


def normalise_clip(clip: ClipArrays, face_centre: str = "none", audio_centre: str = "none",
                   face_reference: np.ndarray | None = None) -> ClipArrays:
    """The clip as an expert with these clip-level settings sees it (`ExpertConfig.face_centre`,
    `audio_centre`): a whole-clip step that cannot live inside the model, which sees one window."""
    for name, value in (("face_centre", face_centre), ("audio_centre", audio_centre)):
        if value not in CLIP_NORMS:
            raise ValueError(f"{name} must be one of {CLIP_NORMS}, got {value!r}")
    if face_centre == "none" and audio_centre == "none":
        return clip
    mouths = centre_mouths(clip.mouths, clip.valid, face_reference) if face_centre == "clip" else clip.mouths
    mel = cmvn_mel(clip.mel) if audio_centre == "clip" else clip.mel
    return ClipArrays(clip.clip_id, mouths, mel, clip.valid, clip.fps, clip.speaker)


def prepare_clip(expert, clip: ClipArrays, face_reference: np.ndarray | None = None) -> ClipArrays:
    """A `ClipArrays` as `expert` (a `headflow.nn.expert.SyncExpert`) sees it, before windowing.

    Applies the expert's whole-clip settings (`face_centre`, `audio_centre`). Every caller that cuts
    windows for the expert (training, `headflow.metrics.lse`) goes through this. `face_reference`: the
    mean mouth image (48, 96, 3) to centre on instead of the clip's own (e.g. the real reference
    clip's, when judging a generated clip frame by frame).
    """
    return normalise_clip(clip, expert.face_centre, expert.audio_centre, face_reference)


def window_starts(clip: ClipArrays) -> np.ndarray:
    """Frames f whose 5-frame face window and 16-frame mel window are both complete and valid."""
    n = len(clip.mouths) - N_FRAMES + 1
    if n <= 0:
        return np.zeros(0, np.int64)
    valid = np.ones(len(clip.mouths), bool) if clip.valid is None else clip.valid.astype(bool)
    ok_face = np.array([valid[f:f + N_FRAMES].all() for f in range(n)])
    ok_mel = np.array([mel_window_start(f, clip.fps) + WAV2LIP.window_frames <= len(clip.mel) for f in range(n)])
    return np.flatnonzero(ok_face & ok_mel)


def face_window_u8(clip: ClipArrays, f: int) -> np.ndarray:
    """(15, 48, 96) uint8: frames f..f+4 stacked on channels (RGB, frame-major), as stored."""
    return np.ascontiguousarray(clip.mouths[f:f + N_FRAMES].transpose(0, 3, 1, 2).reshape(3 * N_FRAMES, *MOUTH_SHAPE))


def face_window(clip: ClipArrays, f: int) -> np.ndarray:
    """(15, 48, 96) float32 in [0, 1]: frames f..f+4 stacked on channels (RGB, frame-major)."""
    return face_window_u8(clip, f).astype(np.float32) / 255.0


def audio_window(clip: ClipArrays, f: int) -> np.ndarray:
    """(1, 80, 16) float32: the mel window of frame f, frequency-major as the expert expects."""
    s = mel_window_start(f, clip.fps)
    return np.ascontiguousarray(clip.mel[s:s + WAV2LIP.window_frames].T[None])


class SyncPairs(Dataset):
    """Balanced pairs: even indices in sync, odd indices out of sync.

    Negatives are, with probability `other_clip_fraction`, the audio of another clip *of the same
    speaker* (other speakers' audio would let the expert tell voices from faces instead of judging
    sync: it then fails on unseen speakers), otherwise the same clip's audio shifted by at least
    `min_shift` frames. Faces come as uint8 (15, 48, 96) windows (a quarter of the bytes of float:
    cheap to collate); `to_float` scales a batch to [0, 1] and `augment_batch` augments a whole batch
    at once in torch, so no per-sample image work runs in the data path. Each sample is a pure
    function of (seed, epoch, index): runs are reproducible and resumable whatever the worker layout.
    """

    def __init__(self, clips: list[ClipArrays], n_samples: int, seed: int = 0, min_shift: int = 5,
                 other_clip_fraction: float = 0.5):
        self.clips = clips
        self.starts = [window_starts(c) for c in clips]
        empty = [c.clip_id for c, s in zip(clips, self.starts) if len(s) == 0]
        if empty:
            raise ValueError(f"clips without a single complete face+mel window: {empty[:5]} "
                             "(too short, or no valid face frames); drop them before training")
        self.weights = np.array([len(s) for s in self.starts], np.float64)
        self.weights /= self.weights.sum()
        self.n_samples, self.seed, self.min_shift = n_samples, seed, min_shift
        self.other_clip_fraction = other_clip_fraction
        by_speaker: dict[str, list[int]] = {}
        for i, c in enumerate(clips):
            by_speaker.setdefault(c.speaker or c.clip_id, []).append(i)
        self.same_speaker = [[j for j in by_speaker[c.speaker or c.clip_id] if j != i] for i, c in enumerate(clips)]
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n_samples

    def _negative(self, rng: np.random.Generator, c: int, f: int) -> tuple[int, int]:
        far = self.starts[c][np.abs(self.starts[c] - f) >= self.min_shift]
        others = self.same_speaker[c]
        if others and (len(far) == 0 or rng.random() < self.other_clip_fraction):
            other = others[int(rng.integers(len(others)))]
            return other, int(rng.choice(self.starts[other]))
        if len(far) == 0:
            raise ValueError(f"clip {self.clips[c].clip_id}: no window {self.min_shift}+ frames from frame {f} "
                             "and no other clip of its speaker to draw a negative from")
        return c, int(rng.choice(far))

    def _draw_clip(self, index: int) -> tuple[np.random.Generator, int]:
        """Sample `index`'s generator and its first draw, the clip of its face window."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return rng, int(rng.choice(len(self.clips), p=self.weights))

    def face_clip(self, index: int) -> int:
        """Index into `clips` of the clip whose face window sample `index` shows (the same draw as
        `__getitem__`): to break an evaluation down by a property of the clip (its style)."""
        return self._draw_clip(index)[1]

    def __getitem__(self, index: int):
        rng, c = self._draw_clip(index)
        f = int(rng.choice(self.starts[c]))
        label = 1.0 if index % 2 == 0 else 0.0
        ac, af = (c, f) if label else self._negative(rng, c, f)
        try:
            face, mel = face_window_u8(self.clips[c], f), audio_window(self.clips[ac], af)
        except Exception as err:   # a bad sample must fail loudly and say where
            raise RuntimeError(f"sample {index}: clip {self.clips[c].clip_id} frame {f} / audio of "
                               f"{self.clips[ac].clip_id} frame {af}: {err}") from err
        return torch.from_numpy(face), torch.from_numpy(mel), torch.tensor(label)


def to_float(face: torch.Tensor) -> torch.Tensor:
    """A batch of face windows as float in [0, 1] (uint8 windows are divided by 255)."""
    return face.float().div_(255.0) if face.dtype == torch.uint8 else face.float()


@dataclass(frozen=True)
class Augment:
    """Ranges of the random per-window changes (one draw per window, the same for its 5 frames)."""

    rotate_deg: float = 15.0      # in-plane rotation +-
    scale: float = 0.15           # zoom factor in [1 - scale, 1 + scale]
    shift: float = 0.1            # translation +- this fraction of the crop's width / height
    mirror: bool = True           # horizontal flip with probability 1/2
    gain: float = 0.3             # per-colour gain in [1 - gain, 1 + gain]
    bias: float = 0.1             # per-colour offset +-
    contrast: float = 0.3         # contrast around the window mean in [1 - contrast, 1 + contrast]
    # Transfer to real footage (`transfer_batch`; 0 = off, the default, which draws nothing):
    blur_sigma: float = 0.0       # Gaussian blur, sigma uniform in [0, blur_sigma] pixels of the crop
    jpeg_quality: float = 0.0     # JPEG compression, quality uniform in [jpeg_quality, JPEG_QUALITY_MAX]
    gamma: float = 0.0            # gamma exp(+-gamma): x ** g, log g uniform in [-gamma, gamma]
    light_gradient: float = 0.0   # brightness ramp across the crop: gain 1 +- a at its edges, a in [0, this]

    @property
    def transfer(self) -> bool:
        """Whether any of the real-footage transfer changes is on."""
        return self.blur_sigma > 0 or self.jpeg_quality > 0 or self.gamma > 0 or self.light_gradient > 0


def augment_batch(face: torch.Tensor, gen: torch.Generator, aug: Augment = Augment(), colour: bool = True) -> torch.Tensor:
    """Random geometric (rotation, zoom, shift, mirror) and photometric changes of a batch of windows.

    face: (B, 15, 48, 96) float in [0, 1] -> same shape. Vectorised: one `grid_sample` for the batch
    (borders replicated), so augmentation costs a few milliseconds per batch instead of dominating
    the data path. Draws come from `gen` only (on the CPU), so a seeded generator makes it reproducible.
    With `colour=False` (for an expert that only looks at grey frames) each frame is first averaged to
    grey, which makes the resampling three times cheaper, and gain / bias are one per window. When any of
    `aug`'s real-footage ranges (blur, JPEG, gamma, lighting ramp) is set, `transfer_batch` follows.
    """
    b, ch, h, w = face.shape
    if not colour:
        face = face.view(b, N_FRAMES, 3, h, w).mean(dim=2)
    u = lambda *shape: torch.rand(*shape, generator=gen).to(face.device) * 2 - 1     # uniform in [-1, 1]
    angle = u(b) * math.radians(aug.rotate_deg)
    zoom = 1 + u(b) * aug.scale
    flip = torch.where(torch.rand(b, generator=gen).to(face.device) < 0.5, -1.0, 1.0) if aug.mirror \
        else torch.ones(b, device=face.device)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    # affine_grid works in normalised coordinates; the crop is twice as wide as high, so rotate in pixels.
    theta = torch.stack([torch.stack([cos * flip, -sin * h / w, u(b) * aug.shift * 2], 1),
                         torch.stack([sin * w / h * flip, cos, u(b) * aug.shift * 2], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta, (b, face.shape[1], h, w), align_corners=False)
    x = torch.nn.functional.grid_sample(face, grid, mode="bilinear", padding_mode="border", align_corners=False)
    c = 3 if colour else 1
    x = x.view(b, N_FRAMES, c, h, w)
    mean = x.mean(dim=(1, 2, 3, 4), keepdim=True)
    contrast = 1 + u(b, 1, 1, 1, 1) * aug.contrast
    gain = 1 + u(b, 1, c, 1, 1) * aug.gain
    bias = u(b, 1, c, 1, 1) * aug.bias
    x = (((x - mean) * contrast + mean).clamp_(0, 1) * gain + bias).clamp_(0, 1)
    if aug.transfer:
        x = transfer_batch(x, gen, aug)
    return x.view(b, ch, h, w) if colour else x.expand(b, N_FRAMES, 3, h, w).reshape(b, ch, h, w)


def warp_mel(mel: torch.Tensor, gen: torch.Generator, warp: float) -> torch.Tensor:
    """Random vocal-tract-length-like warp of a batch of mel windows (B, 1, 80, 16) along frequency.

    Each window's band axis is stretched by a factor in [1 - warp, 1 + warp] about 0 Hz (VTLP, Jaitly &
    Hinton 2013): a speaker with a shorter or longer vocal tract, so the audio encoder does not key on
    the training voices' formant positions. Time is untouched (alignment is what the expert learns).
    """
    if warp <= 0:
        return mel
    b = mel.shape[0]
    alpha = 1 + (torch.rand(b, generator=gen) * 2 - 1).to(mel.device) * warp
    zero, one = torch.zeros_like(alpha), torch.ones_like(alpha)
    theta = torch.stack([torch.stack([one, zero, zero], 1), torch.stack([zero, alpha, alpha - 1], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta, tuple(mel.shape), align_corners=True)
    return torch.nn.functional.grid_sample(mel, grid, mode="bilinear", padding_mode="border", align_corners=True)


JPEG_QUALITY_MAX = 95.0
"""Highest JPEG quality `transfer_batch` draws (libjpeg's usual top setting; near lossless)."""

JPEG_LUMA_TABLE = torch.tensor([
    [16, 11, 10, 16, 24, 40, 51, 61],
    [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77],
    [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101],
    [72, 92, 95, 98, 112, 100, 103, 99]], dtype=torch.float32)
"""The JPEG standard's example luminance quantisation table at quality 50 (ITU-T T.81, Annex K.1)."""


def _dct_matrix(n: int = 8) -> torch.Tensor:
    """Orthonormal DCT-II matrix D (n, n): coefficients = D @ block @ D.T, block = D.T @ coefficients @ D."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None]
    d = torch.cos((2 * i + 1) * k * math.pi / (2 * n)) * math.sqrt(2 / n)
    d[0] /= math.sqrt(2)
    return d.float()


_DCT8 = _dct_matrix()


def jpeg_quant_table(quality: torch.Tensor) -> torch.Tensor:
    """Luminance quantisation tables (N, 8, 8) of JPEG qualities (N,) in [1, 100], as libjpeg scales them.

    IJG libjpeg `jpeg_quality_scaling` / `jpeg_add_quant_table`: scale = 5000 / q below 50, else
    200 - 2 q (both floored to integers), table = floor((K.1 table * scale + 50) / 100) clipped to [1, 255].
    Raises ValueError for a quality outside [1, 100].
    """
    if quality.numel() and not bool(((quality >= 1) & (quality <= 100)).all()):
        raise ValueError(f"JPEG quality must lie in [1, 100], got {quality.min().item()}..{quality.max().item()}")
    q = quality.float()
    scale = torch.where(q < 50, 5000.0 / q, 200.0 - 2.0 * q).floor()
    table = JPEG_LUMA_TABLE.to(q.device)
    return ((table * scale[:, None, None] + 50) / 100).floor().clamp(1, 255)


def jpeg_luma(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Baseline JPEG encode + decode of grey images: 8x8 DCT, quantisation, inverse DCT, 8-bit rounding.

    x: (N, 1, H, W) float in [0, 1] (H, W multiples of 8; the 48x96 mouth crop is), quality: (N,) in
    [1, 100] -> (N, 1, H, W) float in [0, 1] on the 1/255 grid. What a JPEG encoder does to a grey image
    (its chroma is zero, so only the luminance path acts; ITU-T T.81 baseline, libjpeg's table scaling,
    `jpeg_quant_table`), written as batched matrix products: ~25x faster on one thread than the colour
    `kornia.enhance.jpeg_codec_differentiable`, which it matches on grey images up to that codec's
    differentiable rounding. Rounding here is hard (this is an augmentation, not a training target).
    Raises ValueError for a shape that is not (N, 1, H, W) with H, W multiples of 8.
    """
    n, c, h, w = x.shape
    if c != 1 or h % 8 or w % 8:
        raise ValueError(f"jpeg_luma: x must be (N, 1, H, W) with H, W multiples of 8, got {tuple(x.shape)}")
    if quality.shape != (n,):
        raise ValueError(f"jpeg_luma: quality must be ({n},), one per image, got {tuple(quality.shape)}")
    d = _DCT8.to(x.device)
    blocks = (x.reshape(n, h // 8, 8, w // 8, 8).transpose(2, 3) * 255.0 - 128.0)   # (N, h/8, w/8, 8, 8)
    coef = d @ blocks @ d.T
    table = jpeg_quant_table(quality.to(x.device))[:, None, None]
    coef = torch.round(coef / table) * table
    out = (d.T @ coef @ d + 128.0).round_().clamp_(0, 255) / 255.0
    return out.transpose(2, 3).reshape(n, 1, h, w)


def transfer_batch(x: torch.Tensor, gen: torch.Generator, aug: Augment) -> torch.Tensor:
    """Photometric changes that make clean synthetic mouth crops look like real recorded ones.

    x: (B, 5, C, H, W) float in [0, 1], C = 3 (RGB) or 1 (grey), the frames of B windows -> same shape
    and dtype, in [0, 1]. One draw per window, the same for its 5 frames, in the order a camera and a
    codec apply them: lighting (gamma x ** g with log g uniform in +-`aug.gamma`; a linear brightness
    ramp across the crop in a uniform random direction, gain 1 +- a at the crop's edges, a uniform in
    [0, `aug.light_gradient`]), optical / resampling blur (Gaussian, sigma uniform in
    [0, `aug.blur_sigma`] pixels, `kornia.filters.gaussian_blur2d`), then JPEG compression (quality
    uniform in [`aug.jpeg_quality`, JPEG_QUALITY_MAX]: `jpeg_luma` for grey frames,
    `kornia.enhance.jpeg_codec_differentiable` for colour). A change whose range is 0 is skipped and
    draws nothing from `gen`, so a run with all of them off draws exactly what it drew before they
    existed. Batched: no per-window Python loop.
    """
    b, t, c, h, w = x.shape
    if aug.jpeg_quality and not 1 <= aug.jpeg_quality <= JPEG_QUALITY_MAX:
        raise ValueError(f"Augment.jpeg_quality must be 0 (off) or in [1, {JPEG_QUALITY_MAX}], got {aug.jpeg_quality}")
    rand = lambda *shape: torch.rand(*shape, generator=gen).to(x.device)        # uniform in [0, 1)
    if aug.gamma > 0:
        g = torch.exp((rand(b) * 2 - 1) * aug.gamma).view(b, 1, 1, 1, 1)
        x = x.clamp(min=0) ** g
    if aug.light_gradient > 0:
        phi = rand(b) * 2 * math.pi
        amp = rand(b) * aug.light_gradient
        xs = torch.linspace(-1, 1, w, device=x.device)
        ys = torch.linspace(-1, 1, h, device=x.device) * (h / w)      # pixel-isotropic: same slope per pixel
        ramp = torch.cos(phi)[:, None, None] * xs[None, None] + torch.sin(phi)[:, None, None] * ys[None, :, None]
        x = (x * (1 + amp[:, None, None] * ramp).view(b, 1, 1, h, w)).clamp(0, 1)
    if aug.blur_sigma > 0:
        from kornia.filters import gaussian_blur2d
        sigma = (rand(b) * aug.blur_sigma).clamp(min=1e-3).repeat_interleave(t)
        k = 2 * math.ceil(3 * aug.blur_sigma) + 1
        x = gaussian_blur2d(x.reshape(b * t, c, h, w), (k, k), torch.stack([sigma, sigma], 1),
                            border_type="replicate").view(b, t, c, h, w)
    if aug.jpeg_quality > 0:
        quality = (aug.jpeg_quality + rand(b) * (JPEG_QUALITY_MAX - aug.jpeg_quality)).repeat_interleave(t)
        if c == 1:
            x = jpeg_luma(x.reshape(b * t, 1, h, w), quality).view(b, t, c, h, w)
        else:
            from kornia.enhance import jpeg_codec_differentiable
            x = jpeg_codec_differentiable(x.reshape(b * t, c, h, w).clamp(0, 1), quality).clamp(0, 1).view(b, t, c, h, w)
    return x.to(torch.float32) if x.dtype != torch.float32 else x
