"""The `headflow` command: `headflow models list`, `headflow models fetch NAME`, `headflow params [BLOCK]`,
`headflow lipsync --video V --audio A --out O`, `headflow report [--exp A B ...]`."""

from __future__ import annotations

import argparse
import sys


def _models_list(_: argparse.Namespace) -> int:
    from headflow import models

    print(f"models folder: {models.models_dir()}  (${models.ENV_VAR})")
    for r in models.status(verify=True):
        mark = {"mismatch": "BAD    ", "unreadable": "BAD    ",
                None: "ok     " if r["present"] else "missing"}.get(r["hash"], "ok     ")
        note = {"mismatch": f"   sha256 differs from the registered {r['sha256']}: delete it and fetch again",
                "unreadable": "   cannot be read (permissions?): fix or fetch again",
                "unpinned": "   (no sha256 registered: not checked)"}.get(r["hash"], "")
        print(f"  {mark} {r['name']:<26} {r['backend']:<15} {r['path']}{note}")
        if not r["present"] or r["hash"] in ("mismatch", "unreadable"):
            print(f"          fetch: headflow models fetch {r['name']}   ({r['url']})")
    return 0


def _models_fetch(args: argparse.Namespace) -> int:
    from headflow import models

    for name in args.names:
        path = models.fetch(name)
        print(f"{name}: {path} sha256 {models.sha256_of(path)}")
    return 0


def _params(args: argparse.Namespace) -> int:
    from pathlib import Path

    from headflow.config import describe
    from headflow.params import BLOCKS, block_class, load

    import yaml

    names = [args.block] if args.block else list(BLOCKS)
    current = Path(args.params).exists()
    if not current:
        print(f"({args.params} not found: defaults only)")
    raw = (yaml.safe_load(Path(args.params).read_text()) or {}) if current else {}
    for name in names:
        cls = block_class(name)
        print(f"{name}: {cls.__name__}  {' '.join((cls.__doc__ or '').split())}")
        for line in describe(cls, load(name, args.params) if current else None, name,
                             (raw.get(name) or {}) if current else None):
            print(line)
    return 0


def _report(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from headflow.catalog import CATALOG

    if args.exp:
        from headflow.evaluate.compare import write_comparison

        exp_show = json.loads(Path(args.json).read_text()) if args.json else None
        out = write_comparison(args.exp, Path(args.out or "reports/compare.html"), exp_show)
    else:
        from headflow.evaluate.report import write_report

        out = write_report(Path(args.data or CATALOG.folder("evaluate")),
                           Path(args.out or CATALOG.report("evaluate", "page")))
    print(f"report: {out.resolve().as_uri()}")
    return 0


def dub_files(video: str, audio: str, out: str, checkpoint: str = "data/models/lipsync/generator.pt",
              params_path: str = "params.yaml", progress: bool = True) -> dict:
    """Lip-sync one face video to one speech file with a trained `lipsync` generator (`headflow lipsync`).

    The same code as the pipeline, on one pair: ingest's normalisation (25 fps CFR video, 16 kHz mono
    audio, `media.normalize`), the faces stage's tracking (`faces.process_clip`, params.yaml's `faces`
    block when present), the shards stage's Wav2Lip face crops (`shards.cut.cut_views`), then
    `generate_crops` and `write_output` of the generate stage, and `mark_synthetic`. The output covers
    the frames that have both a video frame and a full mel window of the audio (the shorter of the two
    sets the length; the video is never looped or padded).

    Returns:
        {"out", "frames", "generated_frames", "seconds", "frames_per_s"}.

    Raises:
        headflow.manifest.quarantine.Rejected: no usable face in the video (reason code in the message).
        FileNotFoundError / ValueError: no or an unreadable generator checkpoint.
    """
    import tempfile
    import time
    from pathlib import Path

    import numpy as np
    from tqdm import tqdm

    from headflow.audio.mel import mel_spectrogram
    from headflow.config import from_dict
    from headflow.faces.faces import process_clip
    from headflow.faces.params import FacesParams
    from headflow.generators.lipsync.generate import generate_crops, write_output
    from headflow.generators.lipsync.model import file_sha256, load_generator
    from headflow.generators.lipsync.params import LipsyncParams
    from headflow.manifest.generated import mark_synthetic
    from headflow.media.normalize import extract_audio, normalize_video, read_audio, read_frames
    from headflow.params import load as load_block
    from headflow.shards.cut import cut_views
    from headflow.shards.geometry import map_landmarks

    t0 = time.perf_counter()
    generator, saved = load_generator(Path(checkpoint))
    data_params = from_dict(LipsyncParams, saved, "generator.params").data
    faces_params = load_block("faces", params_path) if Path(params_path).exists() else FacesParams()
    with tempfile.TemporaryDirectory(prefix="headflow-lipsync-") as tmp:
        v, a = Path(tmp) / "video.mp4", Path(tmp) / "audio.wav"
        normalize_video(video, v, fps=25)
        extract_audio(audio, a, sample_rate=16000)
        faces = process_clip(v, faces_params, crop_path=None)
        views = cut_views(v, faces.boxes, faces.valid)
        frames = np.stack(list(read_frames(v)))[: len(faces.valid)]
        wav, sr = read_audio(a)
        mel = mel_spectrogram(wav)
        landmarks = map_landmarks(views["face96_transform"], faces.landmarks)
        valid = faces.valid & np.isfinite(landmarks).all(axis=(1, 2))
        landmarks = np.where(valid[:, None, None], np.nan_to_num(landmarks), 0).astype(np.float32)
        bar = tqdm(total=int(valid.sum()), desc="lipsync", unit="frame", disable=not progress)
        result = generate_crops(generator, views["face96"], landmarks, valid, mel, data_params,
                                progress=bar.update)
        bar.close()
        start, end = write_output(frames, result, views["face96_transform"], wav, out, sample_rate=sr)
    mark_synthetic(out, "lipsync", file_sha256(Path(checkpoint)), [Path(video).name, Path(audio).name])
    seconds = time.perf_counter() - t0
    return {"out": out, "frames": end - start, "generated_frames": int(result.generated.sum()),
            "seconds": round(seconds, 1), "frames_per_s": round((end - start) / seconds, 2)}


def _lipsync(args: argparse.Namespace) -> int:
    from headflow.manifest.quarantine import Rejected
    from headflow.media.probe import MediaError

    try:
        info = dub_files(args.video, args.audio, args.out, args.checkpoint, args.params, progress=not args.quiet)
    except Rejected as err:
        print(f"headflow lipsync: {args.video}: {err}", file=sys.stderr)
        return 2
    except MediaError as err:                     # a missing, unreadable or stream-less --video / --audio file
        print(f"headflow lipsync: {err}", file=sys.stderr)
        return 2
    print(f"{info['out']}: {info['frames']} frames ({info['generated_frames']} generated) in {info['seconds']} s "
          f"({info['frames_per_s']} frames/s end to end)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="headflow", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    models = sub.add_parser("models", help="pretrained weights: list, fetch (explicit downloads only)")
    msub = models.add_subparsers(dest="action", required=True)
    msub.add_parser("list", help="registered weights and whether they are on disk").set_defaults(fn=_models_list)
    fetch = msub.add_parser("fetch", help="download weights from their official URL (needs a network)")
    fetch.add_argument("names", nargs="+", metavar="NAME", help="entries of `headflow models list` (e.g. vgg19)")
    fetch.set_defaults(fn=_models_fetch)
    params = sub.add_parser("params", help="every field of the params blocks: type, default, value in use, docs")
    params.add_argument("block", nargs="?", help="one block (default: all)")
    params.add_argument("--params", default="params.yaml", help="the params file giving the values in use")
    params.set_defaults(fn=_params)
    lip = sub.add_parser("lipsync", help="dub a face video with a speech file using the trained lipsync generator")
    lip.add_argument("--video", required=True, help="a video with one talking face (any format ffmpeg reads)")
    lip.add_argument("--audio", required=True, help="the speech to lip-sync to (any audio or video file)")
    lip.add_argument("--out", required=True, help="the mp4 to write (marked synthetic in its metadata)")
    lip.add_argument("--checkpoint", default="data/models/lipsync/generator.pt",
                     help="an exported generator (train_lipsync's generator.pt; default %(default)s)")
    lip.add_argument("--params", default="params.yaml",
                     help="params file whose `faces` block tracks the face (default %(default)s)")
    lip.add_argument("--quiet", action="store_true", help="no progress bar")
    lip.set_defaults(fn=_lipsync)
    report = sub.add_parser("report", help="the evaluation report page; with --exp, several DVC experiments side by side")
    report.add_argument("--exp", nargs="+", metavar="NAME", help="experiment names or revisions (dvc exp show)")
    report.add_argument("--json", help="a saved `dvc exp show --json` instead of running it")
    report.add_argument("--data", help="the evaluate stage's output folder (default data/interim/evaluate)")
    report.add_argument("--out", help="the page (default reports/report.html, or reports/compare.html with --exp)")
    report.set_defaults(fn=_report)
    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except (KeyError, OSError, ValueError) as err:
        # str(KeyError) quotes its message; print the message itself
        print(f"error: {err.args[0] if isinstance(err, KeyError) and err.args else err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
