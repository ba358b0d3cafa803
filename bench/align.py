"""Alignment accuracy and speed of the align stage, measured in one run.

    python bench/align.py                         # demo corpus from data/ + ../shared material
    python bench/align.py --project ../other-checkout  # another checkout's built demo corpus (read only)

Figures (see headflow.align.evaluate for how boundaries are matched):
1. demo corpus: phone and word boundaries of the stage's output vs espeak's exact timings (truth.json),
   and the stage's speed as x real time (audio seconds / stage seconds, training included);
2. real speech, ../shared/data/mfa (acoustic_corpus + cold_corpus, aligned together): phone and word
   boundaries vs the MFA TextGrids there;
3. real GRID clips, ../shared/data/grid (all six aligned together): word boundaries of swwp2s vs swwp2s.align.
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


def mfa_real(shared: Path, params: AlignParams) -> None:
    from headflow.media import read_audio

    folder = shared / "data/mfa"
    names = ["acoustic_corpus", "cold_corpus"]
    items = [(n, read_audio(folder / f"{n}.wav")[0], (folder / f"{n}.lab").read_text()) for n in names]
    t = time.perf_counter()
    als = align_wavs(items, params)
    seconds = time.perf_counter() - t
    ph, wd = [], []
    for n, al in zip(names, als):
        grid = read_textgrid(folder / f"{n}.TextGrid")
        ph.append(boundary_errors(grid.tiers["phones"], [(a, b, p) for a, b, p, _ in al.phones]))
        wd.append(boundary_errors(grid.tiers["words"], al.words, words=True))
    dur = sum(len(w) for _, w, _ in items) / 16000
    print(f"real speech, ../shared/data/mfa ({len(items)} utterances, {dur:.1f} s; {dur / seconds:.1f}x real time):")
    print("  " + summarize(np.concatenate(ph)).line("phones vs MFA"))
    print("  " + summarize(np.concatenate(wd)).line("words  vs MFA"))


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
    args = ap.parse_args()
    params = AlignParams()
    if args.init:
        params.builtin.init = args.init
    print(f"builtin aligner, init={params.builtin.init}")
    if (args.project / "data/interim/ingest/clips.parquet").exists():
        demo(args.project, params)
    else:
        print(f"demo corpus: skipped ({args.project}/data/interim/ingest/clips.parquet not built; run `make demo`)")
    if args.shared.is_dir():
        mfa_real(args.shared, params)
        grid_real(args.shared, params)
    else:
        print(f"real speech: skipped ({args.shared} not found)")


if __name__ == "__main__":
    main()
