"""fid_face of reenactment (issue 17): self-reenactment against its own real frames, other protocols unchanged."""

import numpy as np
import pandas as pd

from headflow.evaluate.aggregate import set_metrics
from headflow.evaluate.stage import pool_targets

REFERENCE = {"reconstruction": "ground_truth", "dubbing": "baseline_unedited"}
SYS = ("head2headfs", "default", "reenactment")


def _feats(n=40, d=8, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


def _row(df, system, protocol, variant=None):
    hit = df[(df.system == system) & (df.protocol == protocol)
             & ((df.variant == variant) if variant else df.variant.isna())]
    assert len(hit) == 1
    return hit.iloc[0]


def test_self_reenactment_fid_known_answers():
    real = _feats()
    shift = np.zeros(8)
    shift[:2] = (3.0, 4.0)
    cross = _feats(seed=1) + 100.0            # cross-reenactment frames: no ground truth, must not count
    descriptors = {SYS: np.concatenate([real + shift, cross]),
                   ("head2headfs", "default+retrieval", "reenactment"): np.concatenate([real, cross]),
                   ("head2headfs", "cross_only", "reenactment"): cross}
    targets = {SYS: (real + shift, real), ("head2headfs", "default+retrieval", "reenactment"): (real.copy(), real)}
    df = set_metrics(descriptors, REFERENCE, 0.95, targets)
    # a translation leaves the sample covariance unchanged, so FD = ||shift||^2 = 3^2 + 4^2 = 25
    ours = _row(df, "head2headfs", "reenactment", "default")
    assert abs(ours["mean"] - 25.0) < 1e-6 and ours.n == 40 and "self-reenactment" in ours.note
    # identical fake and real sets: FD = 0
    assert abs(_row(df, "head2headfs", "reenactment", "default+retrieval")["mean"]) < 1e-6
    # a system with only cross-reenactment outputs has no real set: NaN and the reason
    cross_row = _row(df, "head2headfs", "reenactment", "cross_only")
    assert np.isnan(cross_row["mean"]) and "self-reenactment" in cross_row.note and cross_row.n == 0
    assert (df.metric == "fid_face").all() and df.low.isna().all() and df.high.isna().all()
    # without targets (before this change) reenactment had no FID at all
    assert set_metrics(descriptors, REFERENCE, 0.95)["mean"].isna().all()


def test_frames_without_a_face_are_dropped_from_each_side():
    real = _feats()
    fake = real + 1.0                          # shift of 1 in 8 dims: FD = 8
    fake[:5] = np.nan                          # 5 generated frames without a face
    df = set_metrics({SYS: fake}, REFERENCE, 0.95, {SYS: (fake, real)})
    assert df.n.iloc[0] == 35 and "35 vs 40 frames" in df.note.iloc[0]
    assert 5.0 < df["mean"].iloc[0] < 12.0     # 8 up to the sampling noise of dropping 5 of 40 rows
    few = set_metrics({SYS: fake[:6]}, REFERENCE, 0.95, {SYS: (fake[:6], real)})
    assert np.isnan(few["mean"].iloc[0]) and few.note.iloc[0] == "fewer than 2 face descriptors"


def test_reconstruction_and_dubbing_rows_are_unchanged_by_reenactment_targets():
    gt, src = _feats(seed=2), _feats(seed=3)
    descriptors = {("ground_truth", "", "reconstruction"): gt,
                   ("lipsync", "default", "reconstruction"): gt + 2.0,            # FD = 8 dims x 2^2 = 32
                   ("baseline_unedited", "", "dubbing"): src,
                   ("lipsync", "default", "dubbing"): src[::-1].copy(),           # the same set reordered: 0
                   SYS: _feats(seed=4)}
    before = set_metrics(descriptors, REFERENCE, 0.95)
    after = set_metrics(descriptors, REFERENCE, 0.95, {SYS: (_feats(seed=4), _feats(seed=5))})
    keep = before.protocol != "reenactment"
    pd.testing.assert_frame_equal(before[keep].reset_index(drop=True), after[after.protocol != "reenactment"]
                                  .reset_index(drop=True))
    assert abs(_row(after, "lipsync", "reconstruction", "default")["mean"] - 32.0) < 1e-6
    assert abs(_row(after, "lipsync", "dubbing", "default")["mean"]) < 1e-6
    assert abs(_row(after, "ground_truth", "reconstruction")["mean"]) < 1e-6
    assert np.isfinite(_row(after, "head2headfs", "reenactment", "default")["mean"])


def test_pool_targets_keeps_fake_and_real_rows_paired_across_jobs():
    a_fake, a_real, b_fake, b_real = (np.full((2, 3), v, float) for v in (1, 2, 3, 4))
    results = [{"targets": {SYS: (a_fake, a_real)}}, {"descriptors": {}},      # a job without reenactment
               {"targets": {SYS: (b_fake, b_real), ("x", "v", "reenactment"): (b_fake, b_real)}}]
    pooled = pool_targets(results)
    assert set(pooled) == {SYS, ("x", "v", "reenactment")}
    fake, real = pooled[SYS]
    assert fake[:, 0].tolist() == [1, 1, 3, 3] and real[:, 0].tolist() == [2, 2, 4, 4]


def test_score_clip_job_pairs_self_reenactment_outputs_with_their_real_frames(monkeypatch):
    # score_clip_job with the real Scorer.score, on synthetic frames; only the decoding, the output reader and the
    # costly per-crop networks (dlib landmarks and descriptor) are replaced. The stand-in descriptor is a
    # subsample of the 256 crop's red channel, so a descriptor tells which frame it came from.
    from headflow.evaluate import outputs, stage
    from headflow.evaluate.baselines import Task
    from headflow.evaluate.params import EvaluateParams
    from headflow.evaluate.scoring import NoFace, RealClip, Scorer, SyncNets

    rng = np.random.default_rng(0)
    n = 10
    m256 = np.tile(np.array([[2.0, 0, 0], [0, 2.0, 0]]), (n, 1, 1))           # 128x128 frame -> 256 crop
    boxes = np.tile(np.array([32.0, 32, 96, 96]), (n, 1))
    frames = {c: [rng.integers(0, 200, (128, 128, 3), dtype=np.uint8) for _ in range(n)] for c in ("c", "d")}
    monkeypatch.setattr(stage, "_real", lambda spec, root: RealClip(spec.clip_id, frames[spec.clip_id], boxes,
                                                                    np.ones(n, bool), m256, None))
    monkeypatch.setattr(stage, "_nets", lambda *a: SyncNets())
    monkeypatch.setattr(Scorer, "heavy", lambda self, crop, box, need_landmarks=True: {
        "cpbd": 0.0, "landmarks": np.zeros((68, 2)), "descriptor": crop[::16, ::16, 0].ravel()[:128].astype(float)})

    def fake_output(row, task, hw, root, tol):
        if row.variant == "default+retrieval":
            raise NoFace("no face")                    # a failed output: no descriptors at all
        return (lambda f: frames["c"][f] + np.uint8(40)), "frame"   # the real frame, 40 grey levels brighter

    monkeypatch.setattr(outputs, "load_output", fake_output)
    self_task = Task("reenactment", "c.self", "c", None, "c", True, 1, n)
    cross_task = Task("reenactment", "c.cross", "d", None, "c", False, 1, n)
    rec_task = Task("reconstruction", "c", "c", None, "c", True, 1, n)

    def gen(variant, cid):
        return {"family": "head2headfs", "variant": variant, "seed": 0, "output_path": f"none/{cid}.mp4"}

    spec = stage.ClipSpec("c", "c.mp4", boxes, np.ones(n, bool), m256, n)
    items = [(rec_task, "ground_truth", None), (self_task, "head2headfs", gen("default", "c.self")),
             (cross_task, "head2headfs", gen("default", "c.cross")),
             (self_task, "head2headfs", gen("default+retrieval", "c.self"))]
    job = stage.ClipJob(spec, items, {"d": stage.ClipSpec("d", "d.mp4", boxes, np.ones(n, bool), m256, n)},
                        params=EvaluateParams(sample_frames=4, min_face_fraction=0.0, workers=1))
    res = stage.score_clip_job(job)

    assert set(res["targets"]) == {SYS}                 # not the reference rows, not the failed variant
    fake, real = res["targets"][SYS]
    assert fake.shape == real.shape == (4, 128)
    assert np.allclose(fake - real, 40, atol=1)         # row i of both: the same frame, shifted by 40
    assert len(res["descriptors"][SYS]) == 8            # the pooled set also has the 4 cross-reenactment frames
    sampled = [frames["c"][f][::8, ::8, 0].ravel()[:128] for f in range(1, n)]   # the crop is the frame x2
    assert all(any(np.allclose(r, s, atol=1) for s in sampled) for r in real)     # real frames of the clip
    fid = set_metrics(res["descriptors"], REFERENCE, 0.95, pool_targets([res]))
    assert np.isfinite(_row(fid, "head2headfs", "reenactment", "default")["mean"])
    assert abs(_row(fid, "ground_truth", "reconstruction")["mean"]) < 1e-6
