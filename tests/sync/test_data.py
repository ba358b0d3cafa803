"""Expert windows: indexing against the mel helper, balance, determinism, loud failures."""

import numpy as np
import pytest

from headflow.audio.mel import mel_window
from headflow.sync.data import ClipArrays, SyncPairs, audio_window, face_window, window_starts
from synthetic import synthetic_clip


def test_windows_match_the_mel_helper_and_stack_frames_on_channels():
    clip = synthetic_clip("a", 40, 0)
    np.testing.assert_array_equal(audio_window(clip, 7)[0], mel_window(clip.mel, 7).T)
    face = face_window(clip, 3)
    assert face.shape == (15, 48, 96)
    np.testing.assert_allclose(face[3:6], clip.mouths[4].transpose(2, 0, 1) / 255.0)   # 2nd frame = channels 3-5


def test_window_starts_respect_valid_faces_and_audio_length():
    clip = synthetic_clip("a", 30, 0)
    assert window_starts(clip).tolist() == list(range(26))
    valid = np.ones(30, bool)
    valid[10] = False
    starts = window_starts(ClipArrays("a", clip.mouths, clip.mel, valid))
    assert not set(range(6, 11)) & set(starts.tolist())
    short_audio = ClipArrays("a", clip.mouths, clip.mel[:40])   # 40 mel frames: windows for f <= 7
    assert window_starts(short_audio).max() == 7


def test_pairs_are_balanced_deterministic_and_shifted():
    clips = [synthetic_clip(f"c{i}", 50, i) for i in range(3)]
    data = SyncPairs(clips, 200, seed=1, min_shift=5, other_clip_fraction=0.5)
    labels = [float(data[i][2]) for i in range(200)]
    assert sum(labels) == 100
    a = data[7]
    assert all(np.array_equal(x, y) for x, y in zip(a, data[7]))
    data.set_epoch(1)
    assert not np.array_equal(a[0], data[7][0])


def test_a_clip_without_windows_fails_loudly():
    with pytest.raises(ValueError, match="c0"):
        SyncPairs([synthetic_clip("c0", 3, 0)], 10)


def test_augment_batch_is_seeded_and_the_identity_at_zero_ranges():
    import torch

    from headflow.sync.data import Augment, augment_batch, to_float

    clip = synthetic_clip("a", 20, 0)
    face = to_float(torch.stack([torch.from_numpy(face_window(clip, f) * 255).round().to(torch.uint8)
                                 for f in range(8)]))
    a = augment_batch(face, torch.Generator().manual_seed(3))
    assert a.shape == face.shape and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, augment_batch(face, torch.Generator().manual_seed(3)))
    assert not torch.allclose(a, face, atol=0.05)
    none = Augment(rotate_deg=0, scale=0, shift=0, mirror=False, gain=0, bias=0, contrast=0)
    for colour in (True, False):
        same = augment_batch(face, torch.Generator().manual_seed(3), none, colour=colour)
        grey = face.view(8, 5, 3, 48, 96).mean(2, keepdim=True).expand(8, 5, 3, 48, 96).reshape(face.shape)
        torch.testing.assert_close(same, face if colour else grey, atol=1e-4, rtol=0)


def test_clip_centring_cancels_appearance_and_keeps_the_opening():
    from headflow.sync.data import centre_mouths, cmvn_mel, normalise_clip

    clip = synthetic_clip("a", 40, 2)
    valid = np.ones(40, bool)
    valid[5] = False
    # The same mouth on another skin (a constant brightness change) centres to the same crops.
    darker = (clip.mouths.astype(int) - 25).astype(np.uint8)   # no saturation: pixels are 30 or 200
    a, b = centre_mouths(clip.mouths, valid), centre_mouths(darker, valid)
    np.testing.assert_allclose(a[valid].astype(int), b[valid].astype(int), atol=1)
    assert not a[5].any()                                     # invalid frames stay empty
    mean = clip.mouths[valid].astype(np.float32).mean(0)
    np.testing.assert_allclose(a[valid].astype(np.float32), np.clip(clip.mouths[valid] - mean + 128, 0, 255), atol=1)
    # The opening stays: the most open frame is the darkest after centring too.
    openness = (clip.mouths < 100).sum(axis=(1, 2, 3))
    assert np.argmin(a[valid].reshape(39, -1).mean(1)) == np.argmax(openness[valid])
    # Per-utterance CMVN: band means 0, overall std 1, a louder recording (+ offset) gives the same.
    m = cmvn_mel(clip.mel)
    np.testing.assert_allclose(m.mean(0), 0, atol=1e-5)
    assert abs(m.std() - 1) < 1e-2
    np.testing.assert_allclose(cmvn_mel(clip.mel + 1.5), m, atol=1e-4)
    assert normalise_clip(clip) is clip
    both = normalise_clip(clip, "clip", "clip")
    assert both.mouths.shape == clip.mouths.shape and both.mel.dtype == np.float32
    with pytest.raises(ValueError, match="face_centre"):
        normalise_clip(clip, "window")
