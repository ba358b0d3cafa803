"""Generation with the lip-sync U-Net: a clip's frames + driving audio -> dubbed full frames.

Pure parts (this module): the generated frame range and its chunks, the network pass over a clip
(`generate_crops`), and pasting the 96x96 result back into the full frame through the inverse crop
transform with the predicted mask blurred (k = 5, sigma = 3; coursework eq. 10).

Inference follows the paper's test protocol (section 4.1): the references of each chunk of up to 5
target frames are chosen exactly as in training (KMeans clusters, never a frame of the chunk), the
target is the source frame with its lower half masked, and each frame gets its own mel window of the
driving audio. Frames without a full mel window are outside the generated range (never padded);
frames inside it without a valid face are copied unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from headflow.generators.lipsync.data import (BLEND_KERNEL, BLEND_SIGMA, ReferenceError, cluster_frames,
                                              frame_mels, generated_range, mask_lower_half, prepare_references,
                                              select_references)
from headflow.generators.lipsync.model import LipsyncGenerator
from headflow.generators.lipsync.params import IMAGE_SIZE, WINDOW, DataParams


def blur_mask_np(mask: np.ndarray) -> np.ndarray:
    """The blending mask's Gaussian blur (k = 5, sigma = 3), zero outside the crop, as `data.blur_mask`.

    Args:
        mask: (S, S) float in [0, 1].

    Returns:
        (S, S) float32 in [0, 1].
    """
    padded = cv2.copyMakeBorder(np.asarray(mask, np.float32), 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=0)
    blurred = cv2.GaussianBlur(padded, (BLEND_KERNEL, BLEND_KERNEL), BLEND_SIGMA, borderType=cv2.BORDER_CONSTANT)
    return blurred[2:-2, 2:-2]


def paste_back(frame: np.ndarray, crop: np.ndarray, mask: np.ndarray | None, transform: np.ndarray) -> np.ndarray:
    """Blend a generated face crop into its source frame through the inverse crop transform.

    out = m * warp^-1(crop) + (1 - m) * frame with m = warp^-1(blur(mask)) (eq. 10), bilinear, zero
    outside the crop. Without a mask (no mask head) the whole crop is pasted, as Wav2Lip does.

    Args:
        frame: (H, W, 3) uint8 source frame.
        crop: (S, S, 3) float in [0, 1] or uint8, the generated crop.
        mask: (S, S) float in [0, 1], the predicted mask (None: all ones).
        transform: (2, 3) source -> crop affine of this frame (`headflow.faces.crops` convention: a source
            point p maps to transform @ [p, 1]).

    Returns:
        (H, W, 3) uint8.
    """
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.shape[0] != crop.shape[1]:
        raise ValueError(f"paste_back: crop must be (S, S, 3), got {crop.shape}")
    h, w = frame.shape[:2]
    s = crop.shape[0]
    crop_f = crop.astype(np.float32) / (255.0 if crop.dtype == np.uint8 else 1.0)
    m = np.ones((s, s), np.float32) if mask is None else np.asarray(mask, np.float32)
    if m.shape != (s, s):
        raise ValueError(f"paste_back: mask must be ({s}, {s}), got {m.shape}")
    m = blur_mask_np(m) if mask is not None else m
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP       # transform maps frame -> crop: sample the crop
    M = np.asarray(transform, np.float64)
    warped = cv2.warpAffine(crop_f, M, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    alpha = cv2.warpAffine(m, M, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)[..., None]
    out = alpha * warped * 255.0 + (1.0 - alpha) * frame.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def frame_chunks(valid: np.ndarray, start: int, end: int, size: int = WINDOW) -> list[tuple[int, int]]:
    """Consecutive runs of valid frames in [start, end), cut into chunks of at most `size` frames."""
    chunks = []
    f = start
    while f < end:
        if not valid[f]:
            f += 1
            continue
        e = f
        while e < end and valid[e] and e - f < size:
            e += 1
        chunks.append((f, e))
        f = e
    return chunks


@dataclass
class GeneratedCrops:
    """The network's output for one clip and one driving audio."""

    crops: np.ndarray
    """(T, 96, 96, 3) float32 in [0, 1]; frames not generated hold the source crop."""
    masks: np.ndarray | None
    """(T, 96, 96) float32 predicted masks (0 where not generated); None without a mask head."""
    generated: np.ndarray
    """(T,) bool: the frames the network produced."""
    frame_end: int
    """End of the generated range [0, frame_end): frames with a full mel window of the driving audio."""
    references: dict[int, list[int]]
    """Chunk start frame -> the source frames used as that chunk's references."""


@torch.no_grad()
def generate_crops(generator: LipsyncGenerator, faces: np.ndarray, landmarks: np.ndarray, valid: np.ndarray,
                   mel: np.ndarray, data_params: DataParams, fps: float = 25.0, seed: int = 0,
                   chunks_per_batch: int = 8, device: str | torch.device = "cpu",
                   progress: Callable[[int], None] | None = None) -> GeneratedCrops:
    """Run the generator over a clip's face crops with a driving mel spectrogram.

    Args:
        generator: in eval mode.
        faces: (T, 96, 96, 3) uint8 source face crops.
        landmarks: (T, 68, 2) in crop pixels (reference clustering).
        valid: (T,) bool.
        mel: (T_mel, 80) the driving audio's mel spectrogram (the clip's own for reconstruction).
        data_params: reference settings (as trained).
        fps: video frame rate.
        seed: seed of the reference augmentation.
        chunks_per_batch: chunks of <= 5 frames per network call.
        device: torch device.
        progress: called with the number of frames done after each batch.

    Returns:
        `GeneratedCrops`.

    Raises:
        ReferenceError: the clip has no valid frame for references ("no_landmarks") or a chunk has no
            reference outside it ("no_reference_frames").
    """
    t = len(faces)
    valid = np.asarray(valid, bool)
    _, end = generated_range(np.ones(t, bool), len(mel), fps)
    end = min(end, t)
    clusters = cluster_frames(landmarks, valid, data_params.n_references, seed)
    gen = torch.Generator().manual_seed(seed)
    crops = faces.astype(np.float32) / 255.0
    masks = np.zeros((t, IMAGE_SIZE, IMAGE_SIZE), np.float32) if generator.params.mask_head else None
    done = np.zeros(t, bool)
    chunks = frame_chunks(valid, 0, end)
    picked: dict[int, list[int]] = {}
    # Group chunks of equal length: the network takes R reference sets for R x T frames.
    by_len: dict[int, list[tuple[int, int]]] = {}
    for c in chunks:
        by_len.setdefault(c[1] - c[0], []).append(c)
    for length, group in sorted(by_len.items(), reverse=True):
        for i in range(0, len(group), chunks_per_batch):
            part = group[i:i + chunks_per_batch]
            refs, flags, frames = [], [], []
            for s, e in part:
                r, a = select_references(clusters, s, window=e - s, augment=data_params.reference_augment)
                refs.append(faces[r])
                flags.append(a)
                frames.extend(range(s, e))
                picked[s] = r.tolist()
            idx = np.asarray(frames)
            target = torch.from_numpy(faces[idx]).permute(0, 3, 1, 2).float().div(255).to(device)
            ref_t = torch.from_numpy(np.stack(refs)).permute(0, 1, 4, 2, 3).float().div(255)
            ref_t = prepare_references(ref_t, torch.from_numpy(np.stack(flags)), gen,
                                       data_params.reference_blur_sigma, data_params.reference_region,
                                       data_params.augment_rotation_deg, data_params.augment_scale,
                                       data_params.augment_shift).to(device)
            mel_t = torch.from_numpy(frame_mels(mel, idx, fps)).to(device)
            out = generator(mask_lower_half(target), mel_t, ref_t)
            crops[idx] = out.image.permute(0, 2, 3, 1).cpu().numpy()
            if masks is not None:
                masks[idx] = out.mask[:, 0].cpu().numpy()
            done[idx] = True
            if progress is not None:
                progress(len(idx))
    return GeneratedCrops(crops, masks, done, end, dict(sorted(picked.items())))


def paste_clip(frames: np.ndarray, result: GeneratedCrops, transforms: np.ndarray) -> np.ndarray:
    """Every generated frame pasted back into its source frame; other frames unchanged.

    Args:
        frames: (T, H, W, 3) uint8 source frames.
        result: `generate_crops`' output for these frames.
        transforms: (T, 2, 3) source -> crop transforms.

    Returns:
        (T, H, W, 3) uint8.
    """
    out = frames.copy()
    for f in np.flatnonzero(result.generated):
        out[f] = paste_back(frames[f], result.crops[f], None if result.masks is None else result.masks[f],
                            transforms[f])
    return out


def write_output(frames: np.ndarray, result: GeneratedCrops, transforms: np.ndarray, audio: np.ndarray,
                 path, sample_rate: int = 16000, fps: int = 25, frame_start: int = 0) -> tuple[int, int]:
    """Encode the generated range as an mp4 with the driving audio (generation contract).

    Output frame i shows source frame frame_start + i, for i < frame_end - frame_start (the contract's
    layout); the audio is the driving audio from frame_start / fps, cut to the video's length.

    Args:
        frames: (T, H, W, 3) uint8 source frames (even H and W).
        result: `generate_crops`' output.
        transforms: (T, 2, 3) source -> 96x96 crop transforms.
        audio: (n,) float32 mono samples of the driving audio in [-1, 1] at `sample_rate`.
        path: the mp4 to write (atomically).
        sample_rate, fps: canonical media rates.
        frame_start: first frame of the range (0: every frame up to `result.frame_end`).

    Returns:
        (frame_start, frame_end) of what was written.

    Raises:
        ValueError: an empty range.
    """
    from headflow.media.normalize import encode_video

    end = result.frame_end
    if end <= frame_start:
        raise ValueError(f"write_output({path}): empty generated range [{frame_start}, {end}); the driving audio "
                         "has no full mel window for any frame")
    pasted = (paste_back(frames[f], result.crops[f], None if result.masks is None else result.masks[f], transforms[f])
              if result.generated[f] else frames[f] for f in range(frame_start, end))
    a0 = int(round(frame_start * sample_rate / fps))
    a1 = int(round(end * sample_rate / fps))
    clip_audio = np.zeros(a1 - a0, np.float32)   # the range's mel windows lie inside the audio, so at most
    part = np.asarray(audio, np.float32)[a0:a1]
    clip_audio[: len(part)] = part                # the last mel hop (12.5 ms, STFT centring) can be short
    encode_video(pasted, path, fps=fps, audio=clip_audio, sample_rate=sample_rate, threads=1)
    return frame_start, end


STAGE = "generate_lipsync"


def run_stage(params, progress: bool = True, *, clips_path: Path | None = None, faces_path: Path | None = None,
              audio_path: Path | None = None, shards_path: Path | None = None, model_dir: Path | None = None,
              out_dir: Path | None = None, metrics_path: Path | None = None) -> dict:
    """The `generate_lipsync` stage: dub every evaluation clip (reconstruction and dubbing protocols).

    For each clip of the evaluation set (faces x audio_features of `params.split`, clip_id order, first
    `max_clips`): its face96 shard, its canonical video and, per protocol, the driving clip's mel and
    wav. Writes `out_dir/videos/<clip_id>.<protocol>.mp4` (marked synthetic in the container),
    `out_dir/generated.parquet` (the generation contract), `quarantine.parquet` and the metrics (frames/s
    end to end: decode, network, blend, encode).

    Raises:
        FileNotFoundError: no generator checkpoint.
        headflow.manifest.quarantine.TooManyRejected: too many outputs failed.
    """
    import time

    from headflow.catalog import CATALOG, expert_clips
    from headflow.generators.lipsync.params import LipsyncParams
    from headflow.generators.lipsync.model import file_sha256, load_generator
    from headflow.config import from_dict
    from headflow.manifest import Quarantine
    from headflow.manifest.quarantine import check_accounting
    from headflow.manifest.generated import dubbing_pairs, mark_synthetic, read_listed_pairs, write_generated
    from headflow.media import MediaError
    from headflow.media.normalize import read_audio, read_frames
    from headflow.shards import read_clip
    from headflow.stage import finish_quarantine, write_metrics

    clips_path = Path(clips_path or CATALOG.manifest("ingest", "clips"))
    faces_path = Path(faces_path or CATALOG.manifest("faces", "faces"))
    audio_path = Path(audio_path or CATALOG.manifest("audio_features", "audio_features"))
    shards_path = Path(shards_path or CATALOG.manifest("shards", "shards"))
    model_dir = Path(model_dir or CATALOG.model("train_lipsync", "generator"))
    out_dir = Path(out_dir or CATALOG.folder(STAGE))
    metrics_path = Path(metrics_path or CATALOG.metrics(STAGE))
    torch.set_num_threads(params.threads)

    ckpt = model_dir / "generator.pt" if params.checkpoint == "trained" else Path(params.checkpoint)
    generator, saved = load_generator(ckpt)
    train_params = from_dict(LipsyncParams, saved, "generator.params")
    sha = file_sha256(ckpt)
    clips = expert_clips(clips_path, faces_path, audio_path)
    clips = clips[clips.split == params.split].reset_index(drop=True)
    if params.max_clips is not None:
        clips = clips.head(params.max_clips)
    info = clips.set_index("clip_id")
    listed = read_listed_pairs(Path(clips_path).parent)      # a dataset's own pair list (ingest) wins
    pairs = dubbing_pairs(clips.clip_id, listed)
    shard_root = shards_path.parent
    quarantine = Quarantine(STAGE)
    rows, tasks = [], []
    for c in clips.clip_id:
        for protocol in params.protocols:
            audio = c if protocol == "reconstruction" else pairs.get(c)
            if audio is None:
                why = ("is not a video of ingest's dubbing pair list (or its audio clip is not a "
                       f"{params.split} clip)" if listed else f"dubbing needs at least two {params.split} clips")
                quarantine.add(f"{c}.{protocol}", "no_dubbing_audio", f"{c}: {why}", info.at[c, "source_path"])
                continue
            tasks.append((c, protocol, audio))
    videos = out_dir / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    for stale in videos.glob("*.mp4"):               # outputs of an earlier run must not linger
        stale.unlink()
    n_frames, seconds = 0, 0.0
    mels: dict[str, np.ndarray] = {}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc="generate_lipsync", unit="clip")
    for c, protocol, audio in tasks:
        out_id = f"{c}.{protocol}"
        t0 = time.perf_counter()
        try:
            shard = read_clip(c, ("face96", "mel"), root=shard_root)
            if audio not in mels:
                mels[audio] = np.asarray(read_clip(audio, ("mel",), root=shard_root).mel, np.float32)
            frames = np.stack(list(read_frames(info.at[c, "video_path"])))
            wav, sr = read_audio(info.at[audio, "audio_path"])
            face = shard.face96
            valid = np.asarray(shard.valid, bool) & np.isfinite(face.landmarks).all(axis=(1, 2))
            lm = np.where(valid[:, None, None], np.nan_to_num(face.landmarks), 0).astype(np.float32)
            n = min(len(frames), len(valid))
            result = generate_crops(generator, face.pixels[:n], lm[:n], valid[:n], mels[audio], train_params.data,
                                    float(info.at[c, "fps"]), params.seed, params.chunks_per_batch)
            if not result.generated.any():
                raise ReferenceError("no_generated_frames", f"{out_id}: no frame with a face and a full mel window of "
                                     f"{audio}'s audio")
            path = videos / f"{out_id}.mp4"
            start, end = write_output(frames[:n], result, face.transform[:n], wav, path, sample_rate=sr,
                                      fps=int(round(info.at[c, "fps"])))
            mark_synthetic(path, "lipsync", sha, [c, audio])
        except (ReferenceError, MediaError) as err:      # rejections are data: a reason code, never a crash
            quarantine.add(out_id, err.reason_code, str(err), info.at[c, "source_path"])
            continue
        finally:
            if bar is not None:
                bar.update(1)
        seconds += time.perf_counter() - t0
        n_frames += end - start
        refs = sorted({r for chunk in result.references.values() for r in chunk})
        rows.append({"clip_id": out_id, "family": "lipsync", "variant": params.variant, "seed": params.seed,
                     "protocol": protocol, "source_clip": c, "audio_clip": audio, "driver_clip": None,
                     "style_clip": None, "references": refs, "output_kind": "video", "output_path": path.as_posix(),
                     "fps": float(info.at[c, "fps"]), "frame_start": start, "frame_end": end,
                     "checkpoint_sha256": sha})
    if bar is not None:
        bar.close()
    import pandas as pd

    from headflow.manifest.schemas import GENERATED

    write_generated(pd.DataFrame(rows, columns=GENERATED.names), out_dir / "generated.parquet")
    metrics = {"outputs": len(rows), "quarantined": len(quarantine), "frames": n_frames,
               "frames_per_s": round(n_frames / seconds, 2) if seconds else None, "seconds": round(seconds, 1),
               "checkpoint_sha256": sha, "variant": params.variant}
    write_metrics(metrics_path, metrics)
    check_accounting([f"{c}.{p}" for c in clips.clip_id for p in params.protocols], [r["clip_id"] for r in rows],
                     [q["clip_id"] for q in quarantine.rows], STAGE)
    finish_quarantine(quarantine, out_dir / "quarantine.parquet", len(clips) * len(params.protocols),
                      params.max_reject_fraction)
    return metrics


__all__ = ["GeneratedCrops", "ReferenceError", "blur_mask_np", "frame_chunks", "generate_crops", "paste_back",
           "paste_clip", "run_stage", "write_output"]
