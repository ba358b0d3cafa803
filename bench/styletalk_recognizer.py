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
<= 4 mel frames per window), and both. Choices are made on cold_corpus only (TUNED_ON); acoustic_corpus
is held out of them and reported apart.

    PYTHONPATH=src:. python bench/styletalk_recognizer.py            # the demo corpus from data/
    PYTHONPATH=src:. python bench/styletalk_recognizer.py --steps 200 --variants plain   # a quick look
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
            "cmvn+specaug": {"cmvn": True, "freq_mask": 16, "time_mask": 4}}
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
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {list(VARIANTS)}")
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
    for name in args.variants.split(","):
        t = time.perf_counter()
        net = train_recognizer(by["train"], steps=args.steps, batch=args.batch, width=args.width, seed=args.seed,
                               **VARIANTS[name])
        secs = time.perf_counter() - t
        demo = " ".join(f"{k} {frame_accuracy(net, by[k]):.3f}" for k in ("train", "val", "test"))
        line = []
        hits, sp_hits, n, n_sp = 0, 0, 0, 0
        for r in real:
            pred, valid = recognise(net, r["mel"], r["n"])
            assert np.array_equal(valid, r["keep"])
            sp = r["keep"] & (r["ref"] != SILENCE)
            line.append(f"{r['name'].split('_')[0]} {_acc(pred, r['ref'], r['keep']):.3f} [{_acc(pred, r['ref'], sp):.3f}]")
            hits += int((pred == r["ref"])[r["keep"]].sum())
            sp_hits += int((pred == r["ref"])[sp].sum())
            n, n_sp = n + int(r["keep"].sum()), n_sp + int(sp.sum())
        print(f"  recogniser {name:13s} ({args.steps} steps, {secs:5.1f} s): demo {demo} | real: {', '.join(line)}, "
              f"both {hits / n:.3f} [{sp_hits / n_sp:.3f}]", flush=True)


def recognise_frames(r: dict) -> np.ndarray:
    """Frames of a recording with a full mel window (the frames every figure is computed on)."""
    from headflow.generators.styletalk.recognizer import mel_windows

    return mel_windows(r["mel"], r["n"], FPS)[1]


if __name__ == "__main__":
    main()
