"""Benchmark of the shards: disk and speed per storage setting, read time per view set, in one run.

    PYTHONPATH=src:. python bench/shards.py                       # this project's faces + audio_features outputs
    PYTHONPATH=src:. python bench/shards.py --root /path/to/project --workers 2

Runs the `shards` stage (its `run_shards`, the stage's own work) into a temporary folder once per
setting below, on the project's existing ingest/faces/audio_features outputs (build them with
`dvc repro faces audio_features`), and prints per setting: MB on disk per clip and per frame, the
compression of crop256, clips/s of the whole cut (decode, warp, compress, write, hash), and the
estimated disk of the demo corpus that params.yaml `demo_corpus` describes (72 clips): its frame
count comes from the demo's own clip plan and speech synthesis (no video is rendered), times the
measured bytes per frame; DVC's cache keeps a second copy unless it links. Then, for the default
setting, the time `read_clip` takes per clip for typical view sets (best of 3; the machine may be shared).
Settings: zstd 3 with the temporal delta (the default), zstd 3 without it, zlib 1 with it, zstd 9 with it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from headflow.shards import read_clip
from headflow.shards.params import ShardsParams
from headflow.shards.stage import compression_by_array, run_shards

SETTINGS = {
    "zstd 3 + delta (default)": {},
    "zstd 3, no delta": {"temporal_delta": False},
    "zlib 1 + delta": {"codec": "zlib", "level": 1},
    "zstd 9 + delta": {"level": 9},
}
VIEW_SETS = {
    "expert (face96, mel)": ("face96", "mel"),
    "crop256": ("crop256",),
    "crop256 + mouth + eyes": ("crop256", "mouth", "eyes"),
    "every pixel view + mel": ("face96", "crop256", "mouth", "eyes", "mel"),
}


def demo_frames(params_path: Path) -> tuple[int, int]:
    """(clips, video frames) of the demo corpus params.yaml describes, without rendering it.

    Each clip lasts its synthesised utterance (at least `min_duration_s`), as `render_clip` decides.
    """
    from headflow.config import load_block
    from headflow.demo.corpus import plan_clips
    from headflow.demo.params import DemoCorpusParams
    from headflow.speech.espeak import synthesize

    p = load_block(DemoCorpusParams, "demo_corpus", params_path)
    frames = 0
    for spec in plan_clips(p):
        lead = float(np.random.default_rng(spec.seed).uniform(0.25, 0.5))      # render_clip's first draw
        for k in range(len(spec.sentences), 0, -1):
            utt = synthesize(" ".join(spec.sentences[:k]), voice=spec.voice, rate_wpm=spec.rate_wpm,
                             sample_rate=p.sample_rate, lead_silence=lead, tail_silence=0.3)
            if utt.duration <= p.max_duration_s:
                break
        frames += int(np.ceil(max(utt.duration, p.min_duration_s) * p.fps - 1e-9))
    return p.n_clips, frames


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path("."),
                    help="project root with data/interim/{ingest,faces,audio_features}")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"), help="whose demo_corpus to estimate")
    ap.add_argument("--workers", type=int, default=2, help="processes of the stage run (default %(default)s)")
    args = ap.parse_args(argv)
    root = args.root.resolve()
    base = ShardsParams(workers=args.workers)
    demo_clips, demo_total = demo_frames(args.params)
    print(f"demo corpus of {args.params}: {demo_clips} clips, {demo_total} frames", flush=True)
    kept = None
    with tempfile.TemporaryDirectory(dir=root / "data/interim") as tmp:
        for name, over in SETTINGS.items():
            out = Path(tmp).relative_to(root) / name.split()[0] / str(len(over))
            shards, _, facts = run_shards(replace(base, **over), out_dir=out, project_root=root, progress=False)
            n, frames, mb = len(shards), int(shards.n_frames.sum()), shards.bytes.sum() / 1e6
            ratio = compression_by_array([root / p for p in shards.path]).get("crop256")
            print(f"{name:26s} {mb / n:6.2f} MB/clip {mb * 1e3 / frames:6.1f} KB/frame  crop256 {ratio:.2f}x  "
                  f"{n / facts['seconds']:5.2f} clips/s  -> demo ~{mb / frames * demo_total / 1e3:.2f} GB "
                  f"({n} clips, {frames} frames, {facts['seconds']:.1f} s)", flush=True)
            if kept is None:
                kept = (out, list(shards.clip_id))
        out, ids = kept
        for label, views in VIEW_SETS.items():
            best = np.inf
            for _ in range(3):
                t = time.perf_counter()
                for cid in ids:
                    read_clip(cid, views=views, root=out, project_root=root)
                best = min(best, (time.perf_counter() - t) / len(ids))
            print(f"read_clip {label:26s} {best * 1e3:7.1f} ms/clip", flush=True)


if __name__ == "__main__":
    main()
