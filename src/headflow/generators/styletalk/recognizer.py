"""A frame-level phone recogniser: mel spectrogram -> StyleTalk phoneme label per video frame.

StyleTalk needs phonemes for any new audio and our aligner needs a transcript; this classifier labels
frames without one (issue 18, "Inference without a transcript"). Frame classification, not CTC: the
corpus's aligned frame labels (`align` -> `shard_labels`, frame t labelled at its centre) are the targets.

Input of frame t: the Wav2Lip mel window of that frame, mel[int(80 t / fps) : int(80 t / fps) + 16]
(docs/DESIGN.md "Media and data conventions": 200 ms, 80 mel bands); frames without a full window are
not labelled (returned invalid), never padded. Network (ours): three Conv1d(k 3)-BatchNorm-ReLU layers
over the 16 mel frames, mean over time, a linear layer to the 41 classes. Trained with cross-entropy.
Transcripts and the forced aligner stay the default; this is for clips without a transcript.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from headflow.generators.styletalk.params import N_PHONEMES

MEL_WINDOW = 16
MEL_PER_S = 80.0


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
    """(B, 80, 16) mel windows -> (B, 41) logits over StyleTalk's phonemes."""

    def __init__(self, width: int = 64, n_mels: int = 80, n_classes: int = N_PHONEMES):
        super().__init__()
        layers: list[nn.Module] = []
        c = n_mels
        for _ in range(3):
            layers += [nn.Conv1d(c, width, 3, padding=1), nn.BatchNorm1d(width), nn.ReLU()]
            c = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean(-1))


@dataclass
class LabelledAudio:
    """One clip's mel and per-frame labels."""

    mel: np.ndarray         # (T_mel, 80)
    phones: np.ndarray      # (T,) StyleTalk indices
    valid: np.ndarray       # (T,) frames with a label
    fps: float = 25.0


def _dataset(clips: list[LabelledAudio]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for c in clips:
        x, f = mel_windows(c.mel, len(c.phones), c.fps)
        keep = np.asarray(c.valid, bool)[f]
        xs.append(x[keep])
        ys.append(np.asarray(c.phones, np.int64)[f][keep])
    return np.concatenate(xs), np.concatenate(ys)


def train_recognizer(clips: list[LabelledAudio], steps: int = 500, batch: int = 64, lr: float = 1e-3, width: int = 64,
                     seed: int = 0) -> PhoneRecognizer:
    """Train on the clips' labelled frames (Adam, cross-entropy, batches drawn with `seed`).

    Raises:
        ValueError: no labelled frame with a full mel window.
    """
    x, y = _dataset(clips)
    if len(x) == 0:
        raise ValueError("train_recognizer: no labelled frame has a full mel window")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = PhoneRecognizer(width)
    opt = torch.optim.Adam(net.parameters(), lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    net.train()
    for _ in range(steps):
        i = torch.from_numpy(rng.integers(0, len(x), batch))
        loss = F.cross_entropy(net(xt[i]), yt[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


@torch.no_grad()
def recognise(net: PhoneRecognizer, mel: np.ndarray, n_frames: int, fps: float = 25.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame labels (T,) int64 and validity (T,) bool (False: no full mel window; label 31 = SIL there)."""
    from headflow.generators.styletalk.params import SILENCE

    x, f = mel_windows(mel, n_frames, fps)
    out = np.full(n_frames, SILENCE, np.int64)
    valid = np.zeros(n_frames, bool)
    if len(f):
        out[f] = net.eval()(torch.from_numpy(x)).argmax(-1).numpy()
        valid[f] = True
    return out, valid


def frame_accuracy(net: PhoneRecognizer, clips: list[LabelledAudio]) -> float:
    """Fraction of labelled frames (with a full mel window) the recogniser labels right."""
    x, y = _dataset(clips)
    with torch.no_grad():
        pred = net.eval()(torch.from_numpy(x)).argmax(-1).numpy()
    return float((pred == y).mean()) if len(y) else float("nan")
