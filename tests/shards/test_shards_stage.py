"""The shards stage on a tiny project: accounting, quarantine codes, one decode's views, the expert's bytes."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from headflow.faces.crops import apply, warp
from headflow.manifest import file_sha256
from headflow.media import read_frames
from headflow.shards import read_clip
from headflow.shards.params import ShardsParams
from headflow.shards.stage import run_stage


def old_mouth_crops(video_path: Path, boxes: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Verbatim copy of `headflow.sync.shards.mouth_crops` (commit 8333273), the expert's crops before shards.

    The expert's held-out figures were measured on exactly these bytes; the shards must give the same.
    """
    from headflow.faces.crops import crop_transform_for, mouth_crop

    out = np.zeros((len(boxes), 48, 96, 3), np.uint8)
    n = 0
    for f, frame in enumerate(read_frames(video_path)):
        if f >= len(boxes):
            break
        n += 1
        if valid[f]:
            out[f] = mouth_crop(frame, crop_transform_for(tuple(boxes[f]), frame.shape[:2]))
    assert n == len(boxes)
    return out


@pytest.fixture(scope="module")
def project(shard_project):
    return shard_project


def test_rows_in_equal_rows_out_plus_quarantined_with_reason_codes(project):
    root, metrics = project
    shards = pd.read_parquet(root / "data/interim/shards/shards.parquet")
    q = pd.read_parquet(root / "data/interim/shards/quarantine.parquet")
    assert list(shards.clip_id) == ["a-000000000a", "b-000000000b", "c-000000000c"]
    assert dict(zip(q.clip_id, q.reason_code)) == {"short-000000000d": "frame_count_mismatch",
                                                   "bad-000000000e": "unreadable"}
    assert "decoded 12 frames, landmarks cover 15" in q.set_index("clip_id").message["short-000000000d"]
    assert metrics["inputs"] == 5 == len(shards) + len(q) and metrics["clips"] == 3
    assert sorted(p.name for p in (root / "data/interim/shards/clips").iterdir()) == [
        "a-000000000a.npz", "b-000000000b.npz", "c-000000000c.npz"]
    a = shards.set_index("clip_id").loc["a-000000000a"]
    assert (a.n_frames, a.n_valid, a.n_mel_frames, a.speaker_id, a.split) == (24, 22, int(24 * 3.2) + 16, "s0", "train")
    assert a.sizes == "face96=96x96 crop256=256x256 mouth=96x96 eyes=64x160"
    assert a.bytes == (root / a.path).stat().st_size and a.sha256 == file_sha256(root / a.path)
    assert metrics["compression"]["crop256"] > 1.0 and metrics["mb_per_clip"] > 0


def test_face96_lower_half_is_byte_identical_to_the_experts_old_crops(project):
    root, _ = project
    lm = pd.read_parquet(root / "data/interim/faces/landmarks.parquet")
    for clip_id in ("a-000000000a", "b-000000000b", "c-000000000c"):
        f = lm[lm.clip_id == clip_id].sort_values("frame")
        old = old_mouth_crops(root / f"data/interim/ingest/media/{clip_id}.mp4",
                              np.stack(f.box.to_numpy()).astype(np.float64), f.valid.to_numpy(bool))
        new = read_clip(clip_id, views=("face96",), project_root=root).face96.pixels[:, 48:]
        assert old.any() and np.ascontiguousarray(new).tobytes() == old.tobytes()


def test_crop256_is_the_stored_transform_and_invalid_frames_are_empty(project):
    root, _ = project
    lm = pd.read_parquet(root / "data/interim/faces/landmarks.parquet")
    f = lm[lm.clip_id == "a-000000000a"].sort_values("frame")
    stored = np.stack(f.crop_transform.to_numpy()).reshape(-1, 2, 3)
    shard = read_clip("a-000000000a", views=("crop256", "face96", "mouth", "eyes"), project_root=root)
    assert shard.valid.tolist() == [t not in (3, 4) for t in range(24)]
    decoded = list(read_frames(root / "data/interim/ingest/media/a-000000000a.mp4"))
    for t in (0, 10, 23):
        np.testing.assert_array_equal(shard.crop256.pixels[t], warp(decoded[t], stored[t], 256))
    np.testing.assert_allclose(shard.crop256.transform[0], stored[0])
    for view in (shard.crop256, shard.face96, shard.mouth, shard.eyes):
        assert not view.pixels[3].any() and np.isnan(view.transform[4]).all() and np.isnan(view.landmarks[3]).all()
    # landmarks in each view = the source landmarks through the view's transform
    src = np.asarray(f.landmarks.iloc[10]).reshape(68, 2)
    for view in (shard.crop256, shard.face96, shard.mouth, shard.eyes):
        np.testing.assert_allclose(view.landmarks[10], apply(view.transform[10], src), atol=1e-3)


def test_regions_are_fixed_size_crop256_windows_centred_on_their_landmarks(project):
    root, _ = project
    shard = read_clip("b-000000000b", views=("crop256", "mouth", "eyes"), project_root=root)
    assert shard.mouth.size == (96, 96) and shard.eyes.size == (64, 160)
    for t in range(shard.n_frames):
        x0, y0 = -shard.mouth.transform[t, :, 2] + shard.crop256.transform[t, :, 2]
        x0, y0 = int(round(x0)), int(round(y0))
        np.testing.assert_array_equal(shard.mouth.pixels[t], shard.crop256.pixels[t, y0:y0 + 96, x0:x0 + 96])
        centre = shard.mouth.landmarks[t, 48:68].mean(0)        # the lips' mean lies at the box centre (47.5)
        assert np.all(np.abs(centre - 47.5) <= 0.5 + 1e-4)


def test_the_suite_rejects_a_broken_manifest(project):
    from headflow.validation import validate_manifest

    root, _ = project
    shards = pd.read_parquet(root / "data/interim/shards/shards.parquet")
    shards.loc[0, "sha256"] = "not-a-hash"
    shards.loc[1, "n_valid"] = shards.loc[1, "n_frames"] + 1
    report = validate_manifest(shards, "shards", raise_on_failure=False)
    text = " ".join(report.failures)
    assert not report.success and "'sha256'" in text and "n_valid" in text


def test_rerun_gives_the_same_bytes(project, tmp_path):
    root, _ = project
    before = pd.read_parquet(root / "data/interim/shards/shards.parquet")
    run_stage(ShardsParams(workers=1), project_root=root, metrics_path=Path(tmp_path / "m.json"), progress=False)
    after = pd.read_parquet(root / "data/interim/shards/shards.parquet")
    assert before.sha256.tolist() == after.sha256.tolist()


def _landmark_rows(clip_id: str, T: int, seed: int):
    from headflow.faces.faces import ClipFaces
    from headflow.faces.stage import frame_table

    rng = np.random.default_rng(seed)
    valid = np.arange(T) % 3 != 1
    lm = rng.uniform(0, 100, (T, 68, 2)).astype(np.float32)
    lm[~valid] = np.nan
    boxes = rng.uniform(0, 100, (T, 4)).astype(np.float32)
    transforms = rng.uniform(-1, 1, (T, 2, 3))
    return frame_table(clip_id, ClipFaces({}, valid, valid, np.ones(T, np.float32), boxes, lm, lm, transforms)), \
        (boxes.astype(np.float64), valid, lm, transforms)


def test_streamed_landmarks_give_each_clips_arrays_sorted_or_not(tmp_path):
    """Clips of 7, 3 and 5 frames read 4 rows at a time (clips span batches), from a sorted file (the
    streamed path) and an unsorted one (read whole): the arrays the faces stage wrote, per clip."""
    import pyarrow as pa

    from headflow.manifest import write_manifest
    from headflow.shards.stage import _frames_of, clip_frames, frame_arrays

    made = {c: _landmark_rows(c, T, k) for k, (c, T) in enumerate([("a-000000000a", 7), ("b-000000000b", 3),
                                                                     ("c-000000000c", 5)])}
    write_manifest(pa.concat_tables([made[c][0] for c in sorted(made)]), tmp_path / "sorted.parquet", "landmarks")
    write_manifest(pa.concat_tables([made[c][0] for c in ("c-000000000c", "a-000000000a", "b-000000000b")]),
                   tmp_path / "unsorted.parquet", "landmarks")
    for name in ("sorted", "unsorted"):
        got = list(clip_frames(tmp_path / f"{name}.parquet", batch_size=4))
        assert [c for c, _ in got] == sorted(made)
        for clip_id, frames in got:
            for have, want in zip(frame_arrays(frames), made[clip_id][1]):
                np.testing.assert_array_equal(have, want)
    subset = list(_frames_of(["b-000000000b"], tmp_path / "sorted.parquet"))
    assert len(subset) == 1 and subset[0].num_rows == 3
    with pytest.raises(ValueError, match="no rows for clip b-0000000000"):
        list(_frames_of(["a-000000000a", "b-0000000000"], tmp_path / "sorted.parquet"))
