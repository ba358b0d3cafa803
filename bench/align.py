"""Alignment accuracy and speed of the align stage, measured in one run.

    python bench/align.py                         # demo corpus from data/ + ../shared material
    python bench/align.py --project ../other-checkout  # another checkout's built demo corpus (read only)
    python bench/align.py --shared ../shared --no-demo --no-grid   # real speech only (issue 16 figures)

Figures (see headflow.align.evaluate for how boundaries are matched):
1. demo corpus: phone and word boundaries of the stage's output vs espeak's exact timings (truth.json),
   and the stage's speed as x real time (audio seconds / stage seconds, training included);
2. real speech, ../shared/data/mfa (acoustic_corpus + cold_corpus, aligned together) vs the MFA TextGrids
   there, for today's aligner (params.yaml) and the BASELINE (the aligner before issue 16) in the same
   run: phones within 20 / 40 ms and words within 40 ms per recording and both together. cold_corpus is
   the recording the issue 16 settings were tuned on; acoustic_corpus was held out of the tuning;
3. joined pauses (align/pauses.py): the two recordings with 1-5 s pauses inserted, aligned alone: words
   inside a reference pause of >= 0.5 s (the gate: none), phones and words within 40 ms; both aligners;
4. real GRID clips, ../shared/data/grid (all six aligned together): word boundaries of swwp2s vs swwp2s.align.
"""

from __future__ import annotations

import argparse
import json
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
BASELINE = {"var_mix": 0.3, "pause_penalty": 0.0, "pause_gap_ms": 0.0, "long_pause_weight": 1.0}
"""align.builtin settings of the aligner before issue 16 (its features also counted digital silence in
quiet_frames' floor; that fix, which changes nothing without exact zeros, is in both)."""


def configs(params: AlignParams) -> list[tuple[str, AlignParams]]:
    """(name, params) of today's aligner and the baseline."""
    import copy

    base = copy.deepcopy(params)
    for k, v in BASELINE.items():
        setattr(base.builtin, k, v)
    return [("today", params), ("baseline", base)]


def _figures(ph: np.ndarray, wd: np.ndarray) -> str:
    s = summarize(ph)
    return (f"phones {s.n:3d}: {s.within_20ms:6.1%} within 20 ms, {s.within_40ms:6.1%} within 40 ms, median "
            f"{s.median_ms:4.1f} ms | word boundaries {len(wd):3d}: {np.mean(wd <= 0.040):6.1%} within 40 ms")


def mfa_real(shared: Path, params: AlignParams) -> None:
    from headflow.media import read_audio

    folder = shared / "data/mfa"
    names = ["acoustic_corpus", "cold_corpus"]
    items = [(n, read_audio(folder / f"{n}.wav")[0], (folder / f"{n}.lab").read_text()) for n in names]
    dur = sum(len(w) for _, w, _ in items) / 16000
    print(f"real speech, ../shared/data/mfa ({len(items)} utterances aligned together, {dur:.1f} s) vs MFA "
          f"(tuned on {TUNED_ON}, the other held out):")
    for name, p in configs(params):
        t, cpu = time.perf_counter(), time.process_time()
        als = align_wavs(items, p)
        seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
        ph, wd = [], []
        for n, al in zip(names, als):
            grid = read_textgrid(folder / f"{n}.TextGrid")
            ph.append(boundary_errors(grid.tiers["phones"], [(a, b, q) for a, b, q, _ in al.phones]))
            wd.append(boundary_errors(grid.tiers["words"], al.words, words=True))
            role = "tuned on" if n == TUNED_ON else "held out"
            print(f"  {name:8s} {n:15s} ({role}): {_figures(ph[-1], wd[-1])}")
        print(f"  {name:8s} {'both':26s}: {_figures(np.concatenate(ph), np.concatenate(wd))}; "
              f"{dur / seconds:.1f}x real time ({dur / cpu:.1f}x per CPU second: on a busy machine wall time lies)")


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
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--init", choices=["flat", "espeak_dtw", "espeak_hmm"], default=None, help="override align.builtin.init")
    ap.add_argument("--no-demo", action="store_true", help="skip the demo corpus (the slowest part)")
    ap.add_argument("--no-grid", action="store_true", help="skip the GRID clips")
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
        mfa_real(args.shared, params)
        joined_pauses(args.shared, params)
        if not args.no_grid:
            grid_real(args.shared, params)
    else:
        print(f"real speech: skipped ({args.shared} not found)")


if __name__ == "__main__":
    main()
