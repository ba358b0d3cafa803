"""The expert's real-footage transfer augmentations (`headflow.sync.data.transfer_batch`, `jpeg_luma`)."""

from __future__ import annotations

import math

import pytest
import torch

from headflow.sync.data import (JPEG_LUMA_TABLE, Augment, augment_batch, jpeg_luma, jpeg_quant_table,
                                transfer_batch)

ALL_ON = Augment(blur_sigma=1.5, jpeg_quality=30, gamma=0.4, light_gradient=0.3)
SINGLE = {"blur_sigma": 1.5, "jpeg_quality": 30.0, "gamma": 0.4, "light_gradient": 0.3}


def _frames(b: int = 4, c: int = 1, seed: int = 0) -> torch.Tensor:
    """(b, 5, c, 48, 96) smooth-ish frames in [0.1, 0.9] (so clamping does not hide a change)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b * 5, c, 48, 96, generator=g)
    x = torch.nn.functional.avg_pool2d(x, 5, 1, 2)
    return (0.1 + 0.8 * (x - x.amin()) / (x.amax() - x.amin())).view(b, 5, c, 48, 96)


def test_all_off_is_the_identity_and_draws_nothing():
    x = _frames()
    gen = torch.Generator().manual_seed(1)
    state = gen.get_state()
    assert torch.equal(transfer_batch(x, gen, Augment()), x)
    assert torch.equal(gen.get_state(), state)            # resumed runs without them draw what they drew before
    face = _frames(c=3).reshape(4, 15, 48, 96)
    old = augment_batch(face, torch.Generator().manual_seed(2), Augment())
    new = augment_batch(face, torch.Generator().manual_seed(2),
                        Augment(blur_sigma=0.0, jpeg_quality=0.0, gamma=0.0, light_gradient=0.0))
    assert torch.equal(old, new)


@pytest.mark.parametrize("colour", [False, True])
@pytest.mark.parametrize("name", sorted(SINGLE))
def test_each_change_alone_changes_the_batch_and_keeps_shape_dtype_range(name, colour):
    c = 3 if colour else 1
    x = _frames(c=c)
    y = transfer_batch(x, torch.Generator().manual_seed(0), Augment(**{name: SINGLE[name]}))
    assert y.shape == x.shape and y.dtype == torch.float32
    assert float(y.min()) >= 0 and float(y.max()) <= 1
    assert float((y - x).abs().mean()) > 1e-3


def test_same_seed_same_output_other_seed_other_output():
    face = _frames(b=6).expand(6, 5, 3, 48, 96).reshape(6, 15, 48, 96)
    a = augment_batch(face, torch.Generator().manual_seed(5), ALL_ON, colour=False)
    b = augment_batch(face, torch.Generator().manual_seed(5), ALL_ON, colour=False)
    c = augment_batch(face, torch.Generator().manual_seed(6), ALL_ON, colour=False)
    assert a.shape == face.shape and a.dtype == face.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_gamma_is_one_exponent_per_window_within_range():
    x = _frames(b=8)
    y = transfer_batch(x, torch.Generator().manual_seed(0), Augment(gamma=0.4))
    g = (y.log() / x.log()).view(8, -1)                        # y = x ** g  =>  g = log y / log x
    assert torch.allclose(g, g[:, :1].expand_as(g), atol=1e-4)  # the same g for every pixel of a window's 5 frames
    assert float(g.min()) >= math.exp(-0.4) - 1e-4 and float(g.max()) <= math.exp(0.4) + 1e-4
    assert float(g[:, 0].std()) > 0.01                          # and a different one per window


def test_light_gradient_is_a_linear_ramp_through_one_at_the_centre():
    x = torch.full((3, 5, 1, 48, 96), 0.5)
    y = transfer_batch(x, torch.Generator().manual_seed(0), Augment(light_gradient=0.3))
    gain = y / x
    # the ramp is antisymmetric about the crop's centre: opposite pixels average to gain 1
    assert torch.allclose(0.5 * (gain + gain.flip(-1, -2)), torch.ones_like(gain), atol=1e-5)
    assert float(gain.max()) <= 1.3 + 1e-5 and float(gain.min()) >= 0.7 - 1e-5
    assert float((gain - 1).abs().amax()) > 0.01
    assert torch.equal(gain[:, 0], gain[:, 4])                  # one draw per window, the same for its frames


def test_blur_smooths_and_keeps_a_flat_image():
    x = _frames()
    y = transfer_batch(x, torch.Generator().manual_seed(0), Augment(blur_sigma=1.5))
    tv = lambda z: (z[..., 1:] - z[..., :-1]).abs().mean()
    assert float(tv(y)) < float(tv(x))
    flat = torch.full((2, 5, 1, 48, 96), 0.4)
    assert torch.allclose(transfer_batch(flat, torch.Generator().manual_seed(0), Augment(blur_sigma=1.5)), flat, atol=1e-6)


def test_quant_table_known_answers():
    t = jpeg_quant_table(torch.tensor([50.0, 100.0, 10.0]))
    assert torch.equal(t[0], JPEG_LUMA_TABLE)                  # q 50: scale 100, floor((K*100 + 50)/100) = K
    assert torch.equal(t[1], torch.ones(8, 8))                 # q 100: scale 0 -> floor(50/100) = 0 -> clipped to 1
    assert t[2, 0, 0] == 80                                    # q 10: scale 500, floor((16*500 + 50)/100) = 80
    with pytest.raises(ValueError, match="quality"):
        jpeg_quant_table(torch.tensor([0.5]))


def test_jpeg_luma_known_answer_on_a_flat_block():
    # Flat grey 200: level-shifted 72, orthonormal DC = 8 * 72 = 576, AC = 0.
    # q 50: step 16, 576 / 16 = 36 exactly -> lossless. q 10: step 80, round(7.2) = 7 -> 560 -> 70 + 128 = 198.
    flat = torch.full((2, 1, 8, 16), 200 / 255)
    out = jpeg_luma(flat, torch.tensor([50.0, 10.0])) * 255
    assert torch.allclose(out[0], torch.full_like(out[0], 200.0), atol=1e-3)
    assert torch.allclose(out[1], torch.full_like(out[1], 198.0), atol=1e-3)


def test_jpeg_luma_matches_kornia_codec_on_grey_images():
    from kornia.enhance import jpeg_codec_differentiable
    x = _frames(b=1).view(5, 1, 48, 96)
    q = torch.tensor([20.0, 35.0, 50.0, 70.0, 90.0])
    ours = jpeg_luma(x, q)
    theirs = jpeg_codec_differentiable(x.expand(5, 3, 48, 96), q).mean(1, keepdim=True)
    distortion = float((ours - x).abs().mean())
    assert distortion > 0.005
    # kornia rounds with round(v) + (v - round(v)) ** 3 (differentiable), so the two differ a little
    assert float((ours - theirs).abs().mean()) < 0.3 * distortion
    assert float((jpeg_luma(x, torch.full((5,), 20.0)) - x).abs().mean()) > float((jpeg_luma(x, torch.full((5,), 90.0)) - x).abs().mean())


def test_jpeg_luma_and_transfer_reject_bad_inputs():
    with pytest.raises(ValueError, match="multiples of 8"):
        jpeg_luma(torch.rand(1, 1, 12, 16), torch.tensor([50.0]))
    with pytest.raises(ValueError, match="one per image"):
        jpeg_luma(torch.rand(2, 1, 8, 8), torch.tensor([50.0]))
    with pytest.raises(ValueError, match="jpeg_quality"):
        transfer_batch(_frames(b=1), torch.Generator(), Augment(jpeg_quality=99))


def test_train_config_carries_and_checks_the_transfer_fields():
    from headflow.checks import InvalidParam
    from headflow.sync.config import TrainConfig
    TrainConfig(augment_blur_sigma=1.5, augment_jpeg_quality=30, augment_gamma=0.4, augment_light_gradient=0.3).validate()
    for bad in ({"augment_jpeg_quality": 96}, {"augment_blur_sigma": -1}, {"augment_light_gradient": 1.0}):
        with pytest.raises(InvalidParam, match=next(iter(bad))):
            TrainConfig(**bad).validate()
