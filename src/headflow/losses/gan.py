"""Adversarial loss terms: D and G losses of three GAN objectives, the R1 penalty, feature matching.

Logits are raw discriminator outputs (no sigmoid), any shape (a PatchGAN map (B, 1, H', W') or scores
(B, 1)); each term is the mean over all its elements. A list of logits (one per scale of a
multi-scale or temporal discriminator) gives the SUM of the per-scale terms, as pix2pixHD's `GANLoss`.

    kind             D loss                                      G loss
    hinge            E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]    -E[D(G(z))]          (Lim & Ye 2017; SAGAN)
    non_saturating   E[softplus(-D(x))] + E[softplus(D(G(z)))]   E[softplus(-D(G(z)))] (Goodfellow 2014, sec. 3)
    least_squares    E[(D(x) - 1)^2] + E[D(G(z))^2]              E[(D(G(z)) - 1)^2]    (Mao et al. 2017, a-b-c =
                                                                 0-1-1, without the 1/2, as pix2pixHD)

softplus(-t) = -log sigmoid(t), so non_saturating is the BCE form with targets 1 / 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch.nn import functional as F

GanKind = Literal["hinge", "non_saturating", "least_squares"]
Logits = torch.Tensor | Sequence[torch.Tensor]


def _as_list(logits: Logits, name: str) -> list[torch.Tensor]:
    items = [logits] if isinstance(logits, torch.Tensor) else list(logits)
    if not items or not all(isinstance(t, torch.Tensor) for t in items):
        raise ValueError(f"{name} must be a tensor or a non-empty list of tensors (one per scale)")
    return items


def _check_kind(kind: str) -> None:
    if kind not in GanKind.__args__:
        raise ValueError(f"unknown GAN loss kind {kind!r}; expected one of {GanKind.__args__}")


def d_loss(real_logits: Logits, fake_logits: Logits, kind: GanKind) -> torch.Tensor:
    """Discriminator loss (table above), summed over scales.

    Args:
        real_logits: D(x) on real samples: a tensor or a list (one per scale).
        fake_logits: D(G(z)) on generated samples (detach G's output before D for the D step), same
            number of scales.
        kind: "hinge" | "non_saturating" | "least_squares".

    Returns:
        Scalar, >= 0 (hinge: 0 when real >= 1 and fake <= -1).

    Raises:
        ValueError: unknown kind; different numbers of scales.
    """
    _check_kind(kind)
    reals, fakes = _as_list(real_logits, "real_logits"), _as_list(fake_logits, "fake_logits")
    if len(reals) != len(fakes):
        raise ValueError(f"d_loss: {len(reals)} real and {len(fakes)} fake scales; give one logits map per scale")
    total = reals[0].new_zeros(())
    for real, fake in zip(reals, fakes):
        if kind == "hinge":
            total = total + F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
        elif kind == "non_saturating":
            total = total + F.softplus(-real).mean() + F.softplus(fake).mean()
        else:
            total = total + (real - 1.0).pow(2).mean() + fake.pow(2).mean()
    return total


def g_loss(fake_logits: Logits, kind: GanKind) -> torch.Tensor:
    """Generator loss (table above), summed over scales.

    Args:
        fake_logits: D(G(z)), a tensor or a list (one per scale), with gradients to G.
        kind: "hinge" | "non_saturating" | "least_squares".

    Returns:
        Scalar (hinge: unbounded, can be negative; the others >= 0).

    Raises:
        ValueError: unknown kind.
    """
    _check_kind(kind)
    total = None
    for fake in _as_list(fake_logits, "fake_logits"):
        if kind == "hinge":
            term = -fake.mean()
        elif kind == "non_saturating":
            term = F.softplus(-fake).mean()
        else:
            term = (fake - 1.0).pow(2).mean()
        total = term if total is None else total + term
    return total


def r1_penalty(real_logits: Logits, real_images: torch.Tensor) -> torch.Tensor:
    """R1 gradient penalty on real data, 0.5 * E_x ||grad_x D(x)||^2 (Mescheder et al. 2018, eq. 9).

    Mescheder's regulariser is (gamma / 2) E||grad D(x)||^2; this returns it for gamma = 1, so the caller
    multiplies by gamma (e.g. 10) and nothing else. D(x) of a sample is the SUM of its logits (over a
    PatchGAN map and over scales), as StyleGAN2-ADA's `loss.py` sums the outputs before the gradient.
    The graph is kept (create_graph) so the penalty trains D.

    Args:
        real_logits: D's output on `real_images` (tensor or list per scale), computed in this graph.
        real_images: (B, C, H, W) real batch with requires_grad=True, set BEFORE D ran on it.

    Returns:
        Scalar >= 0: the batch mean over samples of 0.5 * sum of squared input gradients.

    Raises:
        ValueError: real_images does not require grad.
    """
    if not real_images.requires_grad:
        raise ValueError("r1_penalty: real_images must have requires_grad=True before the discriminator runs "
                         "on them (call real.requires_grad_(True), then D(real))")
    total = sum(t.sum() for t in _as_list(real_logits, "real_logits"))
    (grad,) = torch.autograd.grad(total, real_images, create_graph=True)
    return 0.5 * grad.pow(2).flatten(1).sum(dim=1).mean()


def feature_matching(real_feats: Sequence, fake_feats: Sequence) -> torch.Tensor:
    """pix2pixHD feature matching: L1 between D's intermediate features on real and fake (section 3.2, eq. 4).

    L = (1 / num_scales) sum_scales sum_layers mean|f_fake - sg(f_real)|, real features detached; this
    equals pix2pixHD's weights (1/num_D per scale, 4 / (n_layers_D + 1) per layer) at its default
    n_layers_D = 3.

    Args:
        real_feats: features of D on real: a list of tensors (one discriminator) or a list of such lists
            (one per scale), as the discriminators in `headflow.nn.discriminators` return.
        fake_feats: the same structure on generated samples (with gradients to G).

    Returns:
        Scalar >= 0.

    Raises:
        ValueError: structures or shapes that do not match.
    """
    single = len(real_feats) > 0 and isinstance(real_feats[0], torch.Tensor)
    reals = [list(real_feats)] if single else [list(s) for s in real_feats]
    fakes = [list(fake_feats)] if single else [list(s) for s in fake_feats]
    if not reals or len(reals) != len(fakes) or any(len(r) != len(f) for r, f in zip(reals, fakes)):
        raise ValueError("feature_matching: real_feats and fake_feats must have the same non-empty structure "
                         "(a list of layers, or a list of scales each a list of layers)")
    total = fakes[0][0].new_zeros(())
    for rs, fs in zip(reals, fakes):
        for r, f in zip(rs, fs):
            if r.shape != f.shape:
                raise ValueError(f"feature_matching: shapes differ, {tuple(r.shape)} vs {tuple(f.shape)}")
            total = total + (f - r.detach()).abs().mean()
    return total / len(reals)
