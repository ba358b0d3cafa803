"""The lip-sync family's training side: clip indexing with quarantine rows, validation windows,
fingerprints, and the exported generator file."""

from __future__ import annotations

import pytest
import torch

from headflow.generators.lipsync import train
from headflow.generators.lipsync.model import LipsyncGenerator
from headflow.generators.lipsync.params import ModelParams, tiny_params


def test_index_clips_turns_unusable_clips_into_quarantine_rows():
    from tests.generators.lipsync.conftest import synthetic_clip

    p = tiny_params()
    good, short = synthetic_clip(30, "good"), synthetic_clip(5, "short")
    indexes, rejected = train.index_clips([good, short], p)
    assert [ix.clip.clip_id for ix in indexes] == ["good"]
    assert len(rejected) == 1 and rejected[0]["clip_id"] == "short" and rejected[0]["stage"] == "train_lipsync"
    assert rejected[0]["reason_code"] == "no_reference_frames" and "clip short" in rejected[0]["message"]


def test_validation_batch_is_fixed():
    from tests.generators.lipsync.conftest import synthetic_clip

    p = tiny_params()
    indexes, _ = train.index_clips([synthetic_clip(30)], p)
    a, b = train.validation_batch(indexes, p), train.validation_batch(indexes, p)
    assert a["faces"].shape == (p.optim.val_windows, 5, 3, 96, 96)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert train.validation_batch([], p) is None


def test_fingerprint_changes_with_the_data():
    from tests.generators.lipsync.conftest import synthetic_clip

    a = synthetic_clip(20)
    fp = train.data_fingerprint([a])
    assert train.data_fingerprint([synthetic_clip(20)]) == fp
    a.mel[3, 3] += 1
    assert train.data_fingerprint([a]) != fp


def test_exported_generator_round_trips_and_refuses_another_width(tmp_path):
    p = tiny_params()
    torch.manual_seed(0)
    g = LipsyncGenerator(p.model).eval()
    sha = train.save_generator(g, p, tmp_path / "generator.pt")
    assert sha == train.file_sha256(tmp_path / "generator.pt")
    loaded, saved = train.load_generator(tmp_path / "generator.pt", p.model)
    x = (torch.rand(5, 3, 96, 96), torch.randn(5, 1, 80, 16), torch.rand(1, 2, 3, 96, 96))
    with torch.no_grad():
        torch.testing.assert_close(loaded(*x).image, g(*x).image)
    assert saved["model"]["width"] == p.model.width
    with pytest.raises(ValueError, match=r"another architecture.*'width': \(0.0625, 0.25\)"):
        train.load_generator(tmp_path / "generator.pt", ModelParams(width=0.25))
    with pytest.raises(FileNotFoundError, match="train_lipsync"):
        train.load_generator(tmp_path / "missing.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a lip-sync generator"):
        train.load_generator(tmp_path / "other.pt")
