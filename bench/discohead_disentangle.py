"""DisCoHead's disentanglement on the demo (which knows every frame's head pose and mouth opening).

    cd <worktree> && OMP_NUM_THREADS=1 nice -n 10 env PYTHONPATH=src:. \\
        python bench/discohead_disentangle.py --root ../demo2      # a project root with generate_discohead's outputs

Issue 19 ("Disentanglement, measured on the demo"), on the `transfer` rows of
`data/interim/generate_discohead/generated.parquet` (identity and source frame of clip i, head pose from
`driver_clip`, audio from `audio_clip`, eyes from `style_clip`; `generators.discohead.generate.transfer_triples`):

- swapping the audio leaves head pose unchanged: per clip, the mean absolute error (degrees) of the
  output's measured yaw, pitch and roll against the HEAD DRIVER's ground-truth pose at the same frame;
  the same against the AUDIO clip's pose is the leak control (an output that followed the audio's
  head would score low there);
- swapping the head driver leaves mouth opening unchanged: per clip, the Pearson correlation over
  frames of the output's measured mouth opening with the AUDIO clip's ground-truth opening (`mouth[:, 0]`
  of the `.truth.npz`); with the head driver's opening is the control (the mouth leaking from the driver).

Systems: DisCoHead (`<variant>`), its source-warp baseline (`<variant>+source_warp`: the source warped by
the predicted transformation alone, no expression control), and three references that no model made:
the source frame held still (`source_frame`: pose 0 by construction, a constant mouth, so its mouth r
is NaN), and the real crops of the head driver and of the audio clip over the same frames (what a
perfect transfer would score on each side, i.e. the measurement's own floor and ceiling). DisCoHead minus
source-warp per figure: the paired bootstrap over clips (`headflow.metrics.stats.paired_bootstrap`, 10000 resamples).

Measurement (the same on every system; the generated frames are 256x256 aligned crops in the head
driver's crop256 geometry, since the model reproduces the driver's crop):
- landmarks: dlib's 68-point predictor (`faces.dlib_backend.landmarks68`, as the faces and evaluate
  stages) in one box per video: the median over its frames of the faces stage's box mapped into the
  crop (`evaluate.crops.box_in_crop`) of the head driver (outputs) or of the clip itself (real crops);
  a fixed box so that no per-frame driver geometry enters the measurement;
- head pose: an orthographic fit of a 3D face to the 31 upper-face points (`landmarks68.UPPER_FACE`:
  brows, nose, eyes, which do not move with the jaw) by least squares over yaw, pitch, roll, scale and
  shift (`fit_pose`). The 3D face is the REFERENCE frame's measured 2D landmarks with the depth of a
  generic 68-point mean face (insightface's `meanshape_68`, similarity-aligned to them;
  `reference_shape`), so angles are relative to the reference frame: the output's source frame (frame
  0 of the source clip, the generator's input) for generated videos, frame 0 of the clip for real
  crops. The demo's truth pose is relative to the photo, which is frame 0 of every clip (pose 0
  there). Angles use the demo's convention (y down: R = Rz(roll) Rx(pitch) Ry(yaw) on y-down face
  coordinates, `demo.animation.rotation_matrix`). The aligned crop turns the image by phi_f per frame
  (`crop_roll_deg`); the expected roll in crop coordinates is truth roll + phi_f(clip of the truth) -
  phi_0(reference clip) (`expected_pose`): roll is mostly taken out by the crop, yaw and pitch are not;
- mouth opening: the mean inner-lip gap over the three facing pairs 61-67, 62-66, 63-65 divided by the
  inter-ocular distance 36-45 (`mouth_opening_ratio`); the correlation is scale free.
Before any output the measurement runs on the real crops of the evaluation clips against their own
truth (error, bias, correlation, pooled over frames `frame_start`.. of each clip): its own accuracy.

Uses only the stored outputs and truth files (nothing written under --root); about 65 s on one core (2026-11-30).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from headflow.landmarks68 import (INNER_LIP_LOWER, INNER_LIP_UPPER, UPPER_FACE, inter_ocular)
from headflow.rotations import euler_to_matrix

ANGLES = ("yaw", "pitch", "roll")
N_BOOT = 10000


# ---------------------------------------------------------------- measurement (pure, unit-tested)

def generic_face_3d() -> np.ndarray:
    """(68, 3) generic 3D mean face (x right, y down, z towards the camera), insightface's `meanshape_68`.

    The file the demo renderer itself reads (`headflow.demo.animation`); insightface is installed
    without its runtime, only the data file is used.

    Raises:
        RuntimeError: insightface's package (its data folder) is not installed.
    """
    from headflow.demo.animation import _mean_depth_template   # the one loader of that file in the project

    return _mean_depth_template()


def reference_shape(reference: np.ndarray, template: np.ndarray | None = None) -> np.ndarray:
    """A 3D face for one identity: a reference frame's 2D landmarks plus a generic face's depth.

    The template's (x, y) are aligned to `reference` by the least-squares similarity (Umeyama / Procrustes);
    its z is scaled by the same factor. x, y are the reference's own points (centred), so
    `fit_pose(reference, reference_shape(reference))` is exactly yaw = pitch = roll = 0: pose is
    measured relative to the reference frame.

    Args:
        reference: (68, 2) landmarks in pixels (image y down).
        template: (68, 3) generic face, y down, z towards the camera; `generic_face_3d()` by default.

    Returns:
        (68, 3) float64: centred reference x, y and centred depth z, in the reference's pixels.

    Raises:
        ValueError: `reference` is not (68, 2) or not finite.
    """
    ref = np.asarray(reference, np.float64)
    if ref.shape != (68, 2) or not np.isfinite(ref).all():
        raise ValueError(f"reference_shape: reference must be finite (68, 2) landmarks, got shape {ref.shape}")
    tpl = generic_face_3d() if template is None else np.asarray(template, np.float64)
    src = tpl[:, :2] - tpl[:, :2].mean(0)
    dst = ref - ref.mean(0)
    u, sv, vt = np.linalg.svd(src.T @ dst)
    sign = np.sign(np.linalg.det(u @ vt)) or 1.0
    scale = (sv[0] + sign * sv[1]) / (src ** 2).sum()
    z = tpl[:, 2] * scale
    return np.column_stack([dst, z - z.mean()])


def fit_pose(landmarks: np.ndarray, shape: np.ndarray, points: np.ndarray = UPPER_FACE) -> np.ndarray:
    """Head pose of one frame: orthographic fit x_i = s [R X_i]_xy + t over `points`.

    Least squares (scipy `least_squares`, trust region) over yaw, pitch, roll, s, t from the identity
    pose; R = Rz(roll) Rx(pitch) Ry(yaw) (`headflow.rotations.euler_to_matrix`) applied in the image's
    y-down frame, i.e. the demo's pose convention (`headflow.demo.animation.rotation_matrix`).

    Args:
        landmarks: (68, 2) measured points, pixels.
        shape: (68, 3) the face (`reference_shape`).
        points: indices used (default: the upper face, 17-47).

    Returns:
        (3,) yaw, pitch, roll in degrees; NaN when a used point is not finite.
    """
    x = np.asarray(landmarks, np.float64)[points]
    X = np.asarray(shape, np.float64)[points]
    if not np.isfinite(x).all():
        return np.full(3, np.nan)
    Xc = X - X.mean(0)
    s0 = np.sqrt(((x - x.mean(0)) ** 2).sum() / (Xc[:, :2] ** 2).sum())

    def residual(p: np.ndarray) -> np.ndarray:
        return (s0 * p[3] * (Xc @ euler_to_matrix(p[:3]).T)[:, :2] + p[4:6] - x).ravel()

    sol = least_squares(residual, np.r_[0.0, 0.0, 0.0, 1.0, x.mean(0)], x_scale=np.r_[1, 1, 1, 0.01, 1, 1])
    return sol.x[:3]


def crop_roll_deg(transforms: np.ndarray) -> np.ndarray:
    """In-plane rotation (degrees) of 2x3 similarity transforms (source pixels -> crop), (T, 2, 3) -> (T,).

    M[:, :2] = k [[cos a, -sin a], [sin a, cos a]] gives a = atan2(M[1, 0], M[0, 0]): a point's image
    roll (demo convention, y down) grows by a in the crop.
    """
    m = np.asarray(transforms, np.float64)
    return np.degrees(np.arctan2(m[..., 1, 0], m[..., 0, 0]))


def expected_pose(truth_pose: np.ndarray, crop_roll: np.ndarray, reference_crop_roll: float) -> np.ndarray:
    """The pose a crop should show relative to the reference frame, (T, 3) yaw, pitch, roll degrees.

    truth_pose: (T, >=3) demo truth (yaw, pitch, roll relative to the photo; frame 0 is 0);
    crop_roll: (T,) `crop_roll_deg` of the crops the truth's clip was cut with; reference_crop_roll: that
    of the reference frame. The crop turns the whole head by its angle, which adds to roll only
    (R_crop = Rz(a) Rz(roll) Rx(pitch) Ry(yaw)); yaw and pitch are unchanged.
    """
    out = np.asarray(truth_pose, np.float64)[:, :3].copy()
    out[:, 2] += np.asarray(crop_roll, np.float64) - float(reference_crop_roll)
    return out


def mouth_opening_ratio(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip gap over face size: mean |p_upper - p_lower| of the pairs 61-67, 62-66, 63-65 / IOD (36-45).

    Args:
        landmarks: (..., 68, 2).

    Returns:
        (...) dimensionless opening (0 for closed lips; ~0.1-0.3 for a speaking mouth); NaN where a point is.
    """
    lm = np.asarray(landmarks, np.float64)
    gap = np.linalg.norm(lm[..., INNER_LIP_UPPER, :] - lm[..., INNER_LIP_LOWER, :], axis=-1).mean(-1)
    return gap / inter_ocular(lm)


def pose_error(measured: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """(3,) mean absolute error per angle (degrees) over the frames where both are finite."""
    d = np.abs(np.asarray(measured, np.float64) - np.asarray(expected, np.float64))
    return np.array([np.nanmean(d[:, k]) if np.isfinite(d[:, k]).any() else np.nan for k in range(3)])


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation over the finite pairs; NaN with fewer than 3 pairs or a constant side."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:   # ptp: std of a float constant is ~1e-17, not 0
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


# ---------------------------------------------------------------- data of one project run (I/O)

@dataclass
class RealClip:
    """One evaluation clip: its crop256 frames and geometry, the dlib box, and the demo truth."""

    clip_id: str
    pixels: np.ndarray       # (T, 256, 256, 3) uint8 crop256
    crop_roll: np.ndarray    # (T,) degrees
    box: tuple[float, float, float, float]   # fixed dlib box in the crop (median faces box)
    pose: np.ndarray         # (T, 6) truth
    opening: np.ndarray      # (T,) truth mouth "open"


def load_real_clips(root: Path, clip_ids: list[str]) -> dict[str, RealClip]:
    """Crops (the shards' crop256), faces boxes and demo truth of each clip of a project run at `root`.

    Raises:
        ValueError: a clip that is not a demo clip (no truth file), or whose crop, box and truth frame counts differ.
    """
    from headflow.evaluate.crops import box_in_crop
    from headflow.shards.reader import read_clip

    ingest = pd.read_parquet(root / "data/interim/ingest/clips.parquet", columns=["clip_id", "source", "source_path"])
    boxes = pd.read_parquet(root / "data/interim/faces/landmarks.parquet", columns=["clip_id", "frame", "box"])
    out = {}
    for cid in clip_ids:
        row = ingest[ingest.clip_id == cid]
        if row.empty or row.source.iloc[0] != "demo":
            raise ValueError(f"clip {cid}: not a demo clip in {root}/data/interim/ingest/clips.parquet; the demo's "
                             "truth files are needed (run on a project whose evaluation clips are the demo's)")
        truth_path = root / "data/raw/demo" / row.source_path.iloc[0].replace(".mp4", ".truth.npz")
        truth = np.load(truth_path)
        view = read_clip(cid, views=("crop256",), root=root / "data/interim/shards").views["crop256"]
        b = np.stack(boxes[boxes.clip_id == cid].sort_values("frame").box.to_numpy())
        if len(b) != len(view.pixels) or len(truth["pose"]) != len(view.pixels):
            raise ValueError(f"clip {cid}: {len(view.pixels)} crop frames, {len(b)} face boxes and "
                             f"{len(truth['pose'])} truth frames ({truth_path}) do not match")
        in_crop = np.array([box_in_crop(bb, m) for bb, m in zip(b, view.transform)])
        out[cid] = RealClip(cid, view.pixels, crop_roll_deg(view.transform), tuple(np.nanmedian(in_crop, 0)),
                            truth["pose"].astype(np.float64), truth["mouth"][:, 0].astype(np.float64))
    return out


def dlib_landmarks(frames: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """(T, 68, 2) float64 dlib landmarks of each frame in one fixed box."""
    from headflow.faces.dlib_backend import landmarks68

    return np.stack([landmarks68(f, box) for f in frames]).astype(np.float64)


def read_video(path: Path) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB frames of a video."""
    from headflow.media.normalize import read_frames

    return np.stack(list(read_frames(path)))


# ---------------------------------------------------------------- the bench

def measure(lm: np.ndarray, shape: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 3) pose and (T,) opening of landmarks (T, 68, 2)."""
    return np.stack([fit_pose(x, shape) for x in lm]), mouth_opening_ratio(lm)


def validate(real: dict[str, RealClip], frame_start: int) -> tuple[pd.DataFrame, dict]:
    """The measurement on real crops vs their own truth (reference = each clip's frame 0)."""
    errs, meas, exps, op_m, op_t, per_clip_r = [], [], [], [], [], []
    for c in real.values():
        lm = dlib_landmarks(c.pixels, c.box)
        pose, opening = measure(lm, reference_shape(lm[0]))
        exp = expected_pose(c.pose, c.crop_roll, c.crop_roll[0])
        sl = slice(frame_start, None)
        meas.append(pose[sl]), exps.append(exp[sl]), op_m.append(opening[sl]), op_t.append(c.opening[sl])
        errs.append(pose[sl] - exp[sl])
        per_clip_r.append(pearson(opening[sl], c.opening[sl]))
    m, e, d = np.concatenate(meas), np.concatenate(exps), np.concatenate(errs)
    rows = [{"quantity": f"{a} (deg)", "truth mean |x|": np.abs(e[:, k]).mean(), "MAE": np.abs(d[:, k]).mean(),
             "bias": d[:, k].mean(), "r": pearson(m[:, k], e[:, k]),
             "slope": float(np.polyfit(e[:, k], m[:, k], 1)[0])} for k, a in enumerate(ANGLES)]
    om, ot = np.concatenate(op_m), np.concatenate(op_t)
    rows.append({"quantity": "mouth opening", "truth mean |x|": np.abs(ot).mean(), "MAE": np.nan, "bias": np.nan,
                 "r": pearson(om, ot), "slope": float(np.polyfit(ot, om, 1)[0])})
    info = {"frames": len(m), "clips": len(real), "per_clip_mouth_r_mean": float(np.nanmean(per_clip_r))}
    return pd.DataFrame(rows), info


def score(measured_pose: np.ndarray, opening: np.ndarray, frames: np.ndarray, drv: RealClip, aud: RealClip,
          ref_roll: float) -> dict:
    """Per-clip figures of one video (frames: absolute indices of its rows)."""
    out = {}
    for side, clip in (("driver", drv), ("audio", aud)):
        exp = expected_pose(clip.pose[frames], clip.crop_roll[frames], ref_roll)
        err = pose_error(measured_pose, exp)
        for k, a in enumerate(ANGLES):
            out[f"{a}_err_vs_{side}"] = err[k]
        out[f"pose_err_vs_{side}"] = float(np.mean(err))
        out[f"mouth_r_vs_{side}"] = pearson(opening, clip.opening[frames])
    return out


def run(root: Path, variant: str | None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    gen = pd.read_parquet(root / "data/interim/generate_discohead/generated.parquet")
    tr = gen[gen.protocol == "transfer"]
    if tr.empty:
        raise ValueError(f"{root}/data/interim/generate_discohead/generated.parquet has no transfer rows; run "
                         "generate_discohead with the transfer protocol")
    base_variants = sorted(v for v in tr.variant.unique() if not v.endswith("+source_warp"))
    variant = variant or base_variants[0]
    if variant not in base_variants:
        raise ValueError(f"--variant {variant!r}: the transfer rows have {base_variants}")
    model = tr[tr.variant == variant].set_index("source_clip")
    warp = tr[tr.variant == f"{variant}+source_warp"].set_index("source_clip")
    ids = sorted(set(model.index) | set(model.driver_clip) | set(model.audio_clip))
    real = load_real_clips(root, ids)
    frame_start = int(model.frame_start.min())
    validation, vinfo = validate(real, frame_start)
    rows = []
    for src in sorted(model.index):
        r = model.loc[src]
        drv, aud = real[r.driver_clip], real[r.audio_clip]
        frames = np.arange(int(r.frame_start), int(r.frame_end))
        source_lm = dlib_landmarks(real[src].pixels[:1], real[src].box)[0]   # the generator's source frame 0
        shape = reference_shape(source_lm)
        videos = {"discohead": (root / r.output_path, drv.box)}
        if src in warp.index:
            videos["source_warp"] = (root / warp.loc[src].output_path, drv.box)
        for system, (path, box) in videos.items():
            px = read_video(path)
            if len(px) != len(frames):
                raise ValueError(f"{path}: {len(px)} frames, generated.parquet says [{frames[0]}, {frames[-1] + 1})")
            pose, opening = measure(dlib_landmarks(px, box), shape)
            rows.append({"system": system, "source_clip": src, **score(pose, opening, frames, drv, aud,
                                                                       real[src].crop_roll[0])})
        # the source frame held still (measured against itself: pose 0 exactly, a constant mouth)
        rows.append({"system": "source_frame", "source_clip": src, **score(
            np.zeros((len(frames), 3)), np.full(len(frames), mouth_opening_ratio(source_lm)), frames, drv, aud,
            real[src].crop_roll[0])})
        for system, clip in (("real_driver", drv), ("real_audio", aud)):
            lm = dlib_landmarks(clip.pixels[frames], clip.box)
            pose, opening = measure(lm, shape)
            rows.append({"system": system, "source_clip": src, **score(pose, opening, frames, drv, aud,
                                                                       real[src].crop_roll[0])})
    per_clip = pd.DataFrame(rows)
    comparisons = compare(per_clip)
    return validation, per_clip, comparisons, {**vinfo, "variant": variant, "frame_start": frame_start}


FIGURES = [(f"{a}_err_vs_driver", False) for a in ANGLES] + [("pose_err_vs_driver", False)] + \
          [(f"{a}_err_vs_audio", False) for a in ANGLES] + [("pose_err_vs_audio", False)] + \
          [("mouth_r_vs_audio", True), ("mouth_r_vs_driver", True)]


def compare(per_clip: pd.DataFrame) -> pd.DataFrame:
    """DisCoHead minus source-warp per figure: paired bootstrap 95% interval over the source clips."""
    from headflow.metrics.stats import paired_bootstrap

    a = per_clip[per_clip.system == "discohead"].set_index("source_clip").sort_index()
    b = per_clip[per_clip.system == "source_warp"].set_index("source_clip").reindex(a.index)
    rows = []
    for fig, higher in FIGURES:
        pb = paired_bootstrap(a[fig].to_numpy(), b[fig].to_numpy(), n_boot=N_BOOT, seed=0, higher_is_better=higher)
        rows.append({"figure": fig, "discohead - source_warp": pb.diff, "low": pb.low, "high": pb.high, "n": pb.n,
                     "winner": {"a": "discohead", "b": "source_warp", "none": "tie"}[pb.winner]})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path("."), help="project root whose data/ has generate_discohead's "
                    "outputs, the shards, the faces stage's landmarks and the demo's raw truth files")
    ap.add_argument("--variant", help="DisCoHead variant of the transfer rows (default: the first)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    validation, per_clip, comparisons, info = run(args.root.resolve(), args.variant)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    fmt = {"float_format": lambda v: f"{v:.3f}"}
    print(f"DisCoHead disentanglement on {args.root} ({info['variant']}, transfer, frames {info['frame_start']}.., "
          f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC)\n")
    print(f"Measurement on the real crops vs truth ({info['clips']} clips, {info['frames']} frames; pose relative to "
          f"each clip's frame 0; mouth r per clip, mean {info['per_clip_mouth_r_mean']:.3f}):")
    print(validation.to_string(index=False, **fmt), "\n")
    cols = [f"{a}_err_vs_driver" for a in ANGLES] + ["pose_err_vs_driver"] + \
           [f"{a}_err_vs_audio" for a in ANGLES] + ["pose_err_vs_audio", "mouth_r_vs_audio", "mouth_r_vs_driver"]
    order = ["discohead", "source_warp", "source_frame", "real_driver", "real_audio"]
    for system in order:
        sub = per_clip[per_clip.system == system]
        if sub.empty:
            continue
        means = sub[cols].mean()
        print(f"{system} ({len(sub)} clips): pose error deg, mean |x| (yaw / pitch / roll; mean of the three)")
        print(f"  vs head driver truth: {means.iloc[0]:.2f} / {means.iloc[1]:.2f} / {means.iloc[2]:.2f}; "
              f"{means.iloc[3]:.2f}")
        print(f"  vs audio clip truth (leak control): {means.iloc[4]:.2f} / {means.iloc[5]:.2f} / {means.iloc[6]:.2f}; "
              f"{means.iloc[7]:.2f}")
        print(f"  mouth opening r with the audio clip's truth: {means.iloc[8]:.3f}; with the head driver's (control): "
              f"{means.iloc[9]:.3f}")
    print("\nDisCoHead - source-warp, paired bootstrap 95% interval over the source clips "
          f"({N_BOOT} resamples; pose: lower is better, mouth r: higher):")
    print(comparisons.to_string(index=False, **fmt))
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
