"""The evaluate stage on a tiny project of real faces: ground-truth sanity, baselines, bad outputs, outputs."""

import json

import numpy as np
import pandas as pd
import pytest

from evaluate_fixture import TEST_CLIPS

pytestmark = pytest.mark.slow   # one shared stage run: ~15 s idle, more on a loaded machine


def _per_clip(root):
    return pd.read_parquet(root / "data/interim/evaluate/per_clip.parquet")


def test_ground_truth_rows_are_perfect_against_themselves(evaluated):
    root, metrics, _, _ = evaluated
    gt = _per_clip(root).query("system == 'ground_truth'")
    assert sorted(gt.clip_id) == TEST_CLIPS and set(gt.protocol) == {"reconstruction"}
    assert (gt.psnr == np.inf).all() and (gt.psnr_masked == np.inf).all()      # inf, not a crash
    assert np.allclose(gt.ssim, 1.0) and np.allclose(gt.ssim_masked, 1.0)
    assert np.allclose(gt.f_lmd, 0.0) and np.allclose(gt.m_lmd, 0.0) and np.allclose(gt.akd, 0.0)
    assert np.allclose(gt.apd, 0.0)                                            # the frames themselves
    assert (gt.csim > 0.9999).all() and np.allclose(gt.aed, 0.0, atol=1e-6)
    assert gt.cpbd.between(0, 1).all() and (gt.lap_var > 0).all() and gt.lse_d.notna().all()
    assert metrics["reconstruction/ground_truth/psnr"] == "inf" and metrics["reconstruction/ground_truth/ssim"] == 1.0


def test_baselines_are_scored_on_the_same_clips_and_frames(evaluated):
    root, _, _, _ = evaluated
    df = _per_clip(root)
    for protocol, systems in {"reconstruction": ["baseline_reference_fill", "baseline_static_frame", "ground_truth"],
                              "dubbing": ["baseline_reference_fill", "baseline_unedited"]}.items():
        p = df[(df.protocol == protocol) & df.family.isna()]
        assert sorted(p.system.unique()) == systems
        ranges = p.groupby("clip_id")[["frame_start", "frame_end", "audio_clip"]].nunique()
        assert (ranges == 1).all().all()                     # one range and one audio per clip and protocol
    rec = df[(df.protocol == "reconstruction") & df.family.isna()].set_index(["system", "clip_id"])
    for c in TEST_CLIPS:   # the static frame moves nothing: further from the truth than the reference fill
        assert rec.loc[("baseline_static_frame", c), "ssim"] < rec.loc[("baseline_reference_fill", c), "ssim"] < 1
        assert rec.loc[("baseline_static_frame", c), "psnr"] < rec.loc[("baseline_reference_fill", c), "psnr"]
        assert rec.loc[("baseline_static_frame", c), "apd"] > rec.loc[("baseline_reference_fill", c), "apd"] > 0
    dub = df[df.protocol == "dubbing"].set_index(["system", "clip_id"])
    assert dub.psnr.isna().all() and dub.m_lmd.isna().all()     # no target video for the new audio
    assert (dub.loc["baseline_unedited"].csim > 0.9999).all()   # the unedited video is the source itself


def test_identical_and_aligned_generated_outputs(evaluated):
    root, _, _, _ = evaluated
    df = _per_clip(root).query("system == 'copycat' and protocol == 'reconstruction'").set_index("clip_id")
    exact = df.loc[TEST_CLIPS[0]]             # the real frames as a generated output: identical
    assert exact.status == "ok" and exact.psnr == np.inf and exact.ssim == 1.0 and exact.m_lmd == 0.0
    assert exact.csim > 0.9999 and exact.family == "copycat" and exact.seed == 0
    aligned = df.loc[TEST_CLIPS[2]]           # 256x256 aligned crops: re-cropped through the inverse transform
    assert aligned.status == "ok" and aligned.psnr > 28 and aligned.csim > 0.99 and aligned.m_lmd < 1.0


def test_bad_outputs_are_quarantined_and_count_against_their_system(evaluated):
    root, metrics, verdicts, _ = evaluated
    q = pd.read_parquet(root / "data/interim/evaluate/quarantine.parquet")
    got = {k.split("/", 3)[3] if k.startswith("copycat") else f"blank/{k.split('/', 3)[3]}": r
           for k, r in zip(q.clip_id, q.reason_code)}
    assert got == {k: v for k, v in verdicts.items() if v != "ok"}
    assert (q.stage == "evaluate").all() and q.message.str.len().gt(10).all()
    df = _per_clip(root)
    failed = df[df.status == "failed"]
    # 5 quarantined outputs + blank's 2 reconstruction tasks it never generated
    assert len(failed) == 7 and set(failed.reason_code) == {*q.reason_code, "not_generated"}
    agg = pd.read_parquet(root / "data/interim/evaluate/aggregates.parquet").set_index(
        ["system", "protocol", "metric"])
    assert agg.loc[("copycat", "reconstruction", "ssim"), "n_failed"] == 1
    assert agg.loc[("copycat", "dubbing", "cpbd"), "n_failed"] == 3
    assert agg.loc[("blank", "reconstruction", "ssim"), "n"] == 3        # failures are in the mean, not dropped
    worst = df[(df.protocol == "reconstruction") & (df.status == "ok")].groupby("clip_id").ssim.min()
    assert np.isclose(agg.loc[("blank", "reconstruction", "ssim"), "mean"], worst.mean())
    assert metrics["reconstruction/copycat:default/n_failed"] == 1 and metrics["quarantined"] == 5
    html = (root / "reports/report.html").read_text()
    for code in ("no_audio", "wrong_frame_count", "unreadable", "missing_output", "no_face", "not_generated"):
        assert code in html


def test_outputs_metrics_plots_and_speed(evaluated):
    root, metrics, _, seconds = evaluated
    on_disk = json.loads((root / "reports/metrics/evaluate.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    assert all(isinstance(v, (int, float, str)) for v in on_disk.values())      # flat keys for dvc exp show
    for group in ("image", "cpbd", "landmarks", "identity", "sync_judge", "sync_loss_expert"):
        assert on_disk[f"speed/{group}_frames_per_s"] > 0
    plots = json.loads((root / "reports/plots/evaluate.json").read_text())
    assert {"reconstruction/ground_truth", "dubbing/baseline_unedited"} <= {p["system"] for p in plots}
    assert all(set(p) == set(plots[0]) for p in plots)       # DVC's bar templates need every key in every row
    agg = pd.read_parquet(root / "data/interim/evaluate/aggregates.parquet")
    notes = agg[agg.metric.isin(["lse_c_syncnet", "fid_inception", "lpips"])]
    assert notes["mean"].isna().all() and notes.note.str.contains("weights|syncnet_v2").all()
    comparisons = pd.read_parquet(root / "data/interim/evaluate/comparisons.parquet")
    assert set(comparisons.system) == {"copycat", "blank"} and set(comparisons.winner) <= {"system", "opponent", "none"}
    meta = json.loads((root / "data/interim/evaluate/meta.json").read_text())
    assert meta["generated_manifests"] == ["data/interim/generate_copycat/generated.parquet"]   # from the catalog
    assert meta["checkpoint_paths"] == {"judge": "data/models/judge/last.pt", "loss_expert": "data/models/expert/last.pt"}
    print(f"stage run: {seconds:.1f} s, total_seconds {on_disk['speed/total_seconds']}")


def test_a_different_identity_has_a_lower_csim_than_the_same_persons_other_clip(eval_project):
    from headflow.evaluate.crops import box_in_crop, cut
    from headflow.evaluate.scoring import Scorer, SyncNets
    from headflow.metrics import csim

    from evaluate_fixture import read_clip

    lm = pd.read_parquet(eval_project / "data/interim/faces/landmarks.parquet")
    scorer = Scorer(SyncNets(), {}, lambda c: None)
    desc = {}
    for c in TEST_CLIPS:
        rows = lm[lm.clip_id == c].sort_values("frame")
        frames = read_clip(eval_project, c)
        desc[c] = np.stack([scorer.heavy(cut(frames[f], m.reshape(2, 3), 256), box_in_crop(b, m.reshape(2, 3)))["descriptor"]
                            for f, m, b in zip([4, 12, 20], rows.crop_transform.iloc[[4, 12, 20]], rows.box.iloc[[4, 12, 20]])])
    astro_a, astro_b, hopper = (desc[c] for c in TEST_CLIPS)
    same, other = csim(astro_a, astro_b, "mean"), csim(astro_a, hopper, "mean")
    print(f"CSIM same person {same:.4f}, other person {other:.4f}")
    assert same > other and same > 0.95


def test_a_split_without_clips_gives_empty_tables_and_a_page(eval_project, tmp_path):
    from evaluate_fixture import copy_project, tiny_params
    from headflow.evaluate.stage import run_stage

    root = copy_project(eval_project, tmp_path / "project")
    metrics = run_stage(tiny_params(split="val"), project_root=root, progress=False, generated_paths=())
    assert metrics["clips"] == 0 and len(_per_clip(root)) == 0
    assert "0 val clips" in (root / "reports/report.html").read_text()


def test_syncnet_scores_run_on_its_own_crops_when_weights_are_present(eval_project):
    """Plumbing only: a randomly initialised SyncNetV2 stands in for the user's syncnet_v2.model (absent here);
    the product never reports a number from random weights (without the file the column is null)."""
    import torch

    from evaluate_fixture import read_clip
    from headflow.evaluate.baselines import Task
    from headflow.evaluate.scoring import RealClip, Scorer, SyncNets, load_sync_nets
    from headflow.media import read_audio
    from headflow.metrics.syncnet import SyncNetV2

    nets = load_sync_nets(None, None, "auto", eval_project)
    assert nets.syncnet is None and "syncnet_v2" in nets.missing["lse_c_syncnet"]
    clip = TEST_CLIPS[0]
    lm = pd.read_parquet(eval_project / "data/interim/faces/landmarks.parquet").query("clip_id == @clip")
    real = RealClip(clip, read_clip(eval_project, clip), np.stack(lm.box.to_numpy()).astype(float), lm.valid.to_numpy(),
                    np.stack(lm.crop_transform.to_numpy()).reshape(-1, 2, 3))
    torch.manual_seed(0)
    scorer = Scorer(SyncNets(syncnet=SyncNetV2().eval()), {clip: np.load(eval_project / f"data/interim/audio_features/mel/{clip}.npy")},
                    lambda c: read_audio(eval_project / f"data/interim/ingest/media/{c}.wav"), sample_frames=1,
                    max_offset=2, min_pairs=2)
    metrics, notes, _ = scorer.score(real, Task("reconstruction", clip, clip, clip, clip, True, 1, 13),
                                     lambda f: real.frames[f])
    assert np.isfinite(metrics["lse_c_syncnet"]) and metrics["lse_c_syncnet"] >= 0 and metrics["lse_c"] is None
    assert scorer.timings["sync_syncnet"][0] == 12


def test_plan_rejects_outputs_outside_the_set_other_pairings_and_duplicates(eval_project):
    """Planning only (no scoring): which generated rows become tasks and which are rejected, and why."""
    from evaluate_fixture import tiny_params
    from headflow.evaluate.stage import plan_jobs
    from headflow.manifest import read_manifest
    from headflow.manifest.generated import dubbing_pairs

    clips = read_manifest(eval_project / "data/interim/ingest/clips.parquet", "clips").query("split == 'test'")
    audio = read_manifest(eval_project / "data/interim/audio_features/audio_features.parquet", "audio_features")
    clips = clips.merge(audio[["clip_id", "mel_path"]], on="clip_id").sort_values("clip_id", ignore_index=True)
    lm = read_manifest(eval_project / "data/interim/faces/landmarks.parquet", "landmarks")
    a, b, h = TEST_CLIPS
    pairs = dubbing_pairs(TEST_CLIPS)

    def gen(cid, src, protocol="reconstruction", audio=None, seed=0):
        return dict(clip_id=cid, family="fam", variant="v", seed=seed, protocol=protocol, source_clip=src,
                    audio_clip=audio or src, driver_clip=None, style_clip=None, references=[], output_kind="video",
                    output_path=f"{cid}.mp4", fps=25.0, frame_start=0, frame_end=24, checkpoint_sha256="0" * 64)

    rows = [gen("r1", a), gen("r2", a), gen("r3", "hopper_t-000000000d"), gen("d1", a, "dubbing", b if pairs[a] != b else h),
            gen("d2", b, "dubbing", pairs[b]), gen("r4", b, seed=1)]
    jobs, rejected, not_generated, skipped = plan_jobs(tiny_params(), clips, lm, rows, eval_project)
    reasons = {r["clip_id"]: code for r, code, _ in rejected}
    assert reasons == {"r2": "duplicate_output", "r3": "not_in_evaluation_set", "d1": "task_mismatch"}
    missing = sorted((r["protocol"], r["seed"], r["clip_id"]) for r in not_generated)
    # seed 0 made reconstruction of a only and dubbing of b only; seed 1 reconstruction of b only
    assert missing == [("dubbing", 0, a), ("dubbing", 0, h), ("reconstruction", 0, b), ("reconstruction", 0, h),
                       ("reconstruction", 1, a), ("reconstruction", 1, h)]
    scored = sorted((t.protocol, s, t.clip_id) for j in jobs for t, s, g in j.items if g is not None)
    assert scored == [("dubbing", "fam", b), ("reconstruction", "fam", a), ("reconstruction", "fam", b)]
    assert skipped == [] and len(jobs) == 3
