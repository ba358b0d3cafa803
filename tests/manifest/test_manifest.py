"""Manifest helpers: ids, hashing, atomic writes, schemas, quarantine accounting."""

import hashlib

import pandas as pd
import pytest

from headflow.manifest import (AccountingError, Quarantine, TooManyRejected, atomic_output, check_accounting,
                               clip_id_for, file_sha256, read_manifest, write_manifest)


def test_file_sha256_matches_hashlib(tmp_path):
    p = tmp_path / "x.bin"
    data = bytes(range(256)) * 10000   # > one 1 MiB chunk boundary? 2.56 MB: yes
    p.write_bytes(data)
    assert file_sha256(p) == hashlib.sha256(data).hexdigest()


def test_clip_id_is_stable_safe_and_content_dependent():
    a = clip_id_for("s1/BBAF 2n.mpg", "a" * 64)
    assert a == clip_id_for("s1/BBAF 2n.mpg", "a" * 64)
    assert a.startswith("s1_bbaf_2n-") and len(a.split("-")[1]) == 10
    assert a != clip_id_for("s1/BBAF 2n.mpg", "b" * 64)      # re-encoded file: new id
    assert a != clip_id_for("s2/BBAF 2n.mpg", "a" * 64)      # same bytes elsewhere: new id
    assert all(c.isalnum() or c in "_-" for c in a)


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_output(target) as tmp:
        tmp.write_text("done")
    assert target.read_text() == "done" and len(list(tmp_path.iterdir())) == 1


def test_write_manifest_casts_to_schema_and_is_byte_stable(tmp_path):
    q = Quarantine("ingest")
    q.add("b-0000000001", "unreadable", "bad header", "x/b.mp4")
    q.add("a-0000000002", "too_short", "0.2 s", "x/a.mp4")
    write_manifest(q.frame(), tmp_path / "quarantine.parquet")
    first = (tmp_path / "quarantine.parquet").read_bytes()
    write_manifest(q.frame(), tmp_path / "quarantine.parquet")
    assert (tmp_path / "quarantine.parquet").read_bytes() == first
    df = read_manifest(tmp_path / "quarantine.parquet")
    assert list(df.clip_id) == ["a-0000000002", "b-0000000001"]   # sorted, deterministic


def test_write_manifest_rejects_missing_columns(tmp_path):
    with pytest.raises(ValueError, match="missing"):
        write_manifest(pd.DataFrame({"clip_id": ["a"]}), tmp_path / "quarantine.parquet")


def test_empty_manifest_keeps_its_schema(tmp_path):
    Quarantine("ingest").write(tmp_path / "quarantine.parquet")
    assert list(read_manifest(tmp_path / "quarantine.parquet").columns)[:3] == ["clip_id", "stage", "reason_code"]


def test_accounting_invariant():
    check_accounting(["a", "b", "c"], ["a", "c"], ["b"], "s")
    with pytest.raises(AccountingError, match="lost"):
        check_accounting(["a", "b", "c"], ["a"], ["b"], "s")
    with pytest.raises(AccountingError, match="duplicated"):
        check_accounting(["a", "b"], ["a", "b"], ["b"], "s")


def test_quarantine_enforces_max_reject_fraction():
    q = Quarantine("ingest")
    for i in range(3):
        q.add(f"c{i}", "unreadable", "x")
    q.enforce(n_in=10, max_reject_fraction=0.3)
    with pytest.raises(TooManyRejected, match="rejected 3 of 5 .*unreadable: 3"):
        q.enforce(n_in=5, max_reject_fraction=0.3)


def _quarantine_rows(ids: list[str]) -> list[dict]:
    return [{"clip_id": c, "stage": "faces", "reason_code": "no_face", "message": "m", "source_path": f"{c}.mp4"}
            for c in ids]


def test_manifest_writer_reads_back_as_the_one_shot_write(tmp_path):
    import pyarrow.parquet as pq

    from headflow.manifest import manifest_writer, schema_for

    pieces = [_quarantine_rows(["a-0000000001", "a-0000000002"]), [], _quarantine_rows(["b-0000000003"])]
    cols = schema_for("quarantine").names
    with manifest_writer(tmp_path / "quarantine.parquet") as w:
        for p in pieces:
            w.write(pd.DataFrame(p, columns=cols))
    write_manifest(pd.DataFrame([r for p in pieces for r in p], columns=cols), tmp_path / "one.parquet", "quarantine")
    streamed, one = pq.ParquetFile(tmp_path / "quarantine.parquet"), pq.ParquetFile(tmp_path / "one.parquet")
    assert streamed.metadata.num_row_groups == 2 and one.metadata.num_row_groups == 1   # empty piece: no group
    assert streamed.read().equals(one.read()) and w.rows == 3


def test_manifest_writer_is_atomic_and_writes_an_empty_file_with_its_schema(tmp_path):
    from headflow.manifest import manifest_writer, schema_for

    target = tmp_path / "quarantine.parquet"
    with manifest_writer(target):
        pass
    assert len(read_manifest(target)) == 0 and list(read_manifest(target).columns) == schema_for("quarantine").names
    before = target.read_bytes()
    with pytest.raises(RuntimeError, match="mid-stream"):
        with manifest_writer(target) as w:
            w.write(pd.DataFrame(_quarantine_rows(["a-0000000001"])))
            raise RuntimeError("mid-stream")
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["quarantine.parquet"]
