from __future__ import annotations

import pytest
import torch

from headflow.nn.discriminators import (MultiScaleDiscriminator, PatchDiscriminator, RegionDiscriminator,
                                        TemporalDiscriminator)


def test_patchgan_has_the_pix2pix_shapes_and_returns_its_features():
    d = PatchDiscriminator(3, base_channels=64, norm="batch")
    logits, feats = d(torch.randn(1, 3, 256, 256))
    # 256 -> 128 -> 64 -> 32 (stride 2) -> 31 -> 30 (4x4, stride 1, pad 1): pix2pix's 30x30 map
    assert logits.shape == (1, 1, 30, 30)
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 128, 128), (128, 64, 64), (256, 32, 32), (512, 31, 31)]


def test_patchgan_receptive_field_is_70_pixels():
    torch.manual_seed(0)
    d = PatchDiscriminator(1, base_channels=4, norm="none")
    x = torch.randn(1, 1, 128, 128, requires_grad=True)
    logits, _ = d(x)  # 14x14
    logits[0, 0, 7, 7].backward()
    rows = (x.grad[0, 0].abs().sum(dim=1) > 0).nonzero()
    cols = (x.grad[0, 0].abs().sum(dim=0) > 0).nonzero()
    assert int(rows.max() - rows.min()) + 1 == 70
    assert int(cols.max() - cols.min()) + 1 == 70


def test_multiscale_runs_one_patchgan_per_scale_on_pooled_inputs():
    d = MultiScaleDiscriminator(4, num_scales=3, base_channels=8, norm="instance")
    logits, feats = d(torch.randn(2, 4, 96, 96))
    # scale inputs 96, 48, 24 -> maps 10, 4, 1 (size / 8 - 2)
    assert [tuple(lg.shape) for lg in logits] == [(2, 1, 10, 10), (2, 1, 4, 4), (2, 1, 1, 1)]
    assert len(feats) == 3 and all(len(f) == 4 for f in feats)
    assert feats[1][0].shape == (2, 8, 24, 24)


def test_temporal_scales_see_frames_at_their_own_rate():
    torch.manual_seed(0)
    d = TemporalDiscriminator(3, window=3, time_scales=2, base_channels=8, norm="none")
    assert d.frames_needed == 5  # (K - 1) * 2^(S - 1) + 1
    frames = torch.randn(2, 5, 3, 32, 32)
    logits, feats = d(frames)
    assert [tuple(lg.shape) for lg in logits] == [(2, 1, 2, 2), (2, 1, 2, 2)]
    assert len(feats) == 2
    # scale 0 sees frames 2, 3, 4; scale 1 sees frames 0, 2, 4
    changed = frames.clone()
    changed[:, 3] += 1.0
    l3, _ = d(changed)
    assert not torch.allclose(l3[0], logits[0]) and torch.allclose(l3[1], logits[1])
    changed = frames.clone()
    changed[:, 0] += 1.0
    l0, _ = d(changed)
    assert torch.allclose(l0[0], logits[0]) and not torch.allclose(l0[1], logits[1])
    with pytest.raises(ValueError, match="T=5"):
        d(frames[:, :4])


def test_region_discriminator_crops_the_inclusive_pixel_box():
    img = torch.arange(2 * 1 * 16 * 16, dtype=torch.float32).view(2, 1, 16, 16)
    d = RegionDiscriminator(1, crop_size=(8, 8), base_channels=8, n_layers=2)
    boxes = torch.tensor([[4.0, 2.0, 11.0, 9.0], [0.0, 8.0, 7.0, 15.0]])  # (x_min, y_min, x_max, y_max)
    crops = d.crop(img, boxes)
    torch.testing.assert_close(crops[0], img[0, :, 2:10, 4:12])
    torch.testing.assert_close(crops[1], img[1, :, 8:16, 0:8])
    with pytest.raises(ValueError, match="boxes must be"):
        d(img, boxes[:1])
    d16 = RegionDiscriminator(1, crop_size=(16, 16), base_channels=8, n_layers=2)
    logits, feats = d16(img, boxes)
    assert logits.shape == (2, 1, 2, 2) and len(feats) == 3  # 16 -> 8 -> 4 (stride 2) -> 3 -> 2 (stride 1)



def test_spectral_norm_option_normalises_the_weights():
    d = PatchDiscriminator(3, base_channels=8, spectral_norm=True, norm="none")
    for _ in range(20):  # power iterations run in training-mode forwards
        d(torch.randn(1, 3, 32, 32))
    w = d.head.weight.detach().flatten(1)
    assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, rel=0.05)
