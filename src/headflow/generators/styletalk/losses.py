"""StyleTalk's loss terms (paper eq. 5-9) and the step objects the training harness runs.

Terms (named, unweighted; `LossParams` weights them by name): rec = mu L1 + (1 - mu) L_ssim (eq. 8),
trip (eq. 7), sync = mean -log P_sync (eq. 5), style = -log P^s_i (eq. 6), tem = hinge G loss of D_tem;
tem_d = D_tem's hinge loss. D_sync and D_style are frozen inside the step (not the harness's networks:
no optimiser ever sees them); gradients flow through them to the generator.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from headflow.generators.styletalk.discriminators import SequencePatchDiscriminator, StyleDiscriminator, \
    SyncDiscriminator, sync_bce
from headflow.generators.styletalk.model import StyleTalkNet
from headflow.generators.styletalk.params import LossParams


def ssim_1d(pred: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM along time of every coefficient's sequence (Wang et al. 2004, the image formula with a 1-D
    Gaussian window, valid positions only).

    C1 = (0.01 R)^2, C2 = (0.03 R)^2 with R = each target sequence's value range (max - min over its
    frames and coefficients, at least 1e-3, not differentiated): expression coefficients have no fixed
    range as pixels do. Per sequence, not per batch: the loss of a batch is then the mean of its
    sequences' losses, whatever else shares the batch, so one process with batch B and two DDP ranks
    with B/2 each compute the same loss (a batch-wide R made them differ by up to ~10 %).

    Args:
        pred, target: (B, L, K), L >= window.

    Returns:
        Scalar in [-1, 1]; 1 when pred == target.
    """
    if pred.shape != target.shape or pred.shape[1] < window:
        raise ValueError(f"ssim_1d: pred {tuple(pred.shape)} and target {tuple(target.shape)} must match, with at "
                         f"least {window} frames")
    B, L, K = pred.shape
    flat = target.detach().reshape(B, L * K)
    r = (flat.amax(1) - flat.amin(1)).clamp_min(1e-3).repeat_interleave(K).view(B * K, 1, 1)   # row b * K + k
    c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
    g = torch.exp(-((torch.arange(window, dtype=pred.dtype, device=pred.device) - window // 2) ** 2) / (2 * sigma ** 2))
    g = (g / g.sum()).view(1, 1, -1)
    x = pred.transpose(1, 2).reshape(B * K, 1, L)
    y = target.transpose(1, 2).reshape(B * K, 1, L)
    mx, my = F.conv1d(x, g), F.conv1d(y, g)
    sxx = F.conv1d(x * x, g) - mx ** 2
    syy = F.conv1d(y * y, g) - my ** 2
    sxy = F.conv1d(x * y, g) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
    return s.mean()


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, mu: float = 0.1, window: int = 11) -> torch.Tensor:
    """L_rec = mu L1 + (1 - mu) (1 - SSIM) (eq. 8); (B, L, K) each."""
    return mu * (pred - target).abs().mean() + (1 - mu) * (1 - ssim_1d(pred, target, window))


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float = 5.0) -> torch.Tensor:
    """L_trip = max(|s_c - s_c^p|_2 - |s_c - s_c^n|_2 + gamma, 0) (eq. 7), averaged over the batch; (B, d) each."""
    return F.relu((anchor - positive).norm(dim=-1) - (anchor - negative).norm(dim=-1) + margin).mean()


def sync_centres(length: int, frames: int, n: int) -> list[int]:
    """Middle frames at which L_sync is evaluated in an L-frame clip: `n` evenly spaced centres whose
    `frames`-frame window lies inside the clip (n = 0: all of them)."""
    half = frames // 2
    all_c = list(range(half, length - half))
    if n == 0 or n >= len(all_c):
        return all_c
    return sorted({all_c[round(i * (len(all_c) - 1) / max(n - 1, 1))] for i in range(n)})


def sync_loss(d_sync: SyncDiscriminator, pred: torch.Tensor, phones: torch.Tensor, centres: list[int],
              eps: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """L_sync = mean over the centres of -log P_sync (eq. 5).

    Args:
        pred: (B, L, K) generated expressions; phones: (B, L, 2w+1) the clip's phoneme windows (frame t's window
            is row t); centres: middle frames.

    Returns:
        (loss, mean P_sync) scalars.
    """
    half = d_sync.p.frames // 2
    exp = torch.stack([pred[:, t - half:t + half + 1] for t in centres], 1)      # (B, C, F, K)
    ph = phones[:, centres]                                                      # (B, C, W)
    B, C = exp.shape[:2]
    p = d_sync(exp.reshape(B * C, *exp.shape[2:]), ph.reshape(B * C, -1))
    return -torch.log(p.clamp(eps, 1.0)).mean(), p.mean()


def hinge_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """mean relu(1 - D(real)) + mean relu(1 + D(fake)) (hinge GAN, Lim and Ye 2017)."""
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


class DiscNets(nn.Module):
    """D_sync and D_style in one module (the harness trains one network per fit).

    Training calls `forward` (both networks in one call), never `sync` / `style` directly: under DDP a
    submodule called past the wrapper's forward gets no gradient all-reduce, and the ranks' copies drift
    apart without an error (tests/scaleout/test_torchrun.py caught it).
    """

    def __init__(self, sync: SyncDiscriminator, style: StyleDiscriminator):
        super().__init__()
        self.sync, self.style = sync, style

    def forward(self, sync_exp: torch.Tensor, sync_phones: torch.Tensor,
                style_exp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(D_sync's score (B,) of the (expression window, phoneme window) pairs, D_style's logits (B, classes)).

        Args:
            sync_exp: (B, F, K) expression windows; sync_phones: (B, 2w+1) phoneme windows (`SyncDiscriminator`).
            style_exp: (B, L, K) expression sequences (`StyleDiscriminator`).
        """
        return self.sync(sync_exp, sync_phones), self.style(style_exp)


class DiscStep:
    """Pretraining D_sync (BCE on in-sync vs shifted pairs) and D_style (cross-entropy over styles)."""

    def __init__(self, nets: DiscNets, val_batch: dict | None = None):
        self.generator = nets
        self.val_batch = val_batch

    def g_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        p, logits = self.generator(batch["sync_exp"], batch["sync_phones"], batch["style_exp"])   # DDP's forward
        return {"sync_bce": sync_bce(p, batch["sync_label"]),
                "style_ce": F.cross_entropy(logits, batch["style_label"])}

    @torch.no_grad()
    def evaluate(self, nets: nn.Module) -> dict[str, float]:
        if self.val_batch is None:
            return {}
        was = nets.training
        nets.eval()
        b = self.val_batch
        p = nets.sync(b["sync_exp"], b["sync_phones"])
        acc = ((p > 0.5).float() == b["sync_label"]).float().mean()
        style_acc = (nets.style(b["style_exp"]).argmax(-1) == b["style_label"]).float().mean()
        nets.train(was)
        return {"val_sync_acc": float(acc), "val_style_acc": float(style_acc)}


class StyleTalkStep:
    """The generator's step without D_tem (loss.tem = 0). With it: `StyleTalkGanStep`.

    The step calls the network's `style_code` and `decode` (not its forward, which would encode the
    positive and negative styles apart); `forward_methods` has the harness route both through DDP's
    forward, without which torchrun training stops at the first step (Fabric refuses a bare method call
    on a DDP-wrapped network).
    """

    forward_methods = ("style_code", "decode")

    def __init__(self, net: StyleTalkNet, loss: LossParams, d_sync: SyncDiscriminator | None,
                 d_style: StyleDiscriminator | None, val_batch: dict | None = None):
        self.generator = net
        self.loss = loss
        self.d_sync = d_sync.requires_grad_(False).eval() if d_sync is not None else None
        self.d_style = d_style.requires_grad_(False).eval() if d_style is not None else None
        if self.d_sync is not None and self.d_sync.window != net.params.window:
            raise ValueError(f"D_sync reads {2 * self.d_sync.window + 1}-frame phoneme windows, the generator "
                             f"{net.params.window_size}; train both with the same window")
        self.val_batch = val_batch

    def weights(self) -> dict[str, float]:
        """The weight of every term `g_losses` / `d_losses` return (zero-weight terms are not computed)."""
        out = {"rec": self.loss.rec, "trip": self.loss.trip}
        if self.d_sync is not None and self.loss.sync > 0:
            out["sync"] = self.loss.sync
        if self.d_style is not None and self.loss.style > 0:
            out["style"] = self.loss.style
        return {k: v for k, v in out.items() if v > 0 or k == "rec"}

    def _styles(self, net: nn.Module, batch: dict) -> tuple[torch.Tensor, ...]:
        B = batch["style"].shape[0]
        both = net.style_code(torch.cat([batch["style"], batch["pos_style"], batch["neg_style"]]),
                              torch.cat([batch["style_pad"], batch["pos_pad"], batch["neg_pad"]]))
        return both[:B], both[B:2 * B], both[2 * B:]

    def predict(self, net: nn.Module, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s, sp, sn = self._styles(net, batch)
        return net.decode(batch["phones"], s), sp, sn

    def _terms(self, batch: dict) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        net, lp = self.generator, self.loss
        s, sp, sn = self._styles(net, batch)
        pred = net.decode(batch["phones"], s)
        terms = {"rec": reconstruction_loss(pred, batch["exp"], lp.mu, lp.ssim_window)}
        w = self.weights()
        if "trip" in w:
            terms["trip"] = triplet_loss(s, sp, sn, lp.margin)
        if "sync" in w:
            centres = sync_centres(pred.shape[1], self.d_sync.p.frames, lp.sync_frames)
            terms["sync"] = sync_loss(self.d_sync, pred, batch["phones"], centres, lp.eps)[0]
        if "style" in w:
            terms["style"] = F.cross_entropy(self.d_style(pred), batch["style_label"], ignore_index=-1)
        return terms, pred

    def g_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        return self._terms(batch)[0]

    @torch.no_grad()
    def evaluate(self, net: nn.Module) -> dict[str, Any]:
        if self.val_batch is None:
            return {}
        was = net.training
        net.eval()
        b = self.val_batch
        pred = self.predict(net, b)[0]
        out = {"val_l1": float((pred - b["exp"]).abs().mean()), "val_ssim": float(ssim_1d(pred, b["exp"]))}
        if self.d_sync is not None:
            centres = sync_centres(pred.shape[1], self.d_sync.p.frames, self.loss.sync_frames)
            out["val_p_sync"] = float(sync_loss(self.d_sync, pred, b["phones"], centres)[1])
        if self.d_style is not None:
            ok = b["style_label"] >= 0
            acc = (self.d_style(pred).argmax(-1) == b["style_label"])[ok].float().mean() if ok.any() else torch.tensor(math.nan)
            out["val_style_acc"] = float(acc)
        net.train(was)
        return out


class StyleTalkGanStep(StyleTalkStep):
    """`StyleTalkStep` + D_tem trained jointly with the hinge loss (paper: "trained jointly ... GAN hinge loss")."""

    def __init__(self, net: StyleTalkNet, d_tem: SequencePatchDiscriminator, loss: LossParams,
                 d_sync: SyncDiscriminator | None, d_style: StyleDiscriminator | None, val_batch: dict | None = None):
        super().__init__(net, loss, d_sync, d_style, val_batch)
        self.discriminator = d_tem

    def weights(self) -> dict[str, float]:
        return {**super().weights(), "tem": self.loss.tem, "tem_d": self.loss.tem_d}

    def g_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        terms, pred = self._terms(batch)
        terms["tem"] = -self.discriminator(pred).mean()
        return terms

    def d_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            fake = self.predict(self.generator, batch)[0]
        return {"tem_d": hinge_d(self.discriminator(batch["exp"]), self.discriminator(fake))}
