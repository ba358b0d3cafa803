"""Real faces: a trained DisCoHead on the GRID clips, under the paper's table 1 protocol, scored as the evaluation stage scores.

    PYTHONPATH=src:. python bench/discohead_grid.py                    # data/models/discohead/generator.pt, ../shared/data/grid
    PYTHONPATH=src:. python bench/discohead_grid.py --checkpoint G.pt --judge J.pt --out reports/discohead_grid.json
    HEADFLOW_SHARED=/path/to/shared PYTHONPATH=src:. python bench/discohead_grid.py   # a worktree: ../shared is elsewhere

Every clip of `--grid` (.mpg, sorted by name) is one evaluation clip under the reconstruction protocol of
DisCoHead's table 1 (papers/discohead.txt, section 3.2): source = the clip's first frame, head driver and
eye driver = the clip itself, audio = its own; the clip's real frames are the ground truth.

- Preparation: each clip exactly as `bench/lipsync_grid.py` prepares its clips
  (`headflow.evaluate.external.prepare_clip`: `headflow.cli.dub_files`'s normalisation to 25 fps, 16 kHz audio,
  the faces stage's tracking with params.yaml's `faces` block, the Wav2Lip mel); the model's input crops are
  the shards stage's crop256 (`headflow.shards.cut.cut_views` under the faces stage's crop transform) and its
  landmarks mapped into them, resized to the model's size (`generators.discohead.data.clip_from_arrays`).
- Generation: `generators.discohead.generate.generate_frames` + `write_video`, as `generate_discohead` does:
  the output video (variant `<v>`, e.g. `affine-DM`) and, from the same forward passes, the source warped by the
  predicted transformation alone (`<v>+source_warp`), 256x256 aligned-crop videos over the frames with a full
  400 ms audio window.
- Scoring: the evaluation stage's own job (`headflow.evaluate.stage.score_clip_job`) with params.yaml's
  `evaluate` block restricted to the reconstruction protocol (ground truth, static source frame, reference-fill
  baselines; `--sample-frames` overrides its `sample_frames`): PSNR / SSIM of the 96x96 face crop, AKD
  (landmarks re-detected by dlib on both sides) and AED (dlib face descriptors) on the sampled frames,
  M-LMD, PSNR of the lower half, LSE-C/D with `--judge` when it exists. Then `headflow.evaluate.external.summarise`:
  bootstrap intervals over clips, the face-descriptor FID, Inception FID and LPIPS null with their reasons
  (no weights), and the paired bootstrap of each DisCoHead variant against the baselines and against its
  own `+source_warp`.

Bad inputs are never dropped: a clip that cannot be prepared (no face: `no_face`, an unreadable file), whose
scored range is empty (`too_short`), or that generation rejects (`generators.discohead.data.DataError`
reason codes) is a quarantine row with its reason (and, for a generation failure, a failed per-clip row
counted at its clip's worst value); an output the scoring rejects (e.g. `no_face`) is too. The
accounting (clips in = clips generated + clips quarantined; outputs in = outputs scored + outputs quarantined)
is checked and written.

Writes `--out` (JSON: command, checkpoint and its training config, protocol, per-clip rows, aggregates,
comparisons, quarantine, accounting, timings) and the same path with `.md` (the tables printed at the end).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from headflow.evaluate import external
from headflow.evaluate.external import PreparedClip

FAMILY = "discohead"
BENCH = "discohead_grid"
PROTOCOL = "reconstruction"
ROOT = Path(__file__).resolve().parents[1]
# The shared test material, found as tests/conftest.py finds it: HEADFLOW_SHARED, else ../shared.
SHARED = Path(os.environ.get("HEADFLOW_SHARED") or ROOT.parent / "shared")
TABLE_METRICS: dict[str, tuple[str, ...]] = {
    "reconstruction": ("psnr", "ssim", "akd", "aed", "fid_face", "lpips", "psnr_masked", "m_lmd", "lse_c"),
}
"""The printed columns: table 1's metrics (PSNR, SSIM, AKD, AED, FID, LPIPS), then the lower-half PSNR, M-LMD and
LSE-C the other families report (the JSON holds every metric the stage computes)."""
PROTOCOL_TEXT = ("reconstruction (DisCoHead table 1): source = frame 0 of the clip; head driver and eye driver = "
                 "the clip itself; audio = its own; ground truth = the clip's real frames")


def grid_clip(prepared: PreparedClip, image_size: int, crop_size: int = 256):
    """The `DisCoHeadClip` of a prepared real clip: the shards' crop256 and its landmarks at the model's size.

    Args:
        prepared: `external.prepare_clip`'s result.
        image_size: the generator's `model.image_size`.
        crop_size: the side the faces stage's `crop_transform` maps onto (`faces.crop.size`).

    Returns:
        `headflow.generators.discohead.data.DisCoHeadClip` of `prepared.n_frames` frames (zeros and NaN
        landmarks on frames without a face, which `valid` marks False).

    Raises:
        headflow.manifest.quarantine.Rejected: the canonical video cannot be decoded (`cut_views`).
    """
    from headflow.generators.discohead.data import clip_from_arrays
    from headflow.shards.cut import cut_views
    from headflow.shards.geometry import CROP_SIZE, map_landmarks

    views = cut_views(prepared.video_path, prepared.boxes, prepared.valid, prepared.m256, CROP_SIZE, crop_size)
    landmarks = map_landmarks(views["crop256_transform"], prepared.landmarks)
    mel = np.load(prepared.mel_path)
    return clip_from_arrays(prepared.clip_id, views["crop256"], landmarks, prepared.valid, mel, image_size, 25.0,
                            inside=views["crop256_inside"])


def motion_stats(generator, clip, frame_start: int, frame_end: int, batch_frames: int = 32) -> dict:
    """How far the head-motion predictor's transformation is from identity on one reconstruction, and whether it
    follows the mouth.

    In the aligned crop (the faces stage's per-frame similarity alignment) the head's scale, roll and shift are
    already normalised, so between source frame 0 and driver frame f of one clip the true transformation is
    close to the identity; what the predictor adds there is mostly error. Per frame f of [frame_start,
    frame_end): the scale sqrt|det A| of A_{S<-D} (the affine variant's `theta`, driver -> source sampling grid;
    TPS: not computed, None) and the mouth opening (mean inner-lip gap 61-67, 62-66, 63-65 over the inter-ocular
    distance, from the clip's landmarks).

    Returns:
        {"scale_min", "scale_max", "scale_abs_dev" (mean |scale - 1|), "shift_abs" (mean |t|, grid units of
        [-1, 1]), "r_scale_mouth" (Pearson r over frames; None when either is constant)}; all None for TPS.
    """
    import torch

    if generator.params.head_motion != "affine":
        return dict.fromkeys(("scale_min", "scale_max", "scale_abs_dev", "shift_abs", "r_scale_mouth"))
    frames = np.arange(frame_start, frame_end)
    src = torch.from_numpy(clip.frames[0]).permute(2, 0, 1).float().div(255)
    thetas = []
    with torch.no_grad():
        for i in range(0, len(frames), batch_frames):
            drv = torch.from_numpy(clip.frames[frames[i:i + batch_frames]]).permute(0, 3, 1, 2).float().div(255)
            thetas.append(generator.head_motion(src.expand(len(drv), -1, -1, -1), drv)["theta"].numpy())
    theta = np.concatenate(thetas).astype(np.float64)
    scale = np.sqrt(np.abs(np.linalg.det(theta[:, :, :2])))
    lm = clip.landmarks[frames].astype(np.float64)
    ocular = np.linalg.norm(lm[:, 36:42].mean(1) - lm[:, 42:48].mean(1), axis=1)
    mouth = np.mean([np.linalg.norm(lm[:, a] - lm[:, b], axis=1) for a, b in ((61, 67), (62, 66), (63, 65))], 0) / ocular
    r = float(np.corrcoef(scale, mouth)[0, 1]) if scale.std() > 0 and mouth.std() > 0 else None
    return {"scale_min": float(scale.min()), "scale_max": float(scale.max()),
            "scale_abs_dev": float(np.mean(np.abs(scale - 1))), "shift_abs": float(np.mean(np.abs(theta[:, :, 2]))),
            "r_scale_mouth": r}


def output_rows(clip_id: str, variant: str, paths: dict[str, Path], frame_start: int, frame_end: int,
                sha: str, seed: int = 0) -> list[dict]:
    """The generated.parquet-style rows of one reconstruction output and its same-run source warp.

    Args:
        paths: variant label -> video ("<variant>" and "<variant>+source_warp").
    """
    return [{"clip_id": f"{clip_id}.{PROTOCOL}", "family": FAMILY, "variant": name, "seed": seed,
             "protocol": PROTOCOL, "source_clip": clip_id, "audio_clip": clip_id, "driver_clip": None,
             "style_clip": None, "references": [0], "output_kind": "video", "output_path": str(path), "fps": 25.0,
             "frame_start": int(frame_start), "frame_end": int(frame_end), "checkpoint_sha256": sha}
            for name, path in paths.items()]


def run(videos: Sequence[Path], checkpoint: Path, work: Path, params, faces_params, judge: Path | None = None,
        workers: int = 1, batch_frames: int = 16, crf: int = 18, progress: bool = True) -> dict:
    """Prepare, generate, score and summarise; returns the report (see the module docstring).

    Args:
        videos: the real clips (their stems are the clip ids; must be distinct).
        checkpoint: an exported DisCoHead `generator.pt` (`generators.discohead.model.save_generator`).
        work: folder for the canonical clips and the generated videos.
        params: the `evaluate` block (`EvaluateParams`); its protocols are set to reconstruction only.
        faces_params: the `faces` block.
        judge: the sync judge for LSE-C/D (None or a missing file: those columns are null with the reason).
        workers: scoring processes.

    Returns:
        {"per_clip", "aggregates", "comparisons" (DataFrames), "quarantine" (rows), "accounting", "clips",
         "generation", "motion" (clip -> `motion_stats`), "variant", "train_params", "sha256", "skipped", "scoring_seconds", "timings"}.

    Raises:
        FileNotFoundError / ValueError: no or not a DisCoHead generator checkpoint (`load_generator`).
        ValueError: two videos with one stem.
        headflow.manifest.quarantine.AccountingError: an input neither scored nor quarantined (a bug).
    """
    import torch

    from headflow.config import from_dict
    from headflow.evaluate.baselines import canonical_tasks
    from headflow.evaluate.stage import _nets, _row, score_clip_job
    from headflow.generators.discohead.data import DataError
    from headflow.generators.discohead.generate import generate_frames, write_video
    from headflow.generators.discohead.model import file_sha256, load_generator
    from headflow.generators.discohead.params import DisCoHeadParams
    from headflow.manifest import Quarantine
    from headflow.manifest.generated import mark_synthetic
    from headflow.manifest.quarantine import Rejected, check_accounting
    from headflow.media import MediaError
    from headflow.media.normalize import read_audio
    from headflow.parallel import map_jobs

    names = [Path(v).stem for v in videos]
    if len(set(names)) != len(names):
        raise ValueError(f"videos: clip ids (file stems) must be distinct, got {names}")
    params = dataclasses.replace(params, protocols=[PROTOCOL])
    generator, saved = load_generator(Path(checkpoint))
    train_params = from_dict(DisCoHeadParams, saved, "generator.params")
    variant, size = train_params.variant_name, train_params.model.image_size
    sha = file_sha256(Path(checkpoint))
    work = Path(work)
    (work / "videos").mkdir(parents=True, exist_ok=True)
    quarantine = Quarantine(BENCH)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(videos), desc="real clips", unit="clip")
    real: dict[str, PreparedClip] = {}
    for v in videos:
        try:
            real[Path(v).stem] = external.prepare_clip(Path(v), work, faces_params)
        except (Rejected, MediaError) as err:
            quarantine.add(Path(v).stem, getattr(err, "reason_code", "unreadable"), str(err), str(v))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    tasks, skipped = canonical_tasks({c: r.n_frames for c, r in real.items()}, {c: r.n_mel for c, r in real.items()},
                                     params.protocols, params.frame_start)
    for c, why in skipped:
        quarantine.add(c, "too_short", f"{c}: {why}", real[c].video_path)

    outputs, failed, gen_frames, gen_s, motion = {}, [], 0, 0.0, {}
    for t in tasks:
        c = t.source_clip
        paths = {variant: work / "videos" / f"{c}.{PROTOCOL}.mp4",
                 f"{variant}+source_warp": work / "videos" / f"{c}.{PROTOCOL}.source_warp.mp4"}
        t0 = time.perf_counter()
        try:
            clip = grid_clip(real[c], size, faces_params.crop.size)
            with torch.no_grad():
                result = generate_frames(generator, clip, clip, clip, clip, train_params.data.eye_margin, batch_frames)
            wav, sr = read_audio(real[c].wav_path)
            for frames, path in ((result.frames, paths[variant]), (result.source_warp, paths[f"{variant}+source_warp"])):
                write_video(frames, wav, sr, result.frame_start, result.frame_end, path, 25, crf)
                mark_synthetic(path, FAMILY, sha, [c])
        except (DataError, Rejected, MediaError) as err:   # a failure of the system on this clip, scored as one
            code = getattr(err, "reason_code", "generation_error")
            quarantine.add(c, code, str(err), real[c].video_path)
            for row in output_rows(c, variant, paths, t.frame_start, t.frame_end, sha):
                failed.append(_row(t, FAMILY, row, None, "failed", code, str(err)))
            continue
        gen_s += time.perf_counter() - t0
        gen_frames += result.frame_end - result.frame_start
        motion[c] = motion_stats(generator, clip, result.frame_start, result.frame_end)
        outputs[(PROTOCOL, c)] = output_rows(c, variant, paths, result.frame_start, result.frame_end, sha)

    check_accounting(names, sorted(c for _, c in outputs), [q["clip_id"] for q in quarantine.rows], BENCH)
    items = external.clip_items(tasks, outputs)
    checkpoints = (str(Path(judge).resolve()) if judge else "", "")
    jobs = external.clip_jobs(items, real, params, checkpoints)
    t_score = time.perf_counter()
    results = map_jobs(score_clip_job, jobs, workers, desc="score", progress=progress)
    score_s = time.perf_counter() - t_score

    def key(row: dict) -> str:
        return f"{row['family']}/{row['variant']}/{row['clip_id']}"

    generated = [key(r) for rows in outputs.values() for r in rows]
    scored_out = []
    for res in results:
        for gen, code, msg in res["quarantine"]:
            quarantine.add(key(gen), code, msg, str(gen.get("output_path") or ""))
        scored_out += [f"{FAMILY}/{r['variant']}/{r['clip_id']}.{PROTOCOL}" for r in res["rows"]
                       if r["system"] == FAMILY and r["status"] == "ok"]
    q_out = [q["clip_id"] for q in quarantine.rows if q["clip_id"].startswith(f"{FAMILY}/")]
    check_accounting(generated, scored_out, q_out, BENCH)

    notes = dict(_nets(checkpoints, params.syncnet, "/").missing)
    if not judge:
        notes.update(dict.fromkeys(("lse_d", "lse_c", "offset"), "no sync judge given (--judge: a train_judge "
                                   "checkpoint, e.g. data/models/judge/best.pt after `dvc repro train_judge`)"))
    notes["lse_c_loss_expert"] = "not used by this bench (DisCoHead trains against no sync expert)"
    per_clip, aggregates, comparisons = external.summarise(results, failed, params, notes)
    accounting = {"clips_in": len(names), "clips_generated": len(outputs),
                  "clips_quarantined": len([q for q in quarantine.rows if "/" not in q["clip_id"]]),
                  "outputs_in": len(generated), "outputs_scored": len(scored_out), "outputs_quarantined": len(q_out)}
    return {"per_clip": per_clip, "aggregates": aggregates, "comparisons": comparisons,
            "quarantine": quarantine.frame().to_dict("records"), "accounting": accounting,
            "clips": {c: {"frames": r.n_frames, "frames_with_face": r.faces_valid, "mel_frames": r.n_mel}
                      for c, r in real.items()},
            "generation": {"outputs": len(outputs), "frames": gen_frames, "seconds": round(gen_s, 2),
                           "frames_per_s": round(gen_frames / gen_s, 2) if gen_s else None},
            "motion": motion, "variant": variant, "train_params": saved, "sha256": sha, "skipped": [list(s) for s in skipped],
            "scoring_seconds": round(score_s, 1), "evaluate_params": dataclasses.asdict(params),
            "timings": external.speed(results)}


def training_summary(checkpoint: Path, saved: dict) -> dict:
    """The checkpoint's training configuration and, when `history.json` lies beside it, its last epoch."""
    model = saved.get("model", {})
    loop = saved.get("loop", {})
    out = {"model": model, "epochs": loop.get("epochs"), "batch_size": loop.get("batch_size"),
           "samples_per_epoch": saved.get("samples_per_epoch"), "lr": loop.get("lr")}
    history = Path(checkpoint).parent / "history.json"
    if history.is_file():
        h = json.loads(history.read_text())
        if h:
            out["last_epoch"] = {k: h[-1].get(k) for k in ("epoch", "step", "val_l1", "val_l1_source_warp")}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="data/models/discohead/generator.pt",
                    help="an exported DisCoHead generator (train_discohead's generator.pt)")
    ap.add_argument("--judge", default="data/models/judge/best.pt",
                    help="the sync judge for LSE-C/D (absent: those columns are null with the reason)")
    ap.add_argument("--grid", default=str(SHARED / "data" / "grid"), help="folder of GRID .mpg clips")
    ap.add_argument("--out", default="reports/discohead_grid.json", help="the JSON; the markdown tables go beside it (.md)")
    ap.add_argument("--params", default="params.yaml", help="params file (its faces and evaluate blocks)")
    ap.add_argument("--sample-frames", type=int, help="override evaluate.sample_frames (dlib landmarks/descriptors per clip)")
    ap.add_argument("--workers", type=int, default=1, help="scoring processes")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--work", help="keep the canonical clips and the generated videos here (default: a temporary folder)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import torch

    from headflow.evaluate.params import EvaluateParams
    from headflow.faces.params import FacesParams
    from headflow.manifest import file_sha256
    from headflow.params import load as load_block

    t_start = time.perf_counter()
    torch.set_num_threads(args.threads)
    if not Path(args.checkpoint).is_file():
        raise SystemExit(f"--checkpoint {args.checkpoint}: no such file (train it with `dvc repro train_discohead`, "
                         "or pass the generator.pt of one)")
    videos = sorted(Path(args.grid).glob("*.mpg"))
    if not videos:
        raise SystemExit(f"--grid {args.grid}: no .mpg clip there (lay the GRID clips there or set HEADFLOW_SHARED)")
    have_params = Path(args.params).exists()
    params = load_block("evaluate", args.params) if have_params else EvaluateParams()
    if args.sample_frames:
        params = dataclasses.replace(params, sample_frames=args.sample_frames)
    faces_params = load_block("faces", args.params) if have_params else FacesParams()
    judge = Path(args.judge) if Path(args.judge).is_file() else None
    if judge is None:
        print(f"--judge {args.judge}: not found; LSE-C/D are null", file=sys.stderr)

    tmp = None if args.work else tempfile.TemporaryDirectory(prefix="headflow-discohead-grid-")
    work = Path(args.work or tmp.name)
    res = run(videos, Path(args.checkpoint), work, params, faces_params, judge, args.workers)
    wall = time.perf_counter() - t_start

    train = training_summary(Path(args.checkpoint), res["train_params"])
    m = train["model"]
    command = external.command_line(argv)
    tables = external.markdown_tables(res["aggregates"], res["comparisons"], TABLE_METRICS)
    nulls = external.null_notes(res["aggregates"], ("lpips", "fid_inception", "lse_c"))
    acc = res["accounting"]
    gen = res["generation"]
    header = (f"GRID, DisCoHead {res['variant']} ({Path(args.checkpoint)}, sha256 {res['sha256'][:12]}; trained "
              f"{m.get('image_size')} px, width {m.get('width')}, {train['epochs']} epochs of "
              f"{train['samples_per_epoch']} samples); {PROTOCOL_TEXT}. {acc['clips_in']} clips: {acc['clips_generated']} "
              f"generated, {acc['clips_quarantined']} quarantined; outputs {acc['outputs_in']}: {acc['outputs_scored']} "
              f"scored, {acc['outputs_quarantined']} quarantined. Generation {gen['frames_per_s']} frames/s; scoring "
              f"{res['scoring_seconds']} s ({res['evaluate_params']['sample_frames']} sampled frames per clip for AKD/AED/FID); "
              f"wall {wall:.0f} s. PSNR/SSIM: the 96x96 face crop; means over clips "
              f"[{params.ci:.0%} bootstrap interval]; FID face: one number per set (no interval).\n\n")
    agg = res["aggregates"]
    failed = agg[(agg.system == FAMILY) & (agg.metric == "psnr")]
    fails = [f"{FAMILY}:{r.variant}: {int(r.n_failed)} of {len(res['clips'])} outputs failed and count at their clip's "
             "worst value among the systems (the evaluation stage's rule)" for r in failed.itertuples() if r.n_failed]
    mo = [m for m in res["motion"].values() if m["scale_min"] is not None]
    if mo:
        rs = [m["r_scale_mouth"] for m in mo if m["r_scale_mouth"] is not None]
        fails.append(f"head motion (A_S<-D in the aligned crop, where the true one is near identity): scale "
                     f"{min(m['scale_min'] for m in mo):.3f}..{max(m['scale_max'] for m in mo):.3f}, mean |scale - 1| "
                     f"{np.mean([m['scale_abs_dev'] for m in mo]):.3f}, mean |shift| {np.mean([m['shift_abs'] for m in mo]):.3f}; "
                     f"r(scale, mouth opening) per clip {', '.join(f'{r:+.2f}' for r in rs)}")
    footer = ""
    if nulls or fails or res["quarantine"]:
        footer = "\n" + "\n".join([*(f"- {n}" for n in fails), *(f"- {n}" for n in nulls),
                                   *(f"- quarantined {q['clip_id']}: {q['reason_code']} ({q['message'][:200]})"
                                     for q in res["quarantine"])]) + "\n"
    report = {
        "command": command, "wall_seconds": round(wall, 1), "protocol": PROTOCOL_TEXT,
        "checkpoint": {"path": str(args.checkpoint), "sha256": res["sha256"], "variant": res["variant"],
                       "training": train},
        "judge": {"path": str(judge) if judge else None, "sha256": file_sha256(judge) if judge else None},
        "clips": res["clips"], "motion": res["motion"], "skipped_tasks": res["skipped"], "accounting": acc, "generation": gen,
        "scoring_seconds": res["scoring_seconds"], "evaluate_params": res["evaluate_params"], "speed": res["timings"],
        "quarantine": res["quarantine"], "aggregates": external.records(res["aggregates"]),
        "comparisons": external.records(res["comparisons"]), "per_clip": external.records(res["per_clip"]),
    }
    external.write_outputs(Path(args.out), report, header + tables + footer)
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
