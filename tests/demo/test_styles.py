"""Speaking styles of the demo corpus: params, rotation per identity, animation, ground truth, bytes."""

import hashlib
import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from headflow.config import ConfigError, from_dict
from headflow.demo.animation import deform_mouth_and_eyes, mouth_track
from headflow.demo.corpus import assign_styles, build_corpus, plan_clips, style_cycle
from headflow.demo.params import DemoCorpusParams, StyleParams, default_styles
from headflow.validation import validate_manifest

STYLES = {s.name: s for s in default_styles()}


def _phones(seq, dur=0.12):
    return [SimpleNamespace(start=i * dur, end=(i + 1) * dur, label=label) for i, label in enumerate(seq)]


def test_style_cycle_interleaves_the_heaviest_style():
    # Pool by weight: N N N E R S; N fills slots 0, 2, 4 and E, R, S fill 1, 3, 5.
    assert style_cycle(default_styles()) == ["neutral", "exaggerated", "neutral", "restrained", "neutral", "smiling"]
    for weights in ([1], [1, 1], [2, 1, 1], [2, 2, 1], [3, 1, 1, 1], [4, 2, 1, 1]):
        cycle = style_cycle([StyleParams(f"s{i}", weight=w) for i, w in enumerate(weights)])
        assert sorted(cycle) == sorted(f"s{i}" for i, w in enumerate(weights) for _ in range(w))
        if len(weights) > 1:   # no style above half the weight: cyclic neighbours always differ
            assert all(a != b for a, b in zip(cycle, cycle[1:] + cycle[:1])), cycle


def test_every_identity_speaks_in_several_styles_half_of_them_neutral(demo_params):
    styles = assign_styles(demo_params)
    specs = plan_clips(demo_params)
    assert [s.style for s in specs] == styles == assign_styles(demo_params)
    by_identity = pd.DataFrame({"identity": [s.identity for s in specs], "style": styles})
    for identity, group in by_identity.groupby("identity"):
        assert group["style"].nunique() >= 2, identity
        # A run of n consecutive cycle entries holds floor(n/2) or ceil(n/2) neutrals (every other slot).
        n = len(group)
        assert n // 2 <= (group["style"] == "neutral").sum() <= (n + 1) // 2, identity
    # Two clips per identity already give two styles (neighbours in the cycle differ).
    two_each = replace(demo_params, n_clips=2 * len(demo_params.identities))
    pairs = np.array(assign_styles(two_each)).reshape(2, -1)
    assert (pairs[0] != pairs[1]).all()
    assert assign_styles(replace(demo_params, seed=1)) != styles


def test_styles_leave_the_clip_draws_alone(demo_params):
    # Sentences, voices, rates and per-clip seeds do not depend on the styles, so a neutral clip is the
    # same clip (same bytes) whatever other styles the corpus has.
    plain = replace(demo_params, styles=[StyleParams("neutral")])
    for a, b in zip(plan_clips(demo_params), plan_clips(plain)):
        assert replace(a, style="neutral") == b


def test_style_params_are_checked():
    block = {"styles": [{"name": "neutral"}, {"name": "loud", "articulation": 1.5, "weight": 2}]}
    params = from_dict(DemoCorpusParams, block, "demo_corpus")
    assert [s.name for s in params.styles] == ["neutral", "loud"] and params.styles[1].weight == 2
    for bad, match in (({"styles": []}, "at least one style"),
                       ({"styles": [{"name": "a"}, {"name": "a"}]}, "unique"),
                       ({"styles": [{"name": "Loud"}]}, "lower case"),
                       ({"styles": [{"name": "a", "articulation": 0.0}]}, "articulation"),
                       ({"styles": [{"name": "a", "weight": 0}]}, "weight"),
                       ({"styles": [{"name": "a", "jaw": 1.0}]}, "unknown key")):
        with pytest.raises(ConfigError, match=match):
            from_dict(DemoCorpusParams, bad, "demo_corpus")


def test_articulation_scales_the_viseme_track_but_lips_still_close():
    phones = _phones(["SIL", "AA", "AA", "AA", "M", "IY", "UW", "F", "AE", "SIL"])
    base = mouth_track(phones, 30, 25)
    np.testing.assert_array_equal(mouth_track(phones, 30, 25, articulation=1.0, spread_offset=0.0), base)
    big = mouth_track(phones, 30, 25, articulation=1.4)
    small = mouth_track(phones, 30, 25, articulation=0.6)
    # Open: 1.4x / 0.6x of the neutral opening (AA peaks at 0.78 -> 1.09, clipped to 1).
    free = (base[:, 0] > 0.08) & (base[:, 0] * 1.4 < 1)
    np.testing.assert_allclose(big[free, 0], 1.4 * base[free, 0], rtol=1e-6)
    np.testing.assert_allclose(small[free, 0], 0.6 * base[free, 0], rtol=1e-6)
    assert big[:, 0].max() == 1.0 and np.ptp(big[:, 0]) > np.ptp(base[:, 0]) > np.ptp(small[:, 0])
    np.testing.assert_allclose(big[:, 1], 1.4 * base[:, 1], rtol=1e-6, atol=1e-7)
    assert big[:, 2].max() <= 1.0 and big[:, 2].max() > base[:, 2].max()
    t = (np.arange(30) + 0.5) / 25
    in_m = (t >= 0.48) & (t < 0.60)
    assert big[in_m, 0].max() == 0.0   # bilabial closure is applied after the style
    smile = mouth_track(phones, 30, 25, spread_offset=0.35)
    np.testing.assert_allclose(smile[:, 1] - base[:, 1], 0.35, atol=1e-6)


def test_lip_raise_lifts_the_corners_only():
    rng = np.random.default_rng(0)
    face = rng.normal(0, 0.5, (68, 2))
    face[[61, 62, 63], 1], face[[67, 66, 65], 1] = 0.0, 0.1   # inner lips apart
    plain = deform_mouth_and_eyes(face, 0.3, 0.2, 0.0, 0.0)
    np.testing.assert_array_equal(deform_mouth_and_eyes(face, 0.3, 0.2, 0.0, 0.0, lip_raise=0.0), plain)
    raised = deform_mouth_and_eyes(face, 0.3, 0.2, 0.0, 0.0, lip_raise=0.05)
    dy = raised[:, 1] - plain[:, 1]
    np.testing.assert_allclose(dy[[48, 54, 60, 64]], -0.05, atol=1e-12)
    np.testing.assert_allclose(dy[[49, 53, 55, 59]], -0.02, atol=1e-12)   # 0.4 x the corner raise
    np.testing.assert_array_equal(raised[:48], plain[:48])                # jaw, brows, nose, eyes
    np.testing.assert_array_equal(raised[:, 0], plain[:, 0])
    np.testing.assert_array_equal(raised[[50, 51, 52, 56, 57, 58, 62, 66]], plain[[50, 51, 52, 56, 57, 58, 62, 66]])


def _digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


TINY = DemoCorpusParams(n_clips=3, identities=["astronaut"], frame_size=128,
                        bad_inputs=False, workers=1,
                        styles=[STYLES["exaggerated"], STYLES["restrained"], STYLES["smiling"]])


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("styles") / "demo"
    return root, build_corpus(TINY, root, progress=False)


def test_tiny_styled_corpus_same_seed_same_bytes(tiny_corpus, tmp_path):
    root, corpus = tiny_corpus
    again = build_corpus(TINY, tmp_path / "again", progress=False)
    assert _digest(root) == _digest(tmp_path / "again") and corpus.equals(again)
    assert sorted(corpus["style"]) == ["exaggerated", "restrained", "smiling"]


def test_style_is_in_the_index_and_the_truth(tiny_corpus):
    root, corpus = tiny_corpus
    assert validate_manifest(corpus, "corpus").success
    for row in corpus.itertuples():
        truth = json.loads((root / row.source_path).with_suffix(".truth.json").read_text())
        style = STYLES[row.style]
        assert truth["style"] == row.style
        assert truth["style_params"] == {"articulation": style.articulation, "lip_spread": style.lip_spread,
                                         "lip_raise": style.lip_raise, "head_motion": style.head_motion}


def test_exaggerated_opens_wider_than_restrained_in_the_ground_truth(tiny_corpus):
    root, corpus = tiny_corpus
    mouth = {row.style: np.load(root / row.truth_path)["mouth"] for row in corpus.itertuples()}
    assert np.ptp(mouth["exaggerated"][:, 0]) > np.ptp(mouth["restrained"][:, 0])
    # Exactly: away from closures (neutral opening > 0.08) and clipping, styled open = neutral open x
    # gain x articulation, with the clip's gain drawn in [0.85, 1.15]; the neutral track is recomputed
    # from the truth's phones. A style that is ignored gives a ratio in [0.85, 1.15] and fails.
    for row in corpus.itertuples():
        truth = json.loads((root / row.source_path).with_suffix(".truth.json").read_text())
        phones = [SimpleNamespace(start=p["start"], end=p["end"], label=p["phone"]) for p in truth["phones"]]
        neutral = mouth_track(phones, truth["n_frames"], truth["fps"])
        styled = mouth[row.style]
        free = (neutral[:, 0] > 0.08) & (styled[:, 0] < 1.0)
        ratio = styled[free, 0] / neutral[free, 0]
        art = STYLES[row.style].articulation
        assert free.sum() > 10 and np.ptp(ratio) < 1e-3
        assert 0.85 * art - 1e-3 <= ratio.mean() <= 1.15 * art + 1e-3, (row.style, ratio.mean())
        spread_shift = styled[:, 1] - art * neutral[:, 1]
        np.testing.assert_allclose(spread_shift, STYLES[row.style].lip_spread, atol=1e-3)
