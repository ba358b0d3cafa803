"""StyleTalk's networks: the adaptive FFN, the attention pooling, window indexing, the released layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from headflow.generators.styletalk.data import phone_windows
from headflow.generators.styletalk.model import (AdaptiveFFNLinear, SelfAttentionPooling, StyleTalkNet, load_model,
                                                 save_model, architecture)
from headflow.generators.styletalk.params import ModelParams, SILENCE, tiny_params


def test_adaptive_ffn_is_the_softmax_mix_of_k_linear_layers():
    torch.manual_seed(0)
    layer = AdaptiveFFNLinear(d_in=5, d_out=3, d_style=8, k=4, ratio=2, temperature=1.0)
    s = torch.randn(2, 8)
    x = torch.randn(7, 2, 5)                      # (S, B, d_in)
    pi = layer.mixing(s)
    assert pi.shape == (2, 4) and torch.allclose(pi.sum(-1), torch.ones(2)) and (pi > 0).all()
    # pi = softmax(FC2(relu(FC1 s))), computed by hand from the two bias-free weight matrices
    net = layer.dynamic_conv.attention.net
    h = torch.relu(s @ net[0].weight.flatten(1).T)
    assert torch.allclose(pi, torch.softmax(h @ net[2].weight.flatten(1).T, -1), atol=1e-6)
    # y = (sum_k pi_k W_k) x + sum_k pi_k b_k, per sample: the same as mixing K outputs of separate linears
    W, b = layer.dynamic_conv.weight[..., 0, 0], layer.dynamic_conv.bias        # (K, out, in), (K, out)
    outs = torch.einsum("sbi,koi->sbko", x, W) + b[None, None]                 # each set's own output
    expected = (outs * pi[None, :, :, None]).sum(2)
    assert torch.allclose(layer(x, s), expected, atol=1e-5)


def test_adaptive_ffn_gradients_reach_all_k_sets_and_the_mixing_network():
    torch.manual_seed(1)
    layer = AdaptiveFFNLinear(4, 3, 8, k=8, ratio=4, temperature=30.0)
    layer(torch.randn(5, 3, 4), torch.randn(3, 8)).square().sum().backward()
    g = layer.dynamic_conv.weight.grad[..., 0, 0]
    assert all(g[k].abs().sum() > 0 for k in range(8))                      # every set learns
    assert (layer.dynamic_conv.bias.grad.abs().sum(-1) > 0).all()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.dynamic_conv.attention.parameters())


def test_attention_pooling_weights_tokens_and_ignores_padding():
    pool = SelfAttentionPooling(4)
    h = torch.tensor([[[1.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 3.0, 0]]])     # (1, 3, 4)
    # a scorer that returns the first coordinate x 10: logits (10, 0, 0) -> weights (e^10, 1, 1) / sum
    with torch.no_grad():
        pool.W[0].weight.copy_(torch.eye(4))
        pool.W[0].bias.zero_()
        pool.W[2].weight.copy_(torch.tensor([[10.0, 0, 0, 0]]) / torch.nn.functional.mish(torch.tensor(1.0)))
        pool.W[2].bias.zero_()
    w = pool.weights(h)
    e = np.exp(10.0)
    assert torch.allclose(w, torch.tensor([[e, 1, 1]], dtype=torch.float32) / float(e + 2), atol=1e-6)
    assert torch.allclose(pool(h), (w[..., None] * h).sum(1))
    masked = pool.weights(h, torch.tensor([[True, False, False]]))           # token 0 is padding
    assert torch.allclose(masked, torch.tensor([[0.0, 0.5, 0.5]]))
    assert torch.allclose(pool(h, torch.tensor([[True, False, False]])), torch.tensor([[0.0, 1.0, 1.5, 0.0]]))


def test_phone_windows_put_frame_t_in_the_middle():
    phones = np.arange(10) + 1
    win = phone_windows(phones, np.array([0, 5, 9]), w=2)
    assert win.shape == (3, 5)
    assert (win[:, 2] == phones[[0, 5, 9]]).all()                              # middle token = frame t
    assert win[1].tolist() == [4, 5, 6, 7, 8]
    assert win[0].tolist() == [SILENCE, SILENCE, 1, 2, 3] and win[2].tolist() == [8, 9, 10, SILENCE, SILENCE]
    with pytest.raises(ValueError, match="frame 0"):
        phone_windows(phones, np.array([0]), w=2, edge="inside")


def _net(p: ModelParams, n_exp: int = 5) -> StyleTalkNet:
    torch.manual_seed(0)
    return StyleTalkNet(p, n_exp, (0, 2), (1, 3, 4)).eval()


def test_decoder_output_at_frame_t_depends_on_its_own_window_only():
    p = tiny_params().model
    net = _net(p)
    W = p.window_size
    phones = torch.randint(0, 41, (1, 4, W))
    style = torch.randn(1, 6, 5)
    out = net(phones, style)
    changed = phones.clone()
    changed[0, 2] = (changed[0, 2] + 7) % 41                                  # only frame 2's window differs
    out2 = net(changed, style)
    assert out.shape == (1, 4, 5)
    diff = (out - out2).abs().sum(-1)[0]
    assert diff[2] > 1e-6 and torch.all(diff[[0, 1, 3]] < 1e-6)


def test_decoder_writes_lower_and_upper_modes_from_their_own_decoders():
    p = tiny_params().model
    net = _net(p)
    phones, style = torch.randint(0, 41, (2, 3, p.window_size)), torch.randn(2, 6, 5)
    base = net(phones, style)
    with torch.no_grad():
        net.decoder.lower_tail_fc[-1].bias.add_(1.0)
    moved = net(phones, style) - base
    assert torch.allclose(moved[..., [0, 2]], torch.ones(2, 3, 2), atol=1e-5)
    assert torch.allclose(moved[..., [1, 3, 4]], torch.zeros(2, 3, 3), atol=1e-6)


def test_released_state_dict_names_and_shapes_load():
    """The released checkpoint's layout (core/networks/*.py with configs/default.py: d 256, 3+3+3 layers,
    K = 8, ratio 4, 64 BFM modes split 13 / 51): names and shapes written here from that code."""
    from headflow.generators.styletalk.geometry import BFM_LOWER

    p = ModelParams()
    upper = tuple(i for i in range(64) if i not in BFM_LOWER)
    net = StyleTalkNet(p, 64, BFM_LOWER, upper)
    released = {
        "content_encoder.ph_embedding.weight": (41, 128), "content_encoder.increase_embed_dim.weight": (256, 128),
        "content_encoder.pos_embed.pos_table": (1, 11, 256),
        "content_encoder.encoder.layers.2.self_attn.in_proj_weight": (768, 256),
        "content_encoder.encoder.layers.2.linear1.weight": (1024, 256),
        "style_encoder.increase_embed_dim.weight": (256, 64), "style_encoder.pos_embed.pos_table": (1, 256, 256),
        "style_encoder.aggregate_method.W.0.weight": (256, 256), "style_encoder.aggregate_method.W.2.weight": (1, 256),
        "decoder.upper_decoder.layers.0.linear1.dynamic_conv.weight": (8, 1024, 256, 1, 1),
        "decoder.upper_decoder.layers.0.linear1.dynamic_conv.bias": (8, 1024),
        "decoder.upper_decoder.layers.0.linear1.dynamic_conv.attention.net.0.weight": (64, 256, 1, 1),
        "decoder.upper_decoder.layers.0.linear1.dynamic_conv.attention.net.2.weight": (8, 64, 1, 1),
        "decoder.lower_decoder.layers.2.linear2.weight": (256, 1024),
        "decoder.lower_decoder.layers.2.multihead_attn.out_proj.weight": (256, 256),
        "decoder.lower_decoder.norm.weight": (256,), "decoder.pos_embed.pos_table": (1, 11, 256),
        "decoder.upper_tail_fc.4.weight": (51, 128), "decoder.lower_tail_fc.4.weight": (13, 128),
    }
    mine = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert {k: mine.get(k) for k in released} == released
    torch.manual_seed(3)
    random_state = {k: torch.randn_like(v) for k, v in net.state_dict().items()}
    other = StyleTalkNet(p, 64, BFM_LOWER, upper)
    other.load_state_dict(random_state)                        # strict: every name and shape matches
    assert torch.equal(other.decoder.lower_tail_fc[4].weight, random_state["decoder.lower_tail_fc.4.weight"])


def test_saved_model_loads_and_another_width_is_refused(tmp_path):
    p = tiny_params().model
    net = _net(p)
    save_model(net, {}, "builtin_demo", tmp_path / "m.pt")
    back, state = load_model(tmp_path / "m.pt", architecture(p, 5, (0, 2), (1, 3, 4), "builtin_demo"))
    phones, style = torch.randint(0, 41, (1, 2, p.window_size)), torch.randn(1, 4, 5)
    assert torch.allclose(back(phones, style), net(phones, style))
    wider = ModelParams(**{**p.__dict__, "d_model": 32, "nhead": 2})
    with pytest.raises(ValueError, match="d_model.*16.*32"):
        load_model(tmp_path / "m.pt", architecture(wider, 5, (0, 2), (1, 3, 4), "builtin_demo"))
