"""The one atomic writer: all or nothing, no temporary left, the umask's mode (not mkstemp's 0600)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from headflow.atomic import atomic_output


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_success_replaces_with_the_usual_mode(tmp_path):
    target = tmp_path / "sub" / "out.txt"               # the folder is created
    with atomic_output(target) as tmp:
        assert tmp.parent == target.parent and not tmp.exists()   # fresh name: the writer creates it
        assert tmp.name.startswith(".out.txt.") and tmp.name.endswith(".tmp.txt")
        tmp.write_text("first")
        assert not target.exists()                     # readers never see a half-written file
    with atomic_output(target) as tmp:
        tmp.write_text("second")
    assert target.read_text() == "second" and os.listdir(target.parent) == ["out.txt"]
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()     # mkstemp would have left 0600


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("writer crashed")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]
    with pytest.raises(FileNotFoundError, match="created no file"):
        with atomic_output(tmp_path / "out.txt"):
            pass                                       # a writer that wrote nothing: no empty output
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]


def test_suffix_lets_numpy_write_the_exact_name(tmp_path):
    # np.savez appends ".npz" to a name that does not end in it: the temporary must end in .npz.
    target = tmp_path / "model.cache"
    with atomic_output(target, suffix=".npz") as tmp:
        np.savez(tmp, a=np.arange(3))
    assert os.listdir(tmp_path) == ["model.cache"]
    np.testing.assert_array_equal(np.load(target)["a"], [0, 1, 2])


def test_stale_temporaries_of_a_killed_streaming_writer_are_removed(tmp_path):
    # a stage killed while streaming landmarks.parquet leaves its open temporary behind (CI, 2026-11-30:
    # tests/e2e/test_kill_rerun.py found '.landmarks.parquet.5c5641545e2e.tmp.parquet' after the rerun)
    from headflow.atomic import remove_stale_temporaries
    from headflow.manifest.io import manifest_writer

    stale = tmp_path / ".landmarks.parquet.5c5641545e2e.tmp.parquet"
    stale.write_bytes(b"half a parquet file")
    other = tmp_path / ".faces.parquet.0123456789ab.tmp.parquet"      # another output's: left alone
    other.write_bytes(b"x")
    with manifest_writer(tmp_path / "landmarks.parquet"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "landmarks.parquet"]
    assert remove_stale_temporaries(tmp_path / "faces.parquet") == [other]
    assert remove_stale_temporaries(tmp_path / "missing" / "x.parquet") == []
