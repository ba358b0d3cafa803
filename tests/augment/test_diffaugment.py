from __future__ import annotations

import pytest
import torch

from headflow.augment.diffaugment import (DiffAugmentParams, apply_params, diff_augment, diff_augment_shared,
                                          parse_policy, sample_params)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_gradients_flow_through_every_op():
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    out = diff_augment(x, "color,translation,cutout", _gen(0))
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.isfinite(x.grad).all()


def test_same_seed_same_output_other_seed_other_output():
    x = torch.rand(4, 3, 16, 16)
    a = diff_augment(x, generator=_gen(7))
    b = diff_augment(x, generator=_gen(7))
    c = diff_augment(x, generator=_gen(8))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)


def test_translation_moves_a_dot_by_the_sampled_shift():
    b, h, w = 8, 24, 32
    x = torch.zeros(b, 1, h, w)
    x[:, 0, 12, 16] = 1.0
    params = sample_params(b, h, w, "translation", _gen(3))
    out = apply_params(x, params)
    for i in range(b):
        dx, dy = params.shift[i].tolist()
        assert abs(dx) <= 4 and abs(dy) <= 3  # round(32 / 8), round(24 / 8)
        assert out[i, 0, 12 + dy, 16 + dx].item() == 1.0 and out[i].sum().item() == 1.0
    assert params.shift.abs().sum() > 0


def test_translation_range_covers_one_eighth_of_each_side():
    shifts = sample_params(400, 16, 40, "translation", _gen(0)).shift
    # round(40 / 8) = 5 columns, round(16 / 8) = 2 rows, both ends included
    assert set(shifts[:, 0].tolist()) == set(range(-5, 6))
    assert set(shifts[:, 1].tolist()) == set(range(-2, 3))


def test_manual_translation_zero_fills():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    params = DiffAugmentParams(policy=("translation",), height=4, width=4, shift=torch.tensor([[1, -1]]))
    out = apply_params(x, params)
    # content moves 1 right and 1 up: out[r, c] = x[r + 1, c - 1], zero where that is outside
    expected = torch.tensor([[0.0, 4, 5, 6], [0, 8, 9, 10], [0, 12, 13, 14], [0, 0, 0, 0]])
    torch.testing.assert_close(out[0, 0], expected)


def test_cutout_zeroes_the_rectangle_around_the_centre():
    x = torch.ones(1, 2, 16, 16)
    params = DiffAugmentParams(policy=("cutout",), height=16, width=16,
                               cutout_centre=torch.tensor([[5, 6]]), cutout_size=(4, 4))
    out = apply_params(x, params)
    # rows 6 - 2 .. 6 + 1, columns 5 - 2 .. 5 + 1
    expected = torch.ones(16, 16)
    expected[4:8, 3:7] = 0.0
    torch.testing.assert_close(out[0, 0], expected)
    torch.testing.assert_close(out[0, 1], expected)
    sampled = sample_params(64, 16, 16, "cutout", _gen(0))
    assert sampled.cutout_size == (8, 8)  # half of each side
    cut = apply_params(torch.ones(64, 1, 16, 16), sampled)
    assert ((cut == 0).flatten(1).sum(1) <= 64).all() and (cut == 0).any()


def test_color_ops_known_values():
    x = torch.tensor([0.1, 0.5, 0.9]).view(1, 3, 1, 1).expand(1, 3, 2, 2).clone()
    one = torch.ones(1)

    def colour(brightness, saturation, contrast):
        return apply_params(x, DiffAugmentParams(policy=("color",), height=2, width=2, brightness=brightness,
                                                 saturation=saturation, contrast=contrast))

    torch.testing.assert_close(colour(torch.tensor([0.25]), one, one), x + 0.25)
    # saturation 0: every pixel becomes its channel mean 0.5
    torch.testing.assert_close(colour(torch.zeros(1), torch.zeros(1), one), torch.full_like(x, 0.5))
    # contrast 0.5 halves the distance to the image mean 0.5
    torch.testing.assert_close(colour(torch.zeros(1), one, torch.tensor([0.5])), 0.5 + (x - 0.5) * 0.5)


def test_shared_parameters_transform_frame_and_mask_alike():
    torch.manual_seed(0)
    mask = (torch.rand(4, 1, 16, 16) > 0.5).float()
    frame = mask.expand(4, 3, 16, 16).clone()
    aug_frame, aug_mask = diff_augment_shared([frame, mask], "color,translation,cutout", _gen(5),
                                              color=[False, False])
    torch.testing.assert_close(aug_frame[:, :1], aug_mask)
    # colour on the frame only: the mask keeps its {0, 1} values
    _, aug_mask = diff_augment_shared([frame, mask], "color,translation", _gen(5), color=[True, False])
    assert set(aug_mask.unique().tolist()) <= {0.0, 1.0}
    # real and fake with the same parameters: equal inputs stay equal
    real = torch.rand(4, 3, 16, 16)
    a, b = diff_augment_shared([real, real.clone()], generator=_gen(1))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_policy_and_shape_errors():
    assert parse_policy("color, cutout") == ("color", "cutout")
    assert parse_policy("") == ()
    with pytest.raises(ValueError, match="unknown ops"):
        parse_policy("color,rotation")
    params = sample_params(2, 8, 8, "translation", _gen(0))
    with pytest.raises(ValueError, match="as sampled"):
        apply_params(torch.rand(2, 3, 8, 9), params)
    with pytest.raises(ValueError, match="same B, H, W"):
        diff_augment_shared([torch.rand(2, 3, 8, 8), torch.rand(3, 1, 8, 8)])
