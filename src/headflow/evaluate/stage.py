"""The `evaluate` stage: ground truth, baselines and every generated output, scored on the same clips.

    python -m stages.evaluate            (dvc repro evaluate)

Reads (every path from `headflow.catalog`) ingest's clips of the `evaluate.split` split that faces
tracked and audio_features gave a mel (`catalog.expert_clips`), the faces boxes / landmarks / crop
transforms, the mels, the judge (`train_judge`) and the loss expert (`train_expert`), and the
`generated.parquet` of every `generate_<family>` stage in the catalog. Per source clip (one job,
`workers` processes): decode its frames once, build the reference systems of each task
(`headflow.evaluate.baselines`), check and decode each generated output of that clip
(`headflow.evaluate.outputs`), score everything (`headflow.evaluate.scoring`). Then aggregates with
bootstrap intervals, paired comparisons, the report.

Writes `data/interim/evaluate/{per_clip,aggregates,comparisons,quarantine}.parquet`, `meta.json`,
`previews.npy` + `previews.json` (the report's side-by-side crops), `reports/metrics/evaluate.json`
(flat keys `<protocol>/<system>[:<variant>]/<metric>` and `speed/<group>_frames_per_s`),
`reports/plots/evaluate.json` and `reports/report.html`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from headflow.evaluate.aggregate import aggregate, compare, set_metrics
from headflow.evaluate.baselines import BASELINES, Task, canonical_tasks, reference_frames
from headflow.catalog import CATALOG, expert_clips
from headflow.evaluate.params import EvaluateParams
from headflow.manifest import Quarantine, check_accounting, read_manifest, write_json
from headflow.manifest.schemas import EVAL_METRICS, PER_CLIP
from headflow.parallel import map_jobs
from headflow.stage import log, write_metrics, write_validated

STAGE = "evaluate"
JUDGE = CATALOG.model("train_judge", "judge") / "last.pt"
"""The sync judge's checkpoint: lse_d, lse_c, offset."""
LOSS_EXPERT = CATALOG.model("train_expert", "expert") / "last.pt"
"""The checkpoint of the expert generators train against: lse_c_loss_expert."""
UNAVAILABLE = {
    "fid_inception": "no Inception weights are registered or provided (`headflow models list`); never computed "
                     "from random weights",
    "lpips": "no LPIPS weights are registered or provided; never computed from random weights",
}
"""Metrics that need weights headflow does not have, with the reason the report prints."""
NOT_YET = ("pose_err_deg", "style_acc")
"""Per-clip columns that stay null until the family that needs them lands (head pose, style labels);
`apd_masked` and `mask_iou` come from mask sidecars (`mask_scores`, head2headfs)."""
PLOT_METRICS = ("lse_c", "lse_d", "lse_c_loss_expert", "ssim", "psnr_masked", "cpbd", "lap_var", "csim", "m_lmd")


@dataclass
class ClipSpec:
    """What a worker needs to load one real clip: media, faces geometry, frames to decode."""

    clip_id: str
    video_path: str
    boxes: np.ndarray
    valid: np.ndarray
    m256: np.ndarray
    n_decode: int
    sample_range: tuple[int, int] | None = None


@dataclass
class ClipJob:
    """All tasks whose frames follow one real clip, with every system to score on them."""

    frame: ClipSpec
    items: list[tuple[Task, str, dict | None]]
    """(task, system, generated row or None for a reference system)."""
    identities: dict[str, ClipSpec] = field(default_factory=dict)
    """Source clips of cross-identity tasks (reenactment with another driver)."""
    mel_paths: dict[str, str] = field(default_factory=dict)
    wav_paths: dict[str, str] = field(default_factory=dict)
    params: EvaluateParams = field(default_factory=EvaluateParams)
    root: str = "."
    preview: bool = False
    checkpoints: tuple[str, str] = (str(JUDGE), str(LOSS_EXPERT))
    """(judge, loss expert) checkpoint paths, relative to `root` unless absolute."""


_NETS: dict[tuple, object] = {}


def _nets(checkpoints: tuple[str, str], syncnet: str, root: str):
    """The run's sync networks, loaded once per process."""
    from headflow.evaluate.scoring import load_sync_nets

    key = (*checkpoints, syncnet, root)
    if key not in _NETS:
        _NETS[key] = load_sync_nets(*checkpoints, syncnet, Path(root))
    return _NETS[key]


def _real(spec: ClipSpec, root: Path):
    from headflow.evaluate.scoring import RealClip
    from headflow.media import read_frames

    frames = []
    for frame in read_frames(root / spec.video_path):
        frames.append(frame)
        if len(frames) >= spec.n_decode:
            break
    if len(frames) < spec.n_decode:
        raise RuntimeError(f"{spec.video_path}: decoded {len(frames)} frames, the faces stage has {len(spec.boxes)} "
                           f"and the tasks need {spec.n_decode}; re-run `dvc repro faces`")
    return RealClip(spec.clip_id, frames, spec.boxes, spec.valid, spec.m256, spec.sample_range)


def _row(task: Task, system: str, gen: dict | None, metrics: dict | None, status: str = "ok",
         reason: str | None = None, note: str | None = None) -> dict:
    row = {"system": system, "family": gen["family"] if gen else None, "variant": gen["variant"] if gen else None,
           "protocol": task.protocol, "clip_id": task.clip_id, "seed": int(gen["seed"]) if gen else None}
    row.update({m: (metrics or {}).get(m) for m in EVAL_METRICS})
    row.update(audio_clip=task.audio_clip, frame_start=task.frame_start, frame_end=task.frame_end,
               n_frames=task.n_frames, status=status, reason_code=reason, note=note,
               output_path=gen["output_path"] if gen else None)
    return row


def score_clip_job(job: ClipJob) -> dict:
    """Score every system of one real clip's tasks (runs in a worker process)."""
    import torch

    from headflow.evaluate.outputs import OutputRejected, load_output
    from headflow.evaluate.scoring import NoFace, Scorer
    from headflow.media import read_audio

    torch.set_num_threads(job.params.threads)
    root = Path(job.root)
    p = job.params
    t0 = time.perf_counter()
    real = _real(job.frame, root)
    identities = {c: _real(s, root) for c, s in job.identities.items()}
    decode_s = time.perf_counter() - t0
    mels = {c: np.load(root / path) for c, path in job.mel_paths.items()}
    scorer = Scorer(_nets(job.checkpoints, p.syncnet, job.root), mels, lambda c: read_audio(root / job.wav_paths[c]), p.sample_frames,
                    p.max_offset, p.min_pairs)
    scorer.timings["decode"] = [float(sum(len(r.frames) for r in [real, *identities.values()])), decode_s]
    rows, quarantine, previews, descriptors = [], [], {}, defaultdict(list)
    targets = defaultdict(list)   # head2headfs: self-reenactment (fake, real) descriptors
    for task, system, gen in job.items:
        identity = identities.get(task.source_clip) if task.source_clip != task.frame_clip else None
        label = system if gen is None else f"{system}:{gen['variant']}"
        if gen is None:
            frame_fn, geometry = reference_frames(system, real.frames, real.m96), "frame"
            metrics, notes, extras = scorer.score(real, task, frame_fn, geometry, identity, None, job.preview)
        else:
            try:
                frame_fn, geometry = load_output(_Row(gen), task, real.hw, root, p.fps_tolerance)
                metrics, notes, extras = scorer.score(real, task, frame_fn, geometry, identity,
                                                      p.min_face_fraction, job.preview)
                metrics = {**metrics, "m_lmd_3d": landmarks3d_score(gen["output_path"], task, root)}   # styletalk
                metrics.update(mask_scores(gen["output_path"], task, real, frame_fn, geometry, root))  # head2headfs
            except (OutputRejected, NoFace) as err:
                code = getattr(err, "reason_code", "no_face")
                msg = getattr(err, "message", str(err))
                rows.append(_row(task, system, gen, None, "failed", code, msg))
                quarantine.append((gen, code, msg))
                continue
            except Exception as err:  # noqa: BLE001 - a generated output must never crash the evaluation
                msg = f"{type(err).__name__}: {err}"
                rows.append(_row(task, system, gen, None, "failed", "scoring_error", msg))
                quarantine.append((gen, "scoring_error", msg))
                continue
        rows.append(_row(task, system, gen, metrics, note="; ".join(notes) or None))
        descriptors[(system, gen["variant"] if gen else "", task.protocol)].append(extras["descriptors"])
        if gen is not None and task.protocol == "reenactment" and "real_descriptors" in extras:   # head2headfs
            targets[(system, gen["variant"], task.protocol)].append((extras["descriptors"], extras["real_descriptors"]))
        if job.preview and "preview" in extras:
            previews[f"{task.clip_id}|{task.protocol}|{label}"] = extras["preview"]
    return {"rows": rows, "quarantine": quarantine, "timings": dict(scorer.timings), "previews": previews,
            "descriptors": {k: np.concatenate(v) for k, v in descriptors.items()},
            "targets": {k: (np.concatenate([f for f, _ in v]), np.concatenate([r for _, r in v]))
                        for k, v in targets.items()}}


# --- styletalk (issue 18) ---
def landmarks3d_score(output_path: str, task: Task, root: Path = Path(".")) -> float | None:
    """`m_lmd_3d` of a reconstruction output: M-LMD (`metrics.landmarks.m_lmd`, pixels of the 256 aligned
    crop) between its sidecar's projected landmarks and the clip's fitted ones over the task's scored frames
    (`headflow.manifest.generated.landmarks3d_path`). None: another protocol, or no sidecar.

    Raises:
        ValueError: a sidecar that does not cover the task's frames (the message names it).
    """
    from headflow.manifest.generated import landmarks3d_path
    from headflow.metrics.landmarks import m_lmd

    path = Path(root) / landmarks3d_path(output_path)
    if task.protocol != "reconstruction" or not path.is_file():
        return None
    with np.load(path) as z:
        s, e = int(z["frame_start"]), int(z["frame_end"])
        if s > task.frame_start or e < task.frame_end:
            raise ValueError(f"{path}: landmarks of frames [{s}, {e}) do not cover the scored [{task.frame_start}, "
                             f"{task.frame_end})")
        keep = slice(task.frame_start - s, task.frame_end - s)
        return float(m_lmd(z["landmarks68"][keep], z["landmarks68_fit"][keep]))
# --- end styletalk ---


# --- head2headfs (issue 17): masked APD and mask IoU from the mask sidecars ---
def mask_iou_frames(pred: np.ndarray, reference: np.ndarray) -> float | None:
    """Mean per-frame intersection over union of two (T, H, W) bool foreground masks (Head2HeadFS fig. 6).

    Frames where both masks are empty (IoU undefined) are left out; None when every frame is.
    Value in [0, 1]; 1 for equal non-empty masks.
    """
    p, r = np.asarray(pred, bool), np.asarray(reference, bool)
    inter = (p & r).sum(axis=(1, 2))
    union = (p | r).sum(axis=(1, 2))
    ok = union > 0
    return float(np.mean(inter[ok] / union[ok])) if ok.any() else None


def mask_scores(output_path: str, task: Task, real, frame_fn: Callable[[int], np.ndarray], geometry: str,
                root: Path = Path(".")) -> dict:
    """`mask_iou` and `apd_masked` of an output with a mask sidecar (`headflow.manifest.generated.masks_path`)
    that carries the real frames' masks (`reference`), over the task's scored frames; {} otherwise (no
    sidecar, no reference, or a task without ground truth).

    mask_iou: `mask_iou_frames` of the output's predicted masks and the real frames' masks. apd_masked: the
    average pixel distance of Head2HeadFS (`headflow.metrics.image.apd`: per-pixel RGB Euclidean distance,
    0-255 units) between the output's and the real clip's 256x256 aligned crops over the real foreground
    pixels (the paper's table 2 "masked average pixel distance"; the whole-crop `apd` column is computed on
    the 96 face crop by `Scorer.score`).

    Args:
        output_path: the generated row's path (relative to `root` unless absolute).
        task: its task; real: its frame clip (`scoring.RealClip`); frame_fn / geometry: as `Scorer.score`'s.

    Raises:
        ValueError: a sidecar that does not cover the task's frames or is not 256x256 (the message names it).
    """
    from headflow.evaluate.crops import ALIGNED_SIZE, cut
    from headflow.manifest.generated import masks_path
    from headflow.metrics.image import apd

    path = Path(root) / masks_path(output_path)
    if not task.has_target or not path.is_file():
        return {}
    with np.load(path) as z:
        if "reference" not in z.files:
            return {}
        s, e = int(z["frame_start"]), int(z["frame_end"])
        if s > task.frame_start or e < task.frame_end:
            raise ValueError(f"{path}: masks of frames [{s}, {e}) do not cover the scored [{task.frame_start}, "
                             f"{task.frame_end})")
        keep = slice(task.frame_start - s, task.frame_end - s)
        pred, ref = z["pred"][keep].astype(bool), z["reference"][keep].astype(bool)
    if pred.shape[1:] != (ALIGNED_SIZE, ALIGNED_SIZE) or ref.shape != pred.shape:
        raise ValueError(f"{path}: pred {pred.shape} and reference {ref.shape} must both be (T, {ALIGNED_SIZE}, "
                         f"{ALIGNED_SIZE}) masks of the aligned crop")
    frames = range(task.frame_start, task.frame_end)
    to256 = (lambda f: np.eye(3)[:2]) if geometry == "aligned" else (lambda f: real.m256[f])
    fake = np.stack([cut(frame_fn(f), to256(f), ALIGNED_SIZE) for f in frames])
    gt = np.stack([cut(real.frames[f], real.m256[f], ALIGNED_SIZE) for f in frames])
    out = {"mask_iou": mask_iou_frames(pred, ref)}
    out["apd_masked"] = apd(fake, gt, ref) if ref.any() else None
    return out


def pool_targets(results: Sequence[dict]) -> dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]]:
    """The self-reenactment descriptor pairs of every clip job's result (`score_clip_job`'s "targets"),
    pooled per (system, variant, protocol): (fake (N, 128), real (N, 128)), row i of both from the same
    task and sampled frame (the real frame is the ground truth `apd` is computed against). Cross-reenactment
    tasks (no ground truth) are not in it; a job result without "targets" contributes nothing.
    """
    pooled: dict = defaultdict(list)
    for res in results:
        for k, pair in res.get("targets", {}).items():
            pooled[k].append(pair)
    return {k: (np.concatenate([f for f, _ in v]), np.concatenate([r for _, r in v])) for k, v in pooled.items()}
# --- end head2headfs ---


class _Row:
    """Attribute access to a generated row dict (what `load_output` reads)."""

    def __init__(self, d: dict):
        self.__dict__.update(d)


def _plain(v):
    """A manifest value as plain Python: null-likes -> None, arrays -> lists."""
    if isinstance(v, (list, tuple, np.ndarray)):
        return [int(x) for x in v]
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    return v.item() if isinstance(v, np.generic) else v


def _gen_key(row: dict) -> str:
    return f"{row['family']}/{row['variant']}/{row['seed']}/{row['clip_id']}"


def read_generated_manifests(paths: Sequence[Path], root: Path) -> tuple[list[dict], list[tuple[dict, str, str]]]:
    """Every row of every generated.parquet in `paths` (relative to `root` unless absolute); rows of a
    manifest that breaks the contract come back as (row, "invalid_manifest", failures) instead.

    Raises:
        FileNotFoundError: a manifest is missing (its generate stage has not run).
    """
    from headflow.validation import validate_manifest

    rows, invalid = [], []
    for path in paths:
        df = read_manifest(root / path, "generated")
        report = validate_manifest(df, "generated", raise_on_failure=False)
        records = [{k: _plain(v) for k, v in r.items()} for r in df.to_dict("records")]
        if report.success:
            rows += records
        else:
            why = f"{path}: " + " | ".join(report.failures)
            invalid += [(r, "invalid_manifest", why) for r in records]
        log.info("generated outputs: %s (%d rows%s)", path, len(records), "" if report.success else ", INVALID")
    return rows, invalid


def plan_jobs(params: EvaluateParams, clips: pd.DataFrame, landmarks: pd.DataFrame, generated: list[dict],
              root: Path, checkpoints: tuple[str, str] = (str(JUDGE), str(LOSS_EXPERT)),
              listed_pairs: dict[str, str] | None = None,
              ) -> tuple[list[ClipJob], list[tuple[dict, str, str]], list[dict], list[tuple[str, str]]]:
    """Tasks, systems and jobs of a run (`checkpoints`: the judge's and the loss expert's, for the workers;
    `listed_pairs`: ingest's dubbing pair list, `headflow.manifest.generated.read_listed_pairs`).

    Returns:
        (jobs, rejected generated rows (row, reason_code, message), failure rows for tasks a system did
        not generate, skipped canonical tasks (clip, reason)).
    """
    from headflow.manifest.generated import scored_range

    info = clips.set_index("clip_id")
    n_video = dict(zip(clips.clip_id, clips.n_frames))
    n_mel = {c: int(np.load(root / p, mmap_mode="r").shape[0]) for c, p in zip(clips.clip_id, clips.mel_path)}
    tasks, skipped = canonical_tasks(n_video, n_mel, params.protocols, params.frame_start, listed_pairs)
    canonical = {(t.protocol, t.source_clip): t for t in tasks}
    items: dict[str, list] = defaultdict(list)
    for t in tasks:
        for system in BASELINES[t.protocol]:
            items[t.frame_clip].append((t, system, None))
    rejected, not_generated = [], []
    produced: dict[tuple, set] = defaultdict(set)   # (family, variant, seed, protocol) -> source clips
    seen: dict[tuple, set] = defaultdict(set)       # (family, variant, seed, protocol) -> task clip ids
    for row in sorted(generated, key=_gen_key):
        named = [row["source_clip"], row.get("audio_clip"), row.get("driver_clip"), row.get("style_clip")]
        outside = [c for c in named if c is not None and c not in info.index]
        if outside:
            rejected.append((row, "not_in_evaluation_set", f"clip(s) {outside} are not {params.split}-split clips "
                             "the evaluation scores (or did not pass faces/audio_features)"))
            continue
        protocol = row["protocol"]
        if protocol in ("reconstruction", "dubbing"):
            task = canonical.get((protocol, row["source_clip"]))
            if task is None:
                rejected.append((row, "not_in_evaluation_set", f"no {protocol} task for {row['source_clip']} "
                                 f"(evaluate.protocols = {params.protocols})"))
                continue
            if row["audio_clip"] != task.audio_clip:
                rejected.append((row, "task_mismatch", f"{protocol} of {row['source_clip']} is scored with the audio "
                                 f"of {task.audio_clip} (headflow.manifest.generated.dubbing_pairs), got {row['audio_clip']}"))
                continue
        else:
            frame_clip = row["driver_clip"] or row["source_clip"]
            audio = row.get("audio_clip")
            s, e = scored_range(n_video[frame_clip], n_mel[audio] if audio else 10 ** 9, params.frame_start)
            e = min(e, n_video[frame_clip])
            task = Task(protocol, row["clip_id"], row["source_clip"], audio, frame_clip,
                        protocol == "reenactment" and frame_clip == row["source_clip"], s, e)
        key = (row["family"], row["variant"], int(row["seed"]), protocol)
        if task.clip_id in seen[key]:
            rejected.append((row, "duplicate_output", f"{row['family']}:{row['variant']} seed {row['seed']} has another "
                             f"{protocol} output for {task.clip_id}; one output per task and seed"))
            continue
        seen[key].add(task.clip_id)
        produced[key].add(row["source_clip"])
        items[task.frame_clip].append((task, row["family"], row))
    for (family, variant, seed, protocol), done in sorted(produced.items()):
        for t in tasks:
            if t.protocol == protocol and t.source_clip not in done:
                gen = {"family": family, "variant": variant, "seed": seed, "output_path": None}
                not_generated.append(_row(t, family, gen, None, "failed", "not_generated",
                                          f"{family}:{variant} seed {seed} has {protocol} outputs but none for "
                                          f"{t.source_clip}"))
    by_clip = dict(tuple(landmarks.groupby("clip_id")))

    def spec(c: str, n_decode: int) -> ClipSpec:
        lm = by_clip[c].sort_values("frame")
        own = scored_range(n_video[c], n_mel[c], params.frame_start)
        return ClipSpec(c, info.at[c, "video_path"], np.stack(lm["box"].to_numpy()).astype(np.float64),
                        lm["valid"].to_numpy(bool), np.stack(lm["crop_transform"].to_numpy()).reshape(-1, 2, 3),
                        n_decode, own if own[1] > own[0] else None)

    jobs = []
    preview_clips = set(sorted(items)[:params.report_clips])
    for c in sorted(items):
        its = items[c]
        n_decode = max(t.frame_end for t, _, _ in its)
        idents = {t.source_clip for t, _, _ in its if t.source_clip != t.frame_clip}
        audio = {t.audio_clip for t, _, _ in its if t.audio_clip is not None}
        jobs.append(ClipJob(spec(c, n_decode), its, {i: spec(i, n_video[i]) for i in idents},
                            {a: info.at[a, "mel_path"] for a in audio}, {a: info.at[a, "audio_path"] for a in audio},
                            params, str(root), c in preview_clips, checkpoints))
    return jobs, rejected, not_generated, skipped


def _label(system: str, variant) -> str:
    return system if variant is None or (isinstance(variant, float) and np.isnan(variant)) or variant == "" \
        else f"{system}:{variant}"


def metrics_json(aggregates: pd.DataFrame, speed: dict, counts: dict) -> dict:
    """Flat DVC metrics: `<protocol>/<system>[:<variant>]/<metric>` means, counts, speed."""
    out: dict = dict(counts)
    for r in aggregates.itertuples():
        key = f"{r.protocol}/{_label(r.system, r.variant)}"
        if np.isfinite(r.mean):
            out[f"{key}/{r.metric}"] = round(float(r.mean), 4)
        elif r.mean == np.inf:
            out[f"{key}/{r.metric}"] = "inf"
        if r.metric not in ("fid_face", "fid_inception"):     # set metrics carry no per-clip failures
            out[f"{key}/n_failed"] = max(int(r.n_failed), out.get(f"{key}/n_failed", 0))
    out.update({f"speed/{k}": v for k, v in speed.items()})
    return out



def fid_inception_rows(keys: list[tuple[str, str | None, str]], ci: float) -> pd.DataFrame:
    """The `fid_inception` aggregate rows (NaN, with the reason) for every (system, variant, protocol)
    that has face descriptors: one row per variant, so two variants of a family stay two rows.
    """
    return pd.DataFrame([{"system": s, "family": None, "variant": v or None, "protocol": p, "metric": "fid_inception",
                          "mean": np.nan, "low": np.nan, "high": np.nan, "n": 0, "n_dropped": 0, "n_failed": 0,
                          "ci": ci, "higher_is_better": False, "note": UNAVAILABLE["fid_inception"]}
                         for (s, v, p) in keys])

FID_REFERENCE = {"reconstruction": "ground_truth", "dubbing": "baseline_unedited"}
"""Per protocol, the system whose face descriptors are the real set the others' `fid_face` is measured against."""


def summarise_scores(per_clip: pd.DataFrame, results: list[dict], params, notes: dict[str, str]):
    """The stage's aggregates and comparisons from its per-clip rows and `score_clip_job` results.

    Aggregates: bootstrap intervals per (system, variant, protocol, metric) (`aggregate`; a metric null for a
    reason in `notes` carries it), `fid_face` of every descriptor set against its protocol's `FID_REFERENCE`
    or, for self-reenactment outputs, against the real frames of the same tasks (`set_metrics`, `pool_targets`), the `fid_inception` rows (`fid_inception_rows`). Comparisons: `compare` (paired bootstrap
    against the protocol's baselines and a family's same-run `<v>+<name>` variants). Used by `run_stage` and
    by the benches that score outside the stage (`headflow.evaluate.external.summarise`).

    Returns:
        (aggregates, comparisons) DataFrames.
    """
    agg = aggregate(per_clip, params.n_boot, params.ci, params.seed,
                    {("abs_offset" if m == "offset" else m): n for m, n in notes.items() if m in EVAL_METRICS})
    descriptors: dict = defaultdict(list)
    for res in results:
        for k, v in res["descriptors"].items():
            descriptors[k].append(v)
    fid = set_metrics({k: np.concatenate(v) for k, v in descriptors.items()}, FID_REFERENCE, params.ci,
                      pool_targets(results))   # self-reenactment: against the real frames of the same tasks
    extra = fid_inception_rows(sorted(descriptors), params.ci)
    agg = pd.concat([df for df in (agg, fid, extra) if len(df)] or [agg], ignore_index=True)
    return agg, compare(per_clip, BASELINES, params.n_boot, params.ci, params.seed)


def run_stage(params: EvaluateParams, map_fn: Callable | None = None, progress: bool = True,
              clips_path: Path = CATALOG.manifest("ingest", "clips"),
              faces_path: Path = CATALOG.manifest("faces", "faces"),
              landmarks_path: Path = CATALOG.manifest("faces", "landmarks"),
              audio_path: Path = CATALOG.manifest("audio_features", "audio_features"),
              judge_path: Path = JUDGE, loss_expert_path: Path = LOSS_EXPERT,
              generated_paths: Sequence[Path] = tuple(CATALOG.generated_manifests()),
              out_dir: Path = CATALOG.folder(STAGE), metrics_path: Path = CATALOG.metrics(STAGE),
              plot_path: Path = CATALOG.plot(STAGE, "systems"), report_path: Path = CATALOG.report(STAGE, "page"),
              project_root: Path | None = None) -> dict:
    """Run the evaluation and write its tables, metrics, plots and report; returns the metrics.

    Every path defaults to the catalog's and is relative to `project_root` (default: the current
    folder) unless absolute, as are the paths inside the manifests. `generated_paths` defaults to the
    `generated.parquet` of every `generate_<family>` stage in the catalog (none yet: ground truth and
    baselines only). A missing judge or loss expert leaves its columns null with the reason.

    Raises:
        FileNotFoundError: an input manifest is missing (its message names the stage to run).
    """
    from headflow.evaluate.report import write_report

    t_start = time.perf_counter()
    root = Path(project_root or ".")
    out_dir = root / out_dir
    clips = expert_clips(root / clips_path, root / faces_path, root / audio_path)
    clips = clips[clips.split == params.split].reset_index(drop=True)
    if params.max_clips is not None:
        clips = clips.head(params.max_clips)
    landmarks = read_manifest(root / landmarks_path, "landmarks")
    landmarks = landmarks[landmarks.clip_id.isin(clips.clip_id)]
    generated, invalid = read_generated_manifests(generated_paths, root)
    checkpoints = (str(judge_path), str(loss_expert_path))
    from headflow.manifest.generated import read_listed_pairs

    jobs, rejected, not_generated, skipped = plan_jobs(params, clips, landmarks, generated, root, checkpoints,
                                                       read_listed_pairs((root / clips_path).parent))
    log.info("evaluate: %d %s clips, %d jobs, %d generated outputs", len(clips), params.split, len(jobs), len(generated))
    t_score = time.perf_counter()
    results = map_jobs(score_clip_job, jobs, params.workers, map_fn, desc="evaluate", progress=progress)
    score_s = time.perf_counter() - t_score

    rows = [r for res in results for r in res["rows"]] + not_generated
    failed_rows = []
    quarantine = Quarantine(STAGE)
    for gen, code, msg in [*invalid, *rejected, *[q for res in results for q in res["quarantine"]]]:
        quarantine.add(_gen_key(gen), code, msg, str(gen.get("output_path") or ""))
    for gen, code, msg in invalid:
        if gen["protocol"] in ("reconstruction", "dubbing") and gen["source_clip"] in set(clips.clip_id):
            failed_rows.append(_row(Task(gen["protocol"], gen["source_clip"], gen["source_clip"], gen.get("audio_clip"),
                                         gen["source_clip"], False, int(gen["frame_start"]), int(gen["frame_end"])),
                                    gen["family"], gen, None, "failed", code, msg[:500]))
    per_clip = pd.DataFrame(rows + failed_rows, columns=PER_CLIP.names)
    per_clip = per_clip.sort_values(["protocol", "system", "variant", "seed", "clip_id"], ignore_index=True,
                                    na_position="first")
    ids_in = [_gen_key(g) for g in generated] + [_gen_key(g) for g, _, _ in invalid]
    scored_keys = {_gen_key(g) for g in generated} - {q["clip_id"] for q in quarantine.rows}
    check_accounting(ids_in, sorted(scored_keys), [q["clip_id"] for q in quarantine.rows], STAGE)

    notes = dict(UNAVAILABLE)
    nets_missing = _nets(checkpoints, params.syncnet, str(root)).missing
    notes.update(nets_missing)
    agg, comparisons = summarise_scores(per_clip, results, params, notes)

    timings: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for res in results:
        for g, (n, s) in res["timings"].items():
            timings[g][0] += n
            timings[g][1] += s
    speed = {f"{g}_frames_per_s": round(n / s, 1) for g, (n, s) in sorted(timings.items()) if s > 0 and n > 0}
    speed.update({f"{g}_seconds": round(s, 2) for g, (n, s) in sorted(timings.items())})
    speed["scoring_wall_seconds"] = round(score_s, 1)
    speed["total_seconds"] = round(time.perf_counter() - t_start, 1)
    counts = {"clips": int(len(clips)), "generated_outputs": len(generated) + len(invalid),
              "quarantined": len(quarantine), "failed_rows": int((per_clip.status == "failed").sum())}

    out_dir.mkdir(parents=True, exist_ok=True)
    write_validated(per_clip, out_dir / "per_clip.parquet", "per_clip")
    write_validated(agg, out_dir / "aggregates.parquet", "aggregates")
    write_validated(comparisons, out_dir / "comparisons.parquet", "comparisons")
    write_validated(quarantine.frame(), out_dir / "quarantine.parquet", "quarantine")
    previews = {k: v for res in results for k, v in res["previews"].items()}
    keys = sorted(previews)
    np.save(out_dir / "previews.npy", np.stack([previews[k] for k in keys]) if keys else np.zeros((0, 256, 256, 3), np.uint8))
    write_json(keys, out_dir / "previews.json")
    meta = {
        "params": asdict(params), "split": params.split, "clips": list(clips.clip_id),
        "video_paths": dict(zip(clips.clip_id, clips.video_path)),
        "skipped_tasks": [list(s) for s in skipped], "unavailable": notes, "not_yet": list(NOT_YET),
        "checkpoints": {name: _sha(root / path) for name, path in zip(("judge", "loss_expert"), checkpoints)},
        "checkpoint_paths": dict(zip(("judge", "loss_expert"), checkpoints)),
        "generated_manifests": [str(Path(p)) for p in generated_paths],
        "speed": speed, "counts": counts,
    }
    write_json(meta, out_dir / "meta.json")
    metrics = metrics_json(agg, speed, counts)
    write_metrics(root / metrics_path, metrics)
    write_json(_plot_rows(agg), root / plot_path)
    write_report(out_dir, root / report_path)
    log.info("evaluate: %d per-clip rows (%d failed), %d quarantined, %.1f s; report %s", len(per_clip),
             counts["failed_rows"], len(quarantine), speed["total_seconds"], report_path)
    return metrics


def _sha(path: Path) -> str | None:
    from headflow.manifest import file_sha256

    return file_sha256(path) if path.is_file() else None


def _plot_rows(agg: pd.DataFrame) -> list[dict]:
    """One row per (protocol, system) with the plotted metrics' means (null when not finite or not applicable)."""
    out = []
    for (protocol, system, variant), g in agg.groupby(["protocol", "system", "variant"], dropna=False, sort=False):
        # every row carries every plotted key (DVC's templates fail on a row without the x field)
        row = {"system": f"{protocol}/{_label(system, variant)}", **{m: None for m in PLOT_METRICS}}
        for r in g.itertuples():
            if r.metric in PLOT_METRICS:
                row[r.metric] = round(float(r.mean), 4) if np.isfinite(r.mean) else None
        out.append(row)
    return out

