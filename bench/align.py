"""Alignment accuracy and speed of the align stage, measured in one run.

    python bench/align.py                         # demo corpus from data/ + ../shared material
    python bench/align.py --project ../other-checkout  # another checkout's built demo corpus (read only)
    python bench/align.py --shared ../shared --no-demo --no-grid   # real speech only (issue 16 figures)
    python bench/align.py --no-demo --no-grid --seeds 5 --words    # + mean/min over 5 dither seeds, per-word diagnosis

Figures (see headflow.align.evaluate for how boundaries are matched):
1. demo corpus: phone and word boundaries of the stage's output vs espeak's exact timings (truth.json),
   and the stage's speed as x real time (audio seconds / stage seconds, training included);
2. real speech, ../shared/data/mfa (acoustic_corpus + cold_corpus, aligned together) vs the MFA TextGrids
   there, for today's aligner (params.yaml), the one without the onset snap (NO_SNAP, the evening of 2026-11-30),
   the one also without LDA features (NO_LDA, the morning of 2026-11-30),
   the aligner of 2026-11-29 (PREVIOUS: before the word-boundary work) and the BASELINE (the aligner before
   issue 16) in the same run: phones within 20 / 40 ms and words
   within 40 ms per recording and both together. cold_corpus is the recording the issue 16 settings were
   tuned on; acoustic_corpus was held out of the tuning. --seeds N repeats each with N dither seeds
   (align.builtin.dither_seed) and prints the mean and the worst; --words prints today's word boundaries
   by kind (start/end, next to a reference pause or not, first/last phone a stop/fricative/other) and
   the words that miss by more than 40 ms;
3. joined pauses (align/pauses.py): the two recordings with 1-5 s pauses inserted, aligned alone: words
   inside a reference pause of >= 0.5 s (the gate: none), phones and words within 40 ms; both aligners;
4. real GRID clips, ../shared/data/grid (all six aligned together): word boundaries of swwp2s vs swwp2s.align.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from headflow.align.evaluate import boundary_errors, read_grid_align, summarize
from headflow.align.run import align_wavs  # noqa: E402
from headflow.align.params import AlignParams  # noqa: E402
from headflow.align.textgrid import read_textgrid  # noqa: E402


def demo(project: Path, params: AlignParams) -> None:
    import pandas as pd

    from headflow.align.run import run_align
    from headflow.manifest import read_manifest

    clips = read_manifest(project / "data/interim/ingest/clips.parquet", "clips")
    demo_root = project / "data/raw/demo"
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        res = run_align(clips, params, Path(tmp) / "align", project_root=project, progress=False)
        seconds = time.perf_counter() - t
    ph, wd = [], []
    for cid, g in res.phones.groupby("clip_id"):
        src = clips.source_path[clips.clip_id == cid].iloc[0]
        truth = json.loads((demo_root / src).with_suffix(".truth.json").read_text())
        ph.append(boundary_errors([(p["start"], p["end"], p["phone"]) for p in truth["phones"]],
                                  list(zip(g.start, g.end, g.phone))))
        w = res.words[res.words.clip_id == cid]
        wd.append(boundary_errors([(x["start"], x["end"], x["word"]) for x in truth["words"]],
                                  list(zip(w.start, w.end, w.word)), words=True))
    print(f"demo corpus ({len(res.alignments)} clips, {res.audio_seconds:.1f} s of audio):")
    print("  " + summarize(np.concatenate(ph)).line("phones vs espeak truth"))
    print("  " + summarize(np.concatenate(wd)).line("words  vs espeak truth"))
    print(f"  speed: {res.audio_seconds:.1f} s of audio aligned in {seconds:.2f} s (training included) = "
          f"{res.audio_seconds / seconds:.1f}x real time")
    del pd


TUNED_ON = "cold_corpus"
"""The recording the issue 16 settings (var_mix, pause_*) were chosen on; acoustic_corpus is held out."""
NO_SNAP = {"onset_snap_ms": 0.0}
"""align.builtin settings of the aligner of the evening of 2026-11-30 (LDA features; before word onsets after a
pause snapped to the first loud frame, builtin.snap_onsets)."""
NO_LDA = {"lda_dim": 0, **NO_SNAP}
"""align.builtin settings of the aligner of the morning of 2026-11-30 (pronunciation variants and the SIL
penalty on loud frames, MFCC + deltas throughout: before the LDA features)."""
PREVIOUS = {"speech_penalty": 0.0, "max_pronunciations": 1, **NO_LDA}
"""align.builtin settings of the aligner of 2026-11-29 (issue 16's phone half; before pronunciation variants
and the SIL penalty on frames above the floor)."""
BASELINE = {"var_mix": 0.3, "pause_penalty": 0.0, "pause_gap_ms": 0.0, "long_pause_weight": 1.0, **PREVIOUS}
"""align.builtin settings of the aligner before issue 16 (its features also counted digital silence in
quiet_frames' floor; that fix, which changes nothing without exact zeros, is in both)."""


def configs(params: AlignParams) -> list[tuple[str, AlignParams]]:
    """(name, params) of today's aligner, the one without the onset snap (no-snap), the one also without the LDA
    features (no-lda), the aligner of 2026-11-29 and the baseline."""
    import copy

    out = [("today", params)]
    for name, change in (("no-snap", NO_SNAP), ("no-lda", NO_LDA), ("11-29", PREVIOUS), ("baseline", BASELINE)):
        p = copy.deepcopy(params)
        for k, v in change.items():
            setattr(p.builtin, k, v)
        out.append((name, p))
    return out


def _figures(ph: np.ndarray, wd: np.ndarray) -> str:
    s = summarize(ph)
    return (f"phones {s.n:3d}: {s.within_20ms:6.1%} within 20 ms, {s.within_40ms:6.1%} within 40 ms, median "
            f"{s.median_ms:4.1f} ms | word boundaries {len(wd):3d}: {np.mean(wd <= 0.040):6.1%} within 40 ms")


def mfa_real(shared: Path, params: AlignParams, seeds: int = 1, words: bool = False) -> None:
    import copy

    from headflow.media import read_audio

    folder = shared / "data/mfa"
    names = ["acoustic_corpus", "cold_corpus"]
    items = [(n, read_audio(folder / f"{n}.wav")[0], (folder / f"{n}.lab").read_text()) for n in names]
    grids = [read_textgrid(folder / f"{n}.TextGrid") for n in names]
    dur = sum(len(w) for _, w, _ in items) / 16000
    print(f"real speech, ../shared/data/mfa ({len(items)} utterances aligned together, {dur:.1f} s) vs MFA "
          f"(tuned on {TUNED_ON}, the other held out)" + (f"; mean [worst] of {seeds} dither seeds:" if seeds > 1 else ":"))
    for name, p in configs(params):
        rows, seconds, cpu = [], 0.0, 0.0
        for seed in range(seeds):
            q = copy.deepcopy(p)
            q.builtin.dither_seed = p.builtin.dither_seed + seed
            t, c = time.perf_counter(), time.process_time()
            als = align_wavs(items, q)
            seconds, cpu = seconds + time.perf_counter() - t, cpu + time.process_time() - c
            ph = [boundary_errors(g.tiers["phones"], [(a, b, x) for a, b, x, _ in al.phones]) for g, al in zip(grids, als)]
            wd = [boundary_errors(g.tiers["words"], al.words, words=True) for g, al in zip(grids, als)]
            rows.append((ph, wd))
            if words and name == "today" and seed == 0:
                today_words = [(n, g, al) for n, g, al in zip(names, grids, als)]
        for k, n in enumerate(names + ["both"]):
            pick = (lambda r: r[k]) if k < len(names) else np.concatenate
            role = "" if n == "both" else " (tuned on)" if n == TUNED_ON else " (held out)"
            figs = [(pick(ph), pick(wd)) for ph, wd in rows]
            line = _figures(*figs[0]) if seeds == 1 else _seed_figures(figs)
            speed = (f"; {dur * seeds / seconds:.1f}x real time ({dur * seeds / cpu:.1f}x per CPU second: on a busy "
                     "machine wall time lies)") if n == "both" else ""
            print(f"  {name:8s} {n + role:26s}: {line}{speed}")
    for line in unused_references(folder, names):
        print(line)
    if words:
        word_diagnosis(today_words)


def unused_references(folder: Path, used: list[str]) -> list[str]:
    """A line for each other TextGrid in `folder` saying why it is not a reference here: only a TextGrid with
    `words` and `phones` tiers (MFA's output) gives word and phone boundaries; 61-70968-0000 (LibriSpeech, in
    MFA's test data) has a single utterance tier spanning the file, i.e. no alignment to compare with."""
    out = []
    for path in sorted(folder.glob("*.TextGrid")):
        if path.stem in used:
            continue
        tiers = read_textgrid(path).tiers
        missing = [t for t in ("words", "phones") if t not in tiers]
        if missing:
            out.append(f"  {path.stem}: not a reference (tiers {sorted(tiers)}: no {' or '.join(missing)} tier, "
                       "only the transcript over the whole file)")
        else:
            out.append(f"  {path.stem}: has word and phone tiers but is not in the bench; add it as held out")
    return out


def _seed_figures(figs: list[tuple[np.ndarray, np.ndarray]]) -> str:
    """Mean [worst] over seeds of phones within 20 / 40 ms and words within 40 ms."""
    p20 = [np.mean(ph <= 0.020) for ph, _ in figs]
    p40 = [np.mean(ph <= 0.040) for ph, _ in figs]
    w40 = [np.mean(wd <= 0.040) for _, wd in figs]
    f = lambda v: f"{np.mean(v):6.1%} [{np.min(v):6.1%}]"  # noqa: E731
    return (f"phones {len(figs[0][0]):3d}: {f(p20)} within 20 ms, {f(p40)} within 40 ms | word boundaries "
            f"{len(figs[0][1]):3d}: {f(w40)} within 40 ms")


def word_diagnosis(aligned: list) -> None:
    """Today's word boundaries by kind, and the words off by more than 40 ms (evaluate.word_boundaries)."""
    from headflow.align.evaluate import word_boundaries

    kind = {**dict.fromkeys("P B T D K G CH JH".split(), "stop"),
            **dict.fromkeys("F V TH DH S Z SH ZH HH".split(), "fricative")}
    print("word boundaries of today's aligner, by kind (a boundary shared by two words counts for both; "
          "'pause' = a reference silence >= 50 ms beside it):")
    every = []
    for name, grid, al in aligned:
        wb = word_boundaries(grid.tiers["words"], al.words, grid.tiers["phones"])
        every += [(name, w) for w in wb]
    for rec in sorted({n for n, _ in every}) + ["both"]:
        ws = [w for n, w in every if rec in ("both", n)]
        groups = {
            "starts": [w.start_error for w in ws], "ends": [w.end_error for w in ws],
            "starts after a pause": [w.start_error for w in ws if w.gap_before >= 0.05],
            "starts in running speech": [w.start_error for w in ws if w.gap_before < 0.05],
            "ends before a pause": [w.end_error for w in ws if w.gap_after >= 0.05],
            "ends in running speech": [w.end_error for w in ws if w.gap_after < 0.05],
            **{f"starts with a {k}": [w.start_error for w in ws if kind.get(w.first_phone, "other") == k]
               for k in ("stop", "fricative", "other")},
            **{f"ends with a {k}": [w.end_error for w in ws if kind.get(w.last_phone, "other") == k]
               for k in ("stop", "fricative", "other")},
        }
        print(f"  {rec}:")
        for label, e in groups.items():
            e = np.asarray(e)
            if len(e):
                print(f"    {label:26s} {len(e):3d}: {np.mean(np.abs(e) <= 0.040):6.1%} within 40 ms, median signed "
                      f"error {np.median(e) * 1000:+5.0f} ms (> 0: ours late)")
    print("  words off by more than 40 ms (ref -> ours, s):")
    for name, w in every:
        if max(abs(w.start_error), abs(w.end_error)) > 0.040:
            print(f"    {name:15s} {w.word:12s} {w.ref[0]:6.2f}-{w.ref[1]:6.2f} -> {w.hyp[0]:6.2f}-{w.hyp[1]:6.2f} "
                  f"(start {w.start_error * 1000:+5.0f} ms, end {w.end_error * 1000:+5.0f} ms)")


def joined_pauses(shared: Path, params: AlignParams) -> None:
    from headflow.align.pauses import join_with_pauses, read_recording, words_in_pauses

    recs = [read_recording(shared / "data/mfa", n) for n in ("acoustic_corpus", "cold_corpus")]
    j = join_with_pauses(recs)
    print(f"joined pauses ({len(j.wav) / 16000:.1f} s, {len(j.inserted)} inserted pauses of 1-5 s, zeros or room "
          "tone; aligned alone):")
    for name, p in configs(params):
        t = time.perf_counter()
        al = align_wavs([("joined", j.wav, j.transcript)], p)[0]
        seconds = time.perf_counter() - t
        report = words_in_pauses(j.words, al.words)
        ph = boundary_errors(j.phones, [(a, b, q) for a, b, q, _ in al.phones])
        wd = boundary_errors(j.words, al.words, words=True)
        print(f"  {name:8s} {report.line()}; {_figures(ph, wd)}; {len(j.wav) / 16000 / seconds:.1f}x real time")
        for a, b, w in report.inside:
            print(f"           inside a pause: {w} [{a:.2f}-{b:.2f}]")


def grid_real(shared: Path, params: AlignParams) -> None:
    from headflow.media import extract_audio, read_audio

    folder = shared / "data/grid"
    transcripts = json.loads((folder / "transcripts.json").read_text())
    items = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in sorted(transcripts.items()):
            extract_audio(folder / f"{name}.mpg", Path(tmp) / f"{name}.wav")
            items.append((name, read_audio(Path(tmp) / f"{name}.wav")[0], text))
    als = {a.clip_id: a for a in align_wavs(items, params)}
    ref = read_grid_align(folder / "swwp2s.align")
    err = boundary_errors(ref, als["swwp2s"].words, words=True)
    print(f"real GRID clips ({len(items)} aligned together):")
    print("  " + summarize(err).line("swwp2s words vs swwp2s.align"))
    print("  ours:  " + " ".join(f"{w}[{a:.2f}-{b:.2f}]" for a, b, w in als["swwp2s"].words))
    print("  GRID:  " + " ".join(f"{w}[{a:.2f}-{b:.2f}]" for a, b, w in ref if w != "sil"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", type=Path, default=ROOT, help="project root holding the built demo corpus")
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("HEADFLOW_SHARED") or ROOT.parent / "shared"),
                    help="the shared material (data/mfa, data/grid; default $HEADFLOW_SHARED, else ../shared)")
    ap.add_argument("--init", choices=["flat", "espeak_dtw", "espeak_hmm"], default=None, help="override align.builtin.init")
    ap.add_argument("--no-demo", action="store_true", help="skip the demo corpus (the slowest part)")
    ap.add_argument("--no-grid", action="store_true", help="skip the GRID clips")
    ap.add_argument("--seeds", type=int, default=1, help="real speech: repeat with this many dither seeds (mean, worst)")
    ap.add_argument("--words", action="store_true", help="real speech: today's word boundaries by kind, and the misses")
    args = ap.parse_args()
    from headflow import params as hparams

    params = hparams.load("align", ROOT / "params.yaml")
    if args.init:
        params.builtin.init = args.init
    print(f"builtin aligner, init={params.builtin.init}")
    if args.no_demo:
        print("demo corpus: skipped (--no-demo)")
    elif (args.project / "data/interim/ingest/clips.parquet").exists():
        demo(args.project, params)
    else:
        print(f"demo corpus: skipped ({args.project}/data/interim/ingest/clips.parquet not built; run `make demo`)")
    if args.shared.is_dir():
        mfa_real(args.shared, params, args.seeds, args.words)
        joined_pauses(args.shared, params)
        if not args.no_grid:
            grid_real(args.shared, params)
    else:
        print(f"real speech: skipped ({args.shared} not found)")


if __name__ == "__main__":
    main()
