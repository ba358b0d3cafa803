"""Head2HeadFS networks: AdaIN -> IN initialisation, the projection discriminator, sequential generation."""

from __future__ import annotations

import pytest
import torch

from headflow.generators.head2headfs.model import (Discriminators, Head2HeadGenerator, IdentityEmbedder,
                                                   ProjectionImageDiscriminator, Renderer, generate_sequence,
                                                   load_person, mouth_boxes, save_person, scale_indices)
from headflow.generators.head2headfs.params import ModelParams, tiny_params


def _inputs(b=2, s=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 9, s, s, generator=g) * 2 - 1, torch.rand(b, 6, s, s, generator=g) * 2 - 1


def test_finetuned_generator_first_output_equals_embedder_conditioned_output():
    torch.manual_seed(0)
    p = tiny_params()
    renderer = Renderer(p.model).eval()
    for m in renderer.generator.modules():          # non-trivial projections: P_gamma h must matter
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.normal_(m.weight, std=0.5)
    ident = torch.rand(5, 3, 32, 32) * 2 - 1
    h_new = renderer.embedder(ident).mean(0)         # eq. 9: mean embedding of the T' frames
    nmfc, prev = _inputs(1)
    want_y, want_m = renderer.generator(nmfc, prev, h_new[None])
    g = Head2HeadGenerator(p.model)
    g.load_state_dict(renderer.generator.state_dict())
    n = g.personalise(h_new)
    # 2 encoders x (1 + n_downsample) layers + 2 per res block + n_downsample up layers
    assert n == 2 * (1 + p.model.n_downsample) + 2 * p.model.n_blocks + p.model.n_downsample
    got_y, got_m = g.eval()(nmfc, prev, None)
    assert torch.allclose(got_y, want_y, atol=1e-5) and torch.allclose(got_m, want_m, atol=1e-5)
    # and h matters: another identity gives another frame (the equality above is not trivial)
    other_y, _ = renderer.generator(nmfc, prev, -h_new[None])
    assert (other_y - want_y).abs().max() > 1e-3
    with pytest.raises(ValueError, match="style vector is not accepted"):
        g(nmfc, prev, h_new[None])
    with pytest.raises(ValueError, match="already person-specific"):
        g.personalise(h_new)


def test_projection_discriminator_score_is_d_dot_w_i_plus_w0_plus_c():
    torch.manual_seed(1)
    D = ProjectionImageDiscriminator(n_identities=3, n_f=4, ndf=4, n_layers=2)
    with torch.no_grad():
        D.w0.normal_()
        D.c.fill_(0.7)
    frame, nmfc = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    ident = torch.tensor([2, 0])
    score, feats = D(frame, nmfc, ident)
    # recompute d (B, n_f, h, w) by hand and apply eq. 7 at every patch
    x = torch.cat([frame, nmfc], 1)
    for block in D.body.blocks:
        x = block(x)
    d = D.to_d(x)
    want = (d * (D.W[ident] + D.w0)[:, :, None, None]).sum(1, keepdim=True) + 0.7
    assert torch.allclose(score, want, atol=1e-6) and len(feats) == 3
    # the identity row changes the score; w_i = -w0 leaves only c
    assert not torch.allclose(D(frame, nmfc, torch.tensor([1, 0]))[0][0], score[0])
    with torch.no_grad():
        D.W[1] = -D.w0
    assert torch.allclose(D(frame, nmfc, torch.tensor([1, 1]))[0][0], torch.full_like(score[0], 0.7), atol=1e-6)
    # fine-tuning: W -> one vector h_new, identity ignored
    h_new = torch.randn(4)
    D.to_single_identity(h_new)
    assert D.W.shape == (1, 4) and torch.equal(D.W[0], h_new)
    s1, _ = D(frame, nmfc, torch.tensor([2, 2]))
    s2, _ = D(frame, nmfc, None)
    assert torch.equal(s1, s2)


def test_projection_discriminator_needs_identity_before_single_mode():
    D = ProjectionImageDiscriminator(2, 4, 4, 2)
    with pytest.raises(ValueError, match="identity indices"):
        D(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32), None)


def test_sequential_generation_frame_t_depends_on_t_minus_1_and_2_only_through_feedback():
    torch.manual_seed(2)
    p = tiny_params()
    g = Head2HeadGenerator(p.model).eval()
    h = torch.randn(1, p.model.n_f)
    nmfc = (torch.rand(1, 6, 3, 32, 32) * 2 - 1).requires_grad_(True)   # 2 leading + L = 4 frames
    prev = (torch.rand(1, 2, 3, 32, 32) * 2 - 1).requires_grad_(True)
    frames, masks = generate_sequence(g, nmfc, h, prev, detach_previous=False)
    assert frames.shape == (1, 4, 3, 32, 32) and masks.shape == (1, 4, 1, 32, 32)
    assert frames.min() >= -1 and frames.max() <= 1 and masks.min() >= 0 and masks.max() <= 1
    # output 0 (time t0) sees the real frames t0-2, t0-1 and NMFC t0-2..t0, not later NMFC
    g0 = torch.autograd.grad(frames[:, 0].sum(), [nmfc, prev], retain_graph=True)
    assert g0[1].abs().sum() > 0 and g0[0][:, :3].abs().sum() > 0 and g0[0][:, 3:].abs().sum() == 0
    # output 2 (t0+2) depends on generated frames t0, t0+1 -> through them on the real previous frames;
    # output 3 (t0+3) no longer sees the real previous frames at all except through outputs 1 and 2
    g2 = torch.autograd.grad(frames[:, 2].sum(), [nmfc, prev], retain_graph=True)
    assert g2[0][:, 5].abs().sum() == 0 and g2[1].abs().sum() > 0
    # replacing generated frame t-1 changes frame t: rerun one step by hand with a different previous frame
    y2, _ = g(nmfc[:, 2:5].flatten(1, 2), torch.cat([frames[:, 0], frames[:, 1]], 1), h)
    y2b, _ = g(nmfc[:, 2:5].flatten(1, 2), torch.cat([frames[:, 0], torch.zeros_like(frames[:, 1])], 1), h)
    y2c, _ = g(nmfc[:, 2:5].flatten(1, 2), torch.cat([torch.zeros_like(frames[:, 0]), frames[:, 1]], 1), h)
    assert torch.allclose(y2, frames[:, 2], atol=1e-6)
    assert (y2 - y2b).abs().max() > 1e-4 and (y2 - y2c).abs().max() > 1e-4


def test_embedder_identity_is_the_mean_of_unit_embeddings():
    torch.manual_seed(3)
    E = IdentityEmbedder(n_f=8, width=4, blocks=1).eval()
    frames = torch.rand(2, 3, 3, 32, 32)
    e = E(frames.flatten(0, 1))
    assert torch.allclose(e.norm(dim=1), torch.ones(6), atol=1e-5)
    assert torch.allclose(E.identity(frames), e.view(2, 3, 8).mean(1), atol=1e-6)


def test_discriminators_shapes_and_temporal_scales():
    p = tiny_params()
    D = Discriminators(p, n_identities=2)
    L = p.discriminator.frames_needed
    assert L == 3 and scale_indices(3, 2, 0) == [1, 2] and scale_indices(3, 2, 1) == [0, 2]
    assert scale_indices(9, 3, 2) == [0, 4, 8]
    frames = torch.rand(2, L, 3, 32, 32)
    lm = torch.rand(2, L, 68, 2) * 10 + 10
    out = D(frames, frames, torch.tensor([0, 1]), mouth_boxes(lm, 1.6), [torch.zeros(2, 1, 2, 32, 32)] * 2)
    assert set(out) == {"image", "mouth", "video"} and len(out["video"][0]) == 2
    assert out["image"][0].shape[0] == 2 * L


def test_mouth_boxes_are_centred_squares():
    lm = torch.zeros(68, 2)
    lm[48:68] = torch.tensor([20.0, 30.0])
    lm[48], lm[54] = torch.tensor([15.0, 30.0]), torch.tensor([25.0, 30.0])
    # centre: mean of the 20 mouth points = (20, 30); width 10 -> side 16
    assert torch.allclose(mouth_boxes(lm, 1.6), torch.tensor([12.0, 22.0, 28.0, 38.0]))


def test_person_file_round_trip_and_width_mismatch(tmp_path):
    p = tiny_params()
    g = Head2HeadGenerator(p.model)
    h = torch.randn(p.model.n_f)
    g.personalise(h)
    save_person(tmp_path / "g.pt", g, h, {"speaker": "s"})
    back, state = load_person(tmp_path / "g.pt", p.model)
    nmfc, prev = _inputs(1)
    assert torch.equal(back(nmfc, prev)[0], g.eval()(nmfc, prev)[0]) and state["info"]["speaker"] == "s"
    wider = ModelParams(**{**p.model.__dict__, "ngf": 8})
    with pytest.raises(ValueError, match=r"ngf 4 in .*g\.pt vs 8 in the params"):
        load_person(tmp_path / "g.pt", wider)
