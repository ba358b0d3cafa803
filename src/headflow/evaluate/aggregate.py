"""Per-system aggregates with bootstrap intervals, and paired comparisons against the baselines.

Units are clips (`headflow.metrics.stats`: resampling clips keeps a clip's frames together). For one
(system, variant, protocol) a clip's value is the mean over its seeds.

Failures count against their system: a failed row (quarantined output, output not generated, scoring
error) takes, for each metric, the worst finite value any system reached on the same clip and
protocol (the lowest for higher-is-better metrics, the highest otherwise; `abs_offset`: the largest).
A failure therefore never scores better than the worst opponent, and it is never left out of the
mean; `n_failed` says how many clips were imputed so. Where no system has a value on the clip (a
protocol without baselines, all outputs failed) there is nothing to impute: the failure stays null and
is counted in both `n_failed` and `n_dropped`.

Non-finite values (PSNR inf of identical frames) cannot enter a bootstrap mean: they are counted in
`n_dropped`; a system whose every value is +inf (ground truth's PSNR) reports mean, low and high +inf.
The signed `offset` is aggregated as `abs_offset` (frames away from sync; lower is better).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from headflow.manifest.schemas import EVAL_METRICS
from headflow.metrics.identity import frechet_distance
from headflow.metrics.stats import bootstrap_ci, paired_bootstrap

HIGHER_IS_BETTER: dict[str, bool] = {
    "psnr": True, "psnr_masked": True, "ssim": True, "ssim_masked": True, "cpbd": True, "lap_var": True,
    "f_lmd": False, "m_lmd": False, "m_lmd_3d": False, "akd": False, "aed": False, "csim": True, "apd": False,
    "apd_masked": False, "mask_iou": True, "pose_err_deg": False, "style_acc": True, "lse_d": False, "lse_c": True,
    "abs_offset": False, "lse_c_loss_expert": True, "lse_c_syncnet": True, "lpips": False, "fid_face": False,
    "fid_inception": False,
}
"""Direction of every aggregated metric (CPBD and vL: sharper is better, as the papers read them)."""
AGG_METRICS = tuple("abs_offset" if m == "offset" else m for m in EVAL_METRICS)
KEY = ["system", "variant", "protocol"]


def _clip_values(per_clip: pd.DataFrame) -> pd.DataFrame:
    """per_clip with `abs_offset`, failures imputed, seeds averaged: one row per (system, variant, protocol, clip)."""
    df = per_clip.copy()
    df[list(EVAL_METRICS)] = df[list(EVAL_METRICS)].astype(np.float64)
    df["abs_offset"] = df["offset"].abs()
    df["variant"] = df["variant"].fillna("")
    failed = df["status"] == "failed"
    ok = df[~failed]
    for m in AGG_METRICS:
        worst = ok.replace([np.inf, -np.inf], np.nan).groupby(["protocol", "clip_id"])[m]
        worst = worst.min() if HIGHER_IS_BETTER[m] else worst.max()
        key = pd.MultiIndex.from_frame(df.loc[failed, ["protocol", "clip_id"]])
        df.loc[failed, m] = worst.reindex(key).to_numpy()
    keep = ["system", "family", "variant", "protocol", "clip_id"]
    values = df.groupby(keep, dropna=False)[list(AGG_METRICS)].mean()
    n_failed = df.assign(failed=failed).groupby(keep, dropna=False)["failed"].sum().rename("n_failed")
    return values.join(n_failed).reset_index()


def aggregate(per_clip: pd.DataFrame, n_boot: int = 1000, ci: float = 0.95, seed: int = 0,
              notes: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per (system, variant, protocol, metric): mean and bootstrap interval over clips.

    Args:
        per_clip: rows as in per_clip.parquet.
        n_boot, ci, seed: `headflow.metrics.bootstrap_ci` settings.
        notes: metric -> why it is null everywhere (missing weights); attached to its rows.

    Returns:
        A DataFrame with the columns of the `aggregates` schema (metrics that are null for every
        row of a protocol are kept once with their note only when `notes` names them).
    """
    notes = notes or {}
    clips = _clip_values(per_clip)
    rows = []
    for (system, family, variant, protocol), g in clips.groupby(["system", "family", "variant", "protocol"],
                                                                 dropna=False, sort=False):
        proto = clips[clips.protocol == protocol]
        for m in AGG_METRICS:
            if proto[m].isna().all() and m not in notes:
                continue            # does not apply to this protocol
            x = g[m].to_numpy(np.float64)
            finite = np.isfinite(x)
            if len(x) and not finite.any() and np.all(x == np.inf):
                r_mean = r_low = r_high = np.inf
                n, n_dropped = 0, len(x)
            else:
                r = bootstrap_ci(x, n_boot, seed, ci)
                r_mean, r_low, r_high, n, n_dropped = r.mean, r.low, r.high, r.n, r.n_dropped
            rows.append({"system": system, "family": family, "variant": variant or None, "protocol": protocol,
                         "metric": m, "mean": r_mean, "low": r_low, "high": r_high, "n": n, "n_dropped": n_dropped,
                         "n_failed": int(g["n_failed"].sum()), "ci": ci, "higher_is_better": HIGHER_IS_BETTER[m],
                         "note": notes.get(m)})
    return pd.DataFrame(rows, columns=["system", "family", "variant", "protocol", "metric", "mean", "low", "high",
                                       "n", "n_dropped", "n_failed", "ci", "higher_is_better", "note"])


def set_metrics(descriptors: dict[tuple[str, str, str], np.ndarray], reference: dict[str, str],
                ci: float = 0.95,
                targets: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]] | None = None) -> pd.DataFrame:
    """`fid_face`: Fréchet distance of each system's pooled face descriptors to the real clips'.

    Args:
        descriptors: (system, variant, protocol) -> (N, 128) descriptors of its sampled frames, pooled
            over clips (rows with NaN, frames without a face, are dropped).
        reference: protocol -> the system whose descriptors are the real set ("ground_truth", or
            "baseline_unedited" in dubbing, whose frames are the real source frames).
        targets: (system, variant, protocol) -> (fake (N, 128), real (N, 128)) for a protocol without a
            reference system (reenactment, head2headfs issue 17): the system's descriptors of its tasks with
            ground truth (self-reenactment) and the real frames' at the same tasks and sampled frames
            (`evaluate.stage.pool_targets`). For such a key the distance is between these two sets only
            (its tasks without ground truth are left out); keys of other protocols are unaffected.

    Returns:
        Aggregate rows (no interval: one number per set; `n` = descriptors used).
    """
    targets = targets or {}
    rows = []
    for (system, variant, protocol), feats in descriptors.items():
        ref_key = next((k for k in descriptors if k[0] == reference.get(protocol) and k[2] == protocol), None)
        value, note, n = np.nan, None, 0
        if (system, variant, protocol) in targets:             # head2headfs: self-reenactment's real frames
            feats, real = targets[(system, variant, protocol)]
            value, note, n = _fid_face(feats, real)
            if np.isfinite(value):
                note += ("; real set: the ground-truth frames of its self-reenactment tasks at the same sampled "
                         "frames (cross-reenactment tasks have none and are left out)")
        elif ref_key is None:
            note = f"no real reference set in protocol {protocol}"
            if protocol == "reenactment":
                note += " (only self-reenactment tasks have ground truth; this system has none scored)"
        else:
            value, note, n = _fid_face(feats, descriptors[ref_key])
        rows.append({"system": system, "family": None, "variant": variant or None, "protocol": protocol,
                     "metric": "fid_face", "mean": value, "low": np.nan, "high": np.nan, "n": n, "n_dropped": 0,
                     "n_failed": 0, "ci": ci, "higher_is_better": False, "note": note})
    return pd.DataFrame(rows)


def _fid_face(feats: np.ndarray, real: np.ndarray) -> tuple[float, str, int]:
    """(Fréchet distance, note, descriptors used) of a system's descriptors to a real set, frames without a
    face (NaN rows) dropped from each; NaN with a note when either keeps fewer than 2."""
    a = feats[np.isfinite(feats).all(axis=1)]
    b = real[np.isfinite(real).all(axis=1)]
    if len(a) < 2 or len(b) < 2:
        return np.nan, "fewer than 2 face descriptors", len(a)
    return frechet_distance(a, b), (f"Frechet distance of dlib descriptors, {len(a)} vs {len(b)} frames (N < 128 "
                                    "dims: biased upward, compare only at equal N)"), len(a)


def compare(per_clip: pd.DataFrame, baselines: dict[str, tuple[str, ...]], n_boot: int = 1000, ci: float = 0.95,
            seed: int = 0) -> pd.DataFrame:
    """Paired bootstrap of every generated system against every baseline of its protocol, on shared clips,
    and against its same-run variant baselines (`same_run_baselines`: variant "<v>+<name>" of the same
    family, e.g. StyleTalk's "default+replay"; opponent labelled "<family>:<v>+<name>").

    A win is claimed (`winner` "system" or "opponent") only when the interval of mean(system -
    opponent) excludes 0 (`headflow.metrics.paired_bootstrap`). `n_failed` counts the paired clips on
    which the system's output failed (e.g. no face found) and was scored at the worst value any
    system got on that clip (`_clip_values`): a comparison with n_failed == n measured no output at all.
    """
    clips = _clip_values(per_clip)
    cols = ["system", "variant", "protocol", "opponent", "metric", "diff", "low", "high", "n", "n_dropped",
            "n_failed", "winner"]
    rows = []
    reference = {s for systems in baselines.values() for s in systems}
    for (system, variant, protocol), g in clips.groupby(KEY, dropna=False, sort=False):
        if system in reference:
            continue
        opponents = [(b, clips[(clips.system == b) & (clips.protocol == protocol)])
                     for b in baselines.get(protocol, ()) if b.startswith("baseline_")]
        opponents += [(f"{system}:{v}", clips[(clips.system == system) & (clips.variant == v)
                                                & (clips.protocol == protocol)])
                      for v in same_run_baselines(variant, clips.variant[(clips.system == system)
                                                                         & (clips.protocol == protocol)])]
        for opponent, o in opponents:
            pair = g.merge(o, on="clip_id", suffixes=("", "_o"))
            if pair.empty:
                continue
            for m in AGG_METRICS:
                a, b = pair[m].to_numpy(np.float64), pair[f"{m}_o"].to_numpy(np.float64)
                if np.isnan(a).all() or np.isnan(b).all():
                    continue
                r = paired_bootstrap(a, b, n_boot, seed, ci, HIGHER_IS_BETTER[m])
                winner = {"a": "system", "b": "opponent", "none": "none"}[r.winner]
                rows.append({"system": system, "variant": variant or None, "protocol": protocol, "opponent": opponent,
                             "metric": m, "diff": r.diff, "low": r.low, "high": r.high, "n": r.n,
                             "n_dropped": r.n_dropped, "n_failed": int((pair["n_failed"] > 0).sum()),
                             "winner": winner})
    return pd.DataFrame(rows, columns=cols)


# --- same-run variant baselines (styletalk, issue 18) ---
def same_run_baselines(variant: str, variants) -> list[str]:
    """The variants of one family that are same-run baselines of `variant`: those named "<variant>+<name>"
    (DisCoHead's "<v>+source_warp", StyleTalk's "<v>+replay" and "<v>+neutral", Head2HeadFS's
    "<v>+retrieval" and "<v>+random_init", Style Mapping's "<v>+landmark_similarity"), sorted. A baseline variant
    (one containing "+") has none of its own; an empty variant has none.
    """
    if not variant or "+" in variant:
        return []
    return sorted({str(v) for v in variants if isinstance(v, str) and v.startswith(f"{variant}+")})
# --- end styletalk ---
