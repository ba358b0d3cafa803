"""StyleTalk's three discriminators (paper "Objective Function Design"): D_sync, D_style, D_tem.

The paper describes them in a sentence each and the released code has none; the layer choices here are
ours and written down per class.

- `SyncDiscriminator` (D_sync): the expressions of F consecutive frames -> the mouth vertices of the mesh
  (mean + expression modes, `geometry.MouthMesh`) -> a PointNet per frame (shared point MLP + max
  pooling; Qi et al. 2017) -> e_m; the 2w + 1 phoneme window of the middle frame -> embeddings + 1-D
  convs -> e_a; P_sync = e_m . e_a / max(|e_m| |e_a|, eps) (eq. 4, the cosine; the printed denominator
  max(|e_m|, |e_a|, eps) is not a cosine). Both embeddings end in a ReLU (as Wav2Lip's SyncNet) so that
  P is in [0, 1] and -log P is defined. Pretrained on real pairs vs shifted pairs (BCE), then frozen.
- `SequencePatchDiscriminator`: a 1-D PatchGAN over an expression sequence (B, L, K): stride-2 convs
  (kernel 4) with LeakyReLU(0.2), a per-patch head. D_style has C outputs per patch (one per style) whose
  mean over patches gives the class logits (P^s = softmax); D_tem has one (hinge loss).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from headflow.generators.styletalk.params import N_PHONEMES, SeqDiscParams, SyncDiscParams


class SyncDiscriminator(nn.Module):
    """D_sync. forward(exp (B, F, K), phones (B, 2w+1)) -> P_sync (B,) in [0, 1].

    The mouth geometry (`mouth_mean` (P, 3), `mouth_basis` (K, P, 3)) is stored as buffers, so a saved
    state dict carries it and loading needs no morphable model."""

    def __init__(self, p: SyncDiscParams, n_exp: int, window: int):
        super().__init__()
        self.p, self.n_exp, self.window = p, n_exp, window
        self.register_buffer("mouth_mean", torch.zeros(p.n_points, 3))
        self.register_buffer("mouth_basis", torch.zeros(n_exp, p.n_points, 3))
        w = p.width
        self.point_mlp = nn.Sequential(nn.Conv1d(3, 64, 1), nn.ReLU(), nn.Conv1d(64, 128, 1), nn.ReLU(),
                                       nn.Conv1d(128, w, 1))
        self.mouth_head = nn.Sequential(nn.Linear(p.frames * w, w), nn.ReLU(), nn.Linear(w, p.embed_dim), nn.ReLU())
        n_win = 2 * window + 1
        self.ph_embedding = nn.Embedding(N_PHONEMES, w)
        self.ph_pos = nn.Parameter(torch.zeros(1, w, n_win))
        self.phone_convs = nn.Sequential(nn.Conv1d(w, w, 3, padding=1), nn.ReLU(), nn.Conv1d(w, w, 3, padding=1), nn.ReLU())
        self.phone_head = nn.Sequential(nn.Linear(n_win * w, p.embed_dim), nn.ReLU())

    def set_geometry(self, mean: torch.Tensor, basis: torch.Tensor) -> None:
        """Copy the mouth mesh (`geometry.MouthMesh`'s `mean` and `basis`)."""
        if tuple(mean.shape) != tuple(self.mouth_mean.shape) or tuple(basis.shape) != tuple(self.mouth_basis.shape):
            raise ValueError(f"mouth geometry {tuple(mean.shape)}, {tuple(basis.shape)} does not fit D_sync's "
                             f"{tuple(self.mouth_mean.shape)}, {tuple(self.mouth_basis.shape)}")
        self.mouth_mean.copy_(mean)
        self.mouth_basis.copy_(basis)

    def vertices(self, exp: torch.Tensor) -> torch.Tensor:
        """(..., K) -> (..., P, 3) mouth vertices."""
        return self.mouth_mean + torch.einsum("...k,kpc->...pc", exp, self.mouth_basis)

    def mouth_embedding(self, exp: torch.Tensor) -> torch.Tensor:
        """exp (B, F, K) -> e_m (B, embed_dim) >= 0."""
        B, Fr, _ = exp.shape
        pts = self.vertices(exp).reshape(B * Fr, -1, 3).transpose(1, 2)            # (B*F, 3, P)
        feat = self.point_mlp(pts).amax(dim=2).reshape(B, -1)                      # max over points
        return self.mouth_head(feat)

    def phone_embedding(self, phones: torch.Tensor) -> torch.Tensor:
        """phones (B, 2w+1) -> e_a (B, embed_dim) >= 0."""
        x = self.ph_embedding(phones).transpose(1, 2) + self.ph_pos
        return self.phone_head(self.phone_convs(x).flatten(1))

    def forward(self, exp: torch.Tensor, phones: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
        em, ea = self.mouth_embedding(exp), self.phone_embedding(phones)
        return (em * ea).sum(-1) / (em.norm(dim=-1) * ea.norm(dim=-1)).clamp_min(eps)


class SequencePatchDiscriminator(nn.Module):
    """1-D PatchGAN over expression sequences: (B, L, K) -> per-patch logits (B, n_out, L / 2^n_layers)."""

    def __init__(self, n_exp: int, p: SeqDiscParams, n_out: int = 1):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, c = n_exp, p.channels
        for i in range(p.n_layers):
            layers += [nn.Conv1d(c_in, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c_in, c = c, min(c * 2, p.channels * 4)
        layers.append(nn.Conv1d(c_in, n_out, 3, padding=1))
        self.net = nn.Sequential(*layers)
        self.n_out = n_out

    def forward(self, exp: torch.Tensor) -> torch.Tensor:
        return self.net(exp.transpose(1, 2))


class StyleDiscriminator(SequencePatchDiscriminator):
    """D_style: class logits (B, C) = the mean of the per-patch class logits; `classes` names them."""

    def __init__(self, n_exp: int, p: SeqDiscParams, classes: list[str]):
        super().__init__(n_exp, p, len(classes))
        self.classes = list(classes)

    def forward(self, exp: torch.Tensor) -> torch.Tensor:
        return super().forward(exp).mean(-1)


def sync_bce(p_sync: torch.Tensor, label: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Binary cross-entropy of P_sync against in-sync labels (1) / shifted (0), P clipped to [eps, 1 - eps]."""
    return F.binary_cross_entropy(p_sync.clamp(eps, 1 - eps), label)
