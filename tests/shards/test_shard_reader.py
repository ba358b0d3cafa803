"""read_clip's laziness and errors; sync_check's decisions applied by accepted_clips / read_clip."""

import zipfile

import numpy as np
import pytest

from headflow.manifest import write_manifest
from headflow.shards import ClipNotAccepted, accepted_clips, read_clip
from headflow.sync.data import clip_arrays

A, B, C = "a-000000000a", "b-000000000b", "c-000000000c"


def test_only_the_requested_arrays_are_decompressed(shard_project, monkeypatch):
    root, _ = shard_project
    read = []
    real = zipfile.ZipFile.read
    monkeypatch.setattr(zipfile.ZipFile, "read", lambda self, name, pwd=None: read.append(name) or real(self, name, pwd))
    shard = read_clip(A, views=("face96", "mel"), project_root=root)
    assert sorted(read) == ["face96.npy.zst", "face96_landmarks.npy.zst", "face96_transform.npy.zst", "mel.npy.zst",
                            "meta.json", "valid.npy.zst"]
    assert shard.face96.size == (96, 96) and shard.mel.shape[1] == 80 and shard.n_frames == 24
    with pytest.raises(AttributeError, match="view 'crop256' was not loaded"):
        shard.crop256
    with pytest.raises(ValueError, match="unknown view"):
        read_clip(A, views=("face128",), project_root=root)


def test_expert_arrays_come_from_face96_and_the_mel(shard_project):
    root, _ = shard_project
    shard = read_clip(A, views=("face96", "mel"), project_root=root)
    clip = clip_arrays(shard)
    assert clip.mouths.shape == (24, 48, 96, 3) and clip.mouths.flags.c_contiguous
    np.testing.assert_array_equal(clip.mouths, shard.face96.pixels[:, 48:])
    assert clip.speaker == "s0" and clip.fps == 25.0 and clip.valid.tolist()[2:6] == [True, False, False, True]


@pytest.fixture(scope="module")
def decisions(shard_project):
    """sync_check's clips.parquet: a kept, c shifted by +2 frames (its mel rewritten), b dropped."""
    root, _ = shard_project
    shifted = "data/interim/sync_check/mel/c-000000000c.npy"
    (root / shifted).parent.mkdir(parents=True, exist_ok=True)
    np.save(root / shifted, np.full((67, 80), -4.0, np.float32))
    rows = [{"clip_id": A, "offset": 0, "lse_d": 0.5, "lse_c": 0.2, "action": "keep", "audio_shift_frames": 0,
             "reason": None, "mel_path": "data/interim/audio_features/mel/a-000000000a.npy", "n_windows": 20},
            {"clip_id": C, "offset": -2, "lse_d": 0.5, "lse_c": 0.2, "action": "shift", "audio_shift_frames": 2,
             "reason": "sync_offset", "mel_path": shifted, "n_windows": 12}]
    write_manifest(rows, root / "data/interim/sync_check/clips.parquet", "sync_check")
    return root, accepted_clips(project_root=root)


def test_accepted_clips_keep_what_sync_check_lets_through(decisions):
    root, acc = decisions
    assert acc.clip_id.tolist() == [A, C] and acc.action.tolist() == ["keep", "shift"]
    assert acc.audio_shift_frames.tolist() == [0, 2] and {"path", "n_frames", "sizes"} <= set(acc.columns)


def test_read_clip_applies_the_decisions(decisions):
    root, acc = decisions
    with pytest.raises(ClipNotAccepted, match="b-000000000b is not among"):
        read_clip(B, views=("mel",), project_root=root, decisions=acc)
    kept = read_clip(A, views=("mel",), project_root=root, decisions=acc)
    np.testing.assert_array_equal(kept.mel, np.load(root / "data/interim/audio_features/mel/a-000000000a.npy"))
    shifted = read_clip(C, views=("mel",), project_root=root, decisions=acc)
    assert shifted.audio_shift_frames == 2 and (shifted.mel == -4.0).all()


def test_decisions_about_clips_the_shards_lack_are_stale(shard_project, tmp_path):
    root, _ = shard_project
    write_manifest([{"clip_id": "z-000000000f", "action": "keep", "audio_shift_frames": 0, "mel_path": "x.npy"}],
                   tmp_path / "clips.parquet", "sync_check")
    with pytest.raises(ValueError, match="dvc repro sync_check"):
        accepted_clips(tmp_path / "clips.parquet", project_root=root)
