"""The shard_labels stage: phones, expressions and NMFC per shard, flags for missing sources, quarantine."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from headflow.manifest import file_sha256, write_manifest
from headflow.manifest.schemas import expressions_schema
from headflow.nmfc.io import write_nmfc
from headflow.shards import read_clip
from headflow.shards.labels import run_stage
from headflow.shards.params import ShardLabelsParams

A, B, C = "a-000000000a", "b-000000000b", "c-000000000c"


def _nmfc(T: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = np.zeros((T, 256, 256), bool)
    mask[:, 100:160, 90:170] = True
    nmfc = np.where(mask[..., None], rng.integers(1, 255, (T, 1, 1, 3), np.uint8), 0).astype(np.uint8)
    return nmfc, mask


@pytest.fixture(scope="module")
def labelled(shard_project):
    root, _ = shard_project
    # phones: a 23 of 24 frames (within the tolerance of 2), b 26 of 20 (beyond it), c none
    rows = [{"clip_id": A, "frame": t, "phone": "AA", "phone_index": t % 5, "styletalk_index": 30 + t % 3}
            for t in range(23)]
    rows += [{"clip_id": B, "frame": t, "phone": "SIL", "phone_index": 0, "styletalk_index": 31} for t in range(26)]
    write_manifest(rows, root / "data/interim/align/frame_labels.parquet", "frame_labels")
    # fits with NMFC files: a (24 frames), c (16); b none
    fits = []
    for k, (clip_id, T) in enumerate(((A, 24), (C, 16))):
        path = f"data/interim/fit3dmm/nmfc/{clip_id}.nmfc.zip"
        write_nmfc(root / path, *_nmfc(T, k))
        fits.append({"clip_id": clip_id, "model": "toy", "n_frames": T, "nmfc_path": path})
    write_manifest(fits, root / "data/interim/fit3dmm/fits.parquet", "fits")
    clip_ids, frames, exp = [], [], []
    for clip_id, T in ((A, 24), (C, 16)):
        clip_ids += [clip_id] * T
        frames += list(range(T))
        exp.append(np.arange(T * 3, dtype=np.float32).reshape(T, 3))
    n = len(clip_ids)
    schema = expressions_schema(3, "toy_model")
    exp = np.concatenate(exp)
    table = pa.Table.from_arrays([
        pa.array(clip_ids), pa.array(np.array(frames, np.int32)), pa.array(np.ones(n, bool)),
        pa.FixedSizeListArray.from_arrays(pa.array(exp.ravel()), 3),
        pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(n * 3, np.float32)), 3),
        pa.FixedSizeListArray.from_arrays(pa.array(np.ones(n * 2, np.float32)), 2),
        pa.array(np.full(n, 2.0, np.float32))], schema=schema)
    (root / "data/interim/expressions").mkdir(parents=True, exist_ok=True)
    pq.write_table(table, root / "data/interim/expressions/expressions.parquet")
    metrics = run_stage(ShardLabelsParams(), project_root=root, progress=False)
    return root, metrics


def test_sources_are_flagged_and_mismatches_quarantined(labelled):
    root, metrics = labelled
    table = pd.read_parquet(root / "data/interim/shard_labels/shard_labels.parquet").set_index("clip_id")
    q = pd.read_parquet(root / "data/interim/shard_labels/quarantine.parquet")
    assert dict(zip(q.clip_id, q.reason_code)) == {B: "frame_count_mismatch"}
    assert "26 frames, the video has 20" in q.message[0]
    assert metrics["inputs"] == 3 == len(table) + len(q)                  # rows in = out + quarantined
    a, c = table.loc[A], table.loc[C]
    assert (a.has_phones, a.n_labelled, a.has_expressions, a.n_exp, a.has_nmfc) == (True, 23, True, 3, True)
    assert (c.has_phones, c.n_labelled, c.has_expressions, c.has_nmfc) == (False, 0, True, True)
    assert a.expression_model == "toy_model" and a.nmfc_sha256 == file_sha256(root / a.nmfc_path)
    assert a.sha256 == file_sha256(root / a.path)


def test_read_clip_joins_the_labels_on_demand(labelled):
    root, _ = labelled
    shard = read_clip(A, views=("phones", "expressions", "nmfc", "crop256"), project_root=root)
    assert shard.phones.phone_index.tolist() == [t % 5 for t in range(23)] + [0]
    assert shard.phones.valid.tolist() == [True] * 23 + [False]             # the frame the labels miss
    assert shard.phones.styletalk_index[:3].tolist() == [30, 31, 32]
    np.testing.assert_array_equal(shard.expressions.exp, np.arange(72, dtype=np.float32).reshape(24, 3))
    assert shard.expressions.model == "toy_model" and shard.expressions.scale.tolist() == [2.0] * 24
    nmfc, mask = _nmfc(24, 0)
    np.testing.assert_array_equal(shard.nmfc.pixels, nmfc)
    np.testing.assert_array_equal(shard.nmfc.mask, mask)
    # the NMFC is drawn in the 256 crop: same transform and landmarks as crop256
    np.testing.assert_array_equal(shard.nmfc.transform, shard.crop256.transform)
    np.testing.assert_allclose(shard.nmfc.landmarks, shard.crop256.landmarks)
    with pytest.raises(ValueError, match="has no phones"):
        read_clip(C, views=("phones",), project_root=root)
    with pytest.raises(FileNotFoundError, match="shard_labels"):
        read_clip(B, views=("expressions",), project_root=root)


def test_a_trainer_reading_phones_quarantines_the_clip_without_them(labelled):
    """An untranscribed clip (align quarantined it `no_transcript`: no frame labels) still gets its shard
    and sidecar; StyleTalk, the family that needs phones, sets it aside as `no_phones` and trains on the rest."""
    from headflow.generators.styletalk.train import read_clips

    root, _ = labelled
    rows = pd.DataFrame({"clip_id": [A, C], "speaker_id": ["s", "s"], "style": ["neutral", "neutral"]})
    clips, rejected = read_clips(rows, root / "data/interim/shards", root / "data/interim/shard_labels", "style")
    assert [c.clip_id for c in clips] == [A] and clips[0].phones.shape == (24,)
    assert [(r["clip_id"], r["reason_code"]) for r in rejected] == [(C, "no_phones")]
    assert "has no phones" in rejected[0]["message"]
