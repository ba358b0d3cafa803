"""Head pose and identity of generated talking heads, with paired bootstrap intervals (Style Mapping, issue 20).

pose_intervals      the network's head-pose error against a constant mean-pose baseline, paired by clip
transfer_identity   CSIM of a transfer output with the neutral source image vs with the style reference's frames
identity_interval   their difference, paired by output

Imported by `stages/generate_stylemap.py` (the family itself may not import metrics/); numpy and
`headflow.metrics.{stats,identity,sampling}` only (dlib loads when `transfer_identity` runs).
"""

from __future__ import annotations

import numpy as np

from headflow.metrics.stats import paired_bootstrap


def clip_pose_errors(predicted: np.ndarray, fitted: np.ndarray, valid: np.ndarray,
                     mean_pose: np.ndarray) -> tuple[float, float] | None:
    """One clip's mean absolute pose error (MAE, degrees, over its valid frames x yaw/pitch/roll).

    MAE is the head-pose literature's figure (HopeNet, Ruiz et al. 2018, "Fine-Grained Head Pose Estimation
    Without Keypoints", table 1).

    Args:
        predicted: (T, 3) yaw, pitch, roll in degrees.
        fitted: (T, 3) the reference angles (fit3dmm's, or the demo's exact ones).
        valid: (T,) frames to use.
        mean_pose: (3,) the constant baseline.

    Returns:
        (network MAE, baseline MAE) in degrees; None when no frame is valid.
    """
    v = np.asarray(valid, bool)
    if not v.any():
        return None
    fit = np.asarray(fitted, np.float64)[v]
    return (float(np.abs(np.asarray(predicted, np.float64)[v] - fit).mean()),
            float(np.abs(np.asarray(mean_pose, np.float64)[None] - fit).mean()))


def pose_intervals(clips: list[tuple[np.ndarray, np.ndarray, np.ndarray]], mean_pose: np.ndarray,
                   n_boot: int = 1000, seed: int = 0, ci: float = 0.95, prefix: str = "pose") -> dict[str, object]:
    """The network's pose error against the constant mean-pose baseline, paired by clip, with a bootstrap interval.

    Units are clips, not frames: a clip's frames share its speaker, its portrait's tilt and its fit, and the
    pose changes slowly, so the constant baseline's error is nearly the same on every frame of a clip;
    resampling frames as if they were independent would give intervals several times too narrow. Each clip
    gives (network MAE, baseline MAE) (`clip_pose_errors`, clips weighted equally whatever their length);
    `headflow.metrics.stats.paired_bootstrap` resamples the clips' differences.

    Args:
        clips: per clip (predicted (T, 3), reference (T, 3), valid (T,)), angles in degrees.
        mean_pose: (3,) the constant baseline (the training set's mean fitted pose).
        n_boot, seed, ci: the bootstrap's settings (`paired_bootstrap`).
        prefix: key prefix.

    Returns:
        {"<prefix>_mae_deg", "baseline_<prefix>_mae_deg" (means over clips), "<prefix>_mae_diff_deg" (network -
        baseline; < 0: the network is better), "<prefix>_mae_diff_low" / "_high" (the interval),
        "<prefix>_clips", "<prefix>_winner" ("network", "mean_pose", or "none" when the interval contains 0)};
        empty when no clip has a valid frame.
    """
    per = [e for e in (clip_pose_errors(p, f, v, mean_pose) for p, f, v in clips) if e is not None]
    if not per:
        return {}
    net, base = np.array(per).T
    r = paired_bootstrap(net, base, n_boot, seed, ci, higher_is_better=False)
    return {f"{prefix}_mae_deg": round(float(net.mean()), 3),
            f"baseline_{prefix}_mae_deg": round(float(base.mean()), 3),
            f"{prefix}_mae_diff_deg": round(r.diff, 3), f"{prefix}_mae_diff_low": round(r.low, 3),
            f"{prefix}_mae_diff_high": round(r.high, 3), f"{prefix}_clips": r.n,
            f"{prefix}_winner": {"a": "network", "b": "mean_pose", "none": "none"}[r.winner]}


def landmark_box(landmarks: np.ndarray) -> np.ndarray:
    """(4,) (left, top, right, bottom) of landmarks (N, 2) (or (T, 4) of (T, N, 2)): the box in which dlib's
    shape predictor re-fits 68 landmarks (`metrics.identity.face_descriptors` given boxes)."""
    lm = np.asarray(landmarks, np.float64)
    return np.concatenate([lm.min(-2), lm.max(-2)], -1)


def transfer_identity(outputs: np.ndarray, source: np.ndarray, source_landmarks: np.ndarray, references: np.ndarray,
                      reference_landmarks: np.ndarray, k: int = 8) -> tuple[float, float, int]:
    """Identity of a transfer output I_o: CSIM with the neutral source image vs with the style reference's frames.

    On k evenly spaced frames (`metrics.sampling.frame_sample`), as the evaluate stage scores identity: dlib's
    68 landmarks re-fitted inside a face box on every image, dlib's ResNet descriptors
    (`metrics.identity.face_descriptors`) and their cosine similarity (`metrics.identity.csim`, per frame).
    I_o follows the reference frame's geometry, so its box is the reference frame's landmark box.

    Args:
        outputs: (T, H, W, 3) uint8 I_o frames.
        source: (H, W, 3) uint8 the neutral source image I_s; source_landmarks (68, 2) its landmarks (pixels).
        references: (T, H, W, 3) uint8 the style reference frames that drove the outputs, frame for frame;
            reference_landmarks (T, 68, 2) theirs.
        k: frames to sample (>= 1).

    Returns:
        (mean cos(I_o,t, I_s), mean cos(I_o,t, reference_t), frames used); the first above the second: the
        output looks more like the person it should keep than like the reference. CSIMs NaN when no frame has
        a descriptor.

    Raises:
        ValueError: T differs between outputs, references and their landmarks, T == 0, or k < 1.
    """
    from headflow.metrics.identity import csim, face_descriptors
    from headflow.metrics.sampling import frame_sample

    n = len(outputs)
    if n == 0 or len(references) != n or len(reference_landmarks) != n:
        raise ValueError(f"transfer_identity: outputs {np.shape(outputs)}, references {np.shape(references)} and "
                         f"reference_landmarks {np.shape(reference_landmarks)} must have the same T >= 1 frames")
    pick = frame_sample(n, k)
    boxes = landmark_box(np.asarray(reference_landmarks)[pick])
    d_src = face_descriptors(np.asarray(source), landmark_box(source_landmarks))
    d_out = face_descriptors(np.ascontiguousarray(np.asarray(outputs)[pick]), boxes)
    d_ref = face_descriptors(np.ascontiguousarray(np.asarray(references)[pick]), boxes)
    return (csim(d_out, np.repeat(d_src[None], len(pick), 0), "per_frame"), csim(d_out, d_ref, "per_frame"),
            int(len(pick)))


def identity_interval(per_output: list[tuple[float, float]], n_boot: int = 1000, seed: int = 0,
                      ci: float = 0.95) -> dict[str, object]:
    """CSIM with the source minus CSIM with the reference, paired by transfer output, with a bootstrap interval.

    Units are outputs (one source clip with one reference clip each; `paired_bootstrap`).

    Args:
        per_output: (csim with the source, csim with the reference) per output (`transfer_identity`).

    Returns:
        {"identity_csim_source", "identity_csim_reference" (means over outputs), "identity_csim_diff" (source -
        reference; > 0: the identity is kept), "identity_csim_diff_low" / "_high", "identity_outputs",
        "identity_winner" ("source", "reference", or "none" when the interval contains 0)}; empty for none.
    """
    if not per_output:
        return {}
    a, b = np.array(per_output, np.float64).T
    r = paired_bootstrap(a, b, n_boot, seed, ci, higher_is_better=True)
    return {"identity_csim_source": round(float(np.nanmean(a)), 4),
            "identity_csim_reference": round(float(np.nanmean(b)), 4),
            "identity_csim_diff": round(r.diff, 4), "identity_csim_diff_low": round(r.low, 4),
            "identity_csim_diff_high": round(r.high, 4), "identity_outputs": r.n,
            "identity_winner": {"a": "source", "b": "reference", "none": "none"}[r.winner]}


__all__ = ["clip_pose_errors", "identity_interval", "landmark_box", "pose_intervals", "transfer_identity"]
