"""Aggregation: failures count at the worst value of their clip, inf stays inf, wins need paired intervals."""

import numpy as np
import pandas as pd

from headflow.evaluate.aggregate import aggregate, compare
from headflow.evaluate.baselines import BASELINES
from headflow.manifest.schemas import PER_CLIP


def _rows(system, values, metric="ssim", protocol="reconstruction", family=None, seed=None, status=None):
    out = []
    for i, v in enumerate(values):
        r = {c: None for c in PER_CLIP.names}
        r.update(system=system, family=family, variant="v" if family else None, protocol=protocol, clip_id=f"c{i}",
                 seed=seed, frame_start=1, frame_end=10, n_frames=9, status="ok", audio_clip=f"c{i}")
        r[metric] = v
        if status and status[i]:
            r.update(status="failed", reason_code=status[i])
            r[metric] = None
        out.append(r)
    return out


def _frame(*groups):
    return pd.DataFrame([r for g in groups for r in g], columns=PER_CLIP.names)


def test_a_failure_takes_the_worst_value_on_its_clip_and_stays_in_the_mean():
    df = _frame(_rows("ground_truth", [1.0, 1.0, 1.0]),
                _rows("baseline_static_frame", [0.5, 0.6, 0.7]),
                _rows("gen", [0.9, 0.9, None], family="gen", seed=0, status=[None, None, "no_audio"]))
    agg = aggregate(df, n_boot=200).set_index(["system", "metric"])
    g = agg.loc[("gen", "ssim")]
    # clip c2 failed: imputed with the worst ssim on c2 (the static frame's 0.7) -> mean (0.9 + 0.9 + 0.7) / 3
    assert np.isclose(g["mean"], 2.5 / 3) and g.n == 3 and g.n_failed == 1 and g.n_dropped == 0
    assert agg.loc[("ground_truth", "ssim")]["mean"] == 1.0


def test_lower_is_better_failures_take_the_largest_value():
    df = _frame(_rows("baseline_static_frame", [2.0, 3.0], metric="m_lmd"),
                _rows("gen", [1.0, None], metric="m_lmd", family="gen", seed=0, status=[None, "unreadable"]))
    g = aggregate(df, n_boot=100).set_index(["system", "metric"]).loc[("gen", "m_lmd")]
    assert np.isclose(g["mean"], (1.0 + 3.0) / 2)


def test_all_inf_is_reported_as_inf_and_partial_inf_is_counted():
    df = _frame(_rows("ground_truth", [np.inf, np.inf], metric="psnr"),
                _rows("gen", [30.0, np.inf], metric="psnr", family="gen", seed=0))
    agg = aggregate(df, n_boot=100).set_index(["system", "metric"])
    gt = agg.loc[("ground_truth", "psnr")]
    assert gt["mean"] == np.inf and gt.low == np.inf and gt.high == np.inf and gt.n_dropped == 2
    g = agg.loc[("gen", "psnr")]
    assert g["mean"] == 30.0 and g.n == 1 and g.n_dropped == 1


def test_seeds_are_averaged_per_clip_before_the_bootstrap():
    df = _frame(_rows("gen", [0.2, 0.4], family="gen", seed=0), _rows("gen", [0.4, 0.6], family="gen", seed=1))
    g = aggregate(df, n_boot=100).set_index(["system", "metric"]).loc[("gen", "ssim")]
    assert np.isclose(g["mean"], 0.4) and g.n == 2        # clip means 0.3 and 0.5


def test_offset_is_aggregated_as_its_absolute_value():
    df = _frame(_rows("ground_truth", [-2.0, 2.0, 0.0], metric="offset"))
    g = aggregate(df, n_boot=100).set_index(["system", "metric"]).loc[("ground_truth", "abs_offset")]
    assert np.isclose(g["mean"], 4 / 3) and not g.higher_is_better


def test_paired_wins_need_an_interval_that_excludes_zero():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.4, 0.8, 20)
    better = base + 0.05                                    # consistently better on every clip
    noisy = base + rng.normal(0, 0.05, 20)                  # no systematic difference
    df = _frame(_rows("baseline_static_frame", base), _rows("ground_truth", np.ones(20)),
                _rows("good", better, family="good", seed=0), _rows("noise", noisy, family="noise", seed=0))
    c = compare(df, BASELINES, n_boot=1000).set_index(["system", "opponent", "metric"])
    assert c.loc[("good", "baseline_static_frame", "ssim")].winner == "system"
    assert np.isclose(c.loc[("good", "baseline_static_frame", "ssim")]["diff"], 0.05)
    assert c.loc[("noise", "baseline_static_frame", "ssim")].winner == "none"
    assert "ground_truth" not in set(c.index.get_level_values("opponent"))    # wins are claimed against baselines


def test_comparisons_count_the_failed_clips_scored_at_the_worst_value():
    # gen failed on c1 and c2 (no face): both imputed with the static frame's value there, so its
    # difference on them is 0; n_failed says 2 of the 3 paired clips measured no output.
    df = _frame(_rows("baseline_static_frame", [0.5, 0.6, 0.7]), _rows("ground_truth", [1.0, 1.0, 1.0]),
                _rows("gen", [0.8, None, None], family="gen", seed=0, status=[None, "no_face", "no_face"]))
    c = compare(df, BASELINES, n_boot=200).set_index(["system", "opponent", "metric"])
    row = c.loc[("gen", "baseline_static_frame", "ssim")]
    assert row.n == 3 and row.n_failed == 2 and np.isclose(row["diff"], 0.3 / 3)


def test_fid_inception_rows_keep_each_variant_apart():
    # DisCoHead scores two variants per protocol (the model and its source-warp baseline): one unavailable
    # fid_inception row each, never two rows with a null variant (the aggregates' uniqueness check).
    from headflow.evaluate.stage import fid_inception_rows

    rows = fid_inception_rows([("discohead", "affine-DM", "reconstruction"),
                               ("discohead", "affine-DM+source_warp", "reconstruction"),
                               ("ground_truth", None, "reconstruction")], 0.95)
    assert rows.variant.tolist()[:2] == ["affine-DM", "affine-DM+source_warp"] and pd.isna(rows.variant.iloc[2])
    assert rows["mean"].isna().all() and (rows.metric == "fid_inception").all()
    assert not rows.duplicated(["system", "variant", "protocol", "metric"]).any()


# --- same-run variant baselines (styletalk, issue 18) ---
def _variant_rows(variant, values, metric="m_lmd_3d"):
    rows = _rows("styletalk", values, metric, family="styletalk", seed=0)
    for r in rows:
        r["variant"] = variant
    return rows


def test_a_family_variant_is_compared_with_its_same_run_baseline_variants():
    # styletalk:default vs its replay rows: every clip 1.0 lower (m_lmd_3d, lower is better) -> diff -1, a
    # win; vs neutral: +-0.1 alternating over 6 clips -> mean diff 0, no winner. The baseline variants are
    # not compared with each other or with their parent as the system.
    sys_vals = [1.0 + 0.01 * i for i in range(6)]
    df = _frame(_rows("ground_truth", [0.0] * 6, "m_lmd_3d"),
                _variant_rows("default", sys_vals),
                _variant_rows("default+replay", [v + 1.0 for v in sys_vals]),
                _variant_rows("default+neutral", [v + (0.1 if i % 2 else -0.1) for i, v in enumerate(sys_vals)]))
    c = compare(df, BASELINES, n_boot=500)
    pairs = set(zip(c.variant, c.opponent))
    assert pairs == {("default", "styletalk:default+neutral"), ("default", "styletalk:default+replay")}
    c = c.set_index(["variant", "opponent", "metric"])
    win = c.loc[("default", "styletalk:default+replay", "m_lmd_3d")]
    assert np.isclose(win["diff"], -1.0) and win.winner == "system" and win.n == 6
    tie = c.loc[("default", "styletalk:default+neutral", "m_lmd_3d")]
    assert np.isclose(tie["diff"], 0.0, atol=1e-12) and tie.winner == "none"


def test_same_run_baselines_are_the_plus_named_variants_of_that_variant():
    from headflow.evaluate.aggregate import same_run_baselines

    names = ["a", "a+replay", "a+neutral", "ab+replay", "b", None]
    assert same_run_baselines("a", names) == ["a+neutral", "a+replay"]     # not "ab+replay"
    assert same_run_baselines("a+replay", names) == [] and same_run_baselines("", names) == []
# --- end styletalk ---


# --- stylemap (issue 20) ---
def test_a_variant_is_compared_with_its_own_baseline_variant():
    # stylemap writes "v+landmark_similarity" beside "v" on the same clips: v is 0.05 better on every clip,
    # so the paired interval of v - baseline is [0.05, 0.05] and v wins; the baseline variant itself is only
    # compared with the reference baselines, never with v (one direction, one row per metric)
    rng = np.random.default_rng(1)
    base = rng.uniform(0.4, 0.8, 12)
    model = _rows("gen", base + 0.05, family="gen", seed=0)
    warp = _rows("gen", base, family="gen", seed=0)
    for r in warp:
        r["variant"] = "v+landmark_similarity"
    df = _frame(_rows("baseline_static_frame", base - 0.1), _rows("ground_truth", np.ones(12)), model, warp)
    c = compare(df, BASELINES, n_boot=500)
    own = c[c.opponent == "gen:v+landmark_similarity"]
    assert len(own) == 1 and own.iloc[0].variant == "v" and own.iloc[0].winner == "system"
    assert np.isclose(own.iloc[0]["diff"], 0.05) and own.iloc[0].n == 12
    assert set(c[c.variant == "v+landmark_similarity"].opponent) == {"baseline_static_frame"}
# --- end stylemap ---
