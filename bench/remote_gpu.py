"""Train generator families' quality configurations on a leased GPU machine that has no project data.

A leased accelerator machine here receives at most 64 MiB with each command and keeps nothing, while the
demo run's shards are ~530 MB (crop256 alone ~300 MB, stored losslessly). This script moves what the
training stages read, and nothing else, in three steps:

    python bench/remote_gpu.py pack --data <a demo run's data/> --out .gpu     # here: ~35 MB
    python bench/remote_gpu.py unpack --pack .gpu                              # there: rebuilds data/
    python bench/remote_gpu.py train --jobs lipsync_s0,discohead,... --minutes 7 --out $OUT   # there

What changes on the way (say so wherever a figure from such a run is reported):
- only the train and val splits' shards travel (training never reads the test split, which stays here
  for generation and evaluation);
- `face96` frames travel as H.264 4:4:4 (libx264 `--crf-face`, default 8: ~43 dB PSNR on the demo) instead
  of lossless zstd, decoded there by OpenCV;
- `crop256` frames travel downsampled to `--crop-size` (default 128, the quality configurations' largest
  training size: DisCoHead and Style Mapping 128, Head2HeadFS 96) as H.264 (`--crf-crop`, default 10), and
  are upsampled back to 256x256 (bicubic) there, so a family that resizes them to <= 128 sees nearly the
  same pixels;
- every other array (landmarks, transforms, mel, masks, labels) travels byte for byte.

`train` runs each job in its own process (one failure does not stop the others), on CUDA, with the
family's `quality_params()` plus the job's overrides and `loop.max_minutes` as the budget (the harness
stops after the epoch in which it runs out, then exports as usual), and copies each job's
`generator.pt` (or export) and `history.json` into `--out`, with a `jobs.json` summary. The machine
lacks `great_expectations` and `dvclive`: manifest validation and DVCLive logging are skipped there (the
exports come back here, where generation and evaluation run with the full pipeline).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SMALL = ("data/interim/shards/shards.parquet", "data/interim/shards/quarantine.parquet",
         "data/interim/sync_check", "data/interim/ingest/clips.parquet",
         "data/interim/shard_labels/shard_labels.parquet", "data/interim/shard_labels/quarantine.parquet",
         "data/models/expert/best.pt")
IMAGES = {"face96": None, "crop256": "crop"}


def _h264(frames: np.ndarray, crf: int, size: int | None, path: Path) -> None:
    """Encode (T, H, W, 3) uint8 frames (channel order kept) as an H.264 4:4:4 mp4, optionally resized."""
    import av
    import cv2

    if size is not None and frames.shape[1] != size:
        frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])
    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt = frames.shape[2], frames.shape[1], "yuv444p"
        st.options = {"crf": str(crf), "preset": "slow"}
        for f in frames:
            for pkt in st.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)


def _decode(path: Path, shape: list[int]) -> np.ndarray:
    """Decode an `_h264` file with OpenCV (RGB order restored), resized to `shape` (T, H, W, 3)."""
    import cv2

    cap, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        img = img[..., ::-1]
        if img.shape[0] != shape[1]:
            img = cv2.resize(img, (shape[2], shape[1]), interpolation=cv2.INTER_CUBIC)
        frames.append(img)
    if len(frames) != shape[0]:
        raise RuntimeError(f"{path}: decoded {len(frames)} frames, expected {shape[0]}")
    return np.ascontiguousarray(np.stack(frames))


def _upgrade_clips(path: Path) -> None:
    """Add the `clips` columns a data folder written by an older ingest lacks, as nulls (what ingest
    writes for a demo clip: no source window, no segmentation, no emotion labels)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from headflow.manifest.schemas import CLIPS

    table, schema = pq.read_table(path), CLIPS
    for field in schema:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(len(table), field.type))
    pq.write_table(table, path)


def pack(data: Path, out: Path, crf_face: int, crf_crop: int, crop_size: int, splits: tuple[str, ...]) -> None:
    """Write `out/pack/<clip>.zip` (the shard's small members verbatim + H.264 frames) and the small files."""
    crf = {"face96": crf_face, "crop256": crf_crop}
    import pandas as pd

    sys.path.insert(0, str(ROOT / "src"))
    from headflow.shards.store import ShardFile

    if out.exists():
        shutil.rmtree(out)
    (out / "pack").mkdir(parents=True)
    for rel in SMALL:
        src = data / rel.removeprefix("data/")
        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
    _upgrade_clips(out / "data/interim/ingest/clips.parquet")
    shards = pd.read_parquet(data / "interim/shards/shards.parquet")
    keep = shards[shards.split.isin(splits)]
    labels = data / "interim/shard_labels/clips"
    (out / "data/interim/shard_labels/clips").mkdir(parents=True, exist_ok=True)
    total = 0
    for r in keep.itertuples():
        name = f"{r.clip_id}.npz"
        if (labels / name).is_file():
            shutil.copy2(labels / name, out / "data/interim/shard_labels/clips" / name)
        with ShardFile(data / "interim/shards/clips" / name) as f, \
                zipfile.ZipFile(out / "pack" / f"{r.clip_id}.zip", "w") as z:
            z.writestr("meta.json", json.dumps(f.meta))
            for arr, entry in f.meta["arrays"].items():
                if arr in IMAGES:
                    frames = f.load(arr)
                    tmp = out / "pack" / f"{arr}.mp4"
                    _h264(frames, crf[arr], crop_size if arr == "crop256" else None, tmp)
                    z.write(tmp, f"{arr}.mp4")
                    tmp.unlink()
                    z.writestr(f"{arr}.shape.json", json.dumps(list(frames.shape)))
                else:
                    z.writestr(entry["member"], f._zip.read(entry["member"]))
        total += (out / "pack" / f"{r.clip_id}.zip").stat().st_size
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"packed {len(keep)} clips ({', '.join(splits)}): shards {total / 2**20:.1f} MiB, all {size / 2**20:.1f} MiB "
          f"(face96 H.264 4:4:4 crf {crf_face}, crop256 at {crop_size}px crf {crf_crop})")


def unpack(pack_dir: Path, root: Path) -> None:
    """Rebuild `data/` under `root` from a pack: small files copied, shards re-written by `write_shard`."""
    sys.path.insert(0, str(root / "src"))
    from headflow.shards.store import _npy_view, _zstd, undo_temporal_delta, write_shard

    for rel in SMALL:
        src, dst = pack_dir / rel, root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)
    shutil.copytree(pack_dir / "data/interim/shard_labels/clips", root / "data/interim/shard_labels/clips",
                    dirs_exist_ok=True)
    out = root / "data/interim/shards/clips"
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for p in sorted((pack_dir / "pack").glob("*.zip")):
        with zipfile.ZipFile(p) as z:
            meta = json.loads(z.read("meta.json"))
            arrays = {}
            for arr, entry in meta["arrays"].items():
                if arr in IMAGES:
                    tmp = root / "data" / f".{arr}.mp4"
                    tmp.write_bytes(z.read(f"{arr}.mp4"))
                    arrays[arr] = _decode(tmp, json.loads(z.read(f"{arr}.shape.json")))
                    tmp.unlink()
                else:
                    data = z.read(entry["member"])
                    if meta["codec"] == "zstd":
                        data = _zstd().decompress(data, decompressed_size=entry["npy_bytes"])
                    a = _npy_view(data)
                    arrays[arr] = undo_temporal_delta(a) if entry["filter"] == "tdelta" else a.copy()
        head = {k: v for k, v in meta.items() if k not in ("arrays", "format", "version", "codec", "level")}
        write_shard(out / f"{p.stem}.npz", arrays, head, "zstd", 1)
        n += 1
    print(f"unpacked {n} shards into {out}")


# ----------------------------------------------------------------------------------------------- train

JOBS = {
    # name: (family module, params block, overrides on quality_params())
    "lipsync": ("lipsync", "train_lipsync", {}),
    "lipsync_sync": ("lipsync", "train_lipsync", {"loss.sync_start_l1": 0.085}),
    "discohead": ("discohead", "train_discohead", {}),
    "stylemap": ("stylemap", "train_stylemap", {}),
    "styletalk": ("styletalk", "train_styletalk", {}),
    # 2026-11-30: Style Mapping at batch 16 (FOMM's vox-256 trains at 20; the quality configuration's 4 is
    # a CPU size); the schedule is constant, so `--minutes` decides how many epochs of 800 pairs it sees
    "stylemap_b16": ("stylemap", "train_stylemap", {"loop.batch_size": 16, "loop.epochs": 160}),
    "discohead_tps": ("discohead", "train_discohead", {"model.head_motion": "tps"}),
    # one short epoch of each lip-sync stage: the GAN stage 2 failed on CUDA on 2026-11-29 (R1 through grid_sample;
    # fixed 2026-11-30 by headflow.nn.warp.grid_sample)
    "lipsync_s2check": ("lipsync", "train_lipsync", {"loop.epochs": 1, "stage2_epochs": 1,
                                                     "samples_per_epoch": 200}),
}



def _shims() -> None:
    """Stand-ins for packages the GPU image lacks (see the module docstring); real ones win when present."""
    import types

    force = os.environ.get("REMOTE_GPU_SHIMS") == "1"     # test the stand-ins where the packages exist
    try:
        if force:
            raise ImportError
        import dvclive  # noqa: F401
    except ImportError:
        import importlib.machinery

        mod = types.ModuleType("dvclive")
        mod.__spec__ = importlib.machinery.ModuleSpec("dvclive", None)   # find_spec() callers need one

        class Live:   # logs nothing: history.json and the harness's log lines carry the same numbers
            def __init__(self, *a, **k):
                self.step = 0

            def __getattr__(self, name):
                return lambda *a, **k: None

        mod.Live = Live
        sys.modules["dvclive"] = mod
    try:
        if force:
            raise ImportError
        import great_expectations  # noqa: F401
    except ImportError:
        import importlib.machinery

        val = types.ModuleType("headflow.validation")
        val.__spec__ = importlib.machinery.ModuleSpec("headflow.validation", None)

        class _Report:
            def __init__(self, df):
                self.n_rows, self.n_expectations = len(df), 0

        val.validate_manifest = lambda df, kind, **k: _Report(df)
        sys.modules["headflow.validation"] = val


def run_job(name: str, minutes: float, seed: int, threads: int, workers: int, extra: list[str],
            accelerator: str = "cuda") -> None:
    """One job in this process: quality params + overrides, CUDA, budget `minutes` per training phase."""
    import importlib
    import logging

    sys.path.insert(0, str(ROOT / "src"))
    os.chdir(ROOT)
    _shims()
    from headflow.config import replace_dotted
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(message)s", datefmt="%H:%M:%S")
    family, block, overrides = JOBS[name.split("@")[0]]
    mod = importlib.import_module(f"headflow.generators.{family}.params")
    p = mod.quality_params()
    phases = 2 if family == "lipsync" else 1          # stage 1 and the GAN stage 2 each get half
    main_minutes = minutes / phases if family != "styletalk" else minutes * 5 / 6   # StyleTalk: D first
    overrides = {**overrides, "loop.max_minutes": main_minutes, "loop.seed": seed, "loop.num_workers": workers,
                 "threads": threads}
    for kv in extra:
        k, v = kv.split("=", 1)
        overrides[k] = json.loads(v)
    for k, v in list(overrides.items()):
        try:
            p = replace_dotted(p, k, v)
        except (TypeError, AttributeError):       # a field this family does not have (--set applies to all)
            print(f"{name}: no field {k}; override skipped", flush=True)
            overrides.pop(k)
    p.validate() if hasattr(p, "validate") else None
    train = importlib.import_module(f"headflow.generators.{family}.train")
    tag = name.replace("@", "_")
    paths = dict(out_dir=Path(f"data/interim/gpu_{tag}"), model_dir=Path(f"data/models/gpu_{tag}"),
                 metrics_path=Path(f"data/interim/gpu_{tag}/metrics.json"))
    if family != "styletalk":
        paths["plot_path"] = Path(f"data/interim/gpu_{tag}/history.png")
    if family == "styletalk":
        from headflow.generators.styletalk.params import DiscParams

        dp = DiscParams()
        dp = replace_dotted(replace_dotted(dp, "threads", threads), "loop.max_minutes", minutes / 6)
        dp = replace_dotted(dp, "loop.seed", seed)
        disc_dir = Path(f"data/models/gpu_{tag}_disc")
        train.run_disc_stage(dp, progress=False, accelerator=accelerator, out_dir=Path(f"data/interim/gpu_{tag}_disc"),
                             model_dir=disc_dir, metrics_path=Path(f"data/interim/gpu_{tag}_disc/metrics.json"))
        paths["disc_dir"] = disc_dir
    t0 = time.perf_counter()
    result = train.run_stage(p, progress=False, accelerator=accelerator, **paths)
    print(json.dumps({"job": name, "seconds": time.perf_counter() - t0, "overrides": overrides,
                      "result_keys": sorted(result) if isinstance(result, dict) else None}, default=str))


EXPORTS = ("generator.pt", "styletalk.pt", "discriminators.pt")


def _cast(obj, src, dst):
    """Every `src`-dtype tensor in a nested dict/list/tuple cast to `dst`; everything else as is.
    Transport only: float32 -> float16 there (`collect`), float16 -> float32 here (`restore`)."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.to(dst) if obj.dtype == src else obj
    if isinstance(obj, dict):
        return {k: _cast(v, src, dst) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cast(v, src, dst) for v in obj)
    return obj


def _halve(obj):
    import torch

    return _cast(obj, torch.float32, torch.float16)


def _widen(obj):
    import torch

    return _cast(obj, torch.float16, torch.float32)


def collect(jobs: list[str], out: Path) -> None:
    """Each job's exports as float16 copies `<job>__<file>` (the tool returns <= 8 files, 64 MiB) and every
    log, history, metrics file and sample grid in `runs.tar.gz`."""
    import tarfile

    import torch

    with tarfile.open(out / "runs.tar.gz", "w:gz") as tar:
        for job in jobs:
            tag = job.replace("@", "_")
            for d in (ROOT / f"data/models/gpu_{tag}", ROOT / f"data/models/gpu_{tag}_disc"):
                if not d.exists():
                    continue
                samples = sorted(d.rglob("samples/*.png"))
                for f in d.rglob("*"):   # not the checkpoints, DVCLive or sample grids (but the last): <= 16 MiB
                    if f.is_file() and f.name not in ("last.pt", "best.pt") and f.name not in EXPORTS and \
                            "dvclive" not in f.parts and (f.suffix != ".png" or f == (samples or [None])[-1]):
                        tar.add(f, arcname=str(f.relative_to(ROOT)))
                for name in EXPORTS:
                    if (d / name).is_file():
                        obj = torch.load(d / name, map_location="cpu", weights_only=False)
                        torch.save(_halve(obj), out / f"{d.name}__{name}")
            for extra in (ROOT / f"data/interim/gpu_{tag}", ROOT / f"data/interim/gpu_{tag}_disc"):
                if extra.exists():
                    tar.add(extra, arcname=str(extra.relative_to(ROOT)))
        for log in out.glob("*.log"):
            tar.add(log, arcname=f"logs/{log.name}")
        tar.add(out / "jobs.json", arcname="logs/jobs.json")
    for log in out.glob("*.log"):
        log.unlink()
    (out / "jobs.json").unlink()
    if (out / "runs.tar.gz").stat().st_size > 16 * 2**20:
        print("warning: runs.tar.gz is over 16 MiB and will not come back", flush=True)


def restore(files: Path, into: Path) -> None:
    """Here: `<model dir>__<export>` float16 files -> `into/<model dir>/<export>` in float32, runs unpacked."""
    import tarfile

    import torch

    for f in sorted(files.glob("*__*.pt")):
        model_dir, name = f.name.split("__", 1)
        (into / model_dir).mkdir(parents=True, exist_ok=True)
        torch.save(_widen(torch.load(f, map_location="cpu", weights_only=False)), into / model_dir / name)
        print("restored", into / model_dir / name)
    if (files / "runs.tar.gz").is_file():
        with tarfile.open(files / "runs.tar.gz") as tar:
            tar.extractall(into / "runs", filter="data")


def train_all(jobs: list[str], minutes: float, out: Path, threads: int, workers: int, extra: list[str],
              accelerator: str = "cuda", deadline_s: float | None = None) -> None:
    """Run the jobs in parallel processes; kill any still running `deadline_s` after the start (default:
    the budget + 2 minutes), then `collect`."""
    deadline_s = deadline_s if deadline_s is not None else 60 * minutes + 120
    out.mkdir(parents=True, exist_ok=True)
    procs = {}
    for job in jobs:
        base, _, seed = job.partition("@")
        log = open(out / f"{job.replace('@', '_')}.log", "w")
        cmd = [sys.executable, __file__, "job", job, "--minutes", str(minutes), "--seed", seed or "0",
               "--accelerator", accelerator,
               "--threads", str(threads), "--workers", str(workers), *sum((["--set", e] for e in extra), [])]
        procs[job] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT), log, time.time())
    deadline = time.time() + deadline_s
    while any(p.poll() is None for p, _, _ in procs.values()) and time.time() < deadline:
        time.sleep(2)
    summary = {}
    for job, (proc, log, t0) in procs.items():
        killed = proc.poll() is None
        if killed:                                    # past the deadline: stop it so the others come back
            proc.kill()
        rc = proc.wait()
        log.close()
        tag = job.replace("@", "_")
        model_dir = ROOT / f"data/models/gpu_{tag}"
        files = sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if p.is_file()) \
            if model_dir.exists() else []
        summary[job] = {"rc": rc, "killed_at_deadline": killed, "wall_s": round(time.time() - t0, 1), "files": files}
        print(job, summary[job]["rc"], summary[job]["wall_s"], "killed" if killed else "", flush=True)
    (out / "jobs.json").write_text(json.dumps(summary, indent=2))
    collect(jobs, out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack", help="here: write a pack of the train/val shards to carry to the machine",
                       description="Write the pack: the small manifests and models verbatim, one zip per shard of "
                                   "--splits with face96 and crop256 as H.264 4:4:4, everything else byte for byte.")
    a.add_argument("--data", type=Path, required=True,
                   help="a demo run's data/ folder (the one holding interim/shards/ and models/expert/)")
    a.add_argument("--out", type=Path, default=ROOT / ".gpu",
                   help="pack folder to write; deleted first if it exists (default: .gpu in the repository root)")
    a.add_argument("--crf-face", type=int, default=8,
                   help="libx264 CRF (0-51, lower = closer to lossless and larger) for the face96 frames "
                        "(default %(default)s: ~43 dB PSNR on the demo)")
    a.add_argument("--crf-crop", type=int, default=10,
                   help="libx264 CRF (0-51, lower = closer to lossless and larger) for the crop256 frames, "
                        "applied after the downsampling to --crop-size (default %(default)s)")
    a.add_argument("--crop-size", type=int, default=128,
                   help="side in pixels the 256x256 crop256 frames are downsampled to (area interpolation) before "
                        "encoding; unpack upsamples them back to 256 (bicubic) (default %(default)s)")
    a.add_argument("--splits", default="train,val",
                   help="comma-separated shard splits to pack; the others stay here (default %(default)s)")
    a = sub.add_parser("restore", help="here: turn the files a run brought back into float32 exports and runs/",
                       description="Widen each returned `<model dir>__<export>` float16 file to float32 as "
                                   "`<into>/<model dir>/<export>` and extract runs.tar.gz into `<into>/runs/`.")
    a.add_argument("--files", type=Path, required=True,
                   help="folder holding the files `train --out` wrote (`<model dir>__<export>.pt`, runs.tar.gz)")
    a.add_argument("--into", type=Path, required=True,
                   help="folder to write `<model dir>/<export>` (float32) and `runs/` (the unpacked logs and "
                        "histories) under; created if missing")
    a = sub.add_parser("unpack", help="there: rebuild data/ in the repository root from a pack",
                       description="Copy the pack's small files into data/ and rewrite each shard with write_shard "
                                   "(H.264 frames decoded, crop256 upsampled back to its stored shape).")
    a.add_argument("--pack", type=Path, default=ROOT / ".gpu",
                   help="pack folder written by `pack --out` (default: .gpu in the repository root)")
    for cmd in ("train", "job"):
        if cmd == "train":
            a = sub.add_parser(cmd, help="there: train the jobs in parallel processes and collect their exports",
                               description="Run each job as a `job` subprocess, stop those still running at "
                                           "--deadline-s, then write the float16 exports and runs.tar.gz to --out.")
        else:
            a = sub.add_parser(cmd, help="one job in this process (what `train` starts for each job)")
        if cmd == "train":
            a.add_argument("--jobs", required=True, help="comma list of JOBS names, '@<seed>' for another seed")
            a.add_argument("--out", type=Path, required=True,
                           help="folder (created if missing) for each job's float16 exports "
                                "`<model dir>__<export>.pt` and runs.tar.gz (logs, histories, metrics, last sample "
                                "grid); the job logs and jobs.json go into the archive")
        else:
            a.add_argument("name", help="job: a JOBS name (%s), optionally with '@<seed>' (which names the output "
                                        "folders; the seed itself comes from --seed)" % ", ".join(JOBS))
            a.add_argument("--seed", type=int, default=0,
                           help="loop.seed of the job (and of StyleTalk's discriminator stage) (default %(default)s)")
        a.add_argument("--minutes", type=float, required=True,
                       help="training budget per job in minutes, set as loop.max_minutes (the loop stops after the "
                            "epoch in which it runs out); lipsync gives each of its two stages half, StyleTalk "
                            "gives 1/6 to its discriminator stage and 5/6 to the generator")
        a.add_argument("--threads", type=int, default=2,
                       help="the `threads` parameter of each job: torch CPU threads per job process "
                            "(default %(default)s)")
        a.add_argument("--workers", type=int, default=2,
                       help="loop.num_workers of each job: DataLoader worker processes (default %(default)s)")
        a.add_argument("--set", action="append", default=[], help="dotted=json override for every job")
        a.add_argument("--accelerator", default="cuda", help="cpu for a dry run")
        if cmd == "train":
            a.add_argument("--deadline-s", type=float, default=None,
                           help="seconds after the start at which jobs still running are killed, so that the "
                                "others' results are still collected (default: 60 x --minutes + 120)")
    args = ap.parse_args(argv)
    if args.cmd == "pack":
        pack(args.data, args.out, args.crf_face, args.crf_crop, args.crop_size, tuple(args.splits.split(",")))
    elif args.cmd == "restore":
        restore(args.files, args.into)
    elif args.cmd == "unpack":
        unpack(args.pack, ROOT)
    elif args.cmd == "train":
        train_all(args.jobs.split(","), args.minutes, args.out, args.threads, args.workers, args.set,
                  args.accelerator, args.deadline_s)
    else:
        run_job(args.name, args.minutes, args.seed, args.threads, args.workers, args.set, args.accelerator)


if __name__ == "__main__":
    main()
