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


def _stamped(clip_id: str, index: int, seed: int, speaker: str | None) -> ClipArrays:
    """A synthetic clip whose top-left mouth pixel says where a face window came from: R = clip index, G = frame."""
    clip = synthetic_clip(clip_id, 50, seed, speaker)
    clip.mouths[:, 0, 0, 0] = index
    clip.mouths[:, 0, 0, 1] = np.arange(len(clip.mouths))
    return clip


def test_pairs_are_balanced_deterministic_and_shifted():
    # Two speakers with two clips each, and one clip alone (speaker None: only its own audio to shift).
    speakers = ["A", "A", "B", "B", None]
    clips = [_stamped(f"c{i}", i, i, s) for i, s in enumerate(speakers)]
    min_shift = 8
    data = SyncPairs(clips, 400, seed=1, min_shift=min_shift, other_clip_fraction=0.5)
    # Every mel window is unique (the clips' mels carry independent noise): its bytes say clip and frame.
    audio_of = {audio_window(c, f).tobytes(): (i, int(f)) for i, c in enumerate(clips) for f in window_starts(c)}
    kinds = {"positive": 0, "same_clip": 0, "other_clip": 0}
    shifts, other_by_clip = [], {i: 0 for i in range(len(clips))}
    for k in range(len(data)):
        face, mel, label = data[k]
        c, f = int(face[0, 0, 0]), int(face[1, 0, 0])          # frame f's R and G channels
        assert data.face_clip(k) == c, k                       # the breakdown's clip is the face's clip
        ac, af = audio_of[mel.numpy().tobytes()]
        assert float(label) == (1.0 if k % 2 == 0 else 0.0)    # even indices in sync, odd out of sync
        if label:
            assert (ac, af) == (c, f), k
            kinds["positive"] += 1
        elif ac == c:
            assert abs(af - f) >= min_shift, (k, c, f, af)
            shifts.append(abs(af - f))
            kinds["same_clip"] += 1
        else:
            assert speakers[ac] is not None and speakers[ac] == speakers[c], (k, c, ac)
            kinds["other_clip"] += 1
            other_by_clip[c] += 1
    assert kinds["positive"] == 200 and kinds["same_clip"] + kinds["other_clip"] == 200
    # Both negative kinds occur (other-clip about half of the negatives of clips that have a partner,
    # none for the lone clip); the closest shift drawn is exactly min_shift (>=, not >).
    assert 60 <= kinds["other_clip"] <= 110, kinds
    assert other_by_clip[4] == 0 and min(other_by_clip[i] for i in range(4)) > 0
    assert min(shifts) == min_shift
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
