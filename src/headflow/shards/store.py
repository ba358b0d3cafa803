"""The per-clip shard file: named numpy arrays in one zip, each compressed on its own, read lazily.

Layout (a plain zip, written with fixed timestamps so the same arrays always give the same bytes):

    meta.json            {"format": "headflow-shard", "version": 1, "codec": "zstd" | "zlib", "level": L,
                          "arrays": {name: {"member", "filter", "npy_bytes"}}, ...caller's fields}
    <name>.npy           codec zlib: the array in NumPy's .npy format, zip-deflated (`numpy.load` reads it)
    <name>.npy.zst       codec zstd: the .npy bytes as one zstd frame, stored (pyarrow's zstd)

`filter: "tdelta"` (uint8 image arrays): the member holds frame-to-frame differences d[0] = a[0],
d[t] = a[t] - a[t-1] modulo 256, undone on read by a cumulative sum modulo 256. Consecutive crops of
a talking head differ little, so the differences compress about twice as well (see `ShardsParams`).

Reading opens the zip and its meta only; `ShardFile.load(name)` decompresses one member, so a reader
asking for `face96` and `mel` never touches `crop256`. Per-clip decompression, no per-frame files
(DESIGN: shards).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from headflow.manifest.io import atomic_output

FORMAT = "headflow-shard"
VERSION = 1
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _entry(name: str, compress_type: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = compress_type
    info.create_system = 3
    info.external_attr = 0o644 << 16
    return info


def _zstd(level: int = 3):
    import pyarrow as pa

    return pa.Codec("zstd", compression_level=level)


def temporal_delta(a: np.ndarray) -> np.ndarray:
    """d[0] = a[0], d[t] = a[t] - a[t-1] (uint8, modulo 256) along axis 0."""
    d = np.array(a, dtype=np.uint8, copy=True)
    if len(a) > 1:
        np.subtract(a[1:], a[:-1], out=d[1:])
    return d


def undo_temporal_delta(d: np.ndarray) -> np.ndarray:
    """Inverse of `temporal_delta`: the cumulative sum modulo 256 along axis 0 (a new array).

    A loop of whole-frame adds: `np.add.accumulate(d, axis=0)` gives the same bytes but ran ~10x slower
    here (1.07 s against 0.12 s for 139 frames of 256x256x3).
    """
    out = np.empty_like(d, dtype=np.uint8)
    if len(d):
        out[0] = d[0]
    for t in range(1, len(d)):
        np.add(out[t - 1], d[t], out=out[t])
    return out


def _npy_view(buf) -> np.ndarray:
    """A read-only array over .npy bytes (`buf`: bytes or a buffer), without copying the data."""
    fp = io.BytesIO(memoryview(buf)[:65536])
    major, _ = np.lib.format.read_magic(fp)
    header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = header(fp)
    count = int(np.prod(shape, dtype=np.int64))
    arr = np.frombuffer(buf, dtype=dtype, count=count, offset=fp.tell())
    return arr.reshape(shape, order="F" if fortran else "C")


def write_shard(path: str | Path, arrays: dict[str, np.ndarray], meta: dict, codec: str = "zstd", level: int = 3,
                delta: tuple[str, ...] = ()) -> int:
    """Write `arrays` (name -> array, no object dtypes) and `meta` (JSON-serialisable) atomically.

    Args:
        codec: "zstd" or "zlib"; level: its compression level.
        delta: names of uint8 arrays (T, ...) to store with the temporal-delta filter.
    Returns:
        The file's size in bytes.
    Raises:
        ValueError: an unknown codec, a name clash with meta.json, or a delta-filtered array that is not uint8.
    """
    if codec not in ("zstd", "zlib"):
        raise ValueError(f"shard codec must be 'zstd' or 'zlib'; got {codec!r}")
    zstd = _zstd(level) if codec == "zstd" else None
    index: dict[str, dict] = {}
    members: list[tuple[zipfile.ZipInfo, bytes]] = []
    for name, arr in arrays.items():
        arr = np.asarray(arr)
        filt = "none"
        if name in delta:
            if arr.dtype != np.uint8:
                raise ValueError(f"shard array {name!r}: the temporal-delta filter needs uint8, got {arr.dtype}")
            arr, filt = temporal_delta(arr), "tdelta"
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
        raw = buf.getvalue()
        if zstd is not None:
            member = f"{name}.npy.zst"
            members.append((_entry(member, zipfile.ZIP_STORED), zstd.compress(raw, asbytes=True)))
        else:
            member = f"{name}.npy"
            members.append((_entry(member, zipfile.ZIP_DEFLATED), raw))
        index[name] = {"member": member, "filter": filt, "npy_bytes": len(raw)}
    head = {**meta, "format": FORMAT, "version": VERSION, "codec": codec, "level": level, "arrays": index}
    with atomic_output(path, suffix=".tmp") as tmp:
        with zipfile.ZipFile(tmp, "w") as zf:
            zf.writestr(_entry("meta.json", zipfile.ZIP_DEFLATED), json.dumps(head, sort_keys=True), compresslevel=6)
            for info, data in members:
                zf.writestr(info, data, compresslevel=level if codec == "zlib" else None)
        size = tmp.stat().st_size
    return size


class ShardFile:
    """An open shard file: `meta` (dict), `names` and `load(name)` for one array at a time.

    Use as a context manager (`with ShardFile(path) as f: f.load("face96")`).

    Raises:
        FileNotFoundError: the file is missing (the message says which stage writes it).
        ValueError: not a shard file, or another format version (re-run the stage).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"shard file {self.path} not found (run `dvc repro shards` / `shard_labels`)")
        try:
            self._zip = zipfile.ZipFile(self.path)
        except zipfile.BadZipFile as e:
            raise ValueError(f"{self.path} is not a shard file (not a zip: {e})") from None
        try:
            self.meta = json.loads(self._zip.read("meta.json"))
        except KeyError:
            self._zip.close()
            raise ValueError(f"{self.path} is not a shard file (no meta.json)") from None
        if self.meta.get("format") != FORMAT or self.meta.get("version") != VERSION:
            self._zip.close()
            raise ValueError(f"{self.path}: format {self.meta.get('format')!r} version {self.meta.get('version')!r}; "
                             f"this code reads {FORMAT!r} version {VERSION}: re-run the stage that wrote it")

    @property
    def names(self) -> list[str]:
        return sorted(self.meta["arrays"])

    def load(self, name: str) -> np.ndarray:
        """Decompress and return array `name` (filters undone).

        Raises:
            KeyError: naming the arrays the file has.
        """
        entry = self.meta["arrays"].get(name)
        if entry is None:
            raise KeyError(f"{self.path} has no array {name!r}; it has {self.names}")
        data = self._zip.read(entry["member"])
        if self.meta["codec"] == "zstd":
            data = _zstd().decompress(data, decompressed_size=entry["npy_bytes"])
        arr = _npy_view(data)
        if arr.dtype.hasobject:
            raise ValueError(f"{self.path}: array {name!r} holds Python objects; shard files never do (corrupt?)")
        return undo_temporal_delta(arr) if entry["filter"] == "tdelta" else arr.copy()

    def member_sizes(self) -> dict[str, tuple[int, int]]:
        """name -> (bytes on disk, .npy bytes before compression) of each array."""
        return {name: (self._zip.getinfo(e["member"]).compress_size, e["npy_bytes"])
                for name, e in self.meta["arrays"].items()}

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> "ShardFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
