"""Generation with the Style Mapping module: a neutral frame + a driving (style reference) clip -> I_o per frame.

Protocols (the issue's (a) and (b)):

* reconstruction: the clip's first usable frame is the source, every frame of the same clip drives it
  (face-vid2vid's same-identity reconstruction); ground truth exists, the evaluate stage scores PSNR,
  SSIM, AKD, AED and CSIM against the real frames.
* transfer: the first usable frame of each clip (the neutral identity I_s) driven by every frame of a
  clip of another style (`style_pairs`: the style reference's pose and expression style; ingest's
  `style` label, the speaker where a clip has none), of another speaker when the split has one. Scored
  without ground truth (CSIM with the source identity).

Beside every reconstruction output the run writes the issue's baseline "the source warped by a single global
affine from landmarks" (`affine.warp_source`: the same source frame warped onto each driving frame by the
least-squares similarity, or affine, of their 68 crop landmarks), as variant "<variant>+landmark_<kind>" with
the same frames, range and geometry, so the evaluate stage scores it and compares the network against it by
paired bootstrap (`headflow.evaluate.aggregate.compare`).

Outputs are 25-fps videos of the 256x256 aligned crop (the evaluate stage's "aligned" geometry) with the
driving clip's audio muxed; output frame i shows driving frame frame_start + i over the driving clip's
scored range (`headflow.manifest.generated.scored_range`). A driving frame without a face crop repeats
the last frame that had one. The network's image_size output is resized to 256 (bilinear) when smaller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from headflow.generators.stylemap.data import PairError, crop_angles, resize_frames, to_float
from headflow.generators.stylemap.model import StylemapGenerator
from headflow.generators.stylemap.params import CROP_SIZE

STAGE = "generate_stylemap"


def style_pairs(clip_ids: list[str], styles: dict[str, str], speakers: dict[str, str]) -> dict[str, str | None]:
    """Each clip -> the style reference clip it is driven by in the transfer protocol.

    Clips sorted by id; clip i takes the first clip after it (wrapping) of another style *and* another
    speaker; when the split has no such clip (the demo's test split is one speaker), the first of another
    style. None: no clip of another style.
    """
    ids = sorted(set(clip_ids))
    out: dict[str, str | None] = {}
    for i, c in enumerate(ids):
        after = [ids[(i + j) % len(ids)] for j in range(1, len(ids))]
        other_style = [o for o in after if styles[o] != styles[c]]
        out[c] = next((o for o in other_style if speakers[o] != speakers[c]), other_style[0] if other_style else None)
    return out


def hold_invalid(valid: np.ndarray) -> np.ndarray:
    """Frame index to show for every frame: itself when valid, else the last valid frame before it (the
    first valid one for leading invalid frames). Raises `PairError` "no_face" when no frame is valid."""
    valid = np.asarray(valid, bool)
    if not valid.any():
        raise PairError("no_face", "no frame has a face crop")
    idx = np.where(valid, np.arange(len(valid)), -1)
    idx = np.maximum.accumulate(idx)
    idx[idx < 0] = int(np.flatnonzero(valid)[0])
    return idx


@dataclass
class Animated:
    """The network's output over a driving clip."""

    frames: np.ndarray
    """(N, 256, 256, 3) uint8 I_o, one per driving frame of the range."""
    angles: np.ndarray
    """(N, 3) the driving frames' decoded yaw, pitch, roll in degrees (crop frame)."""


@torch.no_grad()
def animate(generator: StylemapGenerator, source: np.ndarray, driving: np.ndarray, batch: int = 8,
            out_size: int = CROP_SIZE) -> Animated:
    """I_o of one source frame driven by each driving frame.

    Args:
        generator: in eval mode.
        source: (S, S, 3) uint8 at the model's image_size.
        driving: (N, S, S, 3) uint8 at the model's image_size.
        batch: driving frames per network call.
        out_size: side of the returned frames (resized bilinearly when it differs from S).

    Returns:
        `Animated`.

    Raises:
        ValueError: images of another size than the model's (naming both).
    """
    dev = next(generator.parameters()).device
    src = to_float(torch.from_numpy(np.ascontiguousarray(source))[None]).to(dev)
    canonical, pose_s, volume = generator.encode_source(src)
    frames, angles = [], []
    for i in range(0, len(driving), batch):
        drv = to_float(torch.from_numpy(np.ascontiguousarray(driving[i:i + batch]))).to(dev)
        n = drv.shape[0]
        rep = lambda t: t.expand(n, *t.shape[1:])  # noqa: E731
        pose = type(pose_s)(rep(pose_s.logits), rep(pose_s.translation), rep(pose_s.deformation))
        out = generator.animate(rep(canonical), pose, rep(volume), drv)
        img = (out.image.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        frames.extend(img if img.shape[1] == out_size else
                      [cv2.resize(f, (out_size, out_size), interpolation=cv2.INTER_LINEAR) for f in img])
        angles.append(out.pose_driving.angles.cpu().numpy())
    return Animated(np.stack(frames), np.concatenate(angles).astype(np.float32))


def pose_errors(predicted: np.ndarray, fitted: np.ndarray, valid: np.ndarray,
                mean_pose: np.ndarray) -> dict[str, float]:
    """Absolute angle errors in degrees over valid frames and the 3 angles: the network's and the constant
    mean-pose baseline's, median and p90 ({"pose_err_median_deg", "pose_err_p90_deg", "baseline_..."})."""
    valid = np.asarray(valid, bool)
    if not valid.any():
        return {}
    err = np.abs(predicted[valid] - fitted[valid]).ravel()
    base = np.abs(np.asarray(mean_pose)[None] - fitted[valid]).ravel()
    out = {"pose_err_median_deg": np.median(err), "pose_err_p90_deg": np.percentile(err, 90),
           "baseline_pose_err_median_deg": np.median(base), "baseline_pose_err_p90_deg": np.percentile(base, 90)}
    return {k: round(float(v), 3) for k, v in out.items()}


@dataclass
class Measures:
    """Measurements of the outputs that need `headflow.metrics` (bootstrap, face descriptors), which a family
    may not import (DESIGN: families compose through data): `stages/generate_stylemap.py` passes
    `headflow.metrics.transfer`'s functions. None: the metric is not computed (its keys are absent)."""

    pose: Callable[..., dict] | None = None
    """`(clips [(predicted, fitted, valid)], mean_pose, n_boot, seed) -> dict`: `metrics.transfer.pose_intervals`."""
    identity: Callable[..., tuple[float, float, int]] | None = None
    """`(outputs, source, source_landmarks, references, reference_landmarks, k) -> (csim source, csim reference,
    frames)`: `metrics.transfer.transfer_identity`."""
    identity_summary: Callable[..., dict] | None = None
    """`([(csim source, csim reference)], n_boot, seed) -> dict`: `metrics.transfer.identity_interval`."""


def run_stage(params, progress: bool = True, *, clips_path: Path | None = None, faces_path: Path | None = None,
              audio_path: Path | None = None, shards_path: Path | None = None, labels_path: Path | None = None,
              model_dir: Path | None = None, out_dir: Path | None = None, metrics_path: Path | None = None,
              read_shard: Callable | None = None, measures: Measures | None = None) -> dict:
    """The `generate_stylemap` stage: reconstruction and style-transfer videos of the evaluation clips.

    Writes `out_dir/videos/<clip_id>.<protocol>.mp4` (256x256, driving audio muxed, marked synthetic),
    `out_dir/generated.parquet` (the generation contract; the landmark baseline of each reconstruction output
    as variant "<variant>+landmark_<kind>", `videos/<clip_id>.reconstruction.landmark_<kind>.mp4`),
    `quarantine.parquet` (reason codes: no_face (a source or style reference without a face crop),
    no_fitted_pose (a driver clip without fitted poses), no_style_reference (no clip of another style),
    empty_range, bad_landmarks, MediaError codes), `transfer_identity.parquet` (per transfer output: CSIM
    with the source and with the reference) and the metrics (frames/s end to end; the pose errors of the
    reconstruction drivers vs fit3dmm's poses and vs the mean-pose baseline, median / p90 over frames and the
    MAE difference with its interval paired by clip; the transfer identity interval: the keys of `measures`'
    functions, `headflow.metrics.transfer`).

    Raises:
        FileNotFoundError: no generator checkpoint.
        headflow.manifest.quarantine.TooManyRejected: too many outputs failed.
    """
    import time

    import pandas as pd

    from headflow.catalog import CATALOG, expert_clips
    from headflow.generators.stylemap.affine import warp_source
    from headflow.generators.stylemap.model import file_sha256, load_generator
    from headflow.manifest import Quarantine
    from headflow.manifest.generated import mark_synthetic, scored_range, write_generated
    from headflow.manifest.quarantine import check_accounting
    from headflow.manifest.schemas import GENERATED
    from headflow.media import MediaError
    from headflow.media.normalize import encode_video, read_audio
    from headflow.shards import read_clip
    from headflow.stage import finish_quarantine, write_metrics

    clips_path = Path(clips_path or CATALOG.manifest("ingest", "clips"))
    faces_path = Path(faces_path or CATALOG.manifest("faces", "faces"))
    audio_path = Path(audio_path or CATALOG.manifest("audio_features", "audio_features"))
    shards_path = Path(shards_path or CATALOG.manifest("shards", "shards"))
    labels_path = Path(labels_path or CATALOG.folder("shard_labels"))
    model_dir = Path(model_dir or CATALOG.model("train_stylemap", "generator"))
    out_dir = Path(out_dir or CATALOG.folder(STAGE))
    metrics_path = Path(metrics_path or CATALOG.metrics(STAGE))
    torch.set_num_threads(params.threads)

    ckpt = model_dir / "generator.pt" if params.checkpoint == "trained" else Path(params.checkpoint)
    generator, meta = load_generator(ckpt)
    size = generator.params.image_size
    mean_pose = np.asarray(meta.get("mean_pose", [0.0, 0.0, 0.0]), np.float32)
    sha = file_sha256(ckpt)
    clips = expert_clips(clips_path, faces_path, audio_path)
    clips = clips[clips.split == params.split].reset_index(drop=True)
    if params.max_clips is not None:
        clips = clips.head(params.max_clips)
    info = clips.set_index("clip_id")
    ids = list(clips.clip_id)
    styles = {c: str(st) if isinstance(st, str) and st else f"speaker:{sp}"
              for c, st, sp in zip(clips.clip_id, clips["style"] if "style" in clips else clips.speaker_id,
                                   clips.speaker_id)}
    pairs = style_pairs(ids, styles, dict(zip(clips.clip_id, clips.speaker_id)))
    read_shard = read_shard or (lambda c: read_clip(c, ("crop256", "expressions"), root=shards_path.parent,
                                                    labels_root=labels_path))
    loaded: dict[str, object] = {}

    def clip(c: str):
        """(frames at the model size, valid, crop angles, fitted-valid, crop256 pixels, crop256 landmarks) of
        clip c; PairError when unusable."""
        if c not in loaded:
            try:
                shard = read_shard(c)
                crop = shard.crop256
                if crop.pixels.shape[1:3] != (CROP_SIZE, CROP_SIZE):
                    raise ValueError(f"clip {c}: crop256 is {crop.pixels.shape[2]}x{crop.pixels.shape[1]}, expected "
                                     f"{CROP_SIZE}x{CROP_SIZE}")
                face = np.asarray(shard.valid, bool) & np.isfinite(crop.landmarks).all(axis=(1, 2)) \
                    & np.isfinite(crop.transform).all(axis=(1, 2))
                try:
                    expr = shard.expressions
                    n = min(len(face), len(expr.angles))
                    fit = np.zeros(len(face), bool)
                    fit[:n] = np.asarray(expr.valid[:n], bool) & np.isfinite(expr.angles[:n]).all(1) & face[:n]
                    angles = np.zeros((len(face), 3), np.float32)
                    m = np.where(fit[:n, None, None], np.nan_to_num(crop.transform[:n]), np.eye(2, 3))
                    angles[:n] = crop_angles(np.where(fit[:n, None], np.nan_to_num(expr.angles[:n]), 0.0), m)
                except (AttributeError, ValueError):
                    fit, angles = np.zeros(len(face), bool), np.zeros((len(face), 3), np.float32)
                loaded[c] = (resize_frames(crop.pixels, size), face, angles, fit, crop.pixels,
                             np.asarray(crop.landmarks, np.float64))
            except (FileNotFoundError, ValueError) as err:
                loaded[c] = PairError("no_fitted_pose" if "label" in str(err) or "expression" in str(err)
                                      else "unreadable_shard", f"clip {c}: {err}")
        if isinstance(loaded[c], PairError):
            raise loaded[c]
        return loaded[c]

    tasks = []
    quarantine = Quarantine(STAGE)
    for c in ids:
        for protocol in params.protocols:
            driver = c if protocol == "reconstruction" else pairs.get(c)
            if driver is None:
                quarantine.add(f"{c}.{protocol}", "no_style_reference", f"{c}: no {params.split} clip of another "
                               "style to take as the style reference", info.at[c, "source_path"])
                continue
            tasks.append((c, protocol, driver))
    videos = out_dir / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    for stale in videos.glob("*.mp4"):
        stale.unlink()
    rows, n_frames, seconds, pose_rows, identity_rows, identity_s = [], 0, 0.0, [], [], 0.0
    kind = params.landmark_baseline
    base_variant = f"{params.variant}+landmark_{kind}"
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc=STAGE, unit="video")
    for c, protocol, driver in tasks:
        out_id = f"{c}.{protocol}"
        t0 = time.perf_counter()
        try:
            frames, face, _, _, s_crop, s_lm = clip(c)
            try:
                src_index = int(np.flatnonzero(face)[0])
            except IndexError:
                raise PairError("no_face", f"{out_id}: source clip {c} has no frame with a face crop") from None
            d_frames, d_face, d_angles, d_fit, d_crop, d_lm = clip(driver)
            if not d_face.any():
                raise PairError("no_face", f"{out_id}: style reference / driver {driver} has no frame with a face crop")
            if not d_fit.any():
                raise PairError("no_fitted_pose", f"{out_id}: driver clip {driver} has no fitted head pose (fit3dmm)")
            n_mel = int(np.load(info.at[driver, "mel_path"], mmap_mode="r").shape[0])
            start, end = scored_range(min(len(d_frames), int(info.at[driver, "n_frames"])), n_mel)
            if end <= start:
                raise PairError("empty_range", f"{out_id}: driver {driver} has no frame with a full audio window")
            show = hold_invalid(d_face)[start:end]
            result = animate(generator, frames[src_index], d_frames[show], params.frames_per_batch)
            wav, sr = read_audio(info.at[driver, "audio_path"])
            fps = int(round(float(info.at[driver, "fps"])))
            a0, a1 = int(round(start * sr / fps)), int(round(end * sr / fps))
            audio = np.zeros(a1 - a0, np.float32)
            part = wav[a0:a1]
            audio[:len(part)] = part
            base_path = None
            if protocol == "reconstruction" and kind != "none":      # before any file: a failure leaves none
                try:
                    base = warp_source(s_crop[src_index], s_lm[src_index], d_lm[show], kind)
                except ValueError as err:
                    raise PairError("bad_landmarks", f"{out_id}: landmark baseline: {err}") from None
            path = videos / f"{out_id}.mp4"
            encode_video(list(result.frames), path, fps=fps, crf=params.crf, audio=audio, sample_rate=sr, threads=1)
            mark_synthetic(path, "stylemap", sha, [c, driver])
            if protocol == "reconstruction" and kind != "none":
                base_path = videos / f"{out_id}.landmark_{kind}.mp4"
                encode_video(list(base), base_path, fps=fps, crf=params.crf, audio=audio, sample_rate=sr, threads=1)
                mark_synthetic(base_path, "stylemap", sha, [c, driver])
        except (PairError, MediaError) as err:
            quarantine.add(out_id, err.reason_code, str(err), info.at[c, "source_path"])
            continue
        finally:
            if bar is not None:
                bar.update(1)
        seconds += time.perf_counter() - t0
        n_frames += end - start
        if protocol == "reconstruction":
            pose_rows.append((result.angles, d_angles[start:end], d_fit[start:end]))
        if protocol == "transfer" and params.identity_frames > 0 and measures and measures.identity:
            t1 = time.perf_counter()
            cs, cr, k = measures.identity(result.frames, s_crop[src_index], s_lm[src_index], d_crop[show], d_lm[show],
                                          params.identity_frames)
            identity_rows.append({"clip_id": out_id, "source_clip": c, "style_clip": driver, "frames": k,
                                  "csim_source": cs, "csim_reference": cr})
            identity_s += time.perf_counter() - t1
        row = {"clip_id": out_id, "family": "stylemap", "variant": params.variant, "seed": params.seed,
               "protocol": protocol, "source_clip": c, "audio_clip": driver, "driver_clip": driver,
               "style_clip": driver if protocol == "transfer" else None, "references": [src_index],
               "output_kind": "video", "output_path": path.as_posix(), "fps": float(info.at[driver, "fps"]),
               "frame_start": start, "frame_end": end, "checkpoint_sha256": sha}
        rows.append(row)
        if base_path is not None:
            rows.append({**row, "variant": base_variant, "output_path": base_path.as_posix()})
    if bar is not None:
        bar.close()
    write_generated(pd.DataFrame(rows, columns=GENERATED.names), out_dir / "generated.parquet")
    n_base = sum(r["variant"] == base_variant for r in rows) if kind != "none" else 0
    identity_cols = ["clip_id", "source_clip", "style_clip", "frames", "csim_source", "csim_reference"]
    pd.DataFrame(identity_rows, columns=identity_cols).to_parquet(out_dir / "transfer_identity.parquet", index=False)
    metrics = {"outputs": len(rows) - n_base, "baseline_outputs": n_base, "quarantined": len(quarantine),
               "frames": n_frames,
               "frames_per_s": round(n_frames / seconds, 2) if seconds else None, "seconds": round(seconds, 1),
               "checkpoint_sha256": sha, "variant": params.variant, "image_size": size}
    if pose_rows:
        metrics.update(pose_errors(np.concatenate([p[0] for p in pose_rows]), np.concatenate([p[1] for p in pose_rows]),
                                   np.concatenate([p[2] for p in pose_rows]), mean_pose))
        if measures and measures.pose:
            metrics.update(measures.pose(pose_rows, mean_pose, params.n_boot, params.seed))
    if identity_rows and measures and measures.identity_summary:
        metrics.update(measures.identity_summary([(r["csim_source"], r["csim_reference"]) for r in identity_rows],
                                                 params.n_boot, params.seed))
        metrics["identity_seconds"] = round(identity_s, 1)
    write_metrics(metrics_path, metrics)
    check_accounting([f"{c}.{p}" for c in ids for p in params.protocols], sorted({r["clip_id"] for r in rows}),
                     [q["clip_id"] for q in quarantine.rows], STAGE)
    finish_quarantine(quarantine, out_dir / "quarantine.parquet", len(ids) * len(params.protocols),
                      params.max_reject_fraction)
    return metrics


__all__ = ["Animated", "Measures", "STAGE", "animate", "hold_invalid", "pose_errors", "run_stage", "style_pairs"]
