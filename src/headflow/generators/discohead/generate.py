"""Generation with DisCoHead: a source frame + head driver + eye driver + audio -> aligned-crop video.

Two protocols (papers/discohead.txt):

* reconstruction (table 1): source = the clip's first frame; head driver, eye driver and audio = the
  clip itself; the real frames are the ground truth.
* transfer (figure 2, disentangled control): identity and source frame of clip i; head pose, audio and
  eyes from three other evaluation clips (`transfer_triples`).

Each output is a 256x256 aligned-crop video (the shards' crop256 geometry, which the evaluate stage
scores as "aligned") with the driving audio muxed; frames without a full 400 ms audio window are
outside [frame_start, frame_end), never padded. Beside every output, the same run writes the
source-warp baseline (variant "<variant>+source_warp": S_T, the source warped by the predicted
transformation alone, without the decoder's expression control), so the evaluation compares the
decoder against it on the same frames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from headflow.generators.discohead.data import DataError, DisCoHeadClip, audio_window, eyes_known, frame_range, mask_eyes
from headflow.generators.discohead.model import DisCoHeadGenerator

OUTPUT_SIZE = 256
"""Side of the written frames: the aligned crop (`headflow.shards.geometry.CROP_SIZE`)."""
SOURCE_FRAME = 0
"""The source frame of every output (the clip's first: the evaluation's reference frame)."""


def transfer_triples(clip_ids: list[str], n_frames: dict[str, int]) -> dict[str, tuple[str, str, str]]:
    """Source clip -> (head driver, audio, eye driver) for the transfer protocol.

    Clips sorted by id; clip i draws on clips i+1, i+2, i+3 (cyclic): the audio is the shortest of the three
    (so the drivers can cover its range), the head driver the first of the other two, the eyes the last.
    Fewer than four clips give no triple. The same ids always give the same triples.
    """
    ids = sorted(set(clip_ids))
    if len(ids) < 4:
        return {}
    out = {}
    for i, c in enumerate(ids):
        others = [ids[(i + k) % len(ids)] for k in (1, 2, 3)]
        audio = min(others, key=lambda x: (n_frames[x], others.index(x)))
        rest = [x for x in others if x != audio]
        out[c] = (rest[0], audio, rest[1])
    return out


@dataclass
class GeneratedFrames:
    """One output's frames."""

    frames: np.ndarray
    """(n, S, S, 3) uint8 generated frames for [frame_start, frame_end)."""
    source_warp: np.ndarray
    """(n, S, S, 3) uint8 S_T: the source warped by the predicted transformation alone."""
    frame_start: int
    frame_end: int


@torch.no_grad()
def generate_frames(generator: DisCoHeadGenerator, source: DisCoHeadClip, driver: DisCoHeadClip,
                    eyes: DisCoHeadClip, audio: DisCoHeadClip, eye_margin: float, batch_frames: int = 16,
                    device: str | torch.device = "cpu",
                    progress: Callable[[int], None] | None = None) -> GeneratedFrames:
    """Run the generator over every frame of the range the four inputs allow (`data.frame_range`).

    Args:
        generator: in eval mode.
        source: gives frame `SOURCE_FRAME` (identity and appearance).
        driver: head driver; eyes: eye driver (masked with their landmarks); audio: the mel.
        eye_margin: as trained (`DataParams.eye_margin`).
        batch_frames: frames per network call.

    Returns:
        `GeneratedFrames` at the model's size.

    Raises:
        DataError: "size_mismatch" (source and driver crops of different sizes), "no_source_face",
            "driver_shorter_than_audio", "audio_too_short", "driver_without_face" or "no_eye_landmarks"
            (a frame in the range; the message names the clip and the frame).
    """
    size = generator.params.image_size
    for role, clip in (("source", source), ("head driver", driver), ("eye driver", eyes)):
        if clip.frames.shape[1:] != (size, size, 3):
            raise DataError("size_mismatch", f"{role} {clip.clip_id}: crops of {clip.frames.shape[1:3]}, but the "
                            f"generator works on {size}x{size} (source {source.frames.shape[1:3]}, driver "
                            f"{driver.frames.shape[1:3]}); resize both with data.resize_clip")
    if not source.valid[SOURCE_FRAME]:
        raise DataError("no_source_face", f"source {source.clip_id}: frame {SOURCE_FRAME} has no tracked face")
    start, end = frame_range(len(audio.mel), driver.n_frames, eyes.n_frames, audio.fps, audio.clip_id,
                             driver.clip_id, eyes.clip_id, own_audio=audio.clip_id == driver.clip_id == source.clip_id)
    frames = np.arange(start, end)
    bad = frames[~driver.valid[start:end]]
    if len(bad):
        raise DataError("driver_without_face", f"head driver {driver.clip_id}: frame(s) {bad[:5].tolist()} of "
                        f"[{start}, {end}) have no tracked face")
    bad = frames[~(eyes.valid[start:end] & eyes_known(eyes.landmarks[start:end]))]
    if len(bad):
        raise DataError("no_eye_landmarks", f"eye driver {eyes.clip_id}: frame(s) {bad[:5].tolist()} of "
                        f"[{start}, {end}) have no eye landmarks")
    src = torch.from_numpy(source.frames[SOURCE_FRAME]).permute(2, 0, 1).float().div(255).to(device)
    out = np.zeros((len(frames), size, size, 3), np.uint8)
    warp = np.zeros_like(out)
    for i in range(0, len(frames), batch_frames):
        idx = frames[i:i + batch_frames]
        drv = torch.from_numpy(driver.frames[idx]).permute(0, 3, 1, 2).float().div(255).to(device)
        eye = np.stack([mask_eyes(eyes.frames[f], eyes.landmarks[f], eye_margin) for f in idx])
        eye_t = torch.from_numpy(eye).permute(0, 3, 1, 2).float().div(255).to(device)
        mel = torch.from_numpy(np.stack([audio_window(audio.mel, int(f), audio.fps, audio.clip_id) for f in idx]))
        result = generator(src.expand(len(idx), -1, -1, -1), drv, eye_t, mel.to(device))
        out[i:i + len(idx)] = _to_uint8(result.image)
        warp[i:i + len(idx)] = _to_uint8(result.transformed)
        if progress is not None:
            progress(len(idx))
    return GeneratedFrames(out, warp, start, end)


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)


def to_output_size(frames: np.ndarray, size: int = OUTPUT_SIZE) -> np.ndarray:
    """(n, S, S, 3) uint8 -> (n, size, size, 3) (bicubic up, area down; pixel centres at integers)."""
    import cv2

    if frames.shape[1] == size:
        return frames
    interp = cv2.INTER_CUBIC if frames.shape[1] < size else cv2.INTER_AREA
    return np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in frames])


def write_video(frames: np.ndarray, wav: np.ndarray, sample_rate: int, frame_start: int, frame_end: int, path: Path,
                fps: int = 25, crf: int = 18) -> None:
    """Encode [frame_start, frame_end) with the driving audio of the same span (the contract's layout)."""
    from headflow.media.normalize import encode_video

    a0, a1 = int(round(frame_start * sample_rate / fps)), int(round(frame_end * sample_rate / fps))
    clip_audio = np.zeros(a1 - a0, np.float32)           # the range's mel windows lie inside the audio; at most
    part = np.asarray(wav, np.float32)[a0:a1]            # the last STFT hop (12.5 ms) can be short
    clip_audio[: len(part)] = part
    encode_video(to_output_size(frames), path, fps=fps, crf=crf, audio=clip_audio, sample_rate=sample_rate, threads=1)


STAGE = "generate_discohead"


def run_stage(params, progress: bool = True, *, clips_path: Path | None = None, faces_path: Path | None = None,
              audio_path: Path | None = None, shards_path: Path | None = None, model_dir: Path | None = None,
              out_dir: Path | None = None, metrics_path: Path | None = None) -> dict:
    """The `generate_discohead` stage: reconstruction and transfer outputs for every evaluation clip.

    Writes `out_dir/videos/<clip_id>.<protocol>[.source_warp].mp4` (marked synthetic), `generated.parquet`
    (the generation contract; the source-warp baseline as variant "<variant>+source_warp"),
    `quarantine.parquet` and the metrics (frames/s end to end: shard reads, network, encode).

    Raises:
        FileNotFoundError: no generator checkpoint.
        headflow.manifest.quarantine.TooManyRejected: too many outputs failed.
    """
    import time

    import pandas as pd

    from headflow.catalog import CATALOG, expert_clips
    from headflow.config import from_dict
    from headflow.generators.discohead.data import clip_from_shard
    from headflow.generators.discohead.model import file_sha256, load_generator
    from headflow.generators.discohead.params import DisCoHeadParams
    from headflow.manifest import Quarantine
    from headflow.manifest.generated import mark_synthetic, write_generated
    from headflow.manifest.quarantine import check_accounting
    from headflow.manifest.schemas import GENERATED
    from headflow.media import MediaError
    from headflow.media.normalize import read_audio
    from headflow.shards import read_clip
    from headflow.stage import finish_quarantine, write_metrics

    clips_path = Path(clips_path or CATALOG.manifest("ingest", "clips"))
    faces_path = Path(faces_path or CATALOG.manifest("faces", "faces"))
    audio_path = Path(audio_path or CATALOG.manifest("audio_features", "audio_features"))
    shards_path = Path(shards_path or CATALOG.manifest("shards", "shards"))
    model_dir = Path(model_dir or CATALOG.model("train_discohead", "generator"))
    out_dir = Path(out_dir or CATALOG.folder(STAGE))
    metrics_path = Path(metrics_path or CATALOG.metrics(STAGE))
    torch.set_num_threads(params.threads)

    ckpt = model_dir / "generator.pt" if params.checkpoint == "trained" else Path(params.checkpoint)
    generator, saved = load_generator(ckpt)
    train_params = from_dict(DisCoHeadParams, saved, "generator.params")
    variant = train_params.variant_name
    sha = file_sha256(ckpt)
    clips = expert_clips(clips_path, faces_path, audio_path)
    clips = clips[clips.split == params.split].reset_index(drop=True)
    if params.max_clips is not None:
        clips = clips.head(params.max_clips)
    info = clips.set_index("clip_id")
    ids = list(clips.clip_id)
    triples = transfer_triples(ids, {c: int(info.at[c, "n_frames"]) for c in ids})
    quarantine = Quarantine(STAGE)
    tasks = []
    for c in ids:
        for protocol in params.protocols:
            if protocol == "reconstruction":
                tasks.append((c, protocol, c, c, c))
            elif c in triples:
                driver, audio, eyes = triples[c]
                tasks.append((c, protocol, driver, audio, eyes))
            else:
                quarantine.add(f"{c}.{protocol}", "too_few_clips", f"{c}: transfer needs at least four {params.split} "
                               f"clips (head, audio and eye drivers other than the source), got {len(ids)}",
                               info.at[c, "source_path"])
    videos = out_dir / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    for stale in videos.glob("*.mp4"):
        stale.unlink()
    loaded: dict[str, DisCoHeadClip] = {}

    def clip(c: str) -> DisCoHeadClip:
        if c not in loaded:
            loaded[c] = clip_from_shard(read_clip(c, ("crop256", "mel"), root=shards_path.parent),
                                        train_params.model.image_size)
        return loaded[c]

    rows, n_frames, seconds = [], 0, 0.0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc=STAGE, unit="output")
    for c, protocol, driver, audio, eyes in tasks:
        out_id = f"{c}.{protocol}"
        t0 = time.perf_counter()
        try:
            result = generate_frames(generator, clip(c), clip(driver), clip(eyes), clip(audio),
                                     train_params.data.eye_margin, params.batch_frames)
            wav, sr = read_audio(info.at[audio, "audio_path"])
            fps = int(round(float(info.at[c, "fps"])))
            paths = {variant: videos / f"{out_id}.mp4", f"{variant}+source_warp": videos / f"{out_id}.source_warp.mp4"}
            for frames, path in ((result.frames, paths[variant]), (result.source_warp, paths[f"{variant}+source_warp"])):
                write_video(frames, wav, sr, result.frame_start, result.frame_end, path, fps, params.crf)
                mark_synthetic(path, "discohead", sha, [c, driver, audio, eyes])
        except (DataError, MediaError) as err:            # rejections are data: a reason code, never a crash
            quarantine.add(out_id, err.reason_code, str(err), info.at[c, "source_path"])
            continue
        finally:
            if bar is not None:
                bar.update(1)
        seconds += time.perf_counter() - t0
        n_frames += result.frame_end - result.frame_start
        for name, path in paths.items():
            rows.append({"clip_id": out_id, "family": "discohead", "variant": name, "seed": params.seed,
                         "protocol": protocol, "source_clip": c, "audio_clip": audio,
                         "driver_clip": None if protocol == "reconstruction" else driver,
                         "style_clip": None if protocol == "reconstruction" else eyes, "references": [SOURCE_FRAME],
                         "output_kind": "video", "output_path": path.as_posix(), "fps": float(info.at[c, "fps"]),
                         "frame_start": result.frame_start, "frame_end": result.frame_end, "checkpoint_sha256": sha})
    if bar is not None:
        bar.close()
    write_generated(pd.DataFrame(rows, columns=GENERATED.names), out_dir / "generated.parquet")
    metrics = {"outputs": len(rows) // 2, "quarantined": len(quarantine), "frames": n_frames,
               "frames_per_s": round(n_frames / seconds, 2) if seconds else None, "seconds": round(seconds, 1),
               "checkpoint_sha256": sha, "variant": variant,
               "quarantine_reasons": {str(k): int(v) for k, v in
                                      pd.Series([q["reason_code"] for q in quarantine.rows], dtype=str).value_counts().items()}}
    write_metrics(metrics_path, metrics)
    task_ids = [f"{c}.{p}" for c in ids for p in params.protocols]
    check_accounting(task_ids, sorted({r["clip_id"] for r in rows}), [q["clip_id"] for q in quarantine.rows], STAGE)
    finish_quarantine(quarantine, out_dir / "quarantine.parquet", len(task_ids), params.max_reject_fraction)
    return metrics
