"""Per-clip metric rows: one system's frames on one task, scored against the real clip.

Every metric comes from `headflow.metrics` (pure functions); this module cuts the crops, decides which
metrics apply, pools per-frame values over the clip and caches what two systems share.

Crops and frames (see `headflow.evaluate.crops`):
- every scored frame, 96x96 Wav2Lip face crop: `psnr`, `ssim`, `apd` (whole crop; apd = mean absolute
  pixel difference in 0..255, Head2HeadFS's average pixel distance on the face crop), `psnr_masked`,
  `ssim_masked` (its lower half, `lower_half_mask`), `lap_var` (lower half, grey, 4-neighbour kernel);
  per-frame values averaged over the clip (PSNR inf when a frame is identical: reported as inf).
- a fixed sample of k = `sample_frames` frames per clip (`frame_sample` over the clip's reconstruction
  range: midpoints of k equal segments; a task with a shorter range, e.g. dubbing with a shorter audio,
  keeps those inside its range), 256x256 aligned crop: `cpbd` (grey crop), 68 dlib landmarks (`f_lmd`, `m_lmd`, `akd`, pixels of the
  256 crop), dlib face descriptors (`csim` per frame, `aed`).
  Landmarks are re-detected on both sides: dlib's shape predictor runs on the system's crop and on the
  real crop of the same frame inside the same box (the faces stage's box of that frame, mapped into the
  crop), so both come from the same detector and differ only by what the images show; the faces
  stage's own (smoothed) landmarks are not used as the reference.
- sync, every scored frame: mouths = the lower half of the 96 crop. LSE-D / LSE-C / offset over
  +-`max_offset` frames (`headflow.metrics.lse`: no zero padding) from the judge (`lse_d`, `lse_c`,
  `offset`) and the loss expert (`lse_c_loss_expert`), windows cut at the clip's absolute frame
  indices so that the mel window of frame f is the one the generator was given; each clip is
  centred on its own mean mouth (the experts' `face_centre: clip`). syncnet_python's SyncNet
  (`lse_c_syncnet`) on its own 224x224 crops and MFCCs when its weights are present.
Which metrics apply: full-reference ones (`psnr*`, `ssim*`, `apd`, `f_lmd`, `m_lmd`, `akd`) only when the
real frames are the target (reconstruction, self-reenactment); `csim`/`aed` against the source clip's
frames of the same index when the output follows the source clip, else `csim` of mean descriptors;
sync only with an audio clip. A metric that applies but could not be computed is null with a `note`.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from headflow.evaluate.baselines import Task
from headflow.evaluate.crops import (ALIGNED_SIZE, FACE_SIZE, SYNCNET_PAD_VALUE, SYNCNET_SIZE, box_in_crop,
                                     compose, cut, face96_transforms, invert_all, syncnet_transforms)
from headflow.manifest.schemas import EVAL_METRICS
# the metric modules by name (not through the lazy headflow.metrics), so the stage's DVC deps see them
from headflow.metrics.identity import aed, csim
from headflow.metrics.image import lower_half_mask, psnr, psnr_masked, ssim, ssim_masked
from headflow.metrics.landmarks import akd, f_lmd, m_lmd
from headflow.metrics.sampling import frame_sample
from headflow.metrics.sharpness import cpbd, lap_var, rgb_to_gray

METRIC_GROUPS = ("decode", "crop", "image", "cpbd", "landmarks", "identity", "face_check", "sync_judge",
                 "sync_loss_expert", "sync_syncnet")
"""Timed groups reported as frames/s in evaluate.json."""
LOWER_HALF = lower_half_mask(FACE_SIZE, FACE_SIZE)


@dataclass
class RealClip:
    """A real clip's decoded frames and per-frame face geometry (from the faces stage)."""

    clip_id: str
    frames: list[np.ndarray]
    """RGB uint8 (H, W, 3) frames 0..len-1 (decoded up to the last frame any task scores)."""
    boxes: np.ndarray
    """(T, 4) faces boxes (l, t, r, b source pixels)."""
    valid: np.ndarray
    """(T,) frames where the faces stage fitted the face."""
    m256: np.ndarray
    """(T, 2, 3) source -> 256x256 aligned crop (landmarks.parquet `crop_transform`)."""
    sample_range: tuple[int, int] | None = None
    """The frames the clip's fixed sample is drawn from (its reconstruction range); None: each task's range."""
    m96: np.ndarray = field(init=False)
    m224: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.m96 = face96_transforms(self.boxes, self.hw)
        self.m224 = syncnet_transforms(self.boxes)

    @property
    def hw(self) -> tuple[int, int]:
        return self.frames[0].shape[:2]


@dataclass
class SyncNets:
    """The sync networks of a run and, for each one that is absent, why."""

    judge: object | None = None
    loss_expert: object | None = None
    syncnet: object | None = None
    missing: dict[str, str] = field(default_factory=dict)
    """metric column -> reason it is null (e.g. the checkpoint path that was not found)."""


def load_sync_nets(judge: str | None, loss_expert: str | None, syncnet: str = "auto",
                   root: Path = Path(".")) -> SyncNets:
    """Load the judge, the loss expert and (when present) syncnet_v2; absent ones are recorded, not fatal."""
    from headflow.sync.train import load_expert

    nets = SyncNets()
    for attr, path, cols, stage in (("judge", judge, ("lse_d", "lse_c", "offset"), "train_judge"),
                                    ("loss_expert", loss_expert, ("lse_c_loss_expert",), "train_expert")):
        p = root / path if path else None
        if p is not None and p.is_file():
            setattr(nets, attr, load_expert(p))
        else:
            why = f"{attr.replace('_', ' ')} checkpoint {path} not found (run `dvc repro {stage}`)"
            nets.missing.update({c: why for c in cols})
    if syncnet == "off":
        nets.missing["lse_c_syncnet"] = "syncnet disabled (evaluate.syncnet: off)"
    else:
        from headflow.metrics.syncnet import load_syncnet
        from headflow.models import MissingWeights

        try:
            nets.syncnet = load_syncnet()
        except MissingWeights as err:
            nets.missing["lse_c_syncnet"] = (f"syncnet_v2.model not provided ({err}); the number would need "
                                             "syncnet_python's released weights")
    return nets


def _digest(*arrays: np.ndarray) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.shape).encode())
        h.update(a.data)
    return h.digest()


class Scorer:
    """Scores systems on tasks; caches per-crop results and embeddings that systems share.

    Args:
        nets: the sync networks (`load_sync_nets`).
        mels: audio clip id -> its Wav2Lip mel (T_mel, 80).
        wavs: audio clip id -> (float mono samples, sample rate) loader, used by SyncNet only.
        sample_frames, max_offset, min_pairs: as in `EvaluateParams`.
    """

    def __init__(self, nets: SyncNets, mels: dict[str, np.ndarray], wavs: Callable[[str], tuple[np.ndarray, int]],
                 sample_frames: int = 8, max_offset: int = 15, min_pairs: int = 5):
        self.nets, self.mels, self.wavs = nets, mels, wavs
        self.k, self.max_offset, self.min_pairs = sample_frames, max_offset, min_pairs
        self.timings: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])   # group -> [frames, seconds]
        self._heavy: dict[bytes, dict] = {}
        self._emb: dict[tuple, np.ndarray] = {}

    def _time(self, group: str, frames: int, t0: float) -> None:
        self.timings[group][0] += frames
        self.timings[group][1] += time.perf_counter() - t0

    # ---- costly per-crop results: CPBD, landmarks, descriptor (cached by crop content and box) ----

    def heavy(self, crop256: np.ndarray, box: tuple[float, float, float, float], need_landmarks: bool = True) -> dict:
        """CPBD, 68 landmarks (re-detected in `box`) and the dlib descriptor of one 256x256 crop."""
        from headflow.faces.dlib_backend import landmarks68
        from headflow.metrics.identity import face_descriptors

        key = _digest(crop256, np.asarray(box))
        if key in self._heavy:
            return self._heavy[key]
        t = time.perf_counter()
        value = float(cpbd(rgb_to_gray(crop256)))
        self._time("cpbd", 1, t)
        t = time.perf_counter()
        lm = landmarks68(crop256, box).astype(np.float64)
        self._time("landmarks", 1, t)
        t = time.perf_counter()
        desc = face_descriptors(crop256, lm)
        self._time("identity", 1, t)
        out = {"cpbd": value, "landmarks": lm, "descriptor": desc}
        self._heavy[key] = out
        return out

    # ---- sync ----

    def _embed(self, name: str, model, mouths: np.ndarray, audio_clip: str, start: int) -> tuple[np.ndarray, np.ndarray]:
        """Video windows (n - 4, E) of `mouths` (frames start..start+n-1) and audio windows (n, E) of those frames."""
        import torch

        from headflow.sync.data import ClipArrays, audio_window, face_window, prepare_clip

        n = len(mouths)
        mel = self.mels[audio_clip]
        vkey = (name, "video", _digest(mouths))
        akey = (name, "audio", audio_clip, start, n)
        todo_v, todo_a = vkey not in self._emb, akey not in self._emb
        if todo_v or todo_a:
            prepared = prepare_clip(model, ClipArrays(audio_clip, mouths, mel))

            def run(fn, items):
                out = []
                with torch.no_grad():
                    for i in range(0, len(items), 64):
                        out.append(fn(torch.from_numpy(np.stack(items[i:i + 64]))).numpy())
                return np.concatenate(out) if out else np.zeros((0, model.embedding_size), np.float32)

            model.eval()
            if todo_v:
                self._emb[vkey] = run(model.embed_face, [face_window(prepared, i) for i in range(max(n - 4, 0))])
            if todo_a:
                self._emb[akey] = run(model.embed_audio, [audio_window(prepared, start + i) for i in range(n)])
        return self._emb[vkey], self._emb[akey]

    def _lse(self, name: str, model, mouths: np.ndarray, audio_clip: str, start: int):
        from headflow.metrics.lse import offset_distances, score_distances

        video, audio = self._embed(name, model, mouths, audio_clip, start)
        return score_distances(offset_distances(video, audio, self.max_offset, self.min_pairs), len(video),
                               self.max_offset)

    def _syncnet(self, crops224: np.ndarray, audio_clip: str, start: int):
        """syncnet_python's scores of BGR 224x224 crops of frames start.. against the audio clip's MFCCs."""
        import torch

        from headflow.metrics.lse import offset_distances, score_distances
        from headflow.metrics.syncnet import audio_windows, mfcc

        model = self.nets.syncnet
        akey = ("syncnet", "audio", audio_clip, start, len(crops224))
        if akey not in self._emb:
            wav, sr = self.wavs(audio_clip)
            windows = audio_windows(mfcc(wav * 32768.0, sr), start + len(crops224))[start:]
            with torch.no_grad():
                self._emb[akey] = np.concatenate([model.embed_audio(torch.from_numpy(windows[i:i + 32])).numpy()
                                                  for i in range(0, len(windows), 32)])
        audio = self._emb[akey]
        vid = torch.from_numpy(crops224[..., ::-1].astype(np.float32).copy()).permute(3, 0, 1, 2)  # 3, T, H, W (BGR)
        out = []
        with torch.no_grad():
            for i in range(0, max(len(crops224) - 4, 0), 16):
                batch = torch.stack([vid[:, j:j + 5] for j in range(i, min(i + 16, len(crops224) - 4))])
                out.append(model.embed_face(batch).numpy())
        video = np.concatenate(out) if out else np.zeros((0, 1024), np.float32)
        return score_distances(offset_distances(video, audio, self.max_offset, self.min_pairs), len(video),
                               self.max_offset)

    # ---- one system on one task ----

    def score(self, real: RealClip, task: Task, frame_fn: Callable[[int], np.ndarray],
              geometry: str = "frame", identity: RealClip | None = None, require_face: float | None = None,
              preview: bool = False) -> tuple[dict, list[str], dict]:
        """All metrics of one system's frames on one task.

        Args:
            real: the task's frame clip (its frames are the ground truth when `task.has_target`).
            task: the task (frame range, audio, protocol).
            frame_fn: absolute frame index -> the system's (H, W, 3) uint8 frame.
            geometry: "frame" (the real clip's frame geometry) or "aligned" (256x256 aligned crops).
            identity: the source clip when it is not `real` (cross-identity reenactment), else None.
            require_face: for generated outputs, the smallest fraction of sampled crops in which dlib's
                HOG detector must find a face.
            preview: also return the 256 crop of the middle sampled frame.

        Returns:
            (metrics {column: float or None}, notes, extras {"descriptors": (k, 128), "preview": crop,
            "real_descriptors": (k, 128) of the real frames at the same sampled frames, when `task.has_target`}).

        Raises:
            NoFace: fewer sampled crops than `require_face` show a face.
        """
        s, e = task.frame_start, task.frame_end
        metrics: dict[str, float | None] = {m: None for m in EVAL_METRICS}
        notes: list[str] = []
        if geometry == "aligned":
            back = invert_all(real.m256)
            t96, t256, t224 = compose(real.m96, back), np.broadcast_to(np.eye(3)[:2], real.m256.shape), \
                compose(real.m224, back)
        else:
            t96, t256, t224 = real.m96, real.m256, real.m224
        sample = self.sample(real, s, e)

        t = time.perf_counter()
        crops96 = np.stack([cut(frame_fn(f), t96[f], FACE_SIZE) for f in range(s, e)])
        crops256 = np.stack([cut(frame_fn(f), t256[f], ALIGNED_SIZE) for f in sample])
        self._time("crop", e - s, t)

        if require_face is not None:
            from headflow.faces.dlib_backend import detect_faces

            t = time.perf_counter()
            found = np.mean([len(detect_faces(c)) > 0 for c in crops256])
            self._time("face_check", len(crops256), t)
            if found < require_face:
                raise NoFace(f"dlib's HOG detector found a face in {found:.0%} of the {len(crops256)} sampled "
                             f"256x256 crops (frames {sample.tolist()}); at least {require_face:.0%} required")

        t = time.perf_counter()
        gray = np.stack([rgb_to_gray(c) for c in crops96])
        metrics["lap_var"] = float(np.mean(lap_var(gray, mask=LOWER_HALF)))
        if task.has_target:
            gt96 = self.real_crops96(real, s, e)
            metrics["psnr"] = float(np.mean(psnr(crops96, gt96)))
            # average pixel distance (Head2HeadFS section 4): mean |fake - real| over the face crop, 0..255 units
            metrics["apd"] = float(np.mean(np.abs(crops96.astype(np.float32) - gt96.astype(np.float32))))
            metrics["psnr_masked"] = float(np.mean(psnr_masked(crops96, gt96, LOWER_HALF)))
            metrics["ssim"] = float(np.mean(ssim(crops96, gt96)))
            metrics["ssim_masked"] = float(np.mean(ssim_masked(crops96, gt96, LOWER_HALF)))
        self._time("image", e - s, t)

        boxes = [box_in_crop(real.boxes[f], real.m256[f]) for f in sample]
        mine = [self.heavy(c, b) for c, b in zip(crops256, boxes)]
        metrics["cpbd"] = float(np.mean([h["cpbd"] for h in mine]))
        descs = np.stack([h["descriptor"] for h in mine])
        src = identity or real
        aligned_identity = identity is None
        if task.has_target or aligned_identity:
            ref = [self.heavy(cut(src.frames[f], src.m256[f], ALIGNED_SIZE), b) for f, b in zip(sample, boxes)]
        if task.has_target:
            valid = real.valid[sample]
            lm_sys = np.stack([h["landmarks"] for h in mine])
            lm_ref = np.stack([h["landmarks"] for h in ref])
            if valid.any():
                metrics["f_lmd"] = f_lmd(lm_sys, lm_ref, valid)
                metrics["m_lmd"] = m_lmd(lm_sys, lm_ref, valid)
                metrics["akd"] = akd(lm_sys, lm_ref, valid)
            else:
                notes.append("landmark metrics: the faces stage found no valid face on the sampled frames")
        if aligned_identity:
            ref_desc = np.stack([h["descriptor"] for h in ref])
            metrics["csim"] = csim(descs, ref_desc, "per_frame")
            metrics["aed"] = aed(descs, ref_desc)
        else:
            n_src = len(src.frames)
            src_sample = frame_sample(n_src, self.k)
            ref_desc = np.stack([self.heavy(cut(src.frames[f], src.m256[f], ALIGNED_SIZE),
                                            box_in_crop(src.boxes[f], src.m256[f]))["descriptor"] for f in src_sample])
            metrics["csim"] = csim(descs, ref_desc, "mean")

        if task.audio_clip is not None:
            mouths = crops96[:, FACE_SIZE // 2:]
            self._sync_metrics(metrics, notes, mouths, task, lambda: np.stack(
                [cut(frame_fn(f), t224[f], SYNCNET_SIZE, SYNCNET_PAD_VALUE) for f in range(s, e)]))
        for key in ("csim", "aed", "f_lmd", "m_lmd", "akd"):
            if metrics[key] is not None and not np.isfinite(metrics[key]):
                metrics[key] = None
                notes.append(f"{key}: no sampled frame had a face descriptor / landmarks on both sides")
        extras = {"descriptors": descs}
        if task.has_target:   # head2headfs (issue 17): the real set of a self-reenactment fid_face
            extras["real_descriptors"] = np.stack([h["descriptor"] for h in ref])
        if preview:
            extras["preview"] = crops256[len(crops256) // 2]
        return metrics, notes, extras

    def _sync_metrics(self, metrics: dict, notes: list[str], mouths: np.ndarray, task: Task,
                      crops224: Callable[[], np.ndarray]) -> None:
        from headflow.metrics.lse import ClipTooShort

        for name, model, group in (("judge", self.nets.judge, "sync_judge"),
                                   ("loss_expert", self.nets.loss_expert, "sync_loss_expert"),
                                   ("syncnet", self.nets.syncnet, "sync_syncnet")):
            if model is None:
                continue
            t = time.perf_counter()
            try:
                if name == "syncnet":
                    score = self._syncnet(crops224(), task.audio_clip, task.frame_start)
                else:
                    score = self._lse(name, model, mouths, task.audio_clip, task.frame_start)
            except ClipTooShort as err:
                notes.append(f"{name} sync: {err}")
                continue
            finally:
                self._time(group, len(mouths), t)
            if name == "judge":
                metrics.update(lse_d=score.lse_d, lse_c=score.lse_c, offset=float(score.offset))
            elif name == "loss_expert":
                metrics["lse_c_loss_expert"] = score.lse_c
            else:
                metrics["lse_c_syncnet"] = score.lse_c

    def sample(self, real: RealClip, s: int, e: int) -> np.ndarray:
        """The clip's fixed frame sample inside [s, e).

        One sample per clip, `frame_sample` over its reconstruction range, so that every protocol and
        system looks at the same frames of a clip (and shares their costly results); a task whose range
        holds none of them (or a clip without a reconstruction range) samples its own range.
        """
        if real.sample_range is not None:
            a, b = real.sample_range
            base = a + frame_sample(b - a, self.k)
            inside = base[(base >= s) & (base < e)]
            if len(inside):
                return inside
        return s + frame_sample(e - s, self.k)

    def real_crops96(self, real: RealClip, s: int, e: int) -> np.ndarray:
        """The real clip's 96x96 face crops of frames s..e-1 (cached)."""
        key = ("real96", real.clip_id, s, e)
        if key not in self._emb:
            self._emb[key] = np.stack([cut(real.frames[f], real.m96[f], FACE_SIZE) for f in range(s, e)])
        return self._emb[key]


class NoFace(ValueError):
    """A generated output in which too few sampled crops show a face."""
