"""The `generate_head2headfs` stage: head reenactment with the person-specific generators (section 3.4
"Synthesis"; section 4 "Evaluation Metrics").

Per fine-tuned target speaker and driver clip (both of the held-out split):

* self (protocol "reenactment", driver = source): each of the target's clips other than its fine-tuning
  clip (frames never trained on), rendered from that clip's own NMFC. Ground truth exists. The paper holds
  out the last 100 frames of the fine-tuning video; the demo's clips are ~3 s, so whole held-out clips
  of the same person play that role.
* cross (protocol "reenactment", driver != source): every clip of another speaker of the split drives the
  target: NMFC re-rendered with the driver's expression and pose and the target's identity coefficients
  (`reenact.reenacted_nmfc`), background = the target's first fine-tuning frame. With one speaker in the
  split, the target's own other clips drive it through the same re-rendering path.

G runs one frame after the other over the whole driver clip; the two frames before frame 0 are the
target's first fine-tuning frame (background removed), NMFC frame 0 stands in for frames -2, -1. The
output (upsampled to the 256x256 aligned crop) is composited over the background with the predicted
mask and written as an mp4 in the aligned-crop geometry with the driver's audio; `generated.parquet`
follows the generation contract (frame_start 0, frame_end T: every frame). Each output's foreground mask
(and, in self, the real frames' masks) goes to a sidecar (`headflow.manifest.generated.masks_path`) for
the evaluation's `mask_iou` and `apd_masked`.

Baselines in the same run (`params.baselines`; the issue's "Measured and reported"), each a row of variant
`<variant>+<name>` with the same clip id, protocol, frame range, geometry, background and audio:

* retrieval (self only): frame t is the target's fine-tuning frame nearest to the driver's NMFC frame t
  (`retrieve_nearest`, L2 at G's resolution), with that frame's own foreground mask, composited like G's.
* random_init (self and cross): the `finetune_head2headfs` random-initialisation generator
  (`<speaker>/random_init/generator.pt`, table 2's ablation) rendered exactly as the system.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from headflow.generators.head2headfs.data import remove_background, to_unit
from headflow.generators.head2headfs.model import Head2HeadGenerator, generate_sequence

STAGE = "generate_head2headfs"
OUTPUT_SIZE = 256
"""Side of the aligned crop the outputs are written in (the shards' crop256 = the faces stage's aligned crop)."""


@torch.no_grad()
def render_sequence(generator: Head2HeadGenerator, nmfc: np.ndarray, start: np.ndarray | None,
                    chunk: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """G over a whole clip, one frame after the other.

    Args:
        generator: a personalised G (eval mode).
        nmfc: (T, S, S, 3) uint8 NMFC frames.
        start: (2, S, S, 3) uint8 frames before frame 0 (None: zeros).
        chunk: frames per `generate_sequence` call (the last two outputs carry over).

    Returns:
        frames (T, S, S, 3) uint8 and masks (T, S, S) float32 in [0, 1].
    """
    x = to_unit(nmfc)[None]                                                  # (1, T, 3, S, S)
    x = torch.cat([x[:, :1], x[:, :1], x], 1)                                # x_0 stands in for x_-2, x_-1
    prev = to_unit(start)[None] if start is not None else None
    frames, masks = [], []
    T = len(nmfc)
    chunk = max(2, chunk)
    for a in range(0, T, chunk):
        b = min(T, a + chunk)
        y, m = generate_sequence(generator, x[:, a:b + 2], None, prev)
        frames.append(y[0])
        masks.append(m[0])
        done = torch.cat(frames, 0)
        prev = (done[-2:] if len(done) >= 2 else torch.cat([prev[0, 1:] if prev is not None else done, done], 0))[None]
    y = torch.cat(frames, 0)
    m = torch.cat(masks, 0)[:, 0]
    return ((y.movedim(1, -1) + 1) * 127.5).round().clamp(0, 255).byte().numpy(), m.numpy()


def composite(frames: np.ndarray, masks: np.ndarray, background: np.ndarray, size: int = OUTPUT_SIZE) -> np.ndarray:
    """Generated frames over a background with the predicted masks, at `size`.

    Args:
        frames: (T, S, S, 3) uint8; masks (T, S, S) float in [0, 1].
        background: (T, size, size, 3) or (size, size, 3) uint8.

    Returns:
        (T, size, size, 3) uint8 = m * frame + (1 - m) * background (frames and masks upsampled bilinearly).
    """
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for t in range(len(frames)):
        f = cv2.resize(frames[t], (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        m = cv2.resize(masks[t], (size, size), interpolation=cv2.INTER_LINEAR)[..., None]
        bg = background[t] if background.ndim == 4 else background
        out[t] = np.clip(m * f + (1 - m) * bg.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)
    return out


@torch.no_grad()
def retrieve_nearest(query: np.ndarray, bank: np.ndarray, size: int | None = None, chunk: int = 256) -> np.ndarray:
    """Index of the nearest bank NMFC image for every query NMFC image (L2 distance), vectorised.

    The retrieval baseline of the issue: the training frame whose NMFC (pose and expression rendering) is
    closest to the driving one. The distance is the Euclidean distance between the NMFC images as float
    vectors in 0..255 at G's resolution S (the images as given; `size` downsamples both by area first),
    computed with one `torch.cdist` per chunk of queries; ties go to the lowest bank index.

    Args:
        query: (T, S, S, 3) uint8 NMFC frames to match.
        bank: (N, S, S, 3) uint8 NMFC frames to choose from (N >= 1).
        size: side both are resized to before the distance (None: S, no resizing).
        chunk: queries per `cdist` call.

    Returns:
        (T,) int64 indices into `bank`.

    Raises:
        ValueError: an empty bank, or query and bank of different image shapes.
    """
    if len(bank) == 0:
        raise ValueError("retrieve_nearest: the bank of NMFC frames is empty; the target needs fine-tuning frames "
                         "with a fit")
    if query.shape[1:] != bank.shape[1:]:
        raise ValueError(f"retrieve_nearest: query frames {query.shape[1:]} and bank frames {bank.shape[1:]} must "
                         "have the same (S, S, 3) shape; resize both to G's resolution")

    def flat(a: np.ndarray) -> torch.Tensor:
        if size is not None and size != a.shape[1]:
            a = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in a])
        return torch.from_numpy(np.ascontiguousarray(a)).reshape(len(a), -1).double()

    b = flat(bank)
    q = flat(query)
    # double precision: exact for uint8 images (sums of squares < 2^53), so an equal frame is at distance 0
    return torch.cat([torch.cdist(q[i:i + chunk], b).argmin(1) for i in range(0, len(q), chunk)]).numpy()


def retrieval_frames(query_nmfc: np.ndarray, bank_frames: np.ndarray, bank_nmfc: np.ndarray,
                     bank_masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The retrieval baseline's frames and masks for a driving NMFC sequence (`retrieve_nearest` at G's size).

    Args:
        query_nmfc: (T, S, S, 3) uint8 driving NMFC.
        bank_frames, bank_nmfc: (N, S, S, 3) uint8 fine-tuning frames of the target and their NMFC.
        bank_masks: (N, S, S) bool foreground masks of those frames.

    Returns:
        frames (T, S, S, 3) uint8 and masks (T, S, S) float32 in {0, 1}, as `render_sequence` returns G's.
    """
    idx = retrieve_nearest(query_nmfc, bank_nmfc)
    return bank_frames[idx], bank_masks[idx].astype(np.float32)


def output_masks(masks: np.ndarray, size: int = OUTPUT_SIZE) -> np.ndarray:
    """(T, S, S) float masks in [0, 1] -> (T, size, size) bool, upsampled as `composite` does, then > 0.5."""
    return np.stack([cv2.resize(m.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR) > 0.5
                     for m in masks])


def write_masks(output_path: Path, pred: np.ndarray, reference: np.ndarray | None) -> Path:
    """The mask sidecar of one output (`headflow.manifest.generated.masks_path`): pred (and reference) (T, 256, 256)
    bool for frames [0, T)."""
    from headflow.manifest.generated import masks_path

    path = masks_path(output_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {} if reference is None else {"reference": reference.astype(bool)}
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, pred=pred.astype(bool), frame_start=0, frame_end=len(pred), **extra)
    tmp.replace(path)
    return path


def output_row(task: dict, variant: str, path: Path, n_frames: int, sha: str) -> dict:
    """The `generated.parquet` row of one output (system or baseline) of a task (the generation contract)."""
    source = task["driver"] if task["kind"] == "self" else task["target_clip"]
    return {"clip_id": f"{task['driver']}.{task['speaker']}.{task['kind']}", "family": "head2headfs",
            "variant": variant, "seed": 0, "protocol": "reenactment", "source_clip": source,
            "audio_clip": task["driver"], "driver_clip": task["driver"], "style_clip": None, "references": [],
            "output_kind": "video", "output_path": str(path), "fps": 25.0, "frame_start": 0, "frame_end": n_frames,
            "checkpoint_sha256": sha}


def plan_tasks(rows, targets: list[dict], protocols: list[str], max_clips: int | None) -> list[dict]:
    """(target speaker, driver clip, kind) for every output, in a fixed order.

    Args:
        rows: the split's clips (clip_id, speaker_id) in id order.
        targets: finetune's `targets.json` entries (speaker, clip_id, generator path...).
        protocols: "self" and/or "cross".
    """
    tasks = []
    by_speaker = rows.sort_values("clip_id").groupby("speaker_id").clip_id.apply(list).to_dict()
    for t in targets:
        own = [c for c in by_speaker.get(t["speaker"], []) if c != t["clip_id"]]
        others = [c for s, cs in sorted(by_speaker.items()) if s != t["speaker"] for c in cs]
        plans = {"self": own, "cross": others or own}
        for kind in protocols:
            for c in plans[kind][:max_clips]:
                tasks.append({"speaker": t["speaker"], "target_clip": t["clip_id"], "driver": c, "kind": kind})
    return tasks


def run_stage(params, init_params, progress: bool = True, *, clips_path: Path | None = None,
              faces_path: Path | None = None, audio_path: Path | None = None, shards_path: Path | None = None,
              labels_path: Path | None = None, fits_path: Path | None = None,
              model_dir: Path | None = None, out_dir: Path | None = None, metrics_path: Path | None = None) -> dict:
    """The `generate_head2headfs` stage (module docstring).

    Bad inputs are quarantine rows with a reason: a driver without a fit or whose NMFC and crop frame counts
    disagree (`no_fit`, `frame_count_mismatch`), undecodable audio (`MediaError` codes). A person-specific
    generator of another resolution or width than the train_head2headfs params fails with both named.

    Raises:
        ValueError: a generator file of another size than the params.
        headflow.manifest.quarantine.TooManyRejected: too many outputs failed.
    """
    import json
    import time

    import pandas as pd

    from headflow.catalog import CATALOG, expert_clips
    from headflow.generators.head2headfs.data import ClipError
    from headflow.generators.head2headfs.model import file_sha256, load_person
    from headflow.generators.head2headfs.reenact import read_fit, reenacted_nmfc_at
    from headflow.generators.head2headfs.train import load_clip
    from headflow.manifest import Quarantine
    from headflow.manifest.generated import mark_synthetic, write_generated
    from headflow.media import MediaError
    from headflow.media.normalize import encode_video, read_audio
    from headflow.morphable.registry import load_model
    from headflow.stage import finish_quarantine, write_metrics

    clips_path = Path(clips_path or CATALOG.manifest("ingest", "clips"))
    faces_path = Path(faces_path or CATALOG.manifest("faces", "faces"))
    audio_path = Path(audio_path or CATALOG.manifest("audio_features", "audio_features"))
    shards_path = Path(shards_path or CATALOG.manifest("shards", "shards"))
    labels_path = Path(labels_path or CATALOG.manifest("shard_labels", "shard_labels"))
    fits_path = Path(fits_path or CATALOG.manifest("fit3dmm", "fits"))
    model_dir = Path(model_dir or CATALOG.model("finetune_head2headfs", "generators"))
    out_dir = Path(out_dir or CATALOG.folder(STAGE))
    metrics_path = Path(metrics_path or CATALOG.metrics(STAGE))

    torch.set_num_threads(params.threads)
    targets = json.loads((model_dir / "targets.json").read_text())
    clips = expert_clips(clips_path, faces_path, audio_path)
    info = clips.set_index("clip_id")
    split = clips[clips.split == _split_of(targets, shards_path)][["clip_id", "speaker_id"]]
    fits = pd.read_parquet(fits_path).set_index("clip_id")
    tasks = plan_tasks(split, targets, params.protocols, params.max_clips)
    if "random_init" in params.baselines and any("random_init_sha256" not in t for t in targets):
        raise ValueError(f"generate_head2headfs.baselines has random_init but {model_dir / 'targets.json'} lists no "
                         "random-initialisation generator; add random_init to finetune_head2headfs.baselines (and "
                         "re-run it) or remove it from generate_head2headfs.baselines")
    S = init_params.model.image_size
    quarantine = Quarantine(STAGE)
    rows, system_rows, n_frames, seconds = [], [], 0, 0.0
    from collections import defaultdict

    baseline_seconds: dict[str, float] = defaultdict(float)
    video_dir = out_dir / "videos"
    video_dir.mkdir(parents=True, exist_ok=True)
    people: dict[str, tuple] = {}
    model = None
    for task in tasks:
        out_id = f"{task['driver']}.{task['speaker']}.{task['kind']}"
        try:
            if task["speaker"] not in people:
                g, state = load_person(model_dir / task["speaker"] / "generator.pt", init_params.model)
                tclip = load_clip(task["target_clip"], S, init_params.masks, shards_path.parent, labels_path.parent)
                first = int(np.flatnonzero(tclip.valid)[0])
                start = np.repeat(remove_background(tclip.frames[first:first + 1], tclip.masks[first:first + 1]), 2, 0)
                big = load_clip(task["target_clip"], OUTPUT_SIZE, init_params.masks, shards_path.parent,
                                labels_path.parent, end=first + 1).frames[first]
                entry = next(t for t in targets if t["speaker"] == task["speaker"])
                end = int(entry.get("frames", len(tclip.valid)))
                keep = np.flatnonzero(tclip.valid[:end])
                bank = (tclip.frames[keep], tclip.nmfc[keep], tclip.masks[keep])
                rand = None
                if "random_init" in params.baselines:
                    rpath = model_dir / task["speaker"] / "random_init" / "generator.pt"
                    rand = (load_person(rpath, init_params.model)[0], file_sha256(rpath))
                people[task["speaker"]] = (g, start, big, file_sha256(model_dir / task["speaker"] / "generator.pt"),
                                           bank, rand)
            g, start, target_bg, sha, bank, rand = people[task["speaker"]]
            t0 = time.perf_counter()
            driver = load_clip(task["driver"], OUTPUT_SIZE, init_params.masks, shards_path.parent, labels_path.parent)
            if task["kind"] == "self":
                nmfc = np.stack([cv2.resize(f, (S, S), interpolation=cv2.INTER_NEAREST) for f in driver.nmfc])
                background = driver.frames
            else:
                if model is None:
                    model = load_model(params.morphable_model, Path.cwd())
                for c in (task["target_clip"], task["driver"]):
                    if c not in fits.index:
                        raise ClipError("no_fit", f"{c}: no fit3dmm fit (fits.parquet)")
                target_fit = read_fit(fits.at[task["target_clip"], "fit_path"])
                driver_fit = read_fit(fits.at[task["driver"], "fit_path"])
                # rendered at G's resolution straight away (numpy rasteriser: no numba compilation)
                nmfc, _ = reenacted_nmfc_at(model, target_fit, driver_fit, S)
                if len(nmfc) != len(driver.frames):
                    raise ClipError("frame_count_mismatch", f"{task['driver']}: {len(nmfc)} fitted frames, "
                                    f"{len(driver.frames)} crop frames")
                background = target_bg
            reference = driver.masks.astype(bool) if task["kind"] == "self" else None
            wav, sr = read_audio(info.at[task["driver"], "audio_path"])
            T = len(nmfc)
            a1 = int(round(T * sr / 25))
            audio = np.zeros(a1, np.float32)
            audio[:min(a1, len(wav))] = wav[:a1]
            outputs = [(params.variant, "", lambda: render_sequence(g, nmfc, start), sha)]
            if "retrieval" in params.baselines and task["kind"] == "self":
                outputs.append((f"{params.variant}+retrieval", ".retrieval",
                                lambda: retrieval_frames(nmfc, *bank), sha))
            if rand is not None:
                outputs.append((f"{params.variant}+random_init", ".random_init",
                                lambda: render_sequence(rand[0], nmfc, start), rand[1]))
            written = []
            for variant, suffix, make, vsha in outputs:
                t1 = time.perf_counter()
                frames, masks = make()
                video = composite(frames, masks, background)
                path = video_dir / f"{out_id}{suffix}.mp4"
                encode_video(list(video), path, fps=25, crf=params.crf, audio=audio, sample_rate=sr, threads=1)
                mark_synthetic(path, "head2headfs", vsha, [task["target_clip"], task["driver"]])
                write_masks(path, output_masks(masks), reference)
                written.append(output_row(task, variant, path, T, vsha))
                if variant == params.variant:
                    seconds += time.perf_counter() - t0
                    n_frames += T
                else:
                    baseline_seconds[variant.split("+", 1)[1]] += time.perf_counter() - t1
        except (ClipError, MediaError, FileNotFoundError) as err:
            if isinstance(err, FileNotFoundError) and "generator" in str(err):
                raise
            quarantine.add(out_id, getattr(err, "reason_code", "missing_input"), str(err),
                           str(info.at[task["driver"], "source_path"]) if task["driver"] in info.index else "")
            continue
        system_rows.append(written[0])
        rows.extend(written)
    from headflow.manifest.quarantine import check_accounting
    from headflow.manifest.schemas import GENERATED

    check_accounting([f"{t['driver']}.{t['speaker']}.{t['kind']}" for t in tasks],
                     [r["clip_id"] for r in system_rows], [q["clip_id"] for q in quarantine.rows], STAGE)
    write_generated(pd.DataFrame(rows, columns=GENERATED.names), out_dir / "generated.parquet")
    metrics = {"outputs": len(system_rows), "quarantined": len(quarantine), "frames": n_frames,
               "frames_per_s": round(n_frames / seconds, 2) if seconds else None, "resolution": S,
               "self": sum(t["kind"] == "self" for t in tasks), "cross": sum(t["kind"] == "cross" for t in tasks),
               "baselines": list(params.baselines), "baseline_outputs": len(rows) - len(system_rows),
               **{f"{b}_seconds": round(v, 2) for b, v in sorted(baseline_seconds.items())}}
    write_metrics(metrics_path, metrics)
    finish_quarantine(quarantine, out_dir / "quarantine.parquet", len(tasks), params.max_reject_fraction)
    return metrics


def _split_of(targets: list[dict], shards_path: Path) -> str:
    """The split the fine-tuning targets came from (their clips' split in shards.parquet; "test" if none)."""
    import pandas as pd

    if not targets:
        return "test"
    s = pd.read_parquet(shards_path, columns=["clip_id", "split"]).set_index("clip_id").split
    return str(s.get(targets[0]["clip_id"], "test"))
