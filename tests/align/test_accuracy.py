"""Accuracy gates of the builtin aligner (figures: `python bench/align.py`).

Boundaries are matched as documented in headflow.align.evaluate (edit-distance pairing of the phone
label sequences, silences dropped).
"""

import json

import numpy as np
import pandas as pd
import pytest

from headflow.align.evaluate import boundary_errors, read_grid_align, summarize
from headflow.align.run import align_wavs
from headflow.align.params import AlignParams
from headflow.align.run import run_align
from headflow.align.textgrid import read_textgrid


@pytest.mark.slow
def test_demo_corpus_phone_boundaries(demo_corpus, tmp_path):
    """The whole default demo corpus (exact espeak timings): median <= 20 ms, >= 85% within 40 ms."""
    root, corpus = demo_corpus
    good = corpus[corpus.kind == "good"].reset_index(drop=True)
    clips = pd.DataFrame({"clip_id": [f"c{i}-{i:010d}" for i in range(len(good))], "source_path": good.source_path,
                          "transcript": [(root / p).with_suffix(".txt").read_text().strip() for p in good.source_path],
                          "audio_path": good.source_path, "n_frames": good.n_frames, "speaker_id": good.voice})
    res = run_align(clips, AlignParams(workers=2), tmp_path / "align", project_root=root, progress=False)
    assert len(res.alignments) == len(clips)
    errs = []
    for cid, src in zip(clips.clip_id, clips.source_path):
        truth = json.loads((root / src).with_suffix(".truth.json").read_text())
        g = res.phones[res.phones.clip_id == cid]
        errs.append(boundary_errors([(p["start"], p["end"], p["phone"]) for p in truth["phones"]],
                                    list(zip(g.start, g.end, g.phone))))
    stats = summarize(np.concatenate(errs))
    assert stats.n > 500
    assert stats.median_ms <= 20 and stats.within_40ms >= 0.85, stats


@pytest.mark.shared
@pytest.mark.slow
def test_real_speech_against_mfa(shared_dir):
    """Two real utterances (52 s) against MFA's phone tiers: the issue 16 targets, >= 75% of phone
    boundaries within 40 ms and (the aim, not reached) >= 85% of word boundaries. Measured (bench/align.py,
    2026-11-30): phones 81.9% (held-out acoustic_corpus 84.7%, cold_corpus, tuned on, 79.5%), median 15 ms;
    words 79.2% within 40 ms (held out 84.3%); over 5 dither seeds the worst was 78.4%. With the LDA features
    (`lda_dim` 30, 2026-11-30, second pass): phones 82.6%, words 81.5% (137 of 168) on dither seed 0, 80.4-82.6%
    over seeds 0-4. The word gate is that worst seed, 80% (135 of 168 boundaries; seed 0 has 2 to spare);
    without the LDA features seed 0 measures 79.2% (133) and fails it. With the onset snap (`onset_snap_ms` 30,
    2026-11-30, fourth pass) words 83.3% mean over seeds 0-4, the worst 82.1% (138 of 168): the gate is 82% (138;
    seed 0 measures 83.3%, 140, 2 to spare), which seed 0 without the snap (81.5%, 137) fails; without the snap
    seeds 0-4 span 80.4-82.6%, so another seed could pass it. The aligner of 2026-11-29 (no
    pronunciation variants, no SIL penalty on loud frames) measured 76.7% / 70.8%; the one before issue 16
    (var_mix 0.3, no pause penalty) 67.3% / 62.5%."""
    from headflow.media import read_audio

    folder = shared_dir / "data/mfa"
    names = ["acoustic_corpus", "cold_corpus"]
    items = [(n, read_audio(folder / f"{n}.wav")[0], (folder / f"{n}.lab").read_text()) for n in names]
    als = align_wavs(items)
    grids = [read_textgrid(folder / f"{n}.TextGrid") for n in names]
    errs = [boundary_errors(g.tiers["phones"], [(a, b, p) for a, b, p, _ in al.phones]) for g, al in zip(grids, als)]
    words = np.concatenate([boundary_errors(g.tiers["words"], al.words, words=True) for g, al in zip(grids, als)])
    stats = summarize(np.concatenate(errs))
    assert stats.n > 400 and len(words) > 150
    assert stats.median_ms <= 20 and stats.within_40ms >= 0.75, stats
    assert np.mean(words <= 0.040) >= 0.82, np.mean(words <= 0.040)


@pytest.mark.shared
def test_grid_word_boundaries(grid_dir, tmp_path):
    """Six real GRID clips aligned together; swwp2s's words against its .align (1/25000 s units)."""
    from headflow.media import extract_audio, read_audio

    transcripts = json.loads((grid_dir / "transcripts.json").read_text())
    items = []
    for name, text in sorted(transcripts.items()):
        extract_audio(grid_dir / f"{name}.mpg", tmp_path / f"{name}.wav")
        items.append((name, read_audio(tmp_path / f"{name}.wav")[0], text))
    al = {a.clip_id: a for a in align_wavs(items, AlignParams())}["swwp2s"]
    ref = read_grid_align(grid_dir / "swwp2s.align")
    assert ref[1] == (12250 / 25000, 19250 / 25000, "set")
    stats = summarize(boundary_errors(ref, al.words, words=True))
    print(stats.line("GRID swwp2s words"))
    # Measured 2026-11-29 (`pytest -s -k grid_word tests/align/test_accuracy.py`): 8 boundaries, median
    # 10.0 ms, 75% within 40 ms; 2026-11-30 (pronunciation variants, SIL penalty on loud frames): median
    # 15.0 ms, 75% within 40 ms. Gates: median <= measured + one 10 ms alignment frame (the aligner's
    # resolution; x1.25 = 12.5 ms would fail on one boundary moving by one frame), within 40 ms >= 0.6
    # (one more of the 8 may miss). The old gate (60 ms) passed an aligner six frames worse.
    assert stats.n >= 7, stats        # six words, one pause: 7-8 distinct boundaries
    assert stats.median_ms <= 20.0 and stats.within_40ms >= 0.6, stats
