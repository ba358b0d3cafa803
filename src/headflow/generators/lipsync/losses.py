"""Loss terms of the lip-sync generator, by name (coursework section 3.7, eq. 6-15).

G step (`LipsyncStep.g_losses`):
    l1_masked   sum M |X_gen - X| / sum M with M = blur(sg(predicted mask)) (eq. 6); the whole crop
                without a mask head.
    perceptual  perceptual distance of the blended frames to the real ones (eq. 7; VGG19 relu3_1-5_1
                when the file is present, else the project's weight-free substitute).
    sync        -log d of the frozen lip-sync expert on 5-frame windows of blended frames, d clipped to
                [eps, 1 - eps] (eq. 8); the windows are centred on the real clip's mean mouth image when
                the expert is clip-centred (`headflow.sync.data.centre_mouths(reference=...)`).
    mask_bce    BCE of the predicted mask against the landmark hull mask (eq. 9).
    gan_g       non-saturating G loss softplus(-D(T(window_gen))) (eq. 13), stage 2 only.
D step (`LipsyncStep.d_losses`, stage 2):
    gan_d       softplus(-D(T(real))) + softplus(D(T(fake))) (eq. 14 without its R1 part).
    r1          E ||grad D(T(real))||^2 (the harness's lazy R1 on `d_real_logits`), weighted by gamma / 2
                (eq. 14: gamma = 10).

T is DiffAugment (section 3.7: random affine and erosion). The discriminator sees the lower halves of
the 5 frames stacked on channels: the paper masks the upper region; dropping it is the same input
without the constant zeros.

Terms are returned unweighted; `weighted_total` applies the params' weights by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from kornia.morphology import erosion
from torch import nn
from torch.nn import functional as F

from headflow.augment import diffaugment
from headflow.generators.lipsync.data import affine_augment, blend, blur_mask, mask_lower_half, prepare_batch
from headflow.generators.lipsync.model import LipsyncGenerator, LipsyncOutput
from headflow.generators.lipsync.params import IMAGE_SIZE, WINDOW, DiscriminatorParams, LipsyncParams
from headflow.losses.gan import d_loss, g_loss
from headflow.losses.image import masked_l1
from headflow.losses.sync import expert_sync_loss
from headflow.nn.discriminators import PatchDiscriminator

G_TERMS = ("l1_masked", "perceptual", "sync", "mask_bce", "gan_g")
D_TERMS = ("gan_d", "r1")
PERCEPTUAL_LAYERS = {"relu3_1": 1 / 8, "relu4_1": 1 / 4, "relu5_1": 1.0}
"""Mid-to-high VGG layers (section 3.7 uses "features from the mid-to-high level"; weights pix2pixHD's)."""


# --------------------------------------------------------------------------------------------- the terms

def l1_masked(generated: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Eq. 6 on (M, 3, H, W) images in [0, 1]: mean |X_gen - X| over the blurred, detached mask; None = whole crop."""
    if mask is None:
        return (generated - target).abs().mean()
    return masked_l1(generated, target, blur_mask(mask.detach()))


def mask_bce(mask: torch.Tensor, hull: torch.Tensor) -> torch.Tensor:
    """Eq. 9: binary cross-entropy of the predicted mask (M, 1, H, W) in [0, 1] against the hull mask in {0, 1}."""
    if mask.shape != hull.shape:
        raise ValueError(f"mask_bce: mask {tuple(mask.shape)} and hull {tuple(hull.shape)} differ")
    return F.binary_cross_entropy(mask, hull.to(mask.dtype))


def expert_windows(frames: torch.Tensor, mouth_reference: torch.Tensor | None = None) -> torch.Tensor:
    """The expert's face input from 5-frame windows: (B, 5, 3, 96, 96) in [0, 1] -> (B, 15, 48, 96) in [0, 1].

    The lower halves, RGB frame-major on channels (Wav2Lip's layout, `headflow.sync.data.face_window`).
    With `mouth_reference` (B, 48, 96, 3) in grey levels 0-255 (the real clip's mean mouth image), each
    mouth becomes clip(255 x - reference + 128, 0, 255) / 255, `centre_mouths(..., reference=)` without its
    uint8 rounding, so gradients pass.
    """
    if frames.dim() != 5 or frames.shape[1:] != (WINDOW, 3, IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"expert_windows: frames must be (B, {WINDOW}, 3, {IMAGE_SIZE}, {IMAGE_SIZE}), got "
                         f"{tuple(frames.shape)}")
    mouths = frames[..., IMAGE_SIZE // 2:, :]                                 # (B, 5, 3, 48, 96)
    if mouth_reference is not None:
        ref = mouth_reference.to(frames).permute(0, 3, 1, 2)[:, None]        # (B, 1, 3, 48, 96)
        mouths = (mouths * 255.0 - ref + 128.0).clamp(0.0, 255.0) / 255.0
    return mouths.reshape(frames.shape[0], 3 * WINDOW, IMAGE_SIZE // 2, IMAGE_SIZE)


def sync_term(expert: nn.Module, frames: torch.Tensor, mel: torch.Tensor, mouth_reference: torch.Tensor | None,
              eps: float = 1e-3) -> torch.Tensor:
    """Eq. 8: mean -log d of the frozen expert (`headflow.nn.expert.SyncExpert`) on generated windows.

    Args:
        expert: frozen, in eval mode; `forward(face, mel)` -> (face_emb, audio_emb).
        frames: (B, 5, 3, 96, 96) generated (blended) frames in [0, 1].
        mel: (B, 1, 80, 16) the first frame's mel window, prepared as the expert expects (CMVN of the clip
            when `expert.audio_centre == "clip"`).
        mouth_reference: (B, 48, 96, 3) the real clip's mean mouth image (used when the expert is
            clip-centred, `expert.face_centre == "clip"`); None otherwise.
        eps: d is clipped to [eps, 1 - eps] (section 3.7: [1e-3, 1]).

    Returns:
        Scalar in [0, -log eps].
    """
    centre = getattr(expert, "face_centre", "none") == "clip"
    if centre and mouth_reference is None:
        raise ValueError("sync_term: the expert is clip-centred (face_centre 'clip'); give the real clip's mean "
                         "mouth image as mouth_reference")
    faces = expert_windows(frames, mouth_reference if centre else None)
    return expert_sync_loss(expert, mel, faces, order="face_audio", eps=eps)


# -------------------------------------------------------------------------------- discriminator (stage 2)

def discriminator_input(frames: torch.Tensor) -> torch.Tensor:
    """(B, 5, 3, 96, 96) -> (B, 15, 48, 96): the lower halves of the window stacked on channels."""
    return frames[..., IMAGE_SIZE // 2:, :].reshape(frames.shape[0], 3 * WINDOW, IMAGE_SIZE // 2, IMAGE_SIZE)


def build_discriminator(params: DiscriminatorParams) -> PatchDiscriminator:
    """The multi-frame discriminator: strided convs, LeakyReLU, spectral norm, no other normalisation."""
    return PatchDiscriminator(3 * WINDOW, base_channels=params.base_channels, n_layers=params.n_layers,
                              norm="none", spectral_norm=params.spectral_norm)


def d_augment(windows: torch.Tensor, ops: str, gen: torch.Generator | None) -> torch.Tensor:
    """DiffAugment of discriminator inputs (B, 15, H, W); one draw per window, shared by its 5 frames.

    Ops (comma-separated): "affine" (rotation +-10 deg, zoom 1 +- 0.1, shift +-0.1, reflected borders),
    "erosion" (3x3 grey erosion, on half the windows), and the shared DiffAugment's "color",
    "translation", "cutout" (`headflow.augment.diffaugment`). All are differentiable in the images.
    """
    names = [p.strip() for p in ops.split(",") if p.strip()]
    b, c, h, w = windows.shape
    x = windows
    for op in names:
        if op == "affine":
            x = affine_augment(x, gen, rotation_deg=10.0, scale=0.1, shift=0.1)
        elif op == "erosion":
            pick = (torch.rand(b, generator=gen) < 0.5).to(x.device).view(b, 1, 1, 1)
            eroded = erosion(x, torch.ones(3, 3, device=x.device, dtype=x.dtype))
            x = torch.where(pick, eroded, x)
        elif op in diffaugment.OPS:
            p = diffaugment.sample_params(b, h, w, op, gen)
            frames = x.reshape(b * WINDOW, c // WINDOW, h, w)
            rep = {k: getattr(p, k).repeat_interleave(WINDOW, 0) for k in
                   ("brightness", "saturation", "contrast", "shift", "cutout_centre") if getattr(p, k) is not None}
            p = diffaugment.DiffAugmentParams(policy=p.policy, height=h, width=w, cutout_size=p.cutout_size, **rep)
            x = diffaugment.apply_params(frames, p).reshape(b, c, h, w)
        else:
            raise ValueError(f"d_augment: unknown op {op!r}; known: affine, erosion, {', '.join(diffaugment.OPS)}")
    return x


# ------------------------------------------------------------------------------------------ the objective

def weighted_total(terms: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """sum_name weights[name] * terms[name]; every term must have a weight.

    Raises:
        KeyError: a term without a weight (names it and the known weights).
    """
    missing = sorted(set(terms) - set(weights))
    if missing:
        raise KeyError(f"loss terms {missing} have no weight; weights are given for {sorted(weights)}")
    return sum((weights[k] * v for k, v in terms.items()), next(iter(terms.values())).new_zeros(()))


@dataclass
class Forward:
    """One generator pass over a batch of windows, kept for the loss terms and the sample grid."""

    output: LipsyncOutput
    target: torch.Tensor
    """(B*5, 3, 96, 96) real frames."""
    blended: torch.Tensor
    """(B*5, 3, 96, 96) generated frames blended into the real ones with the detached mask (eq. 10)."""
    masked: torch.Tensor
    """(B*5, 3, 96, 96) the identity input (lower half zeroed)."""


class LipsyncStep:
    """The family's networks and loss terms by name: the step object of the shared training harness.

    The harness (`headflow.training`) weights the terms by name, sums them and steps the optimisers;
    this object only computes. Batches are dicts of tensors: the collated raw windows (`data.WindowSample`
    fields), turned into float images with prepared references by `prepare` (on the device, drawing
    only from the step's generator, so a resumed run repeats the same draws).

    Stage 1 is this class with `discriminator=None`; stage 2 is `LipsyncGanStep`, whose discriminator adds
    gan_g to the G terms, and whose `d_losses` / `d_real_logits` give the D step (gan_d, R1). The sync term is returned
    from the start so its name is constant; until `sync_on` (set by `evaluate` once the validation
    masked L1 reaches `loss.sync_start_l1`) it is detached: logged, not trained on (section 3.7:
    "for the first iterations expert loss is not evaluated").

    Args:
        params: the run's `LipsyncParams`.
        generator: the `LipsyncGenerator`.
        perceptual: a `headflow.losses.perceptual.PerceptualLoss`, or None (no perceptual term).
        expert: the frozen lip-sync expert (`SyncExpert`, eval mode), or None (no sync term).
        discriminator: stage 2's discriminator (`build_discriminator`), or None (stage 1).
        stage: 1 or 2 (which sync weight `weights` gives).
        val_batch: a prepared batch of fixed validation windows for `evaluate` (None: no evaluation).
    """

    def __init__(self, params: LipsyncParams, generator: LipsyncGenerator, perceptual: nn.Module | None = None,
                 expert: nn.Module | None = None, discriminator: nn.Module | None = None, stage: int = 1,
                 val_batch: Mapping[str, torch.Tensor] | None = None):
        if stage not in (1, 2):
            raise ValueError(f"LipsyncStep: stage must be 1 or 2, got {stage}")
        if stage == 2 and discriminator is None:
            raise ValueError("LipsyncStep: stage 2 needs the discriminator")
        self.params = params
        self.generator = generator
        self.perceptual = perceptual
        self.expert = expert
        self.discriminator = discriminator if stage == 2 else None
        self.stage = stage
        self.val_batch = val_batch
        self.sync_on = params.loss.sync_start_l1 < 0
        self.gen = torch.Generator().manual_seed(params.seed)

    # -- the harness's hooks -----------------------------------------------------------------------

    def prepare(self, batch: Mapping[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Raw collated windows -> float images and prepared references (`data.prepare_batch`)."""
        self.gen = generator
        return prepare_batch(batch, self.params.data, generator)

    def run_generator(self, batch: Mapping[str, torch.Tensor], network: nn.Module | None = None) -> Forward:
        """The generator (or `network`, e.g. the EMA copy) on a prepared batch."""
        network = network or self.generator
        faces = batch["faces"]
        if faces.dim() != 5 or faces.shape[1] != WINDOW:
            raise ValueError(f"batch: faces must be (B, {WINDOW}, 3, 96, 96), got {tuple(faces.shape)}; "
                             "was the batch prepared?")
        target = faces.flatten(0, 1)
        masked = mask_lower_half(target)
        out = network(masked, batch["mels"].flatten(0, 1), batch["references"])
        return Forward(out, target, blend(out.image, target, out.mask), masked)

    def g_losses(self, batch: Mapping[str, torch.Tensor], fwd: Forward | None = None) -> dict[str, torch.Tensor]:
        """The G step's unweighted terms (`G_TERMS` that this configuration has)."""
        fwd = fwd or self.run_generator(batch)
        out = fwd.output
        terms = {"l1_masked": l1_masked(out.image, fwd.target, out.mask)}
        if self.perceptual is not None:
            terms["perceptual"] = self.perceptual(fwd.blended, fwd.target)
        if out.mask is not None:
            terms["mask_bce"] = mask_bce(out.mask, batch["hull"].flatten(0, 1))
        windows = fwd.blended.view(-1, WINDOW, *fwd.blended.shape[1:])
        if self.expert is not None:
            sync = sync_term(self.expert, windows, batch["expert_mel"], batch.get("mouth_reference"),
                             self.params.loss.sync_eps)
            terms["sync"] = sync if self.sync_on else sync.detach()
        if self.discriminator is not None:
            fake = d_augment(discriminator_input(windows), self.params.loss.d_augment, self.gen)
            terms["gan_g"] = g_loss(self.discriminator(fake)[0], "non_saturating")
        return terms

    @torch.no_grad()
    def evaluate(self, network: nn.Module) -> dict[str, float]:
        """Validation masked L1 (and sync) on the fixed windows; switches the sync term on at the threshold."""
        if self.val_batch is None:
            return {}
        was = network.training
        network.eval()
        try:
            fwd = self.run_generator(self.val_batch, network)
            l1 = float(l1_masked(fwd.output.image, fwd.target, fwd.output.mask))
            metrics = {"val_l1_masked": l1}
            if self.expert is not None:
                windows = fwd.blended.view(-1, WINDOW, *fwd.blended.shape[1:])
                metrics["val_sync"] = float(sync_term(self.expert, windows, self.val_batch["expert_mel"],
                                                      self.val_batch.get("mouth_reference"), self.params.loss.sync_eps))
        finally:
            network.train(was)
        if self.params.loss.sync_start_l1 > 0 and l1 <= self.params.loss.sync_start_l1:
            self.sync_on = True
        metrics["sync_on"] = float(self.sync_on)
        return metrics

    def weights(self) -> dict[str, float]:
        """Loss weights by the names this step returns (section 3.7); "r1" is gamma / 2 for the harness's
        R1 (the sum of squared gradients without the 1/2 of eq. 14)."""
        lw = self.params.loss
        out = {"l1_masked": lw.l1_masked}
        if self.perceptual is not None:
            out["perceptual"] = lw.perceptual
        if self.generator_has_mask():
            out["mask_bce"] = lw.mask_bce
        if self.expert is not None:
            out["sync"] = lw.sync if self.stage == 1 else lw.sync_stage2
        if self.discriminator is not None:
            out.update({"gan_g": lw.gan, "gan_d": 1.0, "r1": lw.r1_gamma / 2})
        return out

    def generator_has_mask(self) -> bool:
        net = getattr(self.generator, "module", self.generator)      # unwrap a Fabric / DDP wrapper
        return bool(net.params.mask_head)

    @torch.no_grad()
    def samples(self, batch: Mapping[str, torch.Tensor], network: nn.Module | None = None) -> torch.Tensor:
        """A sample grid: per window, its first frame as real, masked input, first reference, generated,
        blended and mask: (B * 6, 3, 96, 96) in [0, 1], window by window, in eval mode. A raw (collated, unprepared)
        batch is prepared with a fixed seed, so every epoch's grid shows the same inputs."""
        if "faces_u8" in batch:
            batch = prepare_batch(batch, self.params.data, torch.Generator().manual_seed(self.params.seed))
        network = network or self.generator
        was = network.training
        network.eval()                     # as generation runs it; and BatchNorm statistics must not move
        try:
            fwd = self.run_generator(batch, network)
        finally:
            network.train(was)
        first = slice(None, None, WINDOW)
        mask = fwd.output.mask if fwd.output.mask is not None else torch.ones_like(fwd.target[:, :1])
        rows = torch.stack([fwd.target[first], fwd.masked[first], batch["references"][:, 0],
                            fwd.output.image[first], fwd.blended[first], mask[first].expand(-1, 3, -1, -1)], dim=1)
        return rows.flatten(0, 1)


class LipsyncGanStep(LipsyncStep):
    """Stage 2: `LipsyncStep` plus the multi-frame discriminator's D step (the harness finds `d_losses`
    and `d_real_logits` and alternates D and G)."""

    def __init__(self, params: LipsyncParams, generator: LipsyncGenerator, discriminator: nn.Module,
                 perceptual: nn.Module | None = None, expert: nn.Module | None = None,
                 val_batch: Mapping[str, torch.Tensor] | None = None):
        super().__init__(params, generator, perceptual, expert, discriminator, stage=2, val_batch=val_batch)

    def d_losses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The D step's unweighted term gan_d (fakes made under no_grad, as DDP needs)."""
        with torch.no_grad():
            fwd = self.run_generator(batch)
        ops = self.params.loss.d_augment
        fake = discriminator_input(fwd.blended.view(-1, WINDOW, *fwd.blended.shape[1:]))
        real = discriminator_input(batch["faces"])
        real_logits = self.discriminator(d_augment(real, ops, self.gen))[0]
        fake_logits = self.discriminator(d_augment(fake, ops, self.gen))[0]
        return {"gan_d": d_loss(real_logits, fake_logits, "non_saturating")}

    def d_real_logits(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(real windows requiring grad, D's logits on their DiffAugmented copies), for the harness's R1."""
        real = discriminator_input(batch["faces"]).detach().requires_grad_(True)
        return real, self.discriminator(d_augment(real, self.params.loss.d_augment, self.gen))[0]
