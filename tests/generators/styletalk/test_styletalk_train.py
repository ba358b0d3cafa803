"""StyleTalk's losses, bad inputs, frozen discriminators and resume equivalence."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from headflow.generators.styletalk.data import ClipRejected, check_clip
from headflow.generators.styletalk.losses import reconstruction_loss, ssim_1d, sync_centres, triplet_loss
from headflow.generators.styletalk.params import tiny_disc_params, tiny_params
from tests.generators.styletalk.conftest import LOWER, N_EXP, UPPER, mouth_geometry, synthetic_clip, synthetic_clips


def test_triplet_loss_known_answer():
    a = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    p = torch.tensor([[3.0, 4.0], [1.0, 0.0]])      # |a - p| = 5, 1
    n = torch.tensor([[6.0, 8.0], [0.0, 10.0]])     # |a - n| = 10, 10
    # max(5 - 10 + 5, 0) = 0 and max(1 - 10 + 5, 0) = 0; with margin 9: 4 and 0 -> mean 2
    assert triplet_loss(a, p, n, 5.0).item() == pytest.approx(0.0)
    assert triplet_loss(a, p, n, 9.0).item() == pytest.approx(2.0)
    # a positive farther than the negative: 5 - 1 + 5 = 9
    assert triplet_loss(a[:1], p[:1], torch.tensor([[1.0, 0.0]]), 5.0).item() == pytest.approx(9.0)


def test_reconstruction_loss_is_zero_on_the_target_and_grows_with_error():
    torch.manual_seed(0)
    y = torch.rand(2, 20, 3)
    assert ssim_1d(y, y).item() == pytest.approx(1.0, abs=1e-5)
    assert reconstruction_loss(y, y).item() == pytest.approx(0.0, abs=1e-5)
    # a constant offset c leaves the variance terms and changes only luminance: L1 part = mu * c
    lo, hi = reconstruction_loss(y + 0.05, y), reconstruction_loss(y + 0.3, y)
    assert 0.1 * 0.05 < lo.item() < hi.item()


def test_reconstruction_loss_of_a_batch_is_the_mean_of_its_halves():
    # What DDP needs: one process with batch 4 and two ranks with 2 each compute the same loss. With sequences
    # of very different ranges (gain 0.1 vs 10) a batch-wide SSIM range R would give each half another C1, C2.
    torch.manual_seed(0)
    y = torch.rand(4, 20, 3) * torch.tensor([0.1, 10.0, 0.1, 10.0]).view(4, 1, 1)
    pred = y + 0.05 * torch.randn(4, 20, 3)
    whole = reconstruction_loss(pred, y)
    halves = (reconstruction_loss(pred[::2], y[::2]) + reconstruction_loss(pred[1::2], y[1::2])) / 2
    assert whole.item() == pytest.approx(halves.item(), rel=1e-6)
    # and a sequence's SSIM does not depend on its batch mates
    assert ssim_1d(pred[:1], y[:1]).item() == pytest.approx(ssim_1d(pred[:2], y[:2]).item() * 2
                                                            - ssim_1d(pred[1:2], y[1:2]).item(), rel=1e-6)


def test_discriminator_pretraining_runs_both_networks_through_the_modules_forward():
    # DDP all-reduces gradients only of networks called through its forward; DiscStep must not call
    # `nets.sync` / `nets.style` directly (tests/scaleout/test_torchrun.py shows the ranks drifting apart).
    from headflow.generators.styletalk.data import DiscSamples
    from headflow.generators.styletalk.losses import DiscStep
    from headflow.generators.styletalk.train import build_discriminators
    from torch.utils.data import default_collate

    dp = tiny_disc_params()
    nets = build_discriminators(dp, N_EXP, ["calm", "lively"])
    nets.sync.set_geometry(*mouth_geometry(dp.sync.n_points))
    ds = DiscSamples(synthetic_clips(4), ["calm", "lively"], dp.window, dp.sync.frames, dp.clip_len, dp.min_shift,
                     dp.edge, 2, 0)
    calls = []
    nets.register_forward_hook(lambda *_: calls.append(1))
    terms = DiscStep(nets).g_losses(default_collate([ds[0], ds[1]]))
    assert calls == [1] and set(terms) == {"sync_bce", "style_ce"}
    sum(terms.values()).backward()
    assert all(p.grad is not None for p in nets.parameters())


def test_sync_centres_keep_the_vertex_window_inside_the_clip():
    assert sync_centres(10, 5, 0) == [2, 3, 4, 5, 6, 7]
    assert sync_centres(10, 5, 2) == [2, 7]
    assert sync_centres(64, 5, 4) == [2, 22, 41, 61]


@pytest.mark.parametrize("change, code", [
    (lambda c: dataclasses.replace(c, exp=c.exp[:-3]), "frame_count_mismatch"),
    (lambda c: dataclasses.replace(c, phones=np.where(np.arange(40) == 7, 41, c.phones)), "unknown_phone"),
    (lambda c: dataclasses.replace(c, expression_model="bfm_deep3d"), "wrong_expression_model"),
    (lambda c: dataclasses.replace(c, phones=c.phones[:12], exp=c.exp[:12], valid=c.valid[:12]), "too_short"),
])
def test_bad_clips_are_rejected_with_a_reason_and_the_counts(change, code):
    clip = change(synthetic_clip("bad", "calm"))
    with pytest.raises(ClipRejected) as err:
        check_clip(clip, 16, "synthetic", N_EXP)
    assert err.value.reason_code == code and "bad" in str(err.value)
    check_clip(synthetic_clip("ok", "calm"), 16, "synthetic", N_EXP)       # the unchanged clip passes


def _disc(tmp_path):
    from headflow.generators.styletalk.train import load_discriminators, train_discriminators

    dp = tiny_disc_params()
    out = train_discriminators(synthetic_clips(4), [], dp, tmp_path / "disc", *mouth_geometry(dp.sync.n_points),
                               "synthetic", accelerator="cpu", progress=False)
    return load_discriminators(out["path"]) + (out["sha256"],)


def test_frozen_discriminators_stay_frozen_while_the_generator_trains(tmp_path):
    from headflow.generators.styletalk.train import train_styletalk

    d_sync, d_style, meta, sha = _disc(tmp_path)
    before = {k: v.clone() for k, v in [*d_sync.state_dict().items(), *d_style.state_dict().items()]}
    assert not any(p.requires_grad for p in [*d_sync.parameters(), *d_style.parameters()])
    out = train_styletalk(synthetic_clips(4), [], tiny_params(), tmp_path / "gen", "synthetic", N_EXP, LOWER, UPPER,
                          d_sync, d_style, sha, accelerator="cpu", progress=False)
    after = {k: v for k, v in [*d_sync.state_dict().items(), *d_style.state_dict().items()]}
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not d_sync.training and not d_style.training
    row = out["history"][-1]
    assert {"rec", "trip", "sync", "style", "tem", "tem_d"} <= set(row)       # every term ran
    assert meta["classes"] == ["calm", "lively"]


def test_resumed_training_equals_uninterrupted(tmp_path):
    from headflow.generators.styletalk.train import train_styletalk

    d_sync, d_style, _, sha = _disc(tmp_path)
    clips = synthetic_clips(4)
    p2 = dataclasses.replace(tiny_params(), loop=dataclasses.replace(tiny_params().loop, epochs=2))
    straight = train_styletalk(clips, [], p2, tmp_path / "a", "synthetic", N_EXP, LOWER, UPPER, d_sync, d_style, sha,
                               accelerator="cpu", progress=False)
    train_styletalk(clips, [], tiny_params(), tmp_path / "b", "synthetic", N_EXP, LOWER, UPPER, d_sync, d_style, sha,
                    accelerator="cpu", progress=False)                     # epoch 1, "interrupted"
    resumed = train_styletalk(clips, [], p2, tmp_path / "b", "synthetic", N_EXP, LOWER, UPPER, d_sync, d_style, sha,
                              accelerator="cpu", progress=False)           # resumes at epoch 2
    a = torch.load(straight["path"], weights_only=True)["state_dict"]
    b = torch.load(resumed["path"], weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["rec"] for r in straight["history"]] == [r["rec"] for r in resumed["history"]]
