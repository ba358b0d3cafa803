from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from headflow.losses.sync import expert_sync_loss, sync_loss, sync_probability


def test_known_cosine_gives_minus_log_p():
    a = torch.tensor([[1.0, 0.0], [5.0, 0.0]])  # scale does not matter: embeddings are normalised
    v = torch.tensor([[0.6, 0.8], [3.0, 4.0]])  # cos = 0.6 for both
    torch.testing.assert_close(sync_probability(a, v), torch.tensor([0.6, 0.6]))
    assert sync_loss(a, v, 1.0).item() == pytest.approx(-math.log(0.6), rel=1e-6)
    assert sync_loss(a, v, torch.tensor([0.0, 0.0])).item() == pytest.approx(-math.log(0.4), rel=1e-5)
    # mixed labels: the batch mean of -log 0.6 and -log 0.4
    assert sync_loss(a, v, torch.tensor([1.0, 0.0])).item() == pytest.approx(
        -(math.log(0.6) + math.log(0.4)) / 2, rel=1e-5)


def test_probability_is_clamped_to_the_open_unit_interval():
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    v = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])  # cos 1 and -1
    p = sync_probability(a, v, eps=1e-3)
    torch.testing.assert_close(p, torch.tensor([1 - 1e-3, 1e-3]))
    # the coursework's clamp at 1e-3: -log(1e-3) = 6.908 for an anti-aligned pair labelled in sync
    assert sync_loss(a[1:], v[1:], 1.0, eps=1e-3).item() == pytest.approx(-math.log(1e-3), rel=1e-5)


class _TinyExpert(nn.Module):
    """Audio (B, 4) and faces (B, 6) -> positive (audio_emb, face_emb) through fixed linear maps + softplus
    (positive like Wav2Lip's ReLU embeddings, but never exactly 0, where the clamped P would stop gradients)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.audio = nn.Linear(4, 3)
        self.face = nn.Linear(6, 3)

    def forward(self, mel, faces):
        assert mel.shape[1] == 4 and faces.shape[1] == 6, "called with the inputs swapped"
        return F.softplus(self.audio(mel)), F.softplus(self.face(faces))


def test_expert_sync_loss_is_bce_against_one_with_gradients_to_the_faces():
    expert = _TinyExpert().requires_grad_(False).eval()
    mel, faces = torch.randn(5, 4), torch.randn(5, 6, requires_grad=True)
    loss = expert_sync_loss(expert, mel, faces)
    a, v = expert(mel, faces)
    assert loss.item() == pytest.approx(sync_loss(a, v, 1.0).item())
    loss.backward()
    assert faces.grad is not None and faces.grad.abs().sum() > 0


def test_expert_call_order_is_selectable():
    class FaceFirst(_TinyExpert):
        def forward(self, faces, mel):
            return super().forward(mel, faces)

    expert = FaceFirst().requires_grad_(False).eval()
    mel, faces = torch.randn(2, 4), torch.randn(2, 6)
    assert expert_sync_loss(expert, mel, faces, order="face_audio").item() >= 0
    with pytest.raises(AssertionError, match="swapped"):
        expert_sync_loss(expert, mel, faces)


def test_expert_must_be_frozen():
    mel, faces = torch.randn(2, 4), torch.randn(2, 6)
    with pytest.raises(ValueError, match="frozen and in eval mode"):
        expert_sync_loss(_TinyExpert().requires_grad_(False), mel, faces)  # training mode
    with pytest.raises(ValueError, match="frozen and in eval mode"):
        expert_sync_loss(_TinyExpert().eval(), mel, faces)  # trainable parameters
