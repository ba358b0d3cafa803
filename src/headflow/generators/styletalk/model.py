"""StyleTalk's networks: audio encoder E_a, style encoder E_s, style-controllable dynamic decoder E_d.

Paper "Method" (papers/styletalk.txt); module and parameter names follow the released code
(`core/networks/{generator,disentangle_decoder,dynamic_fc_decoder,dynamic_conv,transformer,
self_attention_pooling}.py`) so that a released checkpoint's state dict loads into `StyleTalkNet` with
`load_state_dict` (names and shapes; `tests/generators/styletalk/test_styletalk_model.py` checks a
state dict built from the released layout). The code is ours.

Tensor layout inside the transformers is sequence-first, (S, N, C), as `nn.MultiheadAttention`'s default
and the released code. Public shapes:

    phones (B, N, 2w+1) int64 -> E_a -> (B, N, 2w+1, d)
    style clip (B, S, K) float + pad mask (B, S) bool (True = padding) -> E_s -> s (B, d)
    E_d(content, s) -> (B, N, K) expression coefficients of the N middle frames

Deviations (also in docs/families/styletalk.md): the adaptive FFN replaces the first linear layer of each decoder FFN
only (released code; the paper says "the feed-forward layers"); pi(s) uses the released softmax
temperature (`ModelParams.dynamic_temperature`); the pooling's scorer is Linear-Mish-Linear (released)
where the paper writes a row vector W_s.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from headflow.generators.styletalk.params import N_PHONEMES, ModelParams
from headflow.training.checkpoint import load_export, save_export
from headflow.manifest.hashing import file_sha256  # noqa: F401  (re-exported: callers import it from here)


def sinusoid_table(n_position: int, d: int) -> torch.Tensor:
    """(1, n_position, d) sinusoidal positional encodings (Vaswani et al. 2017, section 3.5).

    PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(p / 10000^(2i/d)) (released `PositionalEncoding`)."""
    pos = np.arange(n_position, dtype=np.float64)[:, None]
    i = np.arange(d)[None, :]
    angle = pos / np.power(10000.0, 2 * (i // 2) / d)
    table = np.where(i % 2 == 0, np.sin(angle), np.cos(angle))
    return torch.tensor(table, dtype=torch.float32)[None]


class PositionalEncoding(nn.Module):
    """A fixed sinusoid table (buffer `pos_table`, saved in the state dict as in the released code)."""

    def __init__(self, d: int, n_position: int):
        super().__init__()
        self.register_buffer("pos_table", sinusoid_table(n_position, d))

    def forward(self, length: int) -> torch.Tensor:
        """(1, length, d). Raises ValueError beyond the table."""
        if length > self.pos_table.shape[1]:
            raise ValueError(f"sequence of {length} tokens is longer than the positional table "
                             f"({self.pos_table.shape[1]}); raise model.style_max_len or shorten the style clip")
        return self.pos_table[:, :length]


class EncoderLayer(nn.Module):
    """Post-norm transformer encoder layer: x + SelfAttn(x) -> LN -> x + FFN(x) -> LN (DETR / released)."""

    def __init__(self, d: int, nhead: int, dim_ff: int, dropout: float):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d, dim_ff)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_ff, d)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        a = self.self_attn(x, x, x, key_padding_mask=key_padding_mask, need_weights=False)[0]
        x = self.norm1(x + self.dropout1(a))
        return self.norm2(x + self.dropout2(self.linear2(self.dropout(F.relu(self.linear1(x))))))


class TransformerEncoder(nn.Module):
    """Positional encodings added once at the input, then `n` `EncoderLayer`s (released `TransformerEncoder`)."""

    def __init__(self, layer: EncoderLayer, n: int):
        super().__init__()
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(n))

    def forward(self, x: torch.Tensor, pos: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + pos
        for layer in self.layers:
            x = layer(x, key_padding_mask)
        return x


class AdaptiveAttention(nn.Module):
    """pi(s) = softmax(FC2(ReLU(FC1(s))) / temperature) over K weight sets (paper eq. 2; released
    `dynamic_conv.Attention`: 1x1 convs without bias, stored here with the same (out, in, 1, 1) shapes)."""

    def __init__(self, d_style: int, k: int, ratio: int, temperature: float):
        super().__init__()
        hidden = max(1, d_style // ratio)
        self.net = nn.Sequential(nn.Conv2d(d_style, hidden, 1, bias=False), nn.ReLU(), nn.Conv2d(hidden, k, 1, bias=False))
        for m in self.net:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        self.temperature = temperature

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        """s (B, d_style) -> pi (B, K), rows summing to 1."""
        h = F.relu(F.linear(s, self.net[0].weight.flatten(1)))
        return torch.softmax(F.linear(h, self.net[2].weight.flatten(1)) / self.temperature, dim=-1)


class DynamicWeights(nn.Module):
    """K sets (W_k, b_k) of one linear layer, mixed per sample: W(s) = sum_k pi_k(s) W_k, b(s) likewise."""

    def __init__(self, d_in: int, d_out: int, d_style: int, k: int, ratio: int, temperature: float):
        super().__init__()
        self.attention = AdaptiveAttention(d_style, k, ratio, temperature)
        self.weight = nn.Parameter(torch.empty(k, d_out, d_in, 1, 1))
        self.bias = nn.Parameter(torch.empty(k, d_out))
        bound = 1.0 / math.sqrt(d_in)
        for i in range(k):      # each set initialised as nn.Linear's weights (kaiming uniform a = sqrt 5)
            nn.init.kaiming_uniform_(self.weight.data[i], a=math.sqrt(5))
        nn.init.uniform_(self.bias, -bound, bound)
        self.k, self.d_in, self.d_out = k, d_in, d_out


class AdaptiveFFNLinear(nn.Module):
    """The style-aware adaptive linear layer (paper eq. 2-3 before the activation g):
    y = W(s)^T x + b(s) with W(s) = sum_k pi_k(s) W_k, b(s) = sum_k pi_k(s) b_k, pi = softmax(FC-ReLU-FC(s)).

    Named `linear1.dynamic_conv` inside a decoder layer as in the released `DynamicLinear`."""

    def __init__(self, d_in: int, d_out: int, d_style: int, k: int = 8, ratio: int = 4, temperature: float = 30.0):
        super().__init__()
        self.dynamic_conv = DynamicWeights(d_in, d_out, d_style, k, ratio, temperature)

    def mixing(self, style: torch.Tensor) -> torch.Tensor:
        """pi(s): (B, K)."""
        return self.dynamic_conv.attention(style)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """x (S, B, d_in), style (B, d_style) -> (S, B, d_out)."""
        dc = self.dynamic_conv
        pi = self.mixing(style)                                         # (B, K)
        w = (pi @ dc.weight.flatten(1)).view(-1, dc.d_out, dc.d_in)     # (B, out, in)
        b = pi @ dc.bias                                                # (B, out)
        return torch.einsum("sbi,boi->sbo", x, w) + b[None]


class DecoderLayer(nn.Module):
    """Post-norm decoder layer: self-attention, cross-attention to the audio features, FFN whose first
    linear is the adaptive one when `dynamic` (released `DynamicFCDecoderLayer` / `TransformerDecoderLayer`)."""

    def __init__(self, d: int, nhead: int, dim_ff: int, dropout: float, dynamic: bool, k: int, ratio: int,
                 temperature: float):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, nhead, dropout=dropout)
        self.multihead_attn = nn.MultiheadAttention(d, nhead, dropout=dropout)
        self.dynamic = dynamic
        self.linear1 = AdaptiveFFNLinear(d, dim_ff, d, k, ratio, temperature) if dynamic else nn.Linear(d, dim_ff)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_ff, d)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.dropout1, self.dropout2, self.dropout3 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        a = self.self_attn(tgt, tgt, tgt, need_weights=False)[0]
        tgt = self.norm1(tgt + self.dropout1(a))
        a = self.multihead_attn(tgt, memory, memory, need_weights=False)[0]
        tgt = self.norm2(tgt + self.dropout2(a))
        h = self.linear1(tgt, style) if self.dynamic else self.linear1(tgt)
        return self.norm3(tgt + self.dropout3(self.linear2(self.dropout(F.relu(h)))))


class DynamicDecoder(nn.Module):
    """`n` decoder layers and a final LayerNorm. Input tokens: zeros + positional encodings + the style
    code repeated 2w + 1 times (paper: "we repeat the style code 2w + 1 times and then add them with
    positional encodings to obtain the style tokens")."""

    def __init__(self, layer: DecoderLayer, n: int, d: int):
        super().__init__()
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(n))
        self.norm = nn.LayerNorm(d)

    def forward(self, memory: torch.Tensor, pos: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """memory (W, M, d) audio features; pos (W, 1, d); style (M, d) -> (W, M, d)."""
        x = pos + style[None]
        for layer in self.layers:
            x = layer(x, memory, style)
        return self.norm(x)


def _xavier(module: nn.Module) -> None:
    """Xavier-uniform init of every parameter with more than one dimension (released `_reset_parameters`)."""
    for p in module.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)


class ContentEncoder(nn.Module):
    """E_a: phoneme labels -> embeddings (41 x 128) -> Linear to d -> transformer encoder (paper "Audio
    Encoder"; released `ContentEncoder`)."""

    def __init__(self, p: ModelParams):
        super().__init__()
        d = p.d_model
        self.encoder = TransformerEncoder(EncoderLayer(d, p.nhead, p.ff_mult * d, p.dropout), p.encoder_layers)
        _xavier(self.encoder)
        self.pos_embed = PositionalEncoding(d, p.window_size)
        self.ph_embedding = nn.Embedding(N_PHONEMES, p.phoneme_embed_dim)
        self.increase_embed_dim = nn.Linear(p.phoneme_embed_dim, d)

    def forward(self, phones: torch.Tensor) -> torch.Tensor:
        """phones (B, N, W) int64 in [0, 41) -> (B, N, W, d)."""
        B, N, W = phones.shape
        x = self.increase_embed_dim(self.ph_embedding(phones)).reshape(B * N, W, -1).transpose(0, 1)
        out = self.encoder(x, self.pos_embed(W).transpose(0, 1))
        return out.transpose(0, 1).reshape(B, N, W, -1)


class SelfAttentionPooling(nn.Module):
    """Additive self-attention pooling (Safari et al. 2020): a_t = softmax_t(W(h_t)), s = sum_t a_t h_t,
    padded tokens excluded. W = Linear(d, d) - Mish - Linear(d, 1) (released; the paper writes W_s in R^{1 x d})."""

    def __init__(self, d: int):
        super().__init__()
        self.W = nn.Sequential(nn.Linear(d, d), nn.Mish(), nn.Linear(d, 1))

    def weights(self, h: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """h (B, T, d), pad_mask (B, T) True = padding -> attention weights (B, T), zero on padding."""
        logits = self.W(h).squeeze(-1)
        if pad_mask is not None:
            logits = logits.masked_fill(pad_mask, float("-inf"))
        return torch.softmax(logits, dim=-1)

    def forward(self, h: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, d) -> (B, d)."""
        return (self.weights(h, pad_mask)[..., None] * h).sum(1)


class StyleEncoder(nn.Module):
    """E_s: expression tokens (K per frame) -> Linear to d -> transformer encoder -> pooling -> s (B, d)."""

    def __init__(self, p: ModelParams, n_exp: int):
        super().__init__()
        d = p.d_model
        self.encoder = TransformerEncoder(EncoderLayer(d, p.nhead, p.ff_mult * d, p.dropout), p.encoder_layers)
        _xavier(self.encoder)
        self.pos_embed = PositionalEncoding(d, p.style_max_len)
        self.increase_embed_dim = nn.Linear(n_exp, d)
        self.aggregate_method = SelfAttentionPooling(d) if p.pooling == "attention" else None

    def forward(self, exp: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """exp (B, S, K), pad_mask (B, S) True = padding (None: none) -> s (B, d)."""
        x = self.increase_embed_dim(exp).transpose(0, 1)
        h = self.encoder(x, self.pos_embed(x.shape[0]).transpose(0, 1), pad_mask).transpose(0, 1)   # (B, S, d)
        if self.aggregate_method is not None:
            return self.aggregate_method(h, pad_mask)
        if pad_mask is None:
            return h.mean(1)
        keep = (~pad_mask).float()[..., None]
        return (h * keep).sum(1) / keep.sum(1).clamp_min(1.0)


class DisentangleDecoder(nn.Module):
    """E_d: two parallel dynamic decoders, lower face (mouth-related modes) and upper face (the rest); the
    middle output token -> FC-ReLU-FC-ReLU-FC (hidden d/2) -> that group's coefficients (paper
    "Disentanglement of Upper and Lower faces"; released `DisentangleDecoder`)."""

    def __init__(self, p: ModelParams, lower: tuple[int, ...], upper: tuple[int, ...]):
        super().__init__()
        d = p.d_model
        layer = DecoderLayer(d, p.nhead, p.ff_mult * d, p.dropout, p.dynamic_ffn, p.dynamic_k, p.dynamic_ratio,
                             p.dynamic_temperature)
        self.upper_decoder = DynamicDecoder(layer, p.decoder_layers, d)
        _xavier(self.upper_decoder)
        self.lower_decoder = DynamicDecoder(layer, p.decoder_layers, d)
        _xavier(self.lower_decoder)
        self.pos_embed = PositionalEncoding(d, p.window_size)
        h = d // 2
        self.upper_tail_fc = nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, len(upper)))
        self.lower_tail_fc = nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, len(lower)))
        self.register_buffer("lower_index", torch.tensor(lower, dtype=torch.long), persistent=False)
        self.register_buffer("upper_index", torch.tensor(upper, dtype=torch.long), persistent=False)
        self.n_exp = len(lower) + len(upper)

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """content (B, N, W, d), style (B, d) -> (B, N, K): each frame from its window's middle token."""
        B, N, W, d = content.shape
        mem = content.reshape(B * N, W, d).transpose(0, 1)                  # (W, B*N, d)
        s = style[:, None].expand(B, N, d).reshape(B * N, d)
        pos = self.pos_embed(W).transpose(0, 1)                             # (W, 1, d)
        out = content.new_zeros(B, N, self.n_exp)
        for dec, tail, index in ((self.upper_decoder, self.upper_tail_fc, self.upper_index),
                                 (self.lower_decoder, self.lower_tail_fc, self.lower_index)):
            mid = dec(mem, pos, s)[W // 2]                                  # (B*N, d): the middle token
            out = out.index_copy(2, index, tail(mid).reshape(B, N, -1))
        return out


class StyleTalkNet(nn.Module):
    """E_a + E_s + E_d (the generator): (phoneme windows, style clip) -> expression coefficients."""

    def __init__(self, p: ModelParams, n_exp: int, lower: tuple[int, ...], upper: tuple[int, ...]):
        super().__init__()
        if sorted((*lower, *upper)) != list(range(n_exp)):
            raise ValueError(f"lower {lower} and upper {upper} face modes must split 0..{n_exp - 1} exactly once")
        self.params, self.n_exp, self.lower, self.upper = p, n_exp, tuple(lower), tuple(upper)
        self.content_encoder = ContentEncoder(p)
        self.style_encoder = StyleEncoder(p, n_exp)
        self.decoder = DisentangleDecoder(p, tuple(lower), tuple(upper))

    def style_code(self, style: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, S, K) -> s (B, d)."""
        return self.style_encoder(style, pad_mask)

    def decode(self, phones: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """phones (B, N, 2w+1), s (B, d) -> (B, N, K)."""
        if phones.shape[-1] != self.params.window_size:
            raise ValueError(f"phoneme windows of {phones.shape[-1]} frames; this model takes 2w + 1 = "
                             f"{self.params.window_size}")
        return self.decoder(self.content_encoder(phones), s)

    def forward(self, phones: torch.Tensor, style: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(phones, self.style_code(style, pad_mask))


# ------------------------------------------------------------------------------ the exported model

MODEL_FORMAT = "headflow.styletalk/1"


def architecture(p: ModelParams, n_exp: int, lower, upper, expression_model: str) -> dict:
    """What a checkpoint must match to load into `StyleTalkNet`."""
    return {"family": "styletalk", "d_model": p.d_model, "nhead": p.nhead, "encoder_layers": p.encoder_layers,
            "decoder_layers": p.decoder_layers, "ff_mult": p.ff_mult, "window": p.window,
            "phoneme_embed_dim": p.phoneme_embed_dim, "style_max_len": p.style_max_len, "dynamic_ffn": p.dynamic_ffn,
            "dynamic_k": p.dynamic_k, "dynamic_ratio": p.dynamic_ratio,
            "dynamic_temperature": p.dynamic_temperature, "dropout": p.dropout, "pooling": p.pooling, "n_exp": int(n_exp),
            "lower": [int(i) for i in lower], "upper": [int(i) for i in upper], "expression_model": expression_model}



def save_model(net: StyleTalkNet, params: dict, expression_model: str, path: Path, extra: dict | None = None) -> str:
    """Write the exported model (format, architecture, params, weights) atomically; returns its sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": MODEL_FORMAT, "architecture": architecture(net.params, net.n_exp, net.lower, net.upper,
                                                                   expression_model),
             "params": params, "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()}, **(extra or {})}
    return save_export(state, path)


def load_model(path: Path, expected: dict | None = None, device: str | torch.device = "cpu"
               ) -> tuple[StyleTalkNet, dict[str, Any]]:
    """Load an exported StyleTalk model in eval mode.

    Args:
        path: a `styletalk.pt` from `save_model`.
        expected: an `architecture(...)` dict the caller needs (None: whatever the file holds).

    Returns:
        (network, the file's whole state without the weights).

    Raises:
        FileNotFoundError: no file (the message says how to make one).
        ValueError: not a StyleTalk file, or another architecture than `expected` (both named).
    """
    state = load_export(path, MODEL_FORMAT, "StyleTalk model", "train it with `dvc repro train_styletalk` "
                        "(or python -m stages.train_styletalk) or set generate_styletalk.checkpoint")
    arch = state["architecture"]
    if expected is not None and arch != expected:
        diff = {k: (arch.get(k), expected.get(k)) for k in sorted(set(arch) | set(expected)) if arch.get(k) != expected.get(k)}
        raise ValueError(f"{path} holds a StyleTalk model of another architecture: saved {arch}, asked for {expected} "
                         f"(differences, saved vs asked: {diff}); use the params it was trained with or retrain")
    keys = {f.name for f in __import__("dataclasses").fields(ModelParams)}
    p = ModelParams(**{k: v for k, v in arch.items() if k in keys})
    net = StyleTalkNet(p, arch["n_exp"], tuple(arch["lower"]), tuple(arch["upper"]))
    net.load_state_dict(state["state_dict"])
    return net.to(device).eval(), {k: v for k, v in state.items() if k != "state_dict"}
