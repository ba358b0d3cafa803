"""A user-provided `syncnet_v2.model` (Chung & Zisserman's SyncNet as released in syncnet_python).

The network is rebuilt layer for layer from syncnet_python's `SyncNetModel.S` (module names and
parameter shapes match, so the released state_dict loads with `strict=True`); the weights are never
downloaded at run time: they are the registry entry `syncnet_v2` of `headflow.models` (put the file
in `$HEADFLOW_MODELS`, or `headflow models fetch syncnet_v2` where a network exists).

Inputs, as syncnet_python feeds them:
    video: Float[Tensor, "batch 3 5 224 224"]  5 consecutive 224x224 face crops, BGR, 0..255 (not scaled)
    audio: Float[Tensor, "batch 1 13 20"]      13 MFCCs x 20 frames (0.2 s at 100 Hz) of int16-scaled audio
Outputs: 1024-d embeddings (not normalised); the sync scores use Euclidean distances between them
(`headflow.metrics.lse.offset_distances` / `score_distances` apply unchanged).

`mfcc` reimplements python_speech_features.mfcc with its defaults (25 ms rectangular frames every
10 ms, 512-point FFT, 26 mel filters 0-8 kHz, pre-emphasis 0.97, DCT-II ortho, lifter 22, the first
coefficient replaced by the log frame energy). Video frame f pairs with MFCC frames 4f..4f+20.

Not provided: syncnet_python's S3FD face-track crop (its boxes are larger than the landmark boxes of
the `faces` stage), so this loader is not wired into `sync_check`; callers bring the 224x224 crops.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import nn

MODEL_NAME = "syncnet_v2"
MFCC_PER_VIDEO_FRAME = 4
MFCC_WINDOW = 20


def _bn_relu(conv: nn.Module, channels: int, bn: type) -> list[nn.Module]:
    return [conv, bn(channels), nn.ReLU(inplace=True)]


class SyncNetV2(nn.Module):
    """syncnet_python's `S`: audio CNN + FC, lip 3D-CNN + FC. Indices of the Sequentials match the release."""

    def __init__(self, embedding_size: int = 1024):
        super().__init__()
        b2, b3 = nn.BatchNorm2d, nn.BatchNorm3d
        self.netcnnaud = nn.Sequential(
            *_bn_relu(nn.Conv2d(1, 64, 3, 1, 1), 64, b2), nn.MaxPool2d(1, 1),
            *_bn_relu(nn.Conv2d(64, 192, 3, 1, 1), 192, b2), nn.MaxPool2d(3, (1, 2)),
            *_bn_relu(nn.Conv2d(192, 384, 3, padding=1), 384, b2),
            *_bn_relu(nn.Conv2d(384, 256, 3, padding=1), 256, b2),
            *_bn_relu(nn.Conv2d(256, 256, 3, padding=1), 256, b2), nn.MaxPool2d(3, 2),
            nn.Conv2d(256, 512, (5, 4)), nn.BatchNorm2d(512), nn.ReLU(),
        )
        self.netfcaud = nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(),
                                      nn.Linear(512, embedding_size))
        self.netfclip = nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(),
                                      nn.Linear(512, embedding_size))
        self.netcnnlip = nn.Sequential(
            *_bn_relu(nn.Conv3d(3, 96, (5, 7, 7), (1, 2, 2)), 96, b3), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            *_bn_relu(nn.Conv3d(96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)), 256, b3),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            *_bn_relu(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, b3),
            *_bn_relu(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, b3),
            *_bn_relu(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, b3),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            *_bn_relu(nn.Conv3d(256, 512, (1, 6, 6)), 512, b3),
        )

    def embed_audio(self, mfcc: torch.Tensor) -> torch.Tensor:
        """(B, 1, 13, 20) -> (B, 1024)."""
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def embed_face(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, 5, 224, 224) BGR 0..255 -> (B, 1024)."""
        return self.netfclip(self.netcnnlip(video).flatten(1))


def load_syncnet(path: str | Path | None = None, device: str = "cpu") -> SyncNetV2:
    """The released SyncNet from `path`, or from the weights registry (`headflow models list`)."""
    from headflow.models import require

    path = Path(path) if path is not None else require(MODEL_NAME)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:   # a corrupt or foreign file
        raise ValueError(f"{path}: cannot be read as syncnet_python's syncnet_v2.model ({type(err).__name__}); "
                         f"place the released file there again (`headflow models list` gives its source)") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state_dict (syncnet_python's syncnet_v2.model), got {type(state).__name__}")
    model = SyncNetV2().to(device)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: not a syncnet_python SyncNet state_dict (missing {missing[:4]}, "
                         f"unexpected {unexpected[:4]})")
    return model.eval()


def _hz2mel(hz):
    return 2595 * np.log10(1 + np.asarray(hz) / 700.0)


def _mel2hz(mel):
    return 700 * (10 ** (np.asarray(mel) / 2595.0) - 1)


def _filterbank(nfilt: int, nfft: int, sr: int) -> np.ndarray:
    bins = np.floor((nfft + 1) * _mel2hz(np.linspace(_hz2mel(0), _hz2mel(sr / 2), nfilt + 2)) / sr)
    fb = np.zeros((nfilt, nfft // 2 + 1))
    for j in range(nfilt):
        lo, mid, hi = int(bins[j]), int(bins[j + 1]), int(bins[j + 2])
        for i in range(lo, mid):
            fb[j, i] = (i - bins[j]) / (bins[j + 1] - bins[j])
        for i in range(mid, hi):
            fb[j, i] = (bins[j + 2] - i) / (bins[j + 2] - bins[j + 1])
    return fb


def mfcc(audio: np.ndarray, sr: int = 16000, numcep: int = 13, nfilt: int = 26, nfft: int = 512,
         winlen: float = 0.025, winstep: float = 0.01, preemph: float = 0.97, ceplifter: int = 22) -> np.ndarray:
    """(n_frames, 13) MFCCs at 100 Hz, python_speech_features-compatible. `audio`: int16-scaled samples."""
    from scipy.fftpack import dct

    x = np.asarray(audio, dtype=np.float64)
    x = np.append(x[0], x[1:] - preemph * x[:-1])
    flen, step = int(round(winlen * sr)), int(round(winstep * sr))
    n = 1 if len(x) <= flen else 1 + int(math.ceil((len(x) - flen) / step))
    x = np.concatenate([x, np.zeros((n - 1) * step + flen - len(x))])
    frames = x[np.arange(flen)[None] + step * np.arange(n)[:, None]]
    power = np.abs(np.fft.rfft(frames, nfft)) ** 2 / nfft
    eps = np.finfo(float).eps
    energy = power.sum(1)
    energy[energy == 0] = eps
    feat = power @ _filterbank(nfilt, nfft, sr).T
    feat[feat == 0] = eps
    cep = dct(np.log(feat), type=2, axis=1, norm="ortho")[:, :numcep]
    cep *= 1 + (ceplifter / 2) * np.sin(np.pi * np.arange(numcep) / ceplifter)
    cep[:, 0] = np.log(energy)
    return cep


def audio_windows(cep: np.ndarray, n_video_frames: int) -> np.ndarray:
    """(N, 1, 13, 20) float32: the MFCC window of every video frame whose window is complete."""
    n = min(n_video_frames, (len(cep) - MFCC_WINDOW) // MFCC_PER_VIDEO_FRAME + 1)
    if n <= 0:
        raise ValueError(f"{len(cep)} MFCC frames give no complete {MFCC_WINDOW}-frame window")
    return np.stack([cep[f * 4:f * 4 + MFCC_WINDOW].T[None] for f in range(n)]).astype(np.float32)
