"""The frame-level phone recogniser (issue 18, "Inference without a transcript"), measured in one run:

1. demo corpus: trained on the train split's aligned frame labels (espeak-ng speech); frame accuracy on
   every split (held-out speakers: val t1_3, test t1_2) and the majority class of the test split;
2. real speech, ../shared/data/mfa (acoustic_corpus, cold_corpus) against MFA's phone tiers turned into
   per-video-frame labels (25 fps, the phone at each frame's centre, `align.evaluate.tier_frame_labels`;
   ARPAbet tiers read directly, IPA tiers through `align.lexicon.IPA_TO_ARPABET`): the recogniser's frame
   accuracy, the majority-class baseline (SIL, the most frequent class of the demo's training labels, and
   the recording's own most frequent class, an oracle), and our forced aligner's frame labels (the builtin
   aligner with the transcript, params.yaml's `align`: the upper reference a transcript buys). All on the same
   frames (those with a full mel window), per recording and together; also without the SIL frames.

Training variants (the same steps, batch, width and seed): plain (the default of
`train_styletalk_disc.recognizer`), per-utterance CMVN of the mel (`recognizer.cmvn_mel`, the sync
expert's), SpecAugment-style masking (`recognizer.spec_augment`: one band of <= 16 mels and one span of
<= 4 mel frames per window), both, and a background noise floor (`recognizer.add_noise_floor`: two
noisy copies of every training clip, floor level ~ U[-3, -1.5] normalised units, i.e. -87.5 .. -69 dB on
the mel's 100 dB scale, random spectral tilt; espeak's silence is digital, -4) with and without CMVN.
And CMVN with fewer steps (100, 200, 400: longer training fits espeak's voices more closely). Choices are made
on cold_corpus only (TUNED_ON); acoustic_corpus is held out of them and reported apart. Each variant is
trained with --seeds seeds (mean and range).

    PYTHONPATH=src:. python bench/styletalk_recognizer.py            # the demo corpus from data/
    PYTHONPATH=src:. python bench/styletalk_recognizer.py --steps 200 --seeds 1 --variants plain   # a quick look
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from headflow.generators.styletalk.params import SILENCE  # noqa: E402
from headflow.generators.styletalk.recognizer import (LabelledAudio, frame_accuracy, recognise,  # noqa: E402
                                                      train_recognizer)

NAMES = ("acoustic_corpus", "cold_corpus")
TUNED_ON = "cold_corpus"
"""The recording the variant choice may look at; acoustic_corpus is held out of it."""
VARIANTS = {"plain": {}, "cmvn": {"cmvn": True}, "specaug": {"freq_mask": 16, "time_mask": 4},
            "cmvn+specaug": {"cmvn": True, "freq_mask": 16, "time_mask": 4},
            "noise": {"noise_copies": 2}, "cmvn+noise": {"cmvn": True, "noise_copies": 2}}
FPS = 25.0


def demo_clips() -> dict[str, list[LabelledAudio]]:
    """The accepted demo clips' mel (unshifted: the labels are the audio's own) and frame labels, by split."""
    from headflow.shards import accepted_clips, read_clip

    by: dict[str, list[LabelledAudio]] = {"train": [], "val": [], "test": []}
    for r in accepted_clips().itertuples():
        s = read_clip(r.clip_id, ("mel", "phones"))
        by[r.split].append(LabelledAudio(np.asarray(s.mel, np.float32), np.asarray(s.phones.styletalk_index, np.int64),
                                         np.asarray(s.phones.valid, bool)))
    return by


def real_speech(shared: Path) -> list[dict]:
    """Per recording: mel, MFA frame labels and the forced aligner's frame labels (aligned together, as
    bench/align.py does)."""
    from headflow import params as hparams
    from headflow.align.evaluate import tier_frame_labels
    from headflow.align.run import align_wavs
    from headflow.align.textgrid import read_textgrid
    from headflow.audio.mel import mel_spectrogram
    from headflow.media import read_audio

    folder = shared / "data/mfa"
    items = [(n, read_audio(folder / f"{n}.wav")[0], (folder / f"{n}.lab").read_text()) for n in NAMES]
    t = time.perf_counter()
    als = align_wavs(items, hparams.load("align", ROOT / "params.yaml"))
    print(f"forced aligner on the two recordings: {time.perf_counter() - t:.1f} s")
    out = []
    for (name, wav, _), al in zip(items, als):
        n = int(len(wav) / 16000 * FPS)
        ref = tier_frame_labels(read_textgrid(folder / f"{name}.TextGrid").tiers["phones"], n, FPS)
        ours = tier_frame_labels([(a, b, p) for a, b, p, _ in al.phones], n, FPS)
        out.append({"name": name, "mel": mel_spectrogram(wav), "ref": ref, "aligner": ours, "n": n,
                    "seconds": len(wav) / 16000})
    return out


def _acc(pred: np.ndarray, ref: np.ndarray, keep: np.ndarray) -> float:
    return float((pred[keep] == ref[keep]).mean()) if keep.any() else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=next((p for p in (ROOT.parent / "shared", ROOT.parents[1] / "shared")
                                                          if p.is_dir()), ROOT.parent / "shared"),
                    help="the shared folder holding data/mfa (default ../shared, or ../../shared from a worktree)")
    ap.add_argument("--steps", type=int, default=800,
                    help="Adam steps of each recogniser training, for variants without '@<steps>' "
                         "(default %(default)s)")
    ap.add_argument("--batch", type=int, default=64,
                    help="labelled video frames (each with its mel window) per training step, drawn at random "
                         "(default %(default)s)")
    ap.add_argument("--width", type=int, default=64,
                    help="channels of the recogniser's three conv layers (PhoneRecognizer width) "
                         "(default %(default)s)")
    ap.add_argument("--seed", type=int, default=0, help="first seed")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per variant (mean and range reported)")
    ap.add_argument("--variants", default=",".join([*VARIANTS, "cmvn@100", "cmvn@200", "cmvn@400"]),
                    help=f"comma-separated, of {list(VARIANTS)}, each optionally @<steps> (default --steps)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    by = demo_clips()
    train_y = np.concatenate([c.phones[c.valid] for c in by["train"]])
    majority = Counter(train_y.tolist()).most_common(1)[0][0]
    test_y = np.concatenate([c.phones[c.valid] for c in by["test"]])
    print(f"demo corpus: {len(by['train'])} train / {len(by['val'])} val / {len(by['test'])} test clips; majority "
          f"class of the train labels: {majority} ({'SIL' if majority == SILENCE else 'speech'}), its share of the "
          f"test frames {np.mean(test_y == majority):.3f}")
    real = real_speech(args.shared)
    for r in real:
        keep = np.zeros(r["n"], bool)
        keep[recognise_frames(r)] = True
        r["keep"] = keep
        common = Counter(r["ref"][keep].tolist()).most_common(1)[0]
        r["oracle"] = common[1] / keep.sum()
        print(f"  {r['name']}: {r['seconds']:.1f} s, {r['n']} frames at 25 fps, {keep.sum()} with a full mel window, "
              f"{np.mean(r['ref'][keep] == SILENCE):.3f} SIL in MFA's labels")
    print(f"real speech vs MFA's phone tiers, frame accuracy [without SIL frames] (variants chosen on {TUNED_ON}; "
          "acoustic_corpus held out):")
    for r in real:
        sp = r["keep"] & (r["ref"] != SILENCE)
        role = " (tuned on)" if r["name"] == TUNED_ON else " (held out)"
        print(f"  {r['name'] + role:28s} majority class (SIL) {_acc(np.full(r['n'], majority), r['ref'], r['keep']):.3f}"
              f"  recording's own majority class (oracle) {r['oracle']:.3f}  forced aligner with the transcript "
              f"{_acc(r['aligner'], r['ref'], r['keep']):.3f} [{_acc(r['aligner'], r['ref'], sp):.3f}]")
    both_al = np.concatenate([r["aligner"][r["keep"]] for r in real])
    both_ref = np.concatenate([r["ref"][r["keep"]] for r in real])
    print(f"  {'both':28s} forced aligner {np.mean(both_al == both_ref):.3f} "
          f"[{np.mean((both_al == both_ref)[both_ref != SILENCE]):.3f}]")
    seeds = range(args.seed, args.seed + args.seeds)
    print(f"recogniser variants, {args.steps} steps of {args.batch} frames, width {args.width}, seeds {list(seeds)}: "
          "frame accuracy [without SIL frames]" + (", mean (min-max) over the seeds" if args.seeds > 1 else "")
          + f"; SIL recall = share of MFA's SIL frames labelled SIL; choice by {TUNED_ON}'s figures")
    keys = ["demo val", "demo test", *[f"{r['name'].split('_')[0]}{x}" for r in real for x in ("", " speech", " SIL recall")],
            "both", "both speech"]
    for spec in args.variants.split(","):
        name, _, at = spec.partition("@")
        steps = int(at) if at else args.steps
        figs: dict[str, list[float]] = {k: [] for k in keys}
        secs = []
        for seed in seeds:
            t = time.perf_counter()
            net = train_recognizer(by["train"], steps=steps, batch=args.batch, width=args.width, seed=seed,
                                   **VARIANTS[name])
            secs.append(time.perf_counter() - t)
            figs["demo val"].append(frame_accuracy(net, by["val"]))
            figs["demo test"].append(frame_accuracy(net, by["test"]))
            hit, hit_sp, n, n_sp = 0, 0, 0, 0
            for r in real:
                pred, valid = recognise(net, r["mel"], r["n"])
                assert np.array_equal(valid, r["keep"])
                sp, sil = r["keep"] & (r["ref"] != SILENCE), r["keep"] & (r["ref"] == SILENCE)
                key = r["name"].split("_")[0]
                figs[key].append(_acc(pred, r["ref"], r["keep"]))
                figs[f"{key} speech"].append(_acc(pred, r["ref"], sp))
                figs[f"{key} SIL recall"].append(float(np.mean(pred[sil] == SILENCE)))
                hit, hit_sp = hit + int((pred == r["ref"])[r["keep"]].sum()), hit_sp + int((pred == r["ref"])[sp].sum())
                n, n_sp = n + int(r["keep"].sum()), n_sp + int(sp.sum())
            figs["both"].append(hit / n)
            figs["both speech"].append(hit_sp / n_sp)

        def f(k: str) -> str:
            v = np.array(figs[k])
            return f"{v.mean():.3f}" + (f" ({v.min():.3f}-{v.max():.3f})" if len(v) > 1 else "")

        print(f"  {spec:13s} ({steps} steps, {np.mean(secs):4.1f} s per training): demo val {f('demo val')}, test {f('demo test')}")
        for r in real:
            key = r["name"].split("_")[0]
            role = "tuned on" if r["name"] == TUNED_ON else "held out"
            print(f"      {r['name']} ({role}): {f(key)} [{f(key + ' speech')}], SIL recall {f(key + ' SIL recall')}")
        print(f"      both: {f('both')} [{f('both speech')}]", flush=True)


def recognise_frames(r: dict) -> np.ndarray:
    """Frames of a recording with a full mel window (the frames every figure is computed on)."""
    from headflow.generators.styletalk.recognizer import mel_windows

    return mel_windows(r["mel"], r["n"], FPS)[1]


if __name__ == "__main__":
    main()
