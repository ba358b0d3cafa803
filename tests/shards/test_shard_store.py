"""The shard file: lossless round trip per codec, temporal delta, deterministic bytes, format checks."""

import zipfile

import numpy as np
import pytest

from headflow.shards.store import ShardFile, temporal_delta, undo_temporal_delta, write_shard


def _arrays():
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    video[1] = 250
    video[2] = 5          # 5 - 250 wraps to 11 modulo 256
    return {"video": video, "mel": rng.normal(size=(20, 80)).astype(np.float32), "valid": np.array([1, 0, 1, 1, 1], bool)}


def test_temporal_delta_wraps_and_inverts():
    a = np.array([[250], [5], [5], [0]], np.uint8)
    d = temporal_delta(a)
    assert d.ravel().tolist() == [250, 11, 0, 251]           # 5-250 = -245 = 11; 0-5 = -5 = 251 (mod 256)
    np.testing.assert_array_equal(undo_temporal_delta(d), a)


@pytest.mark.parametrize("codec, level", [("zstd", 3), ("zlib", 1)])
def test_round_trip_is_lossless(tmp_path, codec, level):
    arrays = _arrays()
    path = tmp_path / "c.npz"
    size = write_shard(path, arrays, {"clip_id": "c"}, codec, level, delta=("video",))
    assert size == path.stat().st_size
    with ShardFile(path) as f:
        assert f.meta["clip_id"] == "c" and f.meta["arrays"]["video"]["filter"] == "tdelta"
        assert f.names == ["mel", "valid", "video"]
        for name, a in arrays.items():
            b = f.load(name)
            assert b.dtype == a.dtype and b.flags.writeable
            np.testing.assert_array_equal(b, a)


def test_same_arrays_give_the_same_bytes(tmp_path):
    for name in ("a.npz", "b.npz"):
        write_shard(tmp_path / name, _arrays(), {"clip_id": "c"}, "zstd", 3, delta=("video",))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_zlib_files_open_with_numpy(tmp_path):
    arrays = _arrays()
    write_shard(tmp_path / "c.npz", arrays, {}, "zlib", 6)
    with np.load(tmp_path / "c.npz") as z:
        np.testing.assert_array_equal(z["mel"], arrays["mel"])


def test_bad_inputs_and_other_formats_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="needs uint8"):
        write_shard(tmp_path / "x.npz", {"mel": np.zeros((2, 2), np.float32)}, {}, delta=("mel",))
    with pytest.raises(ValueError, match="codec"):
        write_shard(tmp_path / "x.npz", {}, {}, codec="lz4")
    with pytest.raises(FileNotFoundError, match="dvc repro shards"):
        ShardFile(tmp_path / "missing.npz")
    with zipfile.ZipFile(tmp_path / "old.npz", "w") as zf:
        zf.writestr("meta.json", '{"format": "headflow-shard", "version": 0}')
    with pytest.raises(ValueError, match="re-run the stage"):
        ShardFile(tmp_path / "old.npz")
    write_shard(tmp_path / "ok.npz", {"mel": np.zeros((2, 2), np.float32)}, {})
    with ShardFile(tmp_path / "ok.npz") as f, pytest.raises(KeyError, match="has no array 'crop'"):
        f.load("crop")
