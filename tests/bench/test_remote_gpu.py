"""bench/remote_gpu.py's pack -> unpack round trip and its float16 transport (the training part needs a GPU)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from bench import remote_gpu
from headflow.shards.store import ShardFile, write_shard


def _frames(t: int, size: int, rng: np.random.Generator) -> np.ndarray:
    # Smooth moving gradients (like faces, unlike noise, which no lossy codec keeps).
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = [np.stack([(xx + 0.02 * i) % 1, yy, 0.5 * (xx + yy)], -1) for i in range(t)]
    return (np.stack(out) * 255 + rng.normal(0, 2, (t, size, size, 3))).clip(0, 255).astype(np.uint8)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return 10 * np.log10(255**2 / mse)


@pytest.fixture()
def data(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "data"
    (d / "interim/shards/clips").mkdir(parents=True)
    rows = []
    for clip, split in (("a", "train"), ("b", "val"), ("c", "test")):
        arrays = {"face96": _frames(12, 96, rng), "crop256": _frames(12, 256, rng),
                  "face96_landmarks": rng.normal(size=(12, 68, 2)).astype(np.float32),
                  "mel": rng.normal(size=(40, 80)).astype(np.float32), "valid": np.ones(12, bool)}
        write_shard(d / f"interim/shards/clips/{clip}.npz", arrays, {"clip_id": clip, "split": split},
                    "zstd", 3, delta=("face96", "crop256"))
        rows.append({"clip_id": clip, "split": split})
    pd.DataFrame(rows).to_parquet(d / "interim/shards/shards.parquet")
    return d


def test_pack_then_unpack_keeps_small_arrays_exactly_and_frames_close(data, tmp_path, monkeypatch):
    monkeypatch.setattr(remote_gpu, "SMALL", ("data/interim/shards/shards.parquet",))
    monkeypatch.setattr(remote_gpu, "_upgrade_clips", lambda path: None)
    (data / "interim/shard_labels/clips").mkdir(parents=True)
    pack_dir = tmp_path / "pack"
    remote_gpu.pack(data, pack_dir, crf_face=8, crf_crop=10, crop_size=128, splits=("train", "val"))
    assert sorted(p.stem for p in (pack_dir / "pack").glob("*.zip")) == ["a", "b"]   # the test split stays
    root = tmp_path / "there"
    root.mkdir()
    remote_gpu.unpack(pack_dir, root)
    for clip in ("a", "b"):
        with ShardFile(data / f"interim/shards/clips/{clip}.npz") as f, \
                ShardFile(root / f"data/interim/shards/clips/{clip}.npz") as g:
            assert f.names == g.names and g.meta["clip_id"] == clip and g.meta["split"] == f.meta["split"]
            for name in ("face96_landmarks", "mel", "valid"):
                assert np.array_equal(f.load(name), g.load(name)), name
            face, face2 = f.load("face96"), g.load("face96")
            assert face2.shape == face.shape and _psnr(face, face2) > 35
            # crop256 went through 128 px: compare at 128, where the families train
            import cv2

            down = [np.stack([cv2.resize(x, (128, 128), interpolation=cv2.INTER_AREA) for x in a])
                    for a in (f.load("crop256"), g.load("crop256"))]
            assert g.load("crop256").shape == (12, 256, 256, 3) and _psnr(*down) > 33


def test_float16_transport_restores_float32_exports_and_leaves_other_dtypes(tmp_path):
    sd = {"w": torch.randn(4, 4), "steps": torch.tensor(7), "mask": torch.ones(3, dtype=torch.bool)}
    out = tmp_path / "out"
    out.mkdir()
    torch.save(remote_gpu._halve({"format": "x", "state_dict": sd}), out / "gpu_job__generator.pt")
    remote_gpu.restore(out, tmp_path / "into")
    back = torch.load(tmp_path / "into/gpu_job/generator.pt", weights_only=False)
    assert back["format"] == "x" and back["state_dict"]["w"].dtype == torch.float32
    assert torch.allclose(back["state_dict"]["w"], sd["w"], rtol=1e-3, atol=1e-3)
    assert (back["state_dict"]["w"] - sd["w"]).abs().max() > 0          # it did travel as float16
    assert back["state_dict"]["steps"].dtype == torch.int64 and back["state_dict"]["mask"].dtype == torch.bool


def test_every_job_override_names_a_field_of_its_familys_quality_params():
    # run_job skips an override whose field the family lacks (so that --set may name any family's field):
    # a typo in JOBS would silently train the plain quality configuration under the job's name.
    import importlib

    from headflow.config import replace_dotted

    for name, (family, block, overrides) in remote_gpu.JOBS.items():
        p = importlib.import_module(f"headflow.generators.{family}.params").quality_params()
        assert block == f"train_{family}", name
        for key, value in overrides.items():
            p = replace_dotted(p, key, value)          # raises on an unknown field
        p.validate() if hasattr(p, "validate") else None
