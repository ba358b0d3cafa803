"""LDA features of the builtin aligner (builtin.splice, builtin.lda_transform; issue 16's word boundaries):
known answers on hand-built frames."""

import numpy as np
import pytest

from headflow.align.builtin import lda_transform, splice
from headflow.align.params import BuiltinAlignerParams


def test_splice_stacks_neighbours_in_time_order_with_edges_repeated():
    x = np.array([[0.0, 10.0], [1.0, 11.0], [2.0, 12.0]])
    s = splice(x, 1)
    # frame t -> [x[t-1], x[t], x[t+1]], x[-1] := x[0] and x[3] := x[2] (Kaldi's splice-feats)
    assert s.shape == (3, 6)
    assert s.tolist() == [[0, 10, 0, 10, 1, 11], [0, 10, 1, 11, 2, 12], [1, 11, 2, 12, 2, 12]]
    assert np.array_equal(splice(x, 0), x)


def test_lda_keeps_the_discriminating_direction_not_the_loudest_one():
    """Two classes 3 apart on axis 0 (within-class sd 1), axis 1 pure noise of sd 1 and axis 2 noise of sd 10:
    the one LDA direction is axis 0 (PCA would pick axis 2), scaled so the within-class variance along it is
    1, i.e. v = (+-1/sd_0, 0, 0) = (+-1, 0, 0)."""
    rng = np.random.default_rng(0)
    n = 4000
    a = rng.normal(0, 1, (n, 3)) * [1, 1, 10]
    b = rng.normal(0, 1, (n, 3)) * [1, 1, 10] + [3, 0, 0]
    v = lda_transform([a, b], [np.zeros(n, int), np.ones(n, int)], 1)
    assert v.shape == (3, 1)
    assert abs(abs(v[0, 0]) - 1) < 0.05 and abs(v[1, 0]) < 0.05 and abs(v[2, 0]) < 0.01, v
    within = np.concatenate([(a - a.mean(0)) @ v, (b - b.mean(0)) @ v])
    assert within.var() == pytest.approx(1.0, abs=1e-3)
    # the class means 3 apart along axis 0 stay 3 within-class sd apart
    assert abs((b.mean(0) - a.mean(0)) @ v[:, 0]) == pytest.approx(3.0, abs=0.1)


def test_lda_projects_several_classes_onto_decorrelated_unit_within_class_axes():
    """Four classes on a square in dims 0-1 of a 5-d space, within-class noise correlated across all dims:
    the 2 directions found have identity within-class covariance (S_w-orthonormal) and carry the class means."""
    rng = np.random.default_rng(1)
    mix = rng.normal(0, 1, (5, 5))
    centres = np.array([[0, 0], [4, 0], [0, 4], [4, 4]], float)
    xs, ys = [], []
    for k, c in enumerate(centres):
        xs.append(np.pad(np.tile(c, (3000, 1)), ((0, 0), (0, 3))) + rng.normal(0, 1, (3000, 5)) @ mix)
        ys.append(np.full(3000, k))
    v = lda_transform(xs, ys, 2)
    within = np.concatenate([(x - x.mean(0)) @ v for x in xs])
    assert np.allclose(np.cov(within.T, bias=True), np.eye(2), atol=1e-3)
    projected = np.array([x.mean(0) @ v for x in xs])
    assert np.ptp(projected, 0).min() > 1.0   # both axes separate the classes


def test_lda_dimension_beyond_the_spliced_features_is_an_error():
    with pytest.raises(ValueError, match="dim 4 must be in 1..3"):
        lda_transform([np.zeros((10, 3))], [np.arange(10) % 2], 4)
    cfg = BuiltinAlignerParams(lda_dim=92, lda_context=3)    # 7 frames x 13 cepstra = 91
    with pytest.raises(ValueError, match="lda_dim"):
        cfg.validate()


def test_aligner_uses_lda_features_only_on_enough_frames(monkeypatch):
    """train_and_align estimates the LDA (once, at `lda_at`) when the corpus has at least
    LDA_MIN_FRAMES_PER_DIM frames per spliced dimension, and not below that or with lda_dim 0."""
    import headflow.align.builtin as builtin
    from headflow.align.types import AudioFrames, UtteranceInput

    rng = np.random.default_rng(0)
    calls = []
    real = builtin.lda_transform
    monkeypatch.setattr(builtin, "lda_transform",
                        lambda xs, ys, dim: calls.append(sum(map(len, xs))) or real(xs, ys, dim))

    def corpus(n_frames):
        x = rng.normal(0, 1, (n_frames, 39)).astype(np.float32)
        x[n_frames // 3:2 * n_frames // 3] += 2.0            # a louder middle: the word's phones
        frames = AudioFrames(x, None, None, [(0, n_frames // 3)], (n_frames // 3, 2 * n_frames // 3), n_frames * 160)
        return [UtteranceInput("u", np.zeros(0, np.float32), ["ah"], [("AA", "B")], "ah", None, frames)]

    cfg = BuiltinAlignerParams(init="flat", iterations=4, lda_dim=10, lda_at=2, lda_context=1)
    need = builtin.LDA_MIN_FRAMES_PER_DIM * 13 * 3            # 13 cepstra x 3 spliced frames
    al = builtin.train_and_align(corpus(need), cfg)
    assert calls == [need] and al[0].failed is None and [p[2] for p in al[0].phones][1:3] == ["AA", "B"]
    calls.clear()
    builtin.train_and_align(corpus(need - 1), cfg)
    builtin.train_and_align(corpus(need), BuiltinAlignerParams(init="flat", iterations=4, lda_dim=0))
    assert calls == []
