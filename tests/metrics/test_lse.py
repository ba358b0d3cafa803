"""Sync scoring on synthetic shifts with a hand-made 'expert' (loudness vs mouth opening)."""

import numpy as np
import pytest

from headflow.sync.data import audio_window, face_window, prepare_clip
from headflow.metrics.lse import ClipTooShort, offset_distances, score_distances, shift_audio
from synthetic import synthetic_clip


def _oracle_embeddings(clip):
    """1-d embeddings: mouth darkness of the 5 frames, loudness of the 16 mel frames (same scale)."""
    n_v = len(clip.mouths) - 4
    v = np.array([[1 - face_window(clip, f).mean()] for f in range(n_v)])
    a = np.array([[audio_window(clip, f).mean()] for f in range(n_v)
                  if int(f * 80 / 25) + 16 <= len(clip.mel)])
    z = lambda x: (x - x.mean()) / x.std()
    return z(v), z(a)


@pytest.mark.parametrize("shift", [-10, -5, 0, 5, 10])
def test_recovers_applied_audio_shift(shift):
    clip = shift_audio(synthetic_clip("a", 150, 3), shift)
    v, a = _oracle_embeddings(clip)
    score = score_distances(offset_distances(v, a, 15), len(v), 15)
    assert score.offset == shift
    assert score.lse_c > 0.2


def test_short_clips_are_refused_not_padded():
    v = np.zeros((12, 4))
    with pytest.raises(ClipTooShort, match="offset -15"):
        offset_distances(v, v, max_offset=15, min_pairs=5)
    assert offset_distances(v, v, max_offset=3, min_pairs=5).shape == (7,)


def test_an_expert_that_centres_clips_is_scored_on_centred_windows(monkeypatch):
    """score_clip cuts its windows from the clip as the expert was trained to see it."""
    import torch

    from dataclasses import replace

    from headflow.nn.expert import PUBLISHED_EXPERT, SyncExpert
    from headflow.metrics.lse import embed_clip

    clip = synthetic_clip("a", 30, 1)
    model = SyncExpert(replace(PUBLISHED_EXPERT, width=0.125, depth=1, face_centre="clip", audio_centre="clip"))
    seen = []
    monkeypatch.setattr(model, "embed_face", lambda x: seen.append(x.clone()) or torch.zeros(len(x), 4))
    monkeypatch.setattr(model, "embed_audio", lambda x: torch.zeros(len(x), 4))
    embed_clip(model, clip)
    centred = prepare_clip(model, clip)
    np.testing.assert_allclose(seen[0][0].numpy(), face_window(centred, 0))
    assert not np.allclose(seen[0][0].numpy(), face_window(clip, 0))


@pytest.mark.parametrize("vertex", [-2.3, 0.0, 0.46, 4.5])
def test_subframe_offset_is_exact_on_a_parabola(vertex):
    # three-point parabolic interpolation recovers the vertex of a sampled parabola exactly
    from headflow.metrics.lse import subframe_offset

    k = np.arange(-15, 16)
    dist = 1.0 + 0.02 * (k - vertex) ** 2
    assert subframe_offset(dist, 15) == pytest.approx(vertex, abs=1e-9)
    assert score_distances(dist, 20, 15).offset_subframe == pytest.approx(vertex, abs=1e-9)


def test_subframe_offset_at_the_scan_edge_or_flat_is_the_integer_offset():
    from headflow.metrics.lse import subframe_offset

    edge = np.linspace(1.0, 2.0, 31)             # minimum at offset -15: no left neighbour
    assert subframe_offset(edge, 15) == -15.0
    flat = np.ones(31)
    flat[20] = 0.5                                # a V whose arms are equal: vertex on the sample (+5)
    assert subframe_offset(flat, 15) == 5.0
