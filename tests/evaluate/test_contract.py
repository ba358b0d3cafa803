"""The generation contract: generated.parquet validation, synthetic container tags, tasks every system shares."""

import hashlib

import numpy as np
import pytest

from headflow.manifest.generated import (dubbing_pairs, is_synthetic, mark_synthetic, read_generated,
                                         read_synthetic_tag, scored_range, write_generated)
from headflow.validation import ValidationFailed


def _row(**kw):
    row = dict(clip_id="a-000000000a", family="lipsync", variant="default", seed=0, protocol="reconstruction",
               source_clip="a-000000000a", audio_clip="a-000000000a", driver_clip=None, style_clip=None,
               references=[0, 12], output_kind="video", output_path="data/interim/generate_lipsync/a.mp4", fps=25.0,
               frame_start=0, frame_end=40, checkpoint_sha256="0" * 64)
    row.update(kw)
    return row


def test_write_generated_round_trips_valid_rows(tmp_path):
    rows = [_row(), _row(clip_id="b-000000000b", source_clip="b-000000000b", audio_clip="b-000000000b", seed=1,
                     references=[])]
    path = tmp_path / "generated.parquet"
    write_generated(rows, path)
    back = read_generated(path)
    assert list(back.clip_id) == ["a-000000000a", "b-000000000b"]
    assert [list(r) for r in back.references] == [[0, 12], []]
    assert back.frame_end.tolist() == [40, 40] and back.seed.tolist() == [0, 1]


@pytest.mark.parametrize("bad, expected", [
    (dict(frame_end=0), "frame_end"),                       # frame_end must exceed frame_start
    (dict(protocol="lipreading"), "protocol"),
    (dict(checkpoint_sha256="abc"), "checkpoint_sha256"),
    (dict(output_kind="gif"), "output_kind"),
    (dict(audio_clip=None), "audio_clip"),                  # reconstruction names its audio
    (dict(family="Lip Sync"), "family"),
])
def test_write_generated_refuses_rows_that_break_the_contract(tmp_path, bad, expected):
    with pytest.raises(ValidationFailed, match=expected):
        write_generated([_row(**bad)], tmp_path / "generated.parquet")
    assert not (tmp_path / "generated.parquet").exists()


def test_write_generated_names_missing_and_unexpected_columns(tmp_path):
    row = _row()
    del row["checkpoint_sha256"]
    row["ckpt"] = "x"
    with pytest.raises(ValueError, match=r"missing columns \['checkpoint_sha256'\], unexpected \['ckpt'\]"):
        write_generated([row], tmp_path / "generated.parquet")


def test_mark_synthetic_tags_the_container_and_keeps_the_streams(tmp_path):
    import av

    from headflow.media import encode_video

    video = tmp_path / "out.mp4"
    frames = [np.full((32, 32, 3), 10 * i, np.uint8) for i in range(8)]
    encode_video(frames, video, audio=np.zeros(16000 * 8 // 25, np.float32), preset="ultrafast", threads=1)
    assert not is_synthetic(video)
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes(b"weights")
    tags = mark_synthetic(video, "lipsync", ckpt, ["a-000000000a", "b-000000000b"])
    read = read_synthetic_tag(video)
    assert read == tags and is_synthetic(video)
    assert read["headflow_checkpoint_sha256"] == hashlib.sha256(b"weights").hexdigest()   # the file was hashed
    assert read["headflow_sources"] == "a-000000000a,b-000000000b" and "synthetic" in read["comment"]
    with av.open(str(video)) as c:
        assert c.streams.video[0].frames == 8 and len(c.streams.audio) == 1


def test_dubbing_pairs_is_a_fixed_derangement():
    pairs = dubbing_pairs(["c", "a", "b"])
    assert pairs == {"a": "b", "b": "c", "c": "a"}           # sorted ids, each takes the next one's audio
    assert sorted(pairs.values()) == ["a", "b", "c"] and all(k != v for k, v in pairs.items())
    assert dubbing_pairs(["a"]) == {}


def test_scored_range_ends_at_the_last_full_audio_window():
    # 40 video frames; mel of 1.6 s = 128 frames: frame f needs int(3.2 f) + 16 <= 128 -> f <= 35 (int(112) = 112)
    assert scored_range(40, 128) == (1, 36)
    assert scored_range(20, 128) == (1, 20)                   # the video ends first
    assert scored_range(40, 10) == (1, 0)                     # no full window at all: empty


def test_a_listed_pair_table_replaces_the_derangement(tmp_path):
    import pandas as pd

    from headflow.manifest.generated import read_listed_pairs

    # Wav2Lip-style list: a dubbed with c's audio, b with a's; d's audio is not an evaluation clip
    listed = {"a": "c", "b": "a", "e": "d"}
    assert dubbing_pairs(["a", "b", "c", "e"], listed) == {"a": "c", "b": "a"}       # c is only an audio source
    assert dubbing_pairs(["a", "b", "c"], {}) == dubbing_pairs(["a", "b", "c"])       # empty list: id order
    assert read_listed_pairs(tmp_path) == {}                                          # no list written
    pd.DataFrame({"clip_id": ["a", "b"], "audio_clip": ["c", "a"], "video_key": ["1/1", "1/2"],
                  "audio_key": ["1/3", "1/1"]}).to_parquet(tmp_path / "dubbing_pairs.parquet")
    assert read_listed_pairs(tmp_path) == {"a": "c", "b": "a"}


def test_canonical_tasks_follow_the_listed_pairs():
    from headflow.evaluate.baselines import canonical_tasks

    n = {"a": 50, "b": 50, "c": 50}
    tasks, skipped = canonical_tasks(n, {k: 170 for k in n}, ["dubbing"], 1, {"a": "c"})
    assert [(t.source_clip, t.audio_clip) for t in tasks] == [("a", "c")]
    assert sorted(c for c, _ in skipped) == ["b", "c"] and skipped[0][1] == "not in the dubbing pair list"
