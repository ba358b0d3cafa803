"""One clip -> main-speaker face track: landmarks per frame, smoothed, crop transforms, crop video.

`process_clip` is the per-clip work of the `faces` stage. It raises `Rejected` with a reason code
(no_face, ambiguous_speaker, shot_cut, face_too_small, face_out_of_frame, low_detection_rate,
crop_outside_frame, unreadable) instead of guessing. The fraction of each frame's aligned crop that
lies outside the source frame (`crops.outside_fraction`) is measured and reported.

Shot cuts (track.py): the face is re-detected on the first frame of each shot, tracks on either side of
a cut are one speaker when dlib's face descriptors say they are the same person
(`faces.speaker.same_person_distance`), and landmarks are smoothed within each shot only. A clip whose
speaker changes at a cut is `shot_cut`; other rejections of a clip with cuts name the cut frames.
"""

from __future__ import annotations

import itertools
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from headflow.faces import crops
from headflow.faces.detect import make_detector
from headflow.faces.dlib_backend import landmarks68
from headflow.faces.evaluate import jitter, still_frames
from headflow.faces.params import FacesParams
from headflow.faces.smooth import smooth_landmarks
from headflow.faces.track import Track, TrackStats, box_from_landmarks, choose_speaker, join_tracks, track_faces
from headflow.landmarks68 import inter_ocular
from headflow.manifest import Rejected
from headflow.media import MediaError, encode_video, read_frames

FRAME_CACHE_BYTES = 512 << 20   # keep decoded frames for the crop pass up to this size, else decode again
CROP_X264_THREADS = 1          # clips run in parallel processes; x264's own threads only add overhead at 256x256
STAGES = ("decode", "detect", "landmarks", "smooth", "warp", "encode")


@dataclass
class ClipFaces:
    """The result of one clip (arrays over its T frames)."""

    summary: dict
    valid: np.ndarray            # (T,) bool
    detected: np.ndarray         # (T,) bool: the detector confirmed the face on this frame
    score: np.ndarray            # (T,) float32, detector score where detected else nan
    boxes: np.ndarray            # (T, 4) float32 l, t, r, b (from smoothed landmarks; interpolated where invalid)
    landmarks: np.ndarray        # (T, 68, 2) float32 smoothed; nan where invalid
    landmarks_raw: np.ndarray    # (T, 68, 2) float32 as fitted; nan where invalid
    transforms: np.ndarray       # (T, 2, 3) float64 source -> aligned crop
    timings: dict = field(default_factory=dict)
    crop_outside: np.ndarray | None = None
    """(T,) float32 fraction of each frame's aligned crop lying outside the source frame
    (`crops.outside_fraction`; NaN where invalid); None when not measured."""


class _Clock:
    """Accumulates seconds per pipeline step."""

    def __init__(self) -> None:
        self.s = dict.fromkeys(STAGES, 0.0)

    def wrap(self, step: str, fn: Callable) -> Callable:
        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.s[step] += time.perf_counter() - t
        return timed

    def frames(self, it: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        while True:
            t = time.perf_counter()
            frame = next(it, None)
            self.s["decode"] += time.perf_counter() - t
            if frame is None:
                return
            yield frame


def _fill(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Linear interpolation of (T, ...) values over invalid frames (held at the ends)."""
    out = values.astype(np.float64).copy()
    idx = np.flatnonzero(valid)
    flat = out.reshape(len(out), -1)
    for j in range(flat.shape[1]):
        flat[:, j] = np.interp(np.arange(len(out)), idx, flat[idx, j])
    return out


def _cut_note(cuts: list[int]) -> str:
    return f" (shot cut{'s' if len(cuts) > 1 else ''} at frame {', '.join(map(str, cuts))})" if cuts else ""


def identity_distance(frames_at: Callable[[list[int]], list[np.ndarray]], a: Track, b: Track, k: int = 3) -> float:
    """Distance of dlib face descriptors (`headflow.metrics.identity`) between the last `k` frames of
    track `a` and the first `k` of the later track `b` (mean descriptor of each side; same person below
    ~0.6). NaN when no descriptor can be computed."""
    from headflow.metrics.identity import face_descriptors

    fa, fb = a.frames[-k:], b.frames[:k]
    images = np.stack(frames_at(fa + fb))
    d = face_descriptors(images, np.concatenate([np.stack(a.landmarks[-k:]), np.stack(b.landmarks[:k])]))
    with np.errstate(all="ignore"):
        da, db = np.nanmean(d[:len(fa)], axis=0), np.nanmean(d[len(fa):], axis=0)
    return float(np.linalg.norm(da - db))


def _frames_getter(video: str | Path, keep: list[np.ndarray] | None) -> Callable[[list[int]], list[np.ndarray]]:
    """frames_at(indices) from the cached frames, or by decoding `video` again (long clips)."""
    def frames_at(indices: list[int]) -> list[np.ndarray]:
        if keep is not None:
            return [keep[i] for i in indices]
        wanted, out = set(indices), {}
        for i, frame in enumerate(read_frames(video)):
            if i in wanted:
                out[i] = frame
            if len(out) == len(wanted):
                break
        return [out[i] for i in indices]
    return frames_at


def _reject_checks(track: Track, n_frames: int, width: int, height: int, params: FacesParams,
                   name: str, note: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Size and border checks; returns (valid (T,), landmarks (T, 68, 2) nan where invalid)."""
    side = float(np.median(track.box_sides()))
    if side < params.min_face_px:
        raise Rejected("face_too_small", f"{name}: the main face is {side:.0f} px (median box side), "
                       f"expected >= faces.min_face_px {params.min_face_px:g}; use higher-resolution video")
    lm = np.full((n_frames, 68, 2), np.nan, np.float32)
    lm[track.frames] = np.stack(track.landmarks)
    has = np.zeros(n_frames, bool)
    has[track.frames] = True
    outside = ((lm[..., 0] < 0) | (lm[..., 0] > width - 1) | (lm[..., 1] < 0) | (lm[..., 1] > height - 1))
    cut = has & (outside.mean(axis=1) > params.out_of_frame_points)
    if has.any() and cut.sum() / has.sum() > params.max_out_of_frame:
        raise Rejected("face_out_of_frame", f"{name}: the face is cut by the frame border on {cut.sum()} of "
                       f"{has.sum()} face frames (> faces.max_out_of_frame {params.max_out_of_frame:.0%}); "
                       "expected the whole face in view")
    valid = has & ~cut
    lm[~valid] = np.nan
    rate = valid.mean()
    if rate < params.min_detection_rate:
        raise Rejected("low_detection_rate", f"{name}: the main face has landmarks on {valid.sum()} of {n_frames} "
                       f"frames ({rate:.0%} < faces.min_detection_rate {params.min_detection_rate:.0%}){note}")
    return valid, lm


def process_clip(video: str | Path, params: FacesParams, crop_path: str | Path | None,
                 mouth_path: str | Path | None = None, fps: float = 25.0) -> ClipFaces:
    """Track the main speaker's face in `video`, write its aligned crop video to `crop_path`.

    Raises:
        Rejected: with one of the stage's reason codes and a message naming the clip.
    """
    name = Path(video).name
    clock = _Clock()
    t_start, cpu_start = time.perf_counter(), _cpu_seconds()
    detector = clock.wrap("detect", make_detector(params.detect))
    fit = clock.wrap("landmarks", lambda frame, box: landmarks68(frame, box))
    keep: list[np.ndarray] | None = []
    stats = TrackStats()
    try:
        it = read_frames(video)
        frames_iter = clock.frames(it)
        first = next(frames_iter, None)
        if first is None:
            raise Rejected("unreadable", f"{name}: no frames decoded; expected a normalised ingest video")
        height, width = first.shape[:2]

        n_frames = 0

        def all_frames():
            nonlocal keep, n_frames
            for f in itertools.chain([first], frames_iter):
                n_frames += 1
                if keep is not None:
                    keep.append(f)
                    if len(keep) * f.nbytes > FRAME_CACHE_BYTES:
                        keep = None   # long clip: the crop pass decodes again
                yield f

        tracks = track_faces(all_frames(), detector, fit, params.detect.every, params.track, stats)
    except MediaError as err:
        raise Rejected("unreadable", err.message) from None
    if not tracks:
        raise Rejected("no_face", f"{name}: no face found on any of {n_frames} frames ({params.detect.backend}, "
                       f"detection scale {params.detect.scale:g}, full-resolution fallback "
                       f"{'on' if params.detect.full_res_fallback else 'off'}); expected one talking face")
    note = _cut_note(stats.cuts)
    same_person = lambda a, b: identity_distance(_frames_getter(video, keep), a, b)  # noqa: E731
    choice = choose_speaker(tracks, n_frames, width, height, params.speaker, params.track.min_track_fraction,
                            same_person)
    if choice.index is None:
        raise Rejected("low_detection_rate", f"{name}: no face track covers {params.track.min_track_fraction:.0%} "
                       f"of the {n_frames} frames (faces.track.min_track_fraction){note}")
    if choice.runner_up_ratio >= params.speaker.ambiguity_ratio:
        if not choice.runner_up_overlaps:
            dist = ", ".join(f"{d:.2f}" for _, _, d in choice.refused)
            raise Rejected("shot_cut", f"{name}: the face before and the face after a shot cut{note} are different "
                           f"people (dlib descriptor distance {dist} > faces.speaker.same_person_distance "
                           f"{params.speaker.same_person_distance}) and neither is clearly the main speaker; "
                           "cut the clip at the shot boundary")
        n_cand = sum(s > 0 for s in choice.scores)
        raise Rejected("ambiguous_speaker", f"{name}: {n_cand} face tracks compete for main speaker; the runner-up "
                       f"scores {choice.runner_up_ratio:.2f} of the best (>= faces.speaker.ambiguity_ratio "
                       f"{params.speaker.ambiguity_ratio}); expected one clearly main face{note}")
    track = join_tracks([tracks[i] for i in choice.chain])
    valid, lm_raw = _reject_checks(track, n_frames, width, height, params, name, note)

    t = time.perf_counter()
    lm = np.full_like(lm_raw, np.nan)
    for a, b in zip([0, *stats.cuts], [*stats.cuts, n_frames]):   # each shot alone: no smoothing across a cut
        lm[a:b] = smooth_landmarks(np.nan_to_num(lm_raw[a:b]), valid[a:b], params.smooth, fps)
    lm[~valid] = np.nan
    rel = track.relation
    boxes = np.zeros((n_frames, 4))
    boxes[valid] = [box_from_landmarks(p, rel) for p in lm[valid]]
    boxes = _fill(boxes, valid).astype(np.float32)
    transforms = np.zeros((n_frames, 2, 3))
    transforms[valid] = crops.align_transforms(lm[valid], params.crop.size, params.crop.scale)
    transforms = _fill(transforms, valid)
    clock.s["smooth"] += time.perf_counter() - t

    detected = np.zeros(n_frames, bool)
    score = np.full(n_frames, np.nan, np.float32)
    for f, s in zip(track.frames, track.scores):
        if not np.isnan(s):
            detected[f], score[f] = True, s
    outside = crops.outside_fraction(transforms, params.crop.size, (height, width))
    outside_median = float(np.median(outside[valid])) if valid.any() else 0.0
    if outside_median > params.crop.max_outside:
        raise Rejected("crop_outside_frame", f"{name}: the median aligned crop has {outside_median:.0%} of its pixels "
                       f"outside the source frame (> faces.crop.max_outside {params.crop.max_outside:.0%}), filled by "
                       "repeating the frame's edge; use wider source frames or lower faces.crop.scale")
    if crop_path is not None:
        _write_crops(video, keep, transforms, boxes, params, crop_path, mouth_path, clock, fps, (height, width))

    still = still_frames(lm, valid)
    raw_transforms = transforms.copy()
    raw_transforms[valid] = crops.align_transforms(lm_raw[valid], params.crop.size, params.crop.scale)
    motion = crops.crop_motion(transforms[valid], params.crop.size) if valid.sum() > 1 else np.zeros(0)
    motion_raw = crops.crop_motion(raw_transforms[valid], params.crop.size) if valid.sum() > 1 else np.zeros(0)
    timings = {k: round(v, 4) for k, v in clock.s.items()}
    timings["total"] = round(time.perf_counter() - t_start, 4)
    timings["cpu"] = round(_cpu_seconds() - cpu_start, 4)
    summary = {
        "n_frames": n_frames, "width": width, "height": height,
        "detection_rate": float(valid.mean()),
        "detector_confirmed_rate": float(detected.mean()),
        "n_detect_runs": stats.n_detect_runs,
        "n_tracks": sum(not tr.merged for tr in tracks),
        "chosen_track": int(track.id),
        "shot_cuts": list(stats.cuts),
        "crop_outside_median": outside_median,
        "crop_outside_max": float(outside[valid].max()) if valid.any() else 0.0,
        "speaker_tracks": len(choice.chain),
        "runner_up_ratio": float(choice.runner_up_ratio),
        "mean_face_size": float(np.mean(boxes[valid, 2] - boxes[valid, 0])),
        "mean_iod": float(np.nanmean(inter_ocular(lm[valid]))),
        "still_frames": int(still.sum()),
        "jitter_raw": jitter(lm_raw, still),
        "jitter": jitter(lm, still),
        "crop_motion_raw": float(np.median(motion_raw)) if len(motion_raw) else float("nan"),
        "crop_motion": float(np.median(motion)) if len(motion) else float("nan"),
        **{f"{k}_s": v for k, v in timings.items()},
    }
    return ClipFaces(summary=summary, valid=valid, detected=detected, score=score, boxes=boxes,
                     landmarks=lm.astype(np.float32), landmarks_raw=lm_raw, transforms=transforms, timings=timings,
                     crop_outside=np.where(valid, outside, np.nan).astype(np.float32))


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (the ffmpeg encoders)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _write_crops(video, keep, transforms, boxes, params: FacesParams, crop_path, mouth_path,
                 clock: _Clock, fps: float, frame_hw: tuple[int, int]) -> None:
    t0 = time.perf_counter()
    decode_before, warp_before = clock.s["decode"], clock.s["warp"]
    source = keep if keep is not None else clock.frames(read_frames(video))
    size = params.crop.size
    mouth: list[np.ndarray] = []

    def crops_iter():
        for i, frame in enumerate(source):
            t = time.perf_counter()
            out = crops.warp(frame, transforms[i], size)
            if mouth_path is not None:
                mouth.append(crops.mouth_crop(frame, crops.crop_transform_for(tuple(boxes[i]), frame_hw)))
            clock.s["warp"] += time.perf_counter() - t
            yield out

    encode_video(crops_iter(), crop_path, fps=int(round(fps)), crf=params.crop.crf, preset=params.crop.preset,
                     threads=CROP_X264_THREADS)
    if mouth_path is not None:
        encode_video(mouth, mouth_path, fps=int(round(fps)), crf=params.crop.crf, preset=params.crop.preset,
                     threads=CROP_X264_THREADS)
    spent = time.perf_counter() - t0
    clock.s["encode"] += spent - (clock.s["decode"] - decode_before) - (clock.s["warp"] - warp_before)
