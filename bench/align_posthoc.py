"""Post-hoc boundary methods for the builtin aligner on real speech, measured and left out (issue 16).

    python bench/align_posthoc.py [--shared ../shared] [--seeds 5]

Both come from the boundary-correction paper issue 16 cites (Stolcke et al., "Highly accurate phonetic
segmentation using boundary correction models and system fusion", ICASSP 2014), which brought HMM
alignments of TIMIT to 80-89% of phone boundaries within 20 ms of the manual labels:

1. **Boundary correction**: a regression from the context of each HMM boundary (the broad classes of the
   phones either side, their durations, whether it is a word edge, the frame energies and spectral flux in
   +-4 frames) to the reference boundary's offset, applied to every internal boundary of the alignment
   (clipped to +-`--cap` ms, order kept). The reference here is MFA's TextGrids, so the model is
   **cross-fitted**: trained on one recording's boundaries (all dither seeds; pairs within 100 ms) and applied
   to the other's, so no figure is scored by a model that saw its recording. Gradient-boosted trees (Huber
   loss, depth 2) and a ridge regression.
2. **System fusion**: the median, word by word, of the word boundaries of K alignments that differ only by
   their dither seed (a slipped run of words on one seed is outvoted); costs K alignments.

The aligner is params.yaml's (`align`), each recording aligned together with the other as in
bench/align.py. Prints words within 40 ms per recording (acoustic_corpus held out of the aligner's
tuning, cold_corpus tuned on) and both together, mean over seeds, against the plain alignments of the same
run. Measured 2026-11-30 (docs/results/align.md): neither reaches the 2-point bar.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from headflow.align.editdistance import edit_pairs  # noqa: E402
from headflow.align.evaluate import boundary_errors, tier_phones  # noqa: E402
from headflow.align.builtin import word_spans  # noqa: E402
from headflow.align.features import frame_levels, mfcc_features  # noqa: E402

NAMES = ("acoustic_corpus", "cold_corpus")
BROAD = {**dict.fromkeys("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split(), 1),
         **dict.fromkeys("P B T D K G CH JH".split(), 2), **dict.fromkeys("F V TH DH S Z SH ZH HH".split(), 3),
         **dict.fromkeys("M N NG".split(), 4), **dict.fromkeys("L R W Y".split(), 5), "SIL": 0}
"""Broad phone classes: silence, vowel, stop/affricate, fricative, nasal, approximant."""


def log_energy(wav: np.ndarray) -> np.ndarray:
    """(T,) frame energy (features.frame_levels: high-passed, dB) scaled so the recording's floor (5th percentile)
    is 0 and its top (95th) is 1; frame t as in features.mfcc_features."""
    db, floor, top = frame_levels(wav, 1 + len(wav) // 160)
    return (db - floor) / max(top - floor, 1e-6)


def internal_boundaries(phones: list) -> list[tuple[float, str, str, float, float, bool]]:
    """(time s, left phone, right phone, left duration, right duration, word edge) of each boundary between two
    consecutive phone intervals (start, end, phone, word index) of an alignment."""
    return [(a[1], a[2], b[2], a[1] - a[0], b[1] - b[0], a[3] != b[3]) for a, b in zip(phones, phones[1:])]


def boundary_features(bounds: list, energy: np.ndarray, mfcc: np.ndarray) -> np.ndarray:
    """(N, 31) features of `internal_boundaries`: one-hot broad class left and right (12), both durations
    (capped at 0.3 s), the word-edge flag, energy at the 8 frames around the boundary and its 7 differences,
    and the spectral flux (norm of the cepstral difference) at 8 frame pairs around it."""
    t_max = len(energy)
    out = []
    for t, left, right, dl, dr, edge in bounds:
        f = int(round(t / 0.01 + 0.5))  # first frame after the boundary (boundaries lie at (t - 0.5) x 10 ms)
        e = energy[np.clip(np.arange(f - 4, f + 4), 0, t_max - 1)]
        c = mfcc[np.clip(np.arange(f - 5, f + 4), 0, t_max - 1), :13]
        onehot = np.zeros(12)
        onehot[BROAD[left]] = onehot[6 + BROAD[right]] = 1
        out.append(np.r_[onehot, min(dl, 0.3), min(dr, 0.3), float(edge), e, np.diff(e),
                         np.linalg.norm(np.diff(c, axis=0), axis=1)])
    return np.array(out)


def offsets(ref_phones: list, phones: list) -> dict[float, float]:
    """{our boundary time: reference minus ours (s)} for the boundaries paired as evaluate.boundary_errors pairs
    them (phone labels aligned by edit distance, silences dropped)."""
    ref = [(a, b, p) for a, b, p in tier_phones(ref_phones) if p != "SIL" and b > a]
    hyp = [(a, b, p) for a, b, p, _ in phones if p != "SIL" and b > a]
    out = {}
    for i, j in edit_pairs([x[2] for x in ref], [x[2] for x in hyp]):
        out[round(hyp[j][0], 5)] = ref[i][0] - hyp[j][0]
        out[round(hyp[j][1], 5)] = ref[i][1] - hyp[j][1]
    return out


def corrected(phones: list, shifts: np.ndarray) -> list:
    """The alignment's phone intervals with internal boundary k moved by shifts[k] s (each at least 5 ms after
    the one before)."""
    times = [p[0] for p in phones] + [phones[-1][1]]
    for k, s in enumerate(shifts):
        times[k + 1] += float(s)
    for k in range(1, len(times)):
        times[k] = max(times[k], times[k - 1] + 0.005)
    return [(times[k], times[k + 1], p[2], p[3]) for k, p in enumerate(phones)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("HEADFLOW_SHARED") or ROOT.parent / "shared"))
    ap.add_argument("--seeds", type=int, default=5, help="dither seeds (alignments per recording)")
    ap.add_argument("--cap", type=float, default=30.0, help="largest correction (ms)")
    args = ap.parse_args()
    if not (args.shared / "data/mfa").is_dir():
        sys.exit(f"error: {args.shared}/data/mfa not found (the real speech with MFA TextGrids); pass --shared")
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import Ridge

    from headflow import params as hparams
    from headflow.align.run import align_wavs
    from headflow.align.textgrid import read_textgrid
    from headflow.media import read_audio

    folder = args.shared / "data/mfa"
    items = [(n, read_audio(folder / f"{n}.wav")[0], (folder / f"{n}.lab").read_text()) for n in NAMES]
    grids = [read_textgrid(folder / f"{n}.TextGrid") for n in NAMES]
    energy = [log_energy(w) for _, w, _ in items]
    mfcc = [mfcc_features(w) for _, w, _ in items]
    base = hparams.load("align", ROOT / "params.yaml")
    runs = []
    for seed in range(args.seeds):
        p = copy.deepcopy(base)
        p.builtin.dither_seed = base.builtin.dither_seed + seed
        runs.append([(al.phones, al.words) for al in align_wavs(items, p)])
        print(f"aligned seed {seed}", flush=True)

    def hits(rec: int, words: list) -> tuple[int, int]:
        e = boundary_errors(grids[rec].tiers["words"], words, words=True)
        return int(np.sum(e <= 0.040)), len(e)

    def line(label: str, per_seed: list[list[tuple[int, int]]]) -> str:
        h = np.array(per_seed)  # (seeds, recordings, 2)
        rec = [np.mean(h[:, r, 0] / h[:, r, 1]) for r in range(len(NAMES))]
        both = h[:, :, 0].sum(1) / h[:, :, 1].sum(1)
        return (f"  {label:50s} words within 40 ms: acoustic_corpus (held out) {rec[0]:6.1%}, cold_corpus (tuned on) "
                f"{rec[1]:6.1%}, both {np.mean(both):6.1%} [{np.min(both):6.1%}-{np.max(both):6.1%}]")

    plain = [[hits(r, run[r][1]) for r in range(len(NAMES))] for run in runs]
    print(f"real speech, ../shared/data/mfa, {args.seeds} dither seeds (mean [range over seeds]):")
    print(line("plain alignments", plain))

    models = {"boundary correction, boosted trees": lambda: GradientBoostingRegressor(
                  loss="huber", n_estimators=100, max_depth=2, learning_rate=0.05, subsample=0.8, random_state=0),
              "boundary correction, ridge": lambda: Ridge(alpha=10.0)}
    for label, make in models.items():
        fitted = []
        for test in range(len(NAMES)):
            x, y = [], []
            for run in runs:
                for train in range(len(NAMES)):
                    if train == test:
                        continue
                    phones = run[train][0]
                    bounds = internal_boundaries(phones)
                    off = offsets(grids[train].tiers["phones"], phones)
                    feats = boundary_features(bounds, energy[train], mfcc[train])
                    for k, b in enumerate(bounds):
                        d = off.get(round(b[0], 5))
                        if d is not None and abs(d) <= 0.1:
                            x.append(feats[k])
                            y.append(d)
            fitted.append(make().fit(np.array(x), np.array(y)))
        scores = []
        for run in runs:
            row = []
            for r in range(len(NAMES)):
                phones, words = run[r]
                bounds = internal_boundaries(phones)
                shift = np.clip(fitted[r].predict(boundary_features(bounds, energy[r], mfcc[r])),
                                -args.cap / 1000, args.cap / 1000)
                row.append(hits(r, word_spans(corrected(phones, shift), [w for _, _, w in words])))
            scores.append(row)
        print(line(label + " (cross-fitted)", scores))

    for k in (3, 5):
        if k > len(runs):
            continue
        scores = []
        for combo in itertools.combinations(range(len(runs)), k):
            row = []
            for r in range(len(NAMES)):
                ws = [runs[s][r][1] for s in combo]
                fused = [(float(np.median([w[i][0] for w in ws])), float(np.median([w[i][1] for w in ws])), ws[0][i][2])
                         for i in range(len(ws[0]))]
                row.append(hits(r, fused))
            scores.append(row)
        print(line(f"fusion, median of {k} seeds ({len(scores)} sets)", scores))


if __name__ == "__main__":
    main()
