"""Lip-sync losses of Wav2Lip (Prajwal et al. 2020, the lip-sync expert; `color_syncnet_train.py::cosine_loss`
and `wav2lip_train.py::get_sync_loss`).

The expert's probability of sync is the cosine similarity of the audio and face embeddings,
P_sync = (v . s) / max(||v|| ||s||, eps), read as a probability (the expert's embeddings pass a ReLU, so
it lies in [0, 1]); the expert is trained with BCE against in-sync (1) / off-sync (0) labels, and the
generator minimises E_sync = -log P_sync on its own frames with the expert frozen.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F


def sync_probability(audio_emb: torch.Tensor, face_emb: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Cosine similarity of the L2-normalised embeddings, clamped to [eps, 1 - eps]: P(sync), shape (B,).

    Args:
        audio_emb, face_emb: (B, D) embeddings (any scale; normalised here).
        eps: clamp margin keeping log() finite (the lip-sync coursework clamps at 1e-3). Where the cosine
            is outside [eps, 1 - eps] the gradient is zero (e.g. an all-zero ReLU embedding).

    Raises:
        ValueError: embeddings of different shapes or not (B, D).
    """
    if audio_emb.dim() != 2 or audio_emb.shape != face_emb.shape:
        raise ValueError(f"sync: audio_emb and face_emb must both be (B, D), got {tuple(audio_emb.shape)} and "
                         f"{tuple(face_emb.shape)}")
    cos = (F.normalize(audio_emb, dim=1) * F.normalize(face_emb, dim=1)).sum(dim=1)
    return cos.clamp(eps, 1.0 - eps)


def sync_loss(audio_emb: torch.Tensor, face_emb: torch.Tensor, target: torch.Tensor | float,
              eps: float = 1e-7) -> torch.Tensor:
    """Wav2Lip expert loss: BCE(P_sync, target), the mean over the batch.

    Args:
        audio_emb, face_emb: (B, D) embeddings from the expert's two encoders.
        target: (B,) labels in {0, 1} (1 = in sync), or one float for the whole batch.
        eps: see `sync_probability`.

    Returns:
        Scalar >= 0 (-log P for target 1, -log(1 - P) for target 0; at most -log(eps) ~ 16.1 for eps 1e-7).
    """
    p = sync_probability(audio_emb, face_emb, eps)
    y = torch.as_tensor(target, dtype=p.dtype, device=p.device).expand_as(p)
    return F.binary_cross_entropy(p, y)


def expert_sync_loss(expert: nn.Module, mel: torch.Tensor, faces: torch.Tensor,
                     order: Literal["audio_face", "face_audio"] = "audio_face", eps: float = 1e-7) -> torch.Tensor:
    """Wav2Lip's generator sync loss: BCE of a frozen expert's P_sync against 1 (= mean -log P_sync).

    Gradients flow to `faces` (the generator's frames) only. The expert must be frozen and in eval mode
    (BatchNorm statistics must not move): `expert.requires_grad_(False).eval()`.

    Args:
        expert: any module returning (audio_emb, face_emb), each (B, D), e.g. a Wav2Lip SyncNet.
        mel: the expert's audio input, e.g. (B, 1, 80, 16) mel windows.
        faces: the expert's face input built from generated frames, e.g. (B, 15, 48, 96): the lower halves
            of 5 consecutive frames stacked on channels (Wav2Lip's layout), in the expert's value range.
        order: how the expert is called: "audio_face" = expert(mel, faces) (Wav2Lip's SyncNet);
            "face_audio" = expert(faces, mel). The returned pair is used symmetrically.
        eps: see `sync_probability`.

    Returns:
        Scalar >= 0.

    Raises:
        ValueError: the expert is in training mode or has trainable parameters; an unknown order.
    """
    if expert.training or any(p.requires_grad for p in expert.parameters()):
        raise ValueError("expert_sync_loss: the expert must be frozen and in eval mode; call "
                         "expert.requires_grad_(False).eval() once after loading it")
    if order not in ("audio_face", "face_audio"):
        raise ValueError(f"expert_sync_loss: order must be 'audio_face' or 'face_audio', got {order!r}")
    first, second = expert(mel, faces) if order == "audio_face" else expert(faces, mel)
    return sync_loss(first, second, 1.0, eps)
