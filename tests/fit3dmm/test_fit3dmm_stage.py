"""fit3dmm + expressions stages end to end on landmarks made by projecting the builtin model."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from headflow.manifest import write_manifest
from headflow.manifest.schemas import schema_for
from headflow.rotations import euler_to_matrix
from headflow.morphable.builtin import builtin_model
from headflow.fit3dmm.params import Fit3dmmParams
from headflow.expressions.params import ExpressionsParams

GOOD, EMPTY, NOISE, BROKEN = "spk_good-0000000001", "spk_empty-0000000002", "spk_noise-0000000003", "spk_broken-0000000004"


def _rot(yaw, pitch, roll):
    return euler_to_matrix([yaw, pitch, roll])


def synthetic_clip(T=24, seed=0):
    """Landmarks of the builtin model with known identity, jawOpen, pose; crop transforms onto 256 px."""
    model = builtin_model()
    rng = np.random.default_rng(seed)
    ident = rng.normal(0, 0.5, model.n_id)
    exp = np.zeros((T, model.n_exp))
    jaw = 0.35 + 0.3 * np.sin(np.arange(T) / 3.0)
    exp[:, model.exp_index("jawOpen")] = jaw
    yaw = 8 * np.sin(np.arange(T) / 7.0)
    X = model.landmarks(np.tile(ident, (T, 1)), exp).astype(np.float64)
    lm = np.zeros((T, 68, 2))
    for t in range(T):
        P = X[t] @ _rot(yaw[t], 3.0, 2.0).T
        lm[t] = np.stack([9.0 * P[:, 0] + 200 + t, -9.0 * P[:, 1] + 210], 1)
    tr = np.tile(np.array([[1.0, 0.0, -72.0], [0.0, 1.0, -82.0]]), (T, 1, 1))
    tr[:, 0, 2] -= np.arange(T)           # the crop follows the face
    return lm.astype(np.float32), tr, jaw, yaw


def write_faces(folder, clips: dict):
    """faces.parquet + landmarks.parquet as the faces stage writes them (only what fit3dmm reads is real)."""
    rows, tables = [], []
    for clip_id, (lm, valid, tr) in clips.items():
        T = len(valid)
        rows.append({"clip_id": clip_id, "crop_path": f"crops/{clip_id}.mp4", "n_frames": T, "width": 400,
                     "height": 400, "detection_rate": float(valid.mean()), "n_tracks": 1, "chosen_track": 0,
                     "mean_face_size": 120.0, "mean_iod": 80.0})
        flat = np.nan_to_num(lm).reshape(T, 136).astype(np.float32)
        landmarks = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1), pa.float32()), 136, mask=pa.array(~valid))
        tables.append(pa.table({
            "clip_id": pa.array([clip_id] * T), "frame": pa.array(np.arange(T, dtype=np.int32)),
            "valid": pa.array(valid), "detected": pa.array(valid), "score": pa.array(np.ones(T, np.float32)),
            "box": pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(4 * T, np.float32)), 4),
            "landmarks": landmarks, "landmarks_raw": landmarks,
            "crop_transform": pa.FixedSizeListArray.from_arrays(pa.array(tr.reshape(-1)), 6),
            "crop_outside": pa.array(np.zeros(T, np.float32))}).cast(schema_for("landmarks")))
    write_manifest(rows, folder / "faces.parquet", "faces")
    write_manifest(pa.concat_tables(tables), folder / "landmarks.parquet", "landmarks")


@pytest.fixture(scope="module")
def stage_run(tmp_path_factory):
    import headflow.fit3dmm.fit as fit_module
    from headflow.expressions.stage import run_stage as run_expressions
    from headflow.fit3dmm.stage import run_stage

    root = tmp_path_factory.mktemp("proj")
    faces_dir = root / "data/interim/faces"
    lm, tr, jaw, yaw = synthetic_clip()
    T = len(lm)
    valid = np.ones(T, bool)
    valid[[5, 6]] = False
    lm[~valid] = np.nan
    noise = np.random.default_rng(3).uniform(100, 300, (12, 68, 2)).astype(np.float32)
    write_faces(faces_dir, {GOOD: (lm, valid, tr), EMPTY: (np.full((9, 68, 2), np.nan, np.float32), np.zeros(9, bool), tr[:9]),
                            NOISE: (noise, np.ones(12, bool), tr[:12]), BROKEN: (lm[:11], valid[:11], tr[:11])})
    clips = [{"clip_id": c, "source_path": f"spk/{c[:-11]}.mp4"} for c in (GOOD, EMPTY, NOISE, BROKEN)]
    write_manifest(clips, root / "clips.parquet", "clips")
    (root / "raw/spk").mkdir(parents=True)
    mouth = np.stack([0.2 + 0.5 * jaw, np.zeros(T), np.zeros(T)], 1)
    np.savez(root / "raw/spk/spk_good.truth.npz", mouth=mouth)

    real_fit = fit_module.fit_video

    def fit_video(model, landmarks, valid=None, config=None):
        if len(landmarks) == 11:
            raise np.linalg.LinAlgError("singular matrix (test)")
        return real_fit(model, landmarks, valid, config)

    params = Fit3dmmParams(truth_root="raw", max_reject_fraction=0.9, workers=1, preview_clips=1)
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.setattr(fit_module, "fit_video", fit_video)
    try:
        metrics = run_stage(params, faces_dir=faces_dir.relative_to(root), clips_path=root / "clips.parquet",
                            progress=False)
        expr = run_expressions(ExpressionsParams())
    finally:
        mp.undo()
    return root, metrics, expr, (jaw, yaw, valid)


def test_fit3dmm_stage_accounts_for_every_clip(stage_run):
    root, metrics, _, (jaw, yaw, valid) = stage_run
    fits = pq.read_table(root / "data/interim/fit3dmm/fits.parquet").to_pandas()
    q = pq.read_table(root / "data/interim/fit3dmm/quarantine.parquet").to_pandas()
    assert list(fits.clip_id) == [GOOD]
    assert dict(zip(q.clip_id, q.reason_code)) == {EMPTY: "too_few_valid_frames", NOISE: "fit_error_high",
                                                   BROKEN: "fit_failed"}
    assert "LinAlgError: singular matrix" in q.message[q.clip_id == BROKEN].iloc[0]
    assert set(q.source_path) == {"spk/spk_empty.mp4", "spk/spk_noise.mp4", "spk/spk_broken.mp4"}
    row = fits.iloc[0]
    assert (row.model, row.n_frames, row.n_valid) == ("builtin_demo", len(valid), valid.sum())
    assert row.reproj_iod_median < 0.02, row.reproj_iod_median   # exact model landmarks: a near-perfect fit
    assert row.jaw_open_r > 0.9, row.jaw_open_r
    on_disk = json.loads((root / "reports/metrics/fit3dmm.json").read_text())
    assert on_disk == metrics and metrics["clips"] == 1 and metrics["quarantined"] == 3
    assert metrics["fit_frames_per_s"] > 0 and metrics["render_frames_per_s"] > 0
    assert metrics["render_compile_s"] >= 0     # the first render of each worker, kept out of frames/s
    assert (root / "reports/fit3dmm/preview.png").stat().st_size > 1000


def test_nmfc_and_fit_files(stage_run):
    from headflow.fit3dmm.fitio import load_fit
    from headflow.nmfc.render import read_nmfc

    root, _, _, (jaw, yaw, valid) = stage_run
    nmfc, mask = read_nmfc(root / f"data/interim/fit3dmm/nmfc/{GOOD}.nmfc.zip")
    assert nmfc.shape == (len(valid), 256, 256, 3) and mask.shape == (len(valid), 256, 256)
    assert not mask[~valid].any() and not nmfc[~valid].any()          # unobserved frames: nothing drawn
    assert mask[valid].mean(axis=(1, 2)).min() > 0.1
    fit = load_fit(root / f"data/interim/fit3dmm/fits/{GOOD}.npz")
    assert fit["crop_transforms"].shape == (len(valid), 2, 3) and fit["model"] == "builtin_demo"
    np.testing.assert_allclose(fit["angles"][valid, 0], yaw[valid], atol=2.0)
    assert sorted(p.name for p in (root / "data/interim/fit3dmm/fits").iterdir()) == [f"{GOOD}.npz"]


def test_expressions_table(stage_run):
    root, _, expr, (jaw, yaw, valid) = stage_run
    path = root / "data/interim/expressions/expressions.parquet"
    schema = pq.read_schema(path)
    model = builtin_model()
    assert schema.field("exp").type == pa.list_(pa.float32(), model.n_exp)
    assert schema.field("angles").type == pa.list_(pa.float32(), 3)
    assert schema.field("translation").type == pa.list_(pa.float32(), 2)
    assert schema.metadata[b"model"] == b"builtin_demo" and int(schema.metadata[b"n_exp"]) == model.n_exp
    df = pq.read_table(path).to_pandas()
    assert list(df.frame) == list(range(len(valid))) and set(df.clip_id) == {GOOD}
    assert list(df.valid) == list(valid)
    exp = np.stack(df.exp.to_numpy())
    r = np.corrcoef(exp[valid, model.exp_index("jawOpen")], jaw[valid])[0, 1]
    assert r > 0.9, r
    assert expr["clips"] == 1 and expr["frames"] == len(valid) and expr["mat_files"] == 0


def test_export_mat_refuses_a_non_bfm_model(stage_run, monkeypatch):
    from headflow.expressions.stage import run_stage as run_expressions

    root, *_ = stage_run
    monkeypatch.chdir(root)
    with pytest.raises(ValueError, match="needs a BFM fit.*builtin_demo"):
        run_expressions(ExpressionsParams(export_mat=True), out_dir=root / "tmp_expr")
