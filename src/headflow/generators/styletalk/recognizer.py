"""A frame-level phone recogniser: mel spectrogram -> StyleTalk phoneme label per video frame.

StyleTalk needs phonemes for any new audio and our aligner needs a transcript; this classifier labels
frames without one (issue 18, "Inference without a transcript"). Frame classification, not CTC: the
corpus's aligned frame labels (`align` -> `shard_labels`, frame t labelled at its centre) are the targets.

Input of frame t: the Wav2Lip mel window of that frame, mel[int(80 t / fps) : int(80 t / fps) + 16]
(docs/DESIGN.md "Media and data conventions": 200 ms, 80 mel bands); frames without a full window are
not labelled (returned invalid), never padded. Network (ours): three Conv1d(k 3)-BatchNorm-ReLU layers
over the 16 mel frames, mean over time, a linear layer to the 41 classes. Trained with cross-entropy.
Transcripts and the forced aligner stay the default; this is for clips without a transcript.

Two options for transfer to other voices and recordings, both off by default and measured in
bench/styletalk_recognizer.py on real speech: `cmvn` (the mel of the whole utterance normalised per
band, `cmvn_mel`: the sync expert's per-utterance CMVN, `headflow.sync.data.cmvn_mel`), and SpecAugment-style
masking during training (Park et al. 2019, "SpecAugment": one band of up to `freq_mask` mel channels and
one span of up to `time_mask` mel frames per training window set to the window's mean).

Exported file (`save_recognizer` / `load_recognizer`): `recognizer.pt`, format `headflow.styletalk_recognizer/1`,
written by the `train_styletalk_disc` stage beside `discriminators.pt`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from headflow.generators.styletalk.params import N_PHONEMES

MEL_WINDOW = 16
MEL_PER_S = 80.0
RECOGNIZER_FORMAT = "headflow.styletalk_recognizer/1"


def cmvn_mel(mel: np.ndarray) -> np.ndarray:
    """Per-utterance CMVN of a mel (T_mel, 80): each band minus its mean over the utterance, over the
    centred mel's overall std (+ 1e-3). The sync expert's definition (`headflow.sync.data.cmvn_mel`; a family
    may not import `sync/`, a test checks both agree). Returns float32 of the same shape."""
    mel = np.asarray(mel, np.float32)
    centred = mel - mel.mean(0, keepdims=True)
    return (centred / (centred.std() + 1e-3)).astype(np.float32)


def mel_windows(mel: np.ndarray, n_frames: int, fps: float = 25.0) -> tuple[np.ndarray, np.ndarray]:
    """The mel window of every video frame that has a full one.

    Args:
        mel: (T_mel, 80) float32.
        n_frames: video frames.

    Returns:
        ((N, 80, 16) float32 windows, (N,) int64 frame indices): frames 0..N-1 whose window lies in the mel.
    """
    starts = (np.arange(n_frames) * MEL_PER_S / fps).astype(np.int64)
    ok = starts + MEL_WINDOW <= len(mel)
    frames = np.flatnonzero(ok)
    idx = starts[frames, None] + np.arange(MEL_WINDOW)[None]
    return np.ascontiguousarray(np.asarray(mel, np.float32)[idx].transpose(0, 2, 1)), frames


class PhoneRecognizer(nn.Module):
    """(B, 80, 16) mel windows -> (B, 41) logits over StyleTalk's phonemes.

    Args:
        width: channels of the three conv layers.
        cmvn: the network reads the utterance's mel after `cmvn_mel` (`prepare` applies it; the network
            itself sees one window and cannot).
    """

    def __init__(self, width: int = 64, n_mels: int = 80, n_classes: int = N_PHONEMES, cmvn: bool = False):
        super().__init__()
        self.width, self.n_mels, self.n_classes, self.cmvn = width, n_mels, n_classes, bool(cmvn)
        layers: list[nn.Module] = []
        c = n_mels
        for _ in range(3):
            layers += [nn.Conv1d(c, width, 3, padding=1), nn.BatchNorm1d(width), nn.ReLU()]
            c = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean(-1))

    def prepare(self, mel: np.ndarray) -> np.ndarray:
        """A whole utterance's mel (T_mel, 80) as this network reads it (CMVN'd when `cmvn`)."""
        return cmvn_mel(mel) if self.cmvn else np.asarray(mel, np.float32)


@dataclass
class LabelledAudio:
    """One clip's mel and per-frame labels."""

    mel: np.ndarray         # (T_mel, 80)
    phones: np.ndarray      # (T,) StyleTalk indices
    valid: np.ndarray       # (T,) frames with a label
    fps: float = 25.0


def _dataset(clips: list[LabelledAudio], cmvn: bool = False) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for c in clips:
        x, f = mel_windows(cmvn_mel(c.mel) if cmvn else c.mel, len(c.phones), c.fps)
        keep = np.asarray(c.valid, bool)[f]
        xs.append(x[keep])
        ys.append(np.asarray(c.phones, np.int64)[f][keep])
    return np.concatenate(xs), np.concatenate(ys)


def spec_augment(x: torch.Tensor, freq_mask: int, time_mask: int, rng: np.random.Generator) -> torch.Tensor:
    """SpecAugment-style masking of a batch of mel windows (B, 80, 16) (Park et al. 2019, sec. 2: frequency and
    time masking, without time warping): per window one band [f0, f0 + f) with f ~ U{0..freq_mask} and one span
    [t0, t0 + t) with t ~ U{0..time_mask} set to the window's mean. Returns a new tensor; 0 / 0 returns `x`."""
    if freq_mask <= 0 and time_mask <= 0:
        return x
    out = x.clone()
    B, n_mels, n_t = x.shape
    mean = x.mean(dim=(1, 2))
    for b in range(B):
        f = int(rng.integers(0, freq_mask + 1)) if freq_mask > 0 else 0
        if f:
            f0 = int(rng.integers(0, n_mels - f + 1))
            out[b, f0:f0 + f, :] = mean[b]
        t = int(rng.integers(0, min(time_mask, n_t) + 1)) if time_mask > 0 else 0
        if t:
            t0 = int(rng.integers(0, n_t - t + 1))
            out[b, :, t0:t0 + t] = mean[b]
    return out


DB_PER_UNIT = 12.5
"""dB per unit of the Wav2Lip-normalised mel: 100 dB (min_level_db) spread over [-4, 4] (`audio.mel`)."""


def add_noise_floor(mel: np.ndarray, level: float, tilt: float, rng: np.random.Generator, jitter: float = 0.1
                    ) -> np.ndarray:
    """The Wav2Lip-normalised mel (T, 80) of the same audio with stationary background noise added.

    Each value v is an amplitude 10^(12.5 v / 20) (up to a constant: `audio.mel` maps 100 dB onto [-4, 4]); the
    noise's amplitude per band b and frame t is that of the normalised level level + tilt * (b / 79 - 0.5) +
    N(0, jitter); the two add in power (uncorrelated signals): a' = sqrt(a^2 + n^2), mapped back and clipped to
    [-4, 4]. Silence then sits at the noise floor, as in a real room, not at the -4 of digital silence.

    Args:
        level: the noise floor in normalised units (-4: none audible; real recordings measure about -2.5 .. -1.8).
        tilt: spectral slope of the noise, normalised units from the lowest to the highest band.
    """
    mel = np.asarray(mel, np.float64)
    bands = level + tilt * (np.arange(mel.shape[1]) / max(mel.shape[1] - 1, 1) - 0.5)
    noise = bands[None] + rng.normal(0, jitter, mel.shape)
    k = DB_PER_UNIT / 20 * np.log(10)
    # log(e^(2ka) + e^(2kn)) / (2k), computed stably
    out = np.logaddexp(2 * k * mel, 2 * k * noise) / (2 * k)
    return np.clip(out, -4.0, 4.0).astype(np.float32)


def noisy_copies(clips: list[LabelledAudio], copies: int, floor: tuple[float, float], rng: np.random.Generator
                 ) -> list[LabelledAudio]:
    """`copies` noisy versions of each clip (`add_noise_floor`, level ~ U[floor], tilt ~ U[-1, 1] per copy)."""
    out = []
    for c in clips:
        for _ in range(copies):
            mel = add_noise_floor(c.mel, float(rng.uniform(*floor)), float(rng.uniform(-1, 1)), rng)
            out.append(LabelledAudio(mel, c.phones, c.valid, c.fps))
    return out


def train_recognizer(clips: list[LabelledAudio], steps: int = 500, batch: int = 64, lr: float = 1e-3, width: int = 64,
                     seed: int = 0, cmvn: bool = False, freq_mask: int = 0, time_mask: int = 0, noise_copies: int = 0,
                     noise_floor: tuple[float, float] = (-3.0, -1.5)) -> PhoneRecognizer:
    """Train on the clips' labelled frames (Adam, cross-entropy, batches drawn with `seed`).

    Args:
        cmvn: train (and later recognise) on `cmvn_mel` of each clip's mel.
        freq_mask, time_mask: SpecAugment widths (`spec_augment`; 0 = off).
        noise_copies: add this many copies of each clip with a background noise floor (`noisy_copies`; the
            noise is added before CMVN, as a recording's would be).
        noise_floor: the range of the copies' noise levels (normalised mel units).

    Raises:
        ValueError: no labelled frame with a full mel window.
    """
    rng = np.random.default_rng(seed)
    if noise_copies:
        clips = list(clips) + noisy_copies(clips, noise_copies, noise_floor, rng)
    x, y = _dataset(clips, cmvn)
    if len(x) == 0:
        raise ValueError("train_recognizer: no labelled frame has a full mel window")
    torch.manual_seed(seed)
    net = PhoneRecognizer(width, cmvn=cmvn)
    opt = torch.optim.Adam(net.parameters(), lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    net.train()
    for _ in range(steps):
        i = torch.from_numpy(rng.integers(0, len(x), batch))
        loss = F.cross_entropy(net(spec_augment(xt[i], freq_mask, time_mask, rng)), yt[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


@torch.no_grad()
def recognise(net: PhoneRecognizer, mel: np.ndarray, n_frames: int, fps: float = 25.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame labels (T,) int64 and validity (T,) bool (False: no full mel window; label 31 = SIL there)."""
    from headflow.generators.styletalk.params import SILENCE

    x, f = mel_windows(net.prepare(mel), n_frames, fps)
    out = np.full(n_frames, SILENCE, np.int64)
    valid = np.zeros(n_frames, bool)
    if len(f):
        out[f] = net.eval()(torch.from_numpy(x)).argmax(-1).numpy()
        valid[f] = True
    return out, valid


def frame_accuracy(net: PhoneRecognizer, clips: list[LabelledAudio]) -> float:
    """Fraction of labelled frames (with a full mel window) the recogniser labels right."""
    x, y = _dataset(clips, net.cmvn)
    with torch.no_grad():
        pred = net.eval()(torch.from_numpy(x)).argmax(-1).numpy()
    return float((pred == y).mean()) if len(y) else float("nan")


def save_recognizer(net: PhoneRecognizer, path: Path, meta: dict[str, Any] | None = None) -> str:
    """Export `net` to `path` (atomic `torch.save`, format `RECOGNIZER_FORMAT`) with `meta` (plain data: the
    training settings, frame counts); returns the file's sha256."""
    from headflow.training.checkpoint import save_export

    return save_export({"format": RECOGNIZER_FORMAT, "width": net.width, "n_mels": net.n_mels,
                        "n_classes": net.n_classes, "cmvn": net.cmvn, "meta": dict(meta or {}),
                        "state_dict": net.state_dict()}, Path(path))


def load_recognizer(path: Path) -> tuple[PhoneRecognizer, dict[str, Any]]:
    """A recogniser exported by `save_recognizer`, in eval mode, and its `meta`.

    Raises:
        FileNotFoundError: no file (the message says which stage writes it).
        ValueError: a file of another format.
    """
    from headflow.training.checkpoint import load_export

    state = load_export(path, RECOGNIZER_FORMAT, "phone recogniser", "`dvc repro train_styletalk_disc` writes it "
                        "(train_styletalk_disc.recognizer.steps > 0), or set generate_styletalk.recognizer: off")
    net = PhoneRecognizer(int(state["width"]), int(state["n_mels"]), int(state["n_classes"]), bool(state["cmvn"]))
    net.load_state_dict(state["state_dict"])
    return net.eval(), dict(state["meta"])
