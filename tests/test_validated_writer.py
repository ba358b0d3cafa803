"""headflow.stage.validated_writer: a per-frame manifest validated and written in batches reads back as
the one-shot `write_validated` file, keeps its atomicity, and refuses rows out of key order."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def _clip(clip_id: str, T: int, seed: int) -> pa.Table:
    """landmarks.parquet rows of one synthetic clip (frame 1 invalid: null landmarks)."""
    from headflow.faces.faces import ClipFaces
    from headflow.faces.stage import frame_table

    valid = np.ones(T, bool)
    valid[1] = False
    lm = np.random.default_rng(seed).uniform(0, 100, (T, 68, 2)).astype(np.float32)
    lm[~valid] = np.nan
    return frame_table(clip_id, ClipFaces({}, valid, valid, np.where(valid, 1.0, np.nan).astype(np.float32),
                                          np.zeros((T, 4), np.float32), lm, lm, np.tile(np.eye(2, 3), (T, 1, 1))))


IDS = ["demo_a-0000000001", "demo_b-0000000002", "demo_c-0000000003"]


def test_batches_read_back_as_the_one_shot_write(tmp_path):
    from headflow.stage import validated_writer, write_validated

    clips = [_clip(c, 4, k) for k, c in enumerate(IDS)]
    with validated_writer(tmp_path / "landmarks.parquet", "landmarks", rows_per_batch=5, sorted_by="clip_id") as w:
        for t in clips:
            w.add(t)
    write_validated(pa.concat_tables(clips), tmp_path / "one.parquet", "landmarks")
    f = pq.ParquetFile(tmp_path / "landmarks.parquet")
    # 4 rows queued (< 5), 8 -> flush; then 4 more flushed at the end: two row groups of 8 and 4 rows
    assert [f.metadata.row_group(i).num_rows for i in range(f.metadata.num_row_groups)] == [8, 4]
    assert f.read().equals(pq.read_table(tmp_path / "one.parquet")) and w.rows == 12
    assert f.read().column("landmarks")[1].as_py() is None       # the invalid frame stays null


def test_a_failing_batch_or_wrong_order_leaves_the_old_file(tmp_path):
    from headflow.stage import validated_writer
    from headflow.validation import ValidationFailed

    target = tmp_path / "landmarks.parquet"
    with validated_writer(target, "landmarks", sorted_by="clip_id") as w:
        w.add(_clip(IDS[0], 3, 0))
    before = target.read_bytes()
    with pytest.raises(ValidationFailed, match="clip_id"):
        with validated_writer(target, "landmarks", rows_per_batch=3, sorted_by="clip_id") as w:
            w.add(_clip(IDS[0], 3, 0))
            w.add(_clip("zz bad id", 3, 1))                        # sorts after IDS[0], breaks the regex
    with pytest.raises(ValueError, match="increasing 'clip_id' order"):
        with validated_writer(target, "landmarks", rows_per_batch=3, sorted_by="clip_id") as w:
            w.add(_clip(IDS[1], 3, 0))
            w.add(_clip(IDS[0], 3, 1))                             # out of order, in a later batch
    with pytest.raises(ValueError, match="increasing 'clip_id' order"):
        with validated_writer(target, "landmarks", rows_per_batch=100, sorted_by="clip_id") as w:
            w.add(_clip(IDS[1], 3, 0))
            w.add(_clip(IDS[0], 3, 1))                             # out of order inside one batch
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["landmarks.parquet"]


def test_no_rows_gives_a_validated_empty_manifest(tmp_path):
    from headflow.manifest import read_manifest, schema_for
    from headflow.stage import validated_writer

    with validated_writer(tmp_path / "landmarks.parquet", "landmarks", sorted_by="clip_id") as w:
        pass
    assert w.n_expectations > 0 and w.rows == 0
    assert list(read_manifest(tmp_path / "landmarks.parquet").columns) == schema_for("landmarks").names
