"""Loss terms of the Style Mapping module by name (supplement "Intermediate Generator"; face-vid2vid section 3.3).

G step (`StylemapStep.g_losses`), every term unweighted:
    l1              mean |I_o - I_d| (pixel level) over the valid pixels of I_d (below).
    perceptual      the project's perceptual distance (VGG19 when its file is present, else the weight-free
                    (1 - MS-SSIM) + gradient L1), one scale (face-vid2vid: a VGG19 image pyramid), between
                    I_d and I_o with its invalid pixels replaced by I_d's.
    gan_g           LS-GAN G loss mean (D(I_o) - 1)^2 over the scales of a multi-scale PatchGAN (Mao et al.
                    2017); face-vid2vid also feeds D the keypoint heatmaps, we do not. Unmasked.
    equivariance    mean |x_d,xy - T(x'_xy)|: x' are the keypoints of the driving frame warped by a known random
                    affine + TPS T (`data.RandomTransform`), computed as face-vid2vid's public code does, from the
                    source's canonical keypoints and the warped frame's pose and expression.
    keypoint_prior  sum over pairs i != j of max(0, D_t - |x_i - x_j|^2) + |mean_k z_k - z_t| on the driving
                    keypoints (face-vid2vid: D_t = 0.1, z_t = 0.33), averaged over the batch.
    head_pose       mean |decoded angle - fitted angle| in radians over yaw, pitch, roll of source and driving
                    frames; the fitted angles are fit3dmm's, in the crop (`data.crop_angles`), standing in for
                    face-vid2vid's pretrained pose teacher (Hopenet).
    expression      mean |delta| of the driving frame's expression deformations (face-vid2vid's L_delta).
D step (`d_losses`):
    gan_d           LS-GAN D loss mean (D(I_d) - 1)^2 + mean D(I_o)^2 over the scales. Unmasked.

Tight sources: a batch's `driving_inside` (B, 1, S, S) (`data.prepare_batch`; absent: all valid) marks the
driving frame's pixels sampled inside the source frame. l1 is `headflow.losses.image.masked_l1`
(sum |I_o - I_d| m / (3 sum m)); the perceptual term compares `headflow.losses.image.fill_invalid(I_o, I_d)`
(which says why replacing rather than multiplying) with I_d. An all-True mask gives bit-identical losses to
no mask; val_l1 is masked the same way. The GAN terms stay unmasked (simplest; the discriminator sees
whole real frames, smear included, so it may still let a generated smear pass as real); the equivariance
and pose terms compare no pixels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from headflow.generators.stylemap.data import RandomTransform, prepare_batch
from headflow.generators.stylemap.keypoints import posed_keypoints
from headflow.generators.stylemap.model import StylemapGenerator, StylemapOutput
from headflow.generators.stylemap.params import LossParams, StylemapParams
from headflow.losses.gan import d_loss, g_loss
from headflow.losses.image import fill_invalid, masked_l1
from headflow.nn.discriminators import MultiScaleDiscriminator

G_TERMS = ("l1", "perceptual", "gan_g", "equivariance", "keypoint_prior", "head_pose", "expression")
D_TERMS = ("gan_d",)


def equivariance_loss(kp: torch.Tensor, kp_warped: torch.Tensor, transform: RandomTransform) -> torch.Tensor:
    """mean |kp_xy - T(kp_warped_xy)| (FOMM eq. 8 / face-vid2vid's L_E on x and y).

    Args:
        kp: (B, K, 2 or 3) keypoints of the images.
        kp_warped: (B, K, 2 or 3) keypoints of `transform.warp(images)`.
        transform: the known transform T.

    Returns:
        Scalar >= 0; 0 for an exactly equivariant detector.
    """
    return (kp[..., :2] - transform.points(kp_warped[..., :2])).abs().mean()


def keypoint_prior(kp: torch.Tensor, distance: float = 0.1, depth: float = 0.33) -> torch.Tensor:
    """face-vid2vid's keypoint prior: sum_{i != j} max(0, D_t - |x_i - x_j|^2) + |mean_k z_k - z_t|, batch mean.

    Args:
        kp: (B, K, 3).
        distance: D_t (squared normalised distance).
        depth: z_t.

    Returns:
        Scalar >= 0.
    """
    d2 = (kp[:, :, None, :] - kp[:, None, :, :]).pow(2).sum(-1)                    # (B, K, K)
    off = ~torch.eye(kp.shape[1], dtype=torch.bool, device=kp.device)
    spread = (torch.relu(distance - d2) * off).sum((1, 2))
    return (spread + (kp[..., 2].mean(-1) - depth).abs()).mean()


def head_pose_loss(angles_deg: torch.Tensor, fitted_deg: torch.Tensor) -> torch.Tensor:
    """mean |angles - fitted| in radians. Both (B, 3) yaw, pitch, roll in degrees."""
    return (angles_deg - fitted_deg.to(angles_deg)).abs().mean() * (math.pi / 180.0)


def reconstruction_l1(pred: torch.Tensor, target: torch.Tensor, inside: torch.Tensor | None) -> torch.Tensor:
    """mean |pred - target| over the valid pixels: (B, 3, S, S) images, `inside` (B, 1, S, S) bool or None
    (all valid: the plain mean)."""
    return (pred - target).abs().mean() if inside is None else masked_l1(pred, target, inside)


def build_discriminator(loss: LossParams) -> MultiScaleDiscriminator:
    """The multi-scale PatchGAN on images (instance norm, pix2pixHD's)."""
    return MultiScaleDiscriminator(3, num_scales=loss.d_scales, base_channels=loss.d_channels, n_layers=loss.d_layers,
                                   norm="instance")


@dataclass
class Forward:
    """One generator pass with the batch's equivariance transform, kept for the loss terms."""

    output: StylemapOutput
    transform: RandomTransform


class StylemapStep:
    """The family's networks and loss terms by name: the step object of the shared harness (see
    `headflow.training.loop`). Batches are collated raw pairs, turned into float images and the
    equivariance transform's draws by `prepare` (drawing only from the harness's generator).

    Args:
        params: the run's `StylemapParams`.
        generator: the `StylemapGenerator`.
        discriminator: the multi-scale PatchGAN (`build_discriminator`), or None (no GAN terms).
        perceptual: a `headflow.losses.perceptual.PerceptualLoss`, or None (no perceptual term).
        val_batch: a prepared batch of fixed validation pairs for `evaluate` (None: no evaluation).
    """

    def __init__(self, params: StylemapParams, generator: StylemapGenerator, discriminator: nn.Module | None = None,
                 perceptual: nn.Module | None = None, val_batch: Mapping[str, torch.Tensor] | None = None):
        self.params, self.generator, self.perceptual, self.val_batch = params, generator, perceptual, val_batch
        if discriminator is not None:
            self.discriminator = discriminator

    # -- the harness's hooks -----------------------------------------------------------------------

    def prepare(self, batch: Mapping[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Raw collated pairs -> float images and the equivariance draws (`data.prepare_batch`)."""
        lp = self.params.loss
        return prepare_batch(batch, lp.sigma_affine, lp.sigma_tps, lp.tps_points, generator)

    def run_generator(self, batch: Mapping[str, torch.Tensor], network: nn.Module | None = None) -> Forward:
        """The generator (or `network`, e.g. the EMA copy) on a prepared batch, with its transform T."""
        network = network or self.generator
        out = network(batch["source"], batch["driving"])
        return Forward(out, RandomTransform.from_tensors(batch["eq_theta"], batch["eq_weights"]))

    def g_losses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The G step's unweighted terms (`G_TERMS` this configuration has)."""
        fwd = self.run_generator(batch)
        out = fwd.output
        net = getattr(self.generator, "module", self.generator)       # unwrap Fabric / DDP for the sub-networks
        target = batch["driving"]
        inside = batch.get("driving_inside")
        terms = {"l1": reconstruction_l1(out.image, target, inside)}
        if self.perceptual is not None:
            pred = out.image if inside is None else fill_invalid(out.image, target, inside)
            terms["perceptual"] = self.perceptual(pred, target)
        if hasattr(self, "discriminator"):
            terms["gan_g"] = g_loss(self.discriminator(out.image)[0], "least_squares")
        warped_pose = net.pose(fwd.transform.warp(target))
        kp_warped, _ = posed_keypoints(out.kp_canonical, warped_pose)
        terms["equivariance"] = equivariance_loss(out.kp_driving, kp_warped, fwd.transform)
        lp = self.params.loss
        terms["keypoint_prior"] = keypoint_prior(out.kp_driving, lp.prior_distance, lp.prior_depth)
        angles = torch.cat([out.pose_source.angles, out.pose_driving.angles])
        fitted = torch.cat([batch["source_angles"], batch["driving_angles"]])
        terms["head_pose"] = head_pose_loss(angles, fitted)
        terms["expression"] = out.pose_driving.deformation.abs().mean()
        return terms

    def d_losses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """gan_d on the real driving frames and I_o made under no_grad."""
        with torch.no_grad():
            fake = self.run_generator(batch).output.image
        real_logits = self.discriminator(batch["driving"])[0]
        fake_logits = self.discriminator(fake)[0]
        return {"gan_d": d_loss(real_logits, fake_logits, "least_squares")}

    def weights(self) -> dict[str, float]:
        """Loss weights by the names this step returns (`LossParams`; gan_d weighs 1)."""
        lp = self.params.loss
        out = {"l1": lp.l1, "equivariance": lp.equivariance, "keypoint_prior": lp.keypoint_prior,
               "head_pose": lp.head_pose, "expression": lp.expression}
        if self.perceptual is not None:
            out["perceptual"] = lp.perceptual
        if hasattr(self, "discriminator"):
            out.update({"gan_g": lp.gan, "gan_d": 1.0})
        return out

    @torch.no_grad()
    def evaluate(self, network: nn.Module) -> dict[str, float]:
        """val_l1 (mean |I_o - I_d| over the valid pixels) and val_pose_err_deg (mean |angle - fitted| of the
        driving frames, degrees)."""
        if self.val_batch is None:
            return {}
        was = network.training
        network.eval()
        try:
            out = self.run_generator(self.val_batch, network).output
        finally:
            network.train(was)
        err = (out.pose_driving.angles - self.val_batch["driving_angles"]).abs().mean()
        l1 = reconstruction_l1(out.image, self.val_batch["driving"], self.val_batch.get("driving_inside"))
        return {"val_l1": float(l1), "val_pose_err_deg": float(err)}

    @torch.no_grad()
    def samples(self, batch: Mapping[str, torch.Tensor], network: nn.Module | None = None) -> torch.Tensor:
        """Per pair: source, driving, I_o, occlusion mask: (B * 4, 3, S, S) in [0, 1], in eval mode."""
        if "source_u8" in batch:
            batch = self.prepare(batch, torch.Generator().manual_seed(self.params.seed))
        network = network or self.generator
        was = network.training
        network.eval()
        try:
            out = self.run_generator(batch, network).output
        finally:
            network.train(was)
        occ = torch.nn.functional.interpolate(out.warped.occlusion, size=out.image.shape[-2:], mode="nearest")
        rows = torch.stack([batch["source"], batch["driving"], out.image, occ.expand(-1, 3, -1, -1)], dim=1)
        return rows.flatten(0, 1)
