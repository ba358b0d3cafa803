"""Head2HeadFS networks: identity embedder E_id, sequential generator G, discriminators D^I, D^M, D^V.

Section 3.3 of the paper (`papers/head2headfs.txt`); widths and layer types follow vid2vid (the paper's
stated base, section 4) where the paper gives none. Images are in [-1, 1] (tanh), NMFC in [0, 1] mapped
to [-1, 1], masks in [0, 1].

Generator (eq. 5): y~_t, m~_t = G(X_{t-2:t}, Y~_{t-2:t-1}, h). Two identical encoders: conv 7x7 then
`n_downsample` stride-2 convs 3x3; the NMFC triple (9 channels) goes into the first, the two previous
generated frames (6 channels) into the second; their outputs are summed and decoded by `n_blocks`
residual blocks, `n_downsample` nearest-x2 + conv 3x3 levels and two conv 7x7 heads (frame: tanh,
mask: sigmoid). Every normalisation layer of both encoders and the decoder is AdaIN with
gamma = P_gamma h, beta = P_beta h (eq. 6; `headflow.nn.blocks.AdaIN`, whose projections carry a bias
b_gamma = 1, b_beta = 0 at init: a deviation that lets a fresh layer start as plain instance norm).
Fine-tuning (section 3.4) calls `Head2HeadGenerator.personalise(h_new)`: every AdaIN becomes an affine
instance norm with gamma = P_gamma h_new + b_gamma, beta = P_beta h_new + b_beta, so its first output
equals the embedder-conditioned one.

D^I (eq. 7): a PatchGAN over [frame, NMFC] whose last hidden features are projected per patch to n_f
channels d; the patch's score is r = d^T (w_i + w_0) + c with W (N x n_f) one row per training identity.
The paper describes one feature vector d per image (following Zakharov et al. [55], which sum-pools);
with a PatchGAN (section 4) we apply eq. 7 at every patch (a deviation in form, the same algebra).
`to_single_identity(h_new)` replaces W by one row initialised with h_new (section 3.4).
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from headflow.generators.head2headfs.params import DiscriminatorParams, Head2HeadFSParams, ModelParams
from headflow.nn.blocks import ConvNormAct, ResBlock, adain_to_instance_norm
from headflow.nn.discriminators import PatchDiscriminator, RegionDiscriminator
from headflow.manifest.hashing import file_sha256  # noqa: F401  (re-exported: callers import it from here)
from headflow.training.checkpoint import load_export, save_export

MOUTH = slice(48, 68)
"""iBUG 68 mouth landmarks (outer 48-59, inner 60-67)."""


# ----------------------------------------------------------------------------------------- E_id

class _InceptionResBlock(nn.Module):
    """Inception-ResNet block (FaceNet's Block35 form): three branches (1x1; 1x1-3x3; 1x1-3x3-3x3)
    concatenated, projected by a 1x1 conv, added to the input scaled by 0.17, ReLU."""

    def __init__(self, c: int, scale: float = 0.17):
        super().__init__()
        b = max(c // 4, 1)

        def cbr(i, o, k):
            return nn.Sequential(nn.Conv2d(i, o, k, padding=k // 2, bias=False), nn.BatchNorm2d(o), nn.ReLU())

        self.b0 = cbr(c, b, 1)
        self.b1 = nn.Sequential(cbr(c, b, 1), cbr(b, b, 3))
        self.b2 = nn.Sequential(cbr(c, b, 1), cbr(b, b, 3), cbr(b, b, 3))
        self.proj = nn.Conv2d(3 * b, c, 1)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.scale * self.proj(torch.cat([self.b0(x), self.b1(x), self.b2(x)], 1)))


class IdentityEmbedder(nn.Module):
    """E_id: a small FaceNet-style Inception-ResNet (facenet-pytorch `InceptionResnetV1` layout, narrowed).

    Stem (conv 3x3 stride 2, conv 3x3, conv 3x3 stride 2, BatchNorm + ReLU each), `blocks` Inception-ResNet
    blocks, a reduction (conv 3x3 stride 2 to 2x width), `blocks` more, global average pool, dropout 0.2
    (training), linear to n_f, BatchNorm1d, L2 normalisation (FaceNet's unit-norm embedding).

    Shapes: frames (N, 3, H, W) in [-1, 1] -> (N, n_f) unit vectors. `identity(frames)` (B, M, 3, H, W) ->
    h (B, n_f), the mean of the M embeddings (eq. 4; the mean is not renormalised, as in the paper).
    """

    def __init__(self, n_f: int, width: int = 32, blocks: int = 2):
        super().__init__()

        def cbr(i, o, s):
            return nn.Sequential(nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU())

        w = width
        self.stem = nn.Sequential(cbr(3, w, 2), cbr(w, w, 1), cbr(w, w, 2))
        self.stage1 = nn.Sequential(*[_InceptionResBlock(w) for _ in range(blocks)])
        self.reduce = cbr(w, 2 * w, 2)
        self.stage2 = nn.Sequential(*[_InceptionResBlock(2 * w) for _ in range(blocks)])
        self.dropout = nn.Dropout(0.2)
        self.linear = nn.Linear(2 * w, n_f, bias=False)
        self.bn = nn.BatchNorm1d(n_f)
        self.n_f = n_f

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = self.stage2(self.reduce(self.stage1(self.stem(frames))))
        x = self.bn(self.linear(self.dropout(x.mean(dim=(2, 3)))))
        return F.normalize(x, dim=1)

    def identity(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, M, 3, H, W) -> h (B, n_f): mean embedding of each sample's M frames (eq. 4)."""
        b, m = frames.shape[:2]
        return self(frames.flatten(0, 1)).view(b, m, -1).mean(1)


# ----------------------------------------------------------------------------------------- G

class _Encoder(nn.Module):
    def __init__(self, in_ch: int, widths: list[int], n_f: int):
        super().__init__()
        self.layers = nn.ModuleList([ConvNormAct(in_ch, widths[0], 7, norm="adain", style_dim=n_f)])
        for a, b in zip(widths[:-1], widths[1:]):
            self.layers.append(ConvNormAct(a, b, 3, stride=2, norm="adain", style_dim=n_f))

    def forward(self, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, h)
        return x


class Head2HeadGenerator(nn.Module):
    """G (module docstring). forward(nmfc, previous, h):

    Args:
        nmfc: (B, 9, S, S) the NMFC frames x_{t-2}, x_{t-1}, x_t stacked on channels, in [-1, 1].
        previous: (B, 6, S, S) the generated frames y~_{t-2}, y~_{t-1}, in [-1, 1].
        h: (B, n_f) identity vectors; None after `personalise` (the layers then hold their gamma, beta).

    Returns:
        (frame (B, 3, S, S) in [-1, 1], mask (B, 1, S, S) in [0, 1]).

    Raises:
        ValueError: h given to a personalised generator or missing from a multi-person one (from the blocks).
    """

    def __init__(self, params: ModelParams):
        super().__init__()
        widths = [min(params.ngf * 2 ** k, params.max_channels) for k in range(params.n_downsample + 1)]
        self.params = params
        self.personalised = False
        self.nmfc_encoder = _Encoder(9, widths, params.n_f)
        self.frame_encoder = _Encoder(6, widths, params.n_f)
        self.blocks = nn.ModuleList(ResBlock(widths[-1], norm="adain", style_dim=params.n_f)
                                    for _ in range(params.n_blocks))
        self.up = nn.ModuleList(ConvNormAct(a, b, 3, norm="adain", sample="up", style_dim=params.n_f)
                                for a, b in zip(widths[::-1][:-1], widths[::-1][1:]))
        self.to_frame = nn.Conv2d(widths[0], 3, 7, padding=3)
        self.to_mask = nn.Conv2d(widths[0], 1, 7, padding=3)

    def forward(self, nmfc: torch.Tensor, previous: torch.Tensor, h: torch.Tensor | None = None):
        x = self.nmfc_encoder(nmfc, h) + self.frame_encoder(previous, h)
        for block in self.blocks:
            x = block(x, h)
        for layer in self.up:
            x = layer(x, h)
        return torch.tanh(self.to_frame(x)), torch.sigmoid(self.to_mask(x))

    @torch.no_grad()
    def personalise(self, h_new: torch.Tensor) -> int:
        """Section 3.4: every AdaIN -> affine instance norm with gamma = P_gamma h_new, beta = P_beta h_new.

        Args:
            h_new: (n_f,) the new identity's mean embedding (eq. 9).

        Returns:
            The number of normalisation layers replaced.

        Raises:
            ValueError: already personalised, or h_new of another length.
        """
        if self.personalised:
            raise ValueError("Head2HeadGenerator.personalise: this generator is already person-specific")
        if h_new.numel() != self.params.n_f:
            raise ValueError(f"personalise: h_new has {h_new.numel()} values, the generator's n_f is {self.params.n_f}")
        n = adain_to_instance_norm(self, h_new.reshape(-1))
        self.personalised = True
        return n


def generate_sequence(generator: Head2HeadGenerator, nmfc: torch.Tensor, h: torch.Tensor | None,
                      previous: torch.Tensor | None = None, detach_previous: bool = True
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Run G one frame after the other over a window (eq. 5), feeding back its own frames.

    Args:
        nmfc: (B, 2 + L, 3, S, S) NMFC frames t0-2 .. t0+L-1 in [-1, 1] (the two leading frames condition
            the first output; repeat x_t0 when t0 < 2).
        h: (B, n_f) identity vectors, or None for a personalised G.
        previous: (B, 2, 3, S, S) the frames before t0 (real ones at the start of a training window, as
            vid2vid starts its sequences; None = zeros: nothing generated yet).
        detach_previous: cut the gradient through the fed-back frames (vid2vid detaches its previous
            fakes; it keeps training memory at one frame's graph).

    Returns:
        (frames (B, L, 3, S, S), masks (B, L, 1, S, S)).
    """
    b, n = nmfc.shape[:2]
    s = nmfc.shape[-1]
    prev = [previous[:, 0], previous[:, 1]] if previous is not None else [nmfc.new_zeros(b, 3, s, s)] * 2
    frames, masks = [], []
    for k in range(2, n):
        y, m = generator(nmfc[:, k - 2:k + 1].flatten(1, 2), torch.cat(prev[-2:], 1), h)
        frames.append(y)
        masks.append(m)
        prev.append(y.detach() if detach_previous else y)
    return torch.stack(frames, 1), torch.stack(masks, 1)


# ----------------------------------------------------------------------------------------- D

class ProjectionImageDiscriminator(nn.Module):
    """D^I: PatchGAN on [frame, NMFC] with the identity projection r = d^T (w_i + w_0) + c (eq. 7).

    Args:
        n_identities: N, rows of W (the training identities).
        n_f: length of d and of the rows of W.
        ndf, n_layers: the PatchGAN's width and depth.

    forward(frame (B, 3, S, S), nmfc (B, 3, S, S), identity (B,) long) -> (scores (B, 1, h, w),
    features list for feature matching). In single-identity mode (`to_single_identity`) `identity` is ignored.
    """

    def __init__(self, n_identities: int, n_f: int, ndf: int, n_layers: int):
        super().__init__()
        self.body = PatchDiscriminator(6, ndf, n_layers, norm="instance")
        self.body.head = nn.Identity()   # replaced by to_d (a 1-channel head left unused breaks DDP's reducer)
        c_last = min(ndf * 2 ** n_layers, 512)
        self.to_d = nn.Conv2d(c_last, n_f, 4, 1, 1)     # takes the place of the PatchGAN's 1-channel head
        self.W = nn.Parameter(torch.randn(n_identities, n_f) * 0.02)
        self.w0 = nn.Parameter(torch.zeros(n_f))
        self.c = nn.Parameter(torch.zeros(1))
        self.single = False

    def forward(self, frame: torch.Tensor, nmfc: torch.Tensor, identity: torch.Tensor | None = None):
        x = torch.cat([frame, nmfc], 1)
        feats = []
        for block in self.body.blocks:
            x = block(x)
            feats.append(x)
        d = self.to_d(x)                                                     # (B, n_f, h, w)
        if self.single:
            w = self.W[0].expand(d.shape[0], -1)
        else:
            if identity is None:
                raise ValueError("ProjectionImageDiscriminator: identity indices (B,) are required before "
                                 "to_single_identity")
            w = self.W[identity]
        score = torch.einsum("bfhw,bf->bhw", d, w + self.w0).unsqueeze(1) + self.c
        return score, feats

    @torch.no_grad()
    def to_single_identity(self, h_new: torch.Tensor) -> None:
        """Section 3.4: W -> one vector w initialised with h_new (w_0 and c are kept)."""
        self.W = nn.Parameter(h_new.reshape(1, -1).clone().to(self.W.dtype))
        self.single = True


class DynamicsDiscriminator(nn.Module):
    """D^V: at temporal scale s, K frames 2^s apart plus the K - 1 optical flows between those real frames,
    stacked on channels, into that scale's PatchGAN (section 3.3 "Temporal discriminator"; section 4:
    three scales, subsampling by 2).

    forward(frames (B, T, 3, S, S), flows list over scales of (B, K-1, 2, S, S)) -> (list of S score maps,
    list of S feature lists). T = (K - 1) * 2^(scales - 1) + 1; scale s uses frames [0::2^s][:K]... taken so
    that every scale ends at the window's last frame.
    """

    def __init__(self, window: int, time_scales: int, ndf: int, n_layers: int):
        super().__init__()
        self.window, self.time_scales = window, time_scales
        self.scales = nn.ModuleList(PatchDiscriminator(3 * window + 2 * (window - 1), ndf, n_layers, norm="instance")
                                    for _ in range(time_scales))

    @property
    def frames_needed(self) -> int:
        return (self.window - 1) * 2 ** (self.time_scales - 1) + 1

    def forward(self, frames: torch.Tensor, flows: list[torch.Tensor]):
        if frames.shape[1] != self.frames_needed or len(flows) != self.time_scales:
            raise ValueError(f"DynamicsDiscriminator: needs {self.frames_needed} frames and {self.time_scales} flow "
                             f"stacks, got {frames.shape[1]} and {len(flows)}")
        scores, feats = [], []
        for s, disc in enumerate(self.scales):
            clip = frames[:, scale_indices(frames.shape[1], self.window, s)]
            lg, ft = disc(torch.cat([clip.flatten(1, 2), flows[s].flatten(1, 2)], 1))
            scores.append(lg)
            feats.append(ft)
        return scores, feats


def scale_indices(n_frames: int, window: int, scale: int) -> list[int]:
    """Indices of the K frames D^V's temporal scale `scale` sees: 2^scale apart, ending at the last frame."""
    step = 2 ** scale
    return list(range(n_frames - 1 - (window - 1) * step, n_frames, step))


def mouth_boxes(landmarks: torch.Tensor, scale: float) -> torch.Tensor:
    """Square mouth boxes from landmarks: (..., 68, 2) -> (..., 4) as (x0, y0, x1, y1) in the same pixels.

    Centre = mean of landmarks 48-67; side = `scale` x the mouth width (|p54 - p48|), at least 4 px.
    """
    mouth = landmarks[..., MOUTH, :]
    centre = mouth.mean(-2)
    half = (scale * (landmarks[..., 54, :] - landmarks[..., 48, :]).norm(dim=-1)).clamp(min=4.0) / 2
    return torch.stack([centre[..., 0] - half, centre[..., 1] - half, centre[..., 0] + half, centre[..., 1] + half], -1)


class Discriminators(nn.Module):
    """The three discriminators in one module (the harness trains one `discriminator`)."""

    def __init__(self, params: Head2HeadFSParams, n_identities: int):
        super().__init__()
        d: DiscriminatorParams = params.discriminator
        self.image = ProjectionImageDiscriminator(n_identities, params.model.n_f, d.ndf, d.n_layers)
        self.mouth = RegionDiscriminator(3, (d.mouth_size, d.mouth_size), base_channels=d.ndf, n_layers=2,
                                         norm="instance") if d.mouth else None
        self.dynamics = DynamicsDiscriminator(d.window, d.time_scales, d.ndf, d.n_layers) if d.dynamics else None

    def forward(self, frames: torch.Tensor, nmfc: torch.Tensor, identity: torch.Tensor, mouth: torch.Tensor,
                flows: list[torch.Tensor]) -> dict[str, tuple]:
        """Scores and features of every discriminator on a window.

        Args:
            frames: (B, L, 3, S, S) real or generated frames in [-1, 1].
            nmfc: (B, L, 3, S, S) the NMFC of the same frames.
            identity: (B,) long rows of W.
            mouth: (B, L, 4) mouth boxes in S pixels.
            flows: per temporal scale (B, K-1, 2, S, S) flows of the real frames.

        Returns:
            {"image": (scores, feats), "mouth": ... (with D^M), "video": (list of scores, list of feats) (with D^V)}.
        """
        L = frames.shape[1]
        flat = frames.flatten(0, 1)
        out = {"image": self.image(flat, nmfc.flatten(0, 1), identity.repeat_interleave(L))}
        if self.mouth is not None:
            out["mouth"] = self.mouth(flat, mouth.flatten(0, 1))
        if self.dynamics is not None:
            out["video"] = self.dynamics(frames, flows)
        return out


class Renderer(nn.Module):
    """G and E_id in one module: what the initialisation stage's generator optimiser trains (section 3.3:
    "the parameters of both the video generator and identity embedder are optimized")."""

    def __init__(self, params: ModelParams):
        super().__init__()
        self.generator = Head2HeadGenerator(params)
        self.embedder = IdentityEmbedder(params.n_f, params.embedder_width, params.embedder_blocks)

    def forward(self, nmfc: torch.Tensor, previous: torch.Tensor, identity_frames: torch.Tensor):
        """(nmfc (B, 2+L, 3, S, S), previous (B, 2, 3, S, S), identity_frames (B, M, 3, S, S)) ->
        (frames (B, L, 3, S, S), masks (B, L, 1, S, S), h (B, n_f)): h from E_id (eq. 4), then G frame by frame."""
        h = self.embedder.identity(identity_frames)
        frames, masks = generate_sequence(self.generator, nmfc, h, previous)
        return frames, masks, h


class SequenceRenderer(nn.Module):
    """A personalised G run over a window (the fine-tuning stage's trained module)."""

    def __init__(self, generator: Head2HeadGenerator):
        super().__init__()
        self.generator = generator

    def forward(self, nmfc: torch.Tensor, previous: torch.Tensor):
        """-> (frames (B, L, 3, S, S), masks (B, L, 1, S, S)); see `generate_sequence`."""
        return generate_sequence(self.generator, nmfc, None, previous)


# ----------------------------------------------------------------------------------------- files

def state_sha256(module: nn.Module) -> str:
    """sha256 over a module's state (names, then bytes), independent of file encoding."""
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(np.ascontiguousarray(v.detach().cpu().numpy()).tobytes())
    return h.hexdigest()



def save_person(path: Path, generator: Head2HeadGenerator, h_new: torch.Tensor, info: dict[str, Any]) -> str:
    """Write a person-specific generator (`finetune_head2headfs`): model params, weights, h_new, info.
    Atomic; returns the file's sha256."""
    from dataclasses import asdict

    return save_export({"format": "head2headfs.person/1", "model": asdict(generator.params),
                        "weights": generator.state_dict(), "h_new": h_new.detach().cpu(), "info": info}, path)


def load_person(path: Path, expect: ModelParams | None = None) -> tuple[Head2HeadGenerator, dict]:
    """A person-specific generator written by `save_person` (eval mode).

    Raises:
        FileNotFoundError: no file (run `dvc repro finetune_head2headfs`).
        ValueError: another layout, or (with `expect`) another resolution or width: the message names both.
    """
    state = load_export(path, "head2headfs.person/1", "person-specific Head2HeadFS generator",
                        "run `dvc repro finetune_head2headfs`")
    mp = ModelParams(**state["model"])
    if expect is not None:
        check_same_size(mp, expect, str(path), "the params")
    g = Head2HeadGenerator(mp)
    g.personalise(torch.zeros(mp.n_f))
    g.load_state_dict(state["weights"])
    return g.eval(), state


def check_same_size(found: ModelParams, wanted: ModelParams, found_name: str, wanted_name: str) -> None:
    """Raise ValueError naming both when two model params differ in resolution or width."""
    keys = ("image_size", "ngf", "max_channels", "n_downsample", "n_blocks", "n_f", "embedder_width", "embedder_blocks")
    diff = {k: (getattr(found, k), getattr(wanted, k)) for k in keys if getattr(found, k) != getattr(wanted, k)}
    if diff:
        shown = ", ".join(f"{k} {a} in {found_name} vs {b} in {wanted_name}" for k, (a, b) in diff.items())
        raise ValueError(f"Head2HeadFS checkpoint of another resolution or width: {shown}; retrain the "
                         "initialisation stage with these params or set the params to the checkpoint's")


def clone_personalised(generator: Head2HeadGenerator, h_new: torch.Tensor) -> Head2HeadGenerator:
    """A deep copy of a multi-person G, personalised with h_new (the original is left as it is)."""
    g = copy.deepcopy(generator)
    g.personalise(h_new)
    return g
