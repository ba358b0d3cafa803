"""DisCoHead's side of the training harness: the step object (eq. 12: L_total = L1 + lambda L_perceptual).

No discriminator (section 3.2 trains with L1 and the VGG-19 perceptual loss only). The perceptual term
is the shared `headflow.losses.perceptual.PerceptualLoss`: VGG19 when its file is present, else the
weight-free substitute ((1 - MS-SSIM) + gradient L1), named in the run's metrics.

Tight sources: a batch's "inside" mask (B, 1, S, S) (`data.prepare_batch`; absent: all valid) leaves the
target's edge smear out of both terms: L1 is `headflow.losses.image.masked_l1` (sum |G - D| m /
(3 sum m)), the perceptual term compares G with its invalid pixels replaced by the target's
(`headflow.losses.image.fill_invalid`, which says why replacing rather than multiplying). An all-True mask
gives bit-identical losses to no mask. The validation L1 is masked the same way.
"""

from __future__ import annotations

import torch
from torch import nn

from headflow.generators.discohead.data import prepare_batch
from headflow.generators.discohead.model import DisCoHeadGenerator
from headflow.generators.discohead.params import DisCoHeadParams
from headflow.losses.image import fill_invalid, masked_l1


def reconstruction_l1(pred: torch.Tensor, target: torch.Tensor, inside: torch.Tensor | None) -> torch.Tensor:
    """mean |pred - target| over the valid pixels: (B, 3, S, S) images, `inside` (B, 1, S, S) bool or None
    (all valid: the plain mean)."""
    return (pred - target).abs().mean() if inside is None else masked_l1(pred, target, inside)


class DisCoHeadStep:
    """The harness's step object (`headflow.training.loop` module docstring).

    g_losses(batch) -> {"l1": mean |G - driver| over the valid pixels, "perceptual": P(G filled, driver)}
    (unweighted; "perceptual" only when a perceptual loss is given; module docstring for the mask);
    evaluate -> the fixed validation frames' L1 (over valid pixels) of the output ("val_l1") and of the
    source warp S_T alone ("val_l1_source_warp", the decoder-free baseline);
    samples -> rows of source, driver, S_T, output.
    """

    def __init__(self, params: DisCoHeadParams, generator: DisCoHeadGenerator, perceptual: nn.Module | None,
                 val_batch: dict | None = None):
        self.params, self.generator, self.perceptual, self.val_batch = params, generator, perceptual, val_batch

    def weights(self) -> dict[str, float]:
        """Loss weights by term name (the names `g_losses` returns)."""
        w = {"l1": self.params.loss.l1}
        if self.perceptual is not None:
            w["perceptual"] = self.params.loss.perceptual
        return w

    def prepare(self, batch: dict, generator: torch.Generator) -> dict:
        return prepare_batch(batch)

    def g_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        out = self.generator(batch["source"], batch["driver"], batch["eyes"], batch["mel"])
        inside = batch.get("inside")
        terms = {"l1": reconstruction_l1(out.image, batch["driver"], inside)}
        if self.perceptual is not None:
            pred = out.image if inside is None else fill_invalid(out.image, batch["driver"], inside)
            terms["perceptual"] = self.perceptual(pred, batch["driver"])
        return terms

    @torch.no_grad()
    def evaluate(self, network: nn.Module) -> dict[str, float]:
        if self.val_batch is None:
            return {}
        was = network.training
        network.eval()
        b = self.val_batch
        out = network(b["source"], b["driver"], b["eyes"], b["mel"])
        network.train(was)
        inside = b.get("inside")
        return {"val_l1": float(reconstruction_l1(out.image, b["driver"], inside)),
                "val_l1_source_warp": float(reconstruction_l1(out.transformed, b["driver"], inside))}

    @torch.no_grad()
    def samples(self, batch: dict, network: nn.Module) -> torch.Tensor:
        was = network.training
        network.eval()
        b = prepare_batch(batch) if batch["source"].dtype == torch.uint8 else batch
        n = min(4, b["source"].shape[0])
        out = network(b["source"][:n], b["driver"][:n], b["eyes"][:n], b["mel"][:n])
        network.train(was)
        return torch.stack([b["source"][:n], b["driver"][:n], b["eyes"][:n], out.transformed, out.image],
                           dim=1).flatten(0, 1).clamp(0, 1)
