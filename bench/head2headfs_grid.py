"""Real footage: Head2HeadFS fine-tuned on one GRID speaker, self- and cross-reenacted (issue 17, "Real footage").

    PYTHONPATH=src:. python bench/head2headfs_grid.py                        # data/models/head2headfs/init, ../shared/data/grid
    PYTHONPATH=src:. python bench/head2headfs_grid.py --init ../demo2/data/models/head2headfs/init
    HEADFLOW_SHARED=/path/to/shared PYTHONPATH=src:. python bench/head2headfs_grid.py   # a worktree: ../shared is elsewhere

1. Preprocessing, the project's own stage functions on a temporary project (as tests/e2e/test_cases.py):
   ingest (GRID layout over a folder of links to the chosen clips: each flat-folder clip is its own
   speaker; the six GRID clips are six different people), audio_features, faces, fit3dmm (3DMM fit + NMFC
   rendering) and shards with params.yaml's blocks (`workers: 1`, every `max_reject_fraction: 1.0`,
   `fit3dmm.truth_root: null`); then each clip's shard_labels sidecar by the stage's own per-clip job
   (`shards.labels.label_clip`) with the NMFC only (the full stage also wants align's phones and the
   expressions stage, which Head2HeadFS does not read). The clips are then read by the family's own
   `train.load_clip` (crop256 + NMFC + weight-free foreground masks), at G's resolution S and at 256.
2. Fine-tuning (`finetune.finetune_target`, the `finetune_head2headfs` code) from the initialisation
   checkpoint (`--init`, `init.pt` of `train_head2headfs`) on the target's first `--frames` frames of its
   clip (GRID clips have 75 frames at 25 fps; default 50 = the paper's smallest T'), loaded as that stage
   loads them (those frames alone, so their masks are seeded from them), with params.yaml's
   `finetune_head2headfs` loop unless `--epochs` / `--samples` say otherwise.
3. Self-reenactment of the held-out frames [`--frames`, 75) of the same clip (never trained on; the paper
   holds out the last 100 frames of the fine-tuning video, GRID's clips are 3 s): G over the real NMFC of
   those frames, one frame after the other, started as `generate_head2headfs` starts it (the target's
   first fine-tuning frame, background removed, as frames -2 and -1), composited over the real frames
   with the predicted mask at 256 (`generate.composite`). Retrieval baseline in the same run: for every
   held-out frame the fine-tuning frame of nearest NMFC (`generate.retrieval_frames` / `retrieve_nearest`)
   with its own mask, composited the same way. With `--random-init`, also table 2's ablation: the same
   fine-tuning from randomly initialised networks (`finetune.random_initialised`).
4. Cross-reenactment: the driver clip's expressions and poses with the target's identity coefficients,
   NMFC re-rendered at S (`reenact.reenacted_nmfc_at`, as `generate_head2headfs`), G over the driver's
   whole clip, composited over the target's first fine-tuning frame. No ground truth: shown, not scored.
5. Scores, per held-out frame, in the 256x256 aligned crop: APD (`metrics.image.apd`, RGB Euclidean
   distance in 0-255 units) over the whole crop (`apd_whole`; not the evaluation stage's `apd` column, which
   is a per-channel mean absolute difference on the 96 face crop) and over the real foreground mask
   (`apd_masked`), and the
   IoU of the predicted mask (`generate.output_masks`) with the real frame's (`mask_iou`). Means with
   bootstrap intervals over the frames and paired bootstraps (system - baseline, frames resampled with
   their pairs kept) with params.yaml's `evaluate` block (n_boot, ci, seed). One clip's consecutive
   frames are correlated: the intervals are narrower than independent samples would give.

Writes `--out` (JSON: command, checkpoints, split, per-frame scores, aggregates, comparisons, timings,
preprocessing facts), the same path with `.md` (the tables) and `--figure` (PNG: rows real held-out
target, self-reenactment, retrieval, driver, re-rendered NMFC, cross-reenactment; columns evenly spaced
frames). Timings: preprocessing, fine-tuning wall seconds and windows/s, G's inference frames/s (one frame
after the other, NMFC given; the NMFC re-rendering timed apart).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# The shared test material, found as tests/conftest.py finds it: HEADFLOW_SHARED, else ../shared.
SHARED = Path(os.environ.get("HEADFLOW_SHARED") or ROOT.parent / "shared")
GRID_FRAMES = 75
"""Frames of a GRID clip (3 s at 25 fps)."""
METRICS = {"apd_whole": False, "apd_masked": False, "mask_iou": True}
"""Scored metrics -> higher is better."""


@dataclass
class Prepared:
    """The preprocessed clips of one temporary project.

    project: its root; clip_ids: GRID stem -> clip_id; fits: clip_id -> fit file (absolute);
    facts: per-stem preprocessing facts (frames, fit error, NMFC coverage); seconds: stage -> wall seconds.
    """

    project: Path
    clip_ids: dict[str, str]
    fits: dict[str, Path]
    facts: dict[str, dict]
    seconds: dict[str, float]

    @property
    def shards(self) -> Path:
        return self.project / "data/interim/shards"

    @property
    def labels(self) -> Path:
        return self.project / "data/interim/shard_labels"


def preprocess(videos: list[Path], project: Path, params_path: Path = ROOT / "params.yaml") -> Prepared:
    """Run ingest, audio_features, faces, fit3dmm, shards and the NMFC sidecars on `videos` in `project`.

    Args:
        videos: GRID .mpg files (each its own speaker: a flat GRID folder).
        project: an empty folder (the temporary project root; the stages write the catalog's relative paths).
        params_path: params.yaml whose blocks are used (with `workers: 1`, `max_reject_fraction: 1.0`).

    Returns:
        `Prepared`.

    Raises:
        RuntimeError: a clip rejected by a stage (its reason named).
    """
    import pandas as pd

    from headflow import params as params_mod
    from headflow.audio.stage import run_stage as audio_features
    from headflow.faces.stage import run_stage as faces
    from headflow.fit3dmm.stage import run_stage as fit3dmm
    from headflow.ingest.stage import run_stage as ingest
    from headflow.shards.labels import LabelJob, label_clip
    from headflow.shards.stage import run_stage as shards

    def block(name: str, **changes):
        p = params_mod.load(name, params_path)
        fields = {f.name for f in dataclasses.fields(p)}
        return dataclasses.replace(p, **{k: v for k, v in changes.items() if k in fields})

    project = Path(project).resolve()
    root = project / "grid"
    root.mkdir(parents=True)
    for v in videos:
        (root / v.name).symlink_to(Path(v).resolve())
    common = {"workers": 1, "max_reject_fraction": 1.0}
    seconds: dict[str, float] = {}
    with contextlib.chdir(project):
        for name, run, p in (
                ("ingest", ingest, block("ingest", source="grid", root=str(root), transcripts_json=None, **common)),
                ("audio_features", audio_features, block("audio_features", **common)),
                ("faces", faces, block("faces", **common)),
                ("fit3dmm", fit3dmm, block("fit3dmm", truth_root=None, **common)),
                ("shards", shards, block("shards", **common))):
            t0 = time.perf_counter()
            run(p, progress=False)
            seconds[name] = round(time.perf_counter() - t0, 2)
            q = project / f"data/interim/{name}/quarantine.parquet"
            if q.is_file() and len(rows := pd.read_parquet(q)):
                raise RuntimeError(f"{name} rejected {len(rows)} clip(s): " + "; ".join(
                    f"{r.clip_id} {r.reason_code}: {r.message}" for r in rows.itertuples()))
        lp = block("shard_labels")
        s = pd.read_parquet("data/interim/shards/shards.parquet")
        f = pd.read_parquet("data/interim/fit3dmm/fits.parquet").set_index("clip_id")
        out = project / "data/interim/shard_labels/clips"
        out.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        for r in s.itertuples():
            _, _, rejected = label_clip(LabelJob(r.clip_id, int(r.n_frames), str(out / f"{r.clip_id}.npz"), None, None,
                                                 f.at[r.clip_id, "nmfc_path"], str(project),
                                                 lp.max_label_frame_mismatch, lp.codec, lp.level))
            if rejected is not None:
                raise RuntimeError(f"shard_labels rejected {r.clip_id}: {rejected}")
        seconds["shard_labels"] = round(time.perf_counter() - t0, 2)
    stems = {Path(p).stem: c for c, p in zip(s.clip_id, s.source_path)}
    facts = {stem: {"clip_id": c, "frames": int(f.at[c, "n_frames"]), "frames_with_fit": int(f.at[c, "n_valid"]),
                    "reproj_iod_median": round(float(f.at[c, "reproj_iod_median"]), 4),
                    "nmfc_coverage": round(float(f.at[c, "nmfc_coverage"]), 4)} for stem, c in sorted(stems.items())}
    return Prepared(project, dict(sorted(stems.items())), {c: project / f.at[c, "fit_path"] for c in stems.values()},
                    facts, seconds)


def frame_scores(fake: np.ndarray, real: np.ndarray, pred_masks: np.ndarray, real_masks: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame APD (whole, masked) and mask IoU of composited outputs against the real frames.

    Args:
        fake, real: (T, H, W, 3) uint8 frames (the 256 aligned crop).
        pred_masks, real_masks: (T, H, W) bool foreground masks.

    Returns:
        {"apd_whole": (T,) (every pixel), "apd_masked": (T,) (the real foreground; NaN where it is empty),
        "mask_iou": (T,) (NaN where both masks are empty)} float64; APD is Head2HeadFS's (`metrics.image.apd`:
        RGB Euclidean distance in 0-255 units; not the evaluation stage's `apd` column, a per-channel mean
        absolute difference on the 96 face crop), IoU in [0, 1] (`evaluate.stage.mask_iou_frames`, one frame).

    Raises:
        ValueError: shapes that disagree.
    """
    from headflow.evaluate.stage import mask_iou_frames
    from headflow.metrics.image import apd

    if fake.shape != real.shape or pred_masks.shape != real_masks.shape or pred_masks.shape != fake.shape[:3]:
        raise ValueError(f"frame_scores: fake {fake.shape}, real {real.shape}, masks {pred_masks.shape} and "
                         f"{real_masks.shape} must agree (T, H, W[, 3])")
    out = {k: np.full(len(fake), np.nan) for k in METRICS}
    for t in range(len(fake)):
        out["apd_whole"][t] = apd(fake[t], real[t])
        if real_masks[t].any():
            out["apd_masked"][t] = apd(fake[t], real[t], real_masks[t])
        iou = mask_iou_frames(pred_masks[t:t + 1], real_masks[t:t + 1])
        out["mask_iou"][t] = np.nan if iou is None else iou
    return out


def summarise(scores: dict[str, dict[str, np.ndarray]], system: str, n_boot: int, ci: float, seed: int
              ) -> tuple[list[dict], list[dict]]:
    """Bootstrap means per system and metric, and paired bootstraps of `system` against every other system.

    Args:
        scores: system -> `frame_scores` output (same frames in the same order for every system).
        system: the system compared with the others (its baselines).
        n_boot, ci, seed: as `metrics.stats.bootstrap_ci`.

    Returns:
        (aggregates: {system, metric, mean, low, high, n, higher_is_better}, comparisons: {system, opponent,
        metric, diff, low, high, n, winner ("system" | "opponent" | "none")}).
    """
    from headflow.metrics.stats import bootstrap_ci, paired_bootstrap

    aggregates, comparisons = [], []
    for name, s in scores.items():
        for m, higher in METRICS.items():
            b = bootstrap_ci(s[m], n_boot, seed, ci)
            aggregates.append({"system": name, "metric": m, "mean": b.mean, "low": b.low, "high": b.high, "n": b.n,
                               "higher_is_better": higher})
    for other in scores:
        if other == system:
            continue
        for m, higher in METRICS.items():
            p = paired_bootstrap(scores[system][m], scores[other][m], n_boot, seed, ci, higher)
            comparisons.append({"system": system, "opponent": other, "metric": m, "diff": p.diff, "low": p.low,
                                "high": p.high, "n": p.n,
                                "winner": {"a": "system", "b": "opponent", "none": "none"}[p.winner]})
    return aggregates, comparisons


def markdown(aggregates: list[dict], comparisons: list[dict], digits: int = 2) -> str:
    """The tables of the .md report: one row per system (mean [low, high] per metric), then the comparisons."""
    def cell(mean, low, high):
        if mean is None or not math.isfinite(mean):
            return "n/a"
        return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"

    systems = list(dict.fromkeys(a["system"] for a in aggregates))
    head = " | ".join(f"{m} {'↑' if h else '↓'}" for m, h in METRICS.items())
    out = [f"| system | {head} |", "|---" * (len(METRICS) + 1) + "|"]
    for s in systems:
        by = {a["metric"]: a for a in aggregates if a["system"] == s}
        out.append(f"| {s} | " + " | ".join(cell(by[m]["mean"], by[m]["low"], by[m]["high"]) if m in by else "n/a"
                                            for m in METRICS) + " |")
    if comparisons:
        out += ["", "| system - baseline | metric | diff [95% interval] | frames | winner |", "|---|---|---|---|---|"]
        for c in comparisons:
            out.append(f"| {c['system']} - {c['opponent']} | {c['metric']} | {cell(c['diff'], c['low'], c['high'])} | "
                       f"{c['n']} | {c['winner']} |")
    return "\n".join(out) + "\n"


def frames_figure(rows: list[tuple[str, np.ndarray]], columns: list[str], path: Path, tile: int = 128) -> Path:
    """A grid PNG: one labelled row per (label, (K, H, W, 3) uint8 RGB frames), K columns titled `columns`.

    Raises:
        ValueError: rows with another number of frames than `columns`.
    """
    import cv2

    label_w, title_h = 150, 22
    K = len(columns)
    bad = [label for label, f in rows if len(f) != K]
    if bad:
        raise ValueError(f"frames_figure: rows {bad} do not have {K} frames (one per column)")
    img = np.full((title_h + tile * len(rows), label_w + tile * K, 3), 255, np.uint8)
    for j, c in enumerate(columns):
        cv2.putText(img, c, (label_w + j * tile + 4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    for i, (label, frames) in enumerate(rows):
        y = title_h + i * tile
        for k, line in enumerate(label.split("\n")):
            cv2.putText(img, line, (4, y + tile // 2 - 6 + 16 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1,
                        cv2.LINE_AA)
        for j, f in enumerate(frames):
            img[y:y + tile, label_w + j * tile:label_w + (j + 1) * tile] = cv2.resize(
                f, (tile, tile), interpolation=cv2.INTER_AREA if f.shape[0] > tile else cv2.INTER_NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Pillow, not cv2.imwrite: OpenCV's libpng can fail ("bad parameters to zlib") once PyAV has handled
    # media in the same process (tests/evaluate/test_report_browser.py), and this bench decodes video.
    from PIL import Image

    Image.fromarray(img).save(path, format="PNG")
    return path


def _upsample(frames: np.ndarray, size: int) -> np.ndarray:
    import cv2

    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_NEAREST) for f in frames])


def run(args: argparse.Namespace, argv: list[str] | None = None) -> dict:
    """The bench (module docstring) with parsed `args`; returns the report written to `args.out`."""
    import torch

    from headflow import params as params_mod
    from headflow.evaluate.external import plain
    from headflow.evaluate.params import EvaluateParams
    from headflow.generators.head2headfs.data import remove_background
    from headflow.generators.head2headfs.finetune import finetune_target, random_initialised
    from headflow.generators.head2headfs.generate import (OUTPUT_SIZE, composite, output_masks, render_sequence,
                                                          retrieval_frames)
    from headflow.generators.head2headfs.model import file_sha256, load_person
    from headflow.generators.head2headfs.reenact import read_fit, reenacted_nmfc_at
    from headflow.generators.head2headfs.train import load_clip, load_init
    from headflow.morphable.registry import load_model
    from headflow.perceptual_weights import perceptual_from_params

    t_start = time.perf_counter()
    torch.set_num_threads(args.threads)
    init = Path(args.init)
    init = init / "init.pt" if init.is_dir() else init
    if not init.is_file():
        raise SystemExit(f"--init {args.init}: no init.pt (train it with `dvc repro train_head2headfs`, or pass the "
                         "folder of one, e.g. ../demo2/data/models/head2headfs/init)")
    videos = sorted(Path(args.grid).glob("*.mpg"))
    if args.clips:
        videos = [v for v in videos if v.stem in set(args.clips)]
    if len(videos) < 2:
        raise SystemExit(f"--grid {args.grid}: found {len(videos)} usable .mpg clip(s) (--clips {args.clips}); "
                         "fine-tuning on one speaker and driving it with another needs two (lay the GRID clips "
                         "there or set HEADFLOW_SHARED)")
    target = args.target or videos[0].stem
    driver = args.driver or next(v.stem for v in videos if v.stem != target)
    for name, stem in (("--target", target), ("--driver", driver)):
        if stem not in {v.stem for v in videos}:
            raise SystemExit(f"{name} {stem}: not among the clips {[v.stem for v in videos]}")
    if target == driver:
        raise SystemExit(f"--target and --driver are both {target}: cross-reenactment needs another speaker")
    params_path = Path(args.params)
    ev = params_mod.load("evaluate", params_path) if params_path.exists() else EvaluateParams()
    ft = params_mod.load("finetune_head2headfs", params_path)
    loop = dataclasses.replace(ft.loop, **({"epochs": args.epochs} if args.epochs else {}))
    ft = dataclasses.replace(ft, frames=args.frames, min_frames=min(ft.min_frames, args.frames), loop=loop,
                             samples_per_epoch=ft.samples_per_epoch if args.samples is None else args.samples,
                             threads=args.threads)

    saved, speakers, renderer, discs = load_init(init)
    S = saved.model.image_size
    init_sha = file_sha256(init)
    tmp = tempfile.TemporaryDirectory(prefix="headflow-h2h-grid-") if not args.work else None
    work = Path(args.work or tmp.name)
    t0 = time.perf_counter()
    prep = preprocess(videos, work / "project", params_path.resolve() if params_path.exists() else ROOT / "params.yaml")
    prep_s = time.perf_counter() - t0
    tid, did = prep.clip_ids[target], prep.clip_ids[driver]

    def clip(cid: str, size: int, end: int | None = None):
        with contextlib.chdir(prep.project):    # the sidecars name the NMFC files relative to the project root
            return load_clip(cid, size, saved.masks, prep.shards, prep.labels, end=end)

    # as the stages load them: finetune_head2headfs its first T' frames alone (their masks seeded from those
    # frames only), generate_head2headfs whole clips (start frame, retrieval bank, real frames and masks)
    tS, t256, d256 = clip(tid, S), clip(tid, OUTPUT_SIZE), clip(did, OUTPUT_SIZE)
    T = len(tS.frames)
    N = args.frames
    if not 0 < N < T:
        raise SystemExit(f"--frames {N}: the target clip {target} has {T} frames; fine-tune on fewer so that "
                         "frames are held out")
    n_ok = int(tS.valid[:N].sum())
    if n_ok < ft.min_frames:
        raise SystemExit(f"{target}: {n_ok} of its first {N} frames have a fit (finetune_head2headfs.min_frames "
                         f"{ft.min_frames})")
    held = np.arange(N, T)
    held = held[tS.valid[held]]
    tFT = clip(tid, S, end=N)
    perceptual = perceptual_from_params(saved.loss.perceptual_backend, input_range="[-1,1]")

    # --- fine-tuning (the finetune_head2headfs code) ---
    systems: dict[str, dict] = {}
    runs = [("head2headfs", renderer, discs)]
    if args.random_init:
        runs.append(("random_init", *random_initialised(saved, discs.image.W.shape[0], ft.random_init_seed)))
    for name, r, d in runs:
        t0 = time.perf_counter()
        res = finetune_target(tFT, saved, r, d, ft, work / "finetune" / name, perceptual, init_sha, "cpu",
                              progress=args.progress)
        secs = time.perf_counter() - t0
        systems[name] = {"seconds": round(secs, 1), "steps": int(res["history"][-1]["step"]),
                         "windows_per_s": round(float(np.mean([h["samples_per_s"] for h in res["history"]])), 2),
                         "generator_sha256": res["generator_sha256"],
                         "net": load_person(res["generator"], saved.model)[0]}
    first = int(np.flatnonzero(tS.valid)[0])
    start = np.repeat(remove_background(tS.frames[first:first + 1], tS.masks[first:first + 1]), 2, 0)

    # --- self-reenactment of the held-out frames, and the retrieval baseline ---
    real = t256.frames[held]
    real_masks = t256.masks[held].astype(bool)
    outputs, scores, infer = {}, {}, {"frames": 0, "seconds": 0.0}
    for name, s in systems.items():
        s["net"].eval()
        t0 = time.perf_counter()
        frames, masks = render_sequence(s["net"], tS.nmfc[held], start)
        dt = time.perf_counter() - t0
        if name == "head2headfs":
            infer["frames"] += len(held)
            infer["seconds"] += dt
        outputs[name] = (composite(frames, masks, real), output_masks(masks))
    keep = np.flatnonzero(tS.valid[:N])
    frames, masks = retrieval_frames(tS.nmfc[held], tS.frames[keep], tS.nmfc[keep], tS.masks[keep])
    outputs["retrieval"] = (composite(frames, masks, real), output_masks(masks))
    for name, (fake, pm) in outputs.items():
        scores[name] = frame_scores(fake, real, pm, real_masks)
    aggregates, comparisons = summarise(scores, "head2headfs", ev.n_boot, ev.ci, ev.seed)

    # --- cross-reenactment: the driver's motion with the target's identity ---
    model = load_model(args.morphable_model or (params_mod.load("fit3dmm", params_path).model if params_path.exists()
                                                 else "builtin"), ROOT)
    t0 = time.perf_counter()
    cross_nmfc, _ = reenacted_nmfc_at(model, read_fit(prep.fits[tid]), read_fit(prep.fits[did]), S)
    nmfc_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    frames, masks = render_sequence(systems["head2headfs"]["net"], cross_nmfc, start)
    dt = time.perf_counter() - t0
    infer["frames"] += len(cross_nmfc)
    infer["seconds"] += dt
    cross = composite(frames, masks, t256.frames[first])

    # --- the figure ---
    K = min(args.columns, len(held))
    pick = np.unique(np.linspace(0, len(held) - 1, K).round().astype(int))
    cols = held[pick]
    dcols = np.clip(cols, 0, len(cross) - 1)
    rows = [(f"real {target}\n(held out)", real[pick]), ("self-reenact\n(head2headfs)", outputs["head2headfs"][0][pick]),
            ("retrieval\n(nearest NMFC)", outputs["retrieval"][0][pick])]
    if "random_init" in outputs:
        rows.append(("random init\n(table 2)", outputs["random_init"][0][pick]))
    rows += [(f"driver {driver}", d256.frames[dcols]), ("driver motion,\ntarget NMFC", _upsample(cross_nmfc[dcols], S)),
             (f"cross-reenact\n{driver}->{target}", cross[dcols])]
    figure = frames_figure(rows, [f"frame {c}" for c in cols], Path(args.figure))

    wall = time.perf_counter() - t_start
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0] if argv is None else "bench/head2headfs_grid.py",
                                                          *(argv if argv is not None else sys.argv[1:])])
    report = {
        "command": command, "wall_seconds": round(wall, 1),
        "init": {"path": str(init), "sha256": init_sha, "image_size": S, "ngf": saved.model.ngf, "n_f": saved.model.n_f,
                 "identities": len(speakers)},
        "target": target, "driver": driver,
        "split": {"clip_frames": T, "finetune_frames": [0, N], "held_out_frames": [N, T],
                  "held_out_scored": len(held), "finetune_frames_with_fit": n_ok},
        "finetune": {"epochs": ft.loop.epochs, "samples_per_epoch": ft.samples_per_epoch or N,
                     **{k: {kk: v for kk, v in s.items() if kk != "net"} for k, s in systems.items()}},
        "inference": {"frames": infer["frames"], "seconds": round(infer["seconds"], 3),
                      "frames_per_s": round(infer["frames"] / infer["seconds"], 1) if infer["seconds"] else None,
                      "resolution": S, "threads": args.threads,
                      "cross_nmfc_rendering_s": round(nmfc_s, 3), "cross_nmfc_frames": len(cross_nmfc)},
        "preprocessing": {"seconds": round(prep_s, 1), "stages": prep.seconds, "clips": prep.facts},
        "bootstrap": {"over": "held-out frames (paired by frame)", "n_boot": ev.n_boot, "ci": ev.ci, "seed": ev.seed},
        "aggregates": aggregates, "comparisons": comparisons,
        "per_frame": {"frames": held.tolist(), **{k: {m: v.tolist() for m, v in s.items()} for k, s in scores.items()}},
        "figure": str(figure),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(_strict(report), indent=1, default=plain, allow_nan=False) + "\n")
    fin = report["finetune"]["head2headfs"]
    header = (f"Head2HeadFS on GRID: fine-tuned on {target} frames [0, {N}) of {T}, self-reenactment of the held-out "
              f"[{N}, {T}) ({len(held)} frames), cross-reenactment driven by {driver}. Init {init.name} (sha256 "
              f"{init_sha[:12]}, {S}x{S}, ngf {saved.model.ngf}, {len(speakers)} identities). Fine-tuning "
              f"{fin['seconds']} s ({fin['steps']} steps, {fin['windows_per_s']} windows/s, {args.threads} thread(s)); "
              f"inference {report['inference']['frames_per_s']} frames/s at {S}x{S}. Means over held-out frames "
              f"[{ev.ci:.0%} bootstrap interval over frames]; APD in 0-255 RGB units on the 256 aligned crop. "
              f"Figure: {figure}. Wall {wall:.0f} s.\n\n")
    out.with_suffix(".md").write_text(header + markdown(aggregates, comparisons))
    print(header + markdown(aggregates, comparisons))
    print(f"wrote {out}, {out.with_suffix('.md')} and {figure}")
    if tmp is not None:
        tmp.cleanup()
    return report


def _strict(v):
    """`v` with every NaN float replaced by None (strict JSON; a NaN score is an undefined one)."""
    if isinstance(v, dict):
        return {k: _strict(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_strict(x) for x in v]
    if isinstance(v, (float, np.floating)) and math.isnan(v):
        return None
    return v


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--init", default="data/models/head2headfs/init", help="train_head2headfs's folder (or init.pt)")
    ap.add_argument("--grid", default=str(SHARED / "data" / "grid"), help="folder of GRID .mpg clips")
    ap.add_argument("--clips", nargs="+", help="preprocess only these clip stems (default: every clip)")
    ap.add_argument("--target", help="the speaker fine-tuned on (clip stem; default: the first clip by name)")
    ap.add_argument("--driver", help="the cross-reenactment driver (default: the next clip by name)")
    ap.add_argument("--frames", type=int, default=50, help="fine-tuning frames T' (the first ones; the rest held out)")
    ap.add_argument("--epochs", type=int, help="fine-tuning epochs (default: params.yaml finetune_head2headfs)")
    ap.add_argument("--samples", type=int, help="windows per epoch (default: params.yaml; 0 = one per frame)")
    ap.add_argument("--random-init", action="store_true", help="also the table 2 ablation (fine-tuning from random "
                    "weights; doubles the fine-tuning time)")
    ap.add_argument("--morphable-model", help="the 3DMM the clips were fitted with (default: params.yaml fit3dmm.model)")
    ap.add_argument("--params", default="params.yaml",
                    help="the params file for the stages' blocks (default %(default)s)")
    ap.add_argument("--columns", type=int, default=6, help="frames in the figure")
    ap.add_argument("--out", default="reports/head2headfs_grid.json", help="JSON of the figures (default %(default)s)")
    ap.add_argument("--figure", default="reports/head2headfs_grid.png",
                    help="the frames figure, PNG (default %(default)s)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default %(default)s)")
    ap.add_argument("--work", help="keep the temporary project and the fine-tuning runs here")
    ap.add_argument("--progress", action="store_true", help="show progress bars")
    return ap


def main(argv: list[str] | None = None) -> int:
    run(parser().parse_args(argv), argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
