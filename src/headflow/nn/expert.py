"""The Wav2Lip lip-sync expert (SyncNet_color): face and audio encoders, cosine-similarity sync probability.

Input shapes (Wav2Lip convention):
    face:  Float[Tensor, "batch 15 48 96"]   5 consecutive RGB frames of the lower half of the 96x96 face
                                             crop, stacked on channels, in [0, 1]
    audio: Float[Tensor, "batch 1 80 16"]    the 16-frame (0.2 s) mel window of the first frame
Output: L2-normalised embeddings (ReLU first, so cosine similarity lies in [0, 1] and is read as the
probability of sync; trained with binary cross-entropy).

`width` scales every channel count (1.0 = the published expert, 512-d embeddings); `depth` is the
number of residual blocks after each strided stage. `PUBLISHED_EXPERT` holds the published settings;
`ExpertConfig()` the `train_expert` stage's.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from headflow.nn.expert_config import GREY_INPUTS, PUBLISHED_EXPERT, ExpertConfig

__all__ = ["GREY_INPUTS", "PUBLISHED_EXPERT", "ExpertConfig", "SyncExpert", "sync_loss", "sync_probability"]


class Conv2d(nn.Module):
    """Conv + BatchNorm + ReLU, with an optional identity residual (Wav2Lip's building block)."""

    def __init__(self, cin: int, cout: int, kernel, stride, padding, residual: bool = False):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding), nn.BatchNorm2d(cout))
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.residual:
            out = out + x
        return F.relu(out)


def _stage(cin: int, cout: int, kernel, stride, padding, depth: int) -> list[nn.Module]:
    layers: list[nn.Module] = [Conv2d(cin, cout, kernel, stride, padding)]
    layers += [Conv2d(cout, cout, 3, 1, 1, residual=True) for _ in range(depth)]
    return layers


class SyncExpert(nn.Module):
    """Two encoders ending in L2-normalised embeddings of the same size."""

    def __init__(self, cfg: ExpertConfig = ExpertConfig()):
        super().__init__()
        cfg.validate()
        self.config = cfg
        c = [max(8, int(round(n * cfg.width))) for n in (32, 64, 128, 256, 512)]
        d = cfg.depth
        # Face: 48x96 -> 1x1 through five strided stages (as Wav2Lip's face_encoder).
        self.face_encoder = nn.Sequential(
            Conv2d(15, c[0], (7, 7), 1, 3),
            *_stage(c[0], c[1], 5, (1, 2), 1, d - 1),      # 48x96 -> 46x47
            *_stage(c[1], c[2], 3, 2, 1, d),               # -> 23x24
            *_stage(c[2], c[3], 3, 2, 1, d),               # -> 12x12
            *_stage(c[3], c[4], 3, 2, 1, d - 1),           # -> 6x6
            Conv2d(c[4], c[4], 3, 2, 1), Conv2d(c[4], c[4], 3, 1, 0),   # -> 3x3 -> 1x1
            Conv2d(c[4], c[4], 1, 1, 0),
        )
        # Audio: 80x16 -> 1x1.
        self.audio_encoder = nn.Sequential(
            Conv2d(1, c[0], 3, 1, 1),
            *_stage(c[0], c[0], 3, 1, 1, d - 1)[1:] or [nn.Identity()],
            *_stage(c[0], c[1], 3, (3, 1), 1, d - 1),      # 80x16 -> 27x16
            *_stage(c[1], c[2], 3, 3, 1, d - 1),           # -> 9x6
            *_stage(c[2], c[3], 3, (3, 2), 1, d - 1),      # -> 3x3
            Conv2d(c[3], c[4], 3, 1, 0), Conv2d(c[4], c[4], 1, 1, 0),   # -> 1x1
        )
        self.embedding_size = c[4]
        self.face_input, self.audio_input = cfg.face_input, cfg.audio_input
        self.face_centre, self.audio_centre = cfg.face_centre, cfg.audio_centre
        self.dropout = nn.Dropout(cfg.embed_dropout)

    def prepare_face(self, face: torch.Tensor) -> torch.Tensor:
        if self.face_input == "rgb":
            return face
        b, _, h, w = face.shape
        x = face.reshape(b, 5, 3, h, w)
        if self.face_input == "gray_motion_norm":
            g = x.mean(dim=2)                                               # (b, 5, h, w)
            g = g - g.mean(dim=(1, 2, 3), keepdim=True)
            g = g / (g.flatten(1).std(dim=1).view(b, 1, 1, 1) + 0.02)
            motion = (g - g.mean(dim=1, keepdim=True)) * 2.0
            return torch.stack([g, motion, torch.zeros_like(g)], dim=2).reshape(b, 15, h, w)
        if self.face_input == "gray_norm":
            g = x.mean(dim=2)                                               # (b, 5, h, w)
            g = g - g.mean(dim=(1, 2, 3), keepdim=True)
            g = g / (g.flatten(1).std(dim=1).view(b, 1, 1, 1) + 0.02)
            return g.unsqueeze(2).expand(b, 5, 3, h, w).reshape(b, 15, h, w)
        if self.face_input == "motion_norm":
            g = x.mean(dim=2)                                               # (b, 5, h, w)
            g = g - g.mean(dim=1, keepdim=True)
            g = g / (g.flatten(1).std(dim=1).view(b, 1, 1, 1) + 0.01)
            return g.unsqueeze(2).expand(b, 5, 3, h, w).reshape(b, 15, h, w)
        if self.face_input in ("gray", "motion"):
            x = x.mean(dim=2, keepdim=True).expand(b, 5, 3, h, w)
        if self.face_input in ("motion", "rgb_motion"):
            x = (x - x.mean(dim=1, keepdim=True)) * 4.0
        elif self.face_input != "gray":
            raise ValueError(f"unknown face_input {self.face_input!r}")
        return x.reshape(b, 15, h, w)

    def prepare_audio(self, mel: torch.Tensor) -> torch.Tensor:
        if self.audio_input == "raw":
            return mel
        if self.audio_input != "norm":
            raise ValueError(f"unknown audio_input {self.audio_input!r}")
        mel = mel - mel.mean(dim=3, keepdim=True)
        return mel / (mel.flatten(1).std(dim=1).view(-1, 1, 1, 1) + 1e-3)

    def embed_face(self, face: torch.Tensor) -> torch.Tensor:
        """face (B, 15, 48, 96) -> (B, E) unit vectors."""
        return F.normalize(self.dropout(self.face_encoder(self.prepare_face(face)).flatten(1)), p=2, dim=1)

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (B, 1, 80, 16) -> (B, E) unit vectors."""
        return F.normalize(self.dropout(self.audio_encoder(self.prepare_audio(mel)).flatten(1)), p=2, dim=1)

    def forward(self, face: torch.Tensor, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embed_face(face), self.embed_audio(mel)


def sync_probability(face_emb: torch.Tensor, audio_emb: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of (ReLU'd, normalised) embeddings, in [0, 1]: the expert's P(in sync)."""
    return F.cosine_similarity(face_emb, audio_emb, dim=1).clamp(1e-7, 1 - 1e-7)


def sync_loss(face_emb: torch.Tensor, audio_emb: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the sync probability against labels (1 = in sync)."""
    return F.binary_cross_entropy(sync_probability(face_emb, audio_emb), label.float())
