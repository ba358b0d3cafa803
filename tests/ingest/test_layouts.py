"""Real datasets' own layouts (headflow.ingest.layouts), each on a small tree built here."""

import numpy as np
import pytest

from headflow.ingest.ingest import run_ingest
from headflow.ingest.layouts import (discover_mead, discover_voxceleb2, hdtf_speaker, parse_timestamp,
                                     read_hdtf_lists, read_pair_list)
from headflow.ingest.params import IngestParams
from headflow.media import encode_video, probe, read_frames
from headflow.validation import validate_manifest


def _video(path, seconds, fps=25, seed=0, size=(96, 128)):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
    frames = [np.kron(base, np.ones((8, 8, 1), np.uint8))] * int(seconds * fps)
    t = np.arange(int(seconds * 16000)) / 16000
    path.parent.mkdir(parents=True, exist_ok=True)
    encode_video(frames, path, fps=fps, audio=(0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32),
                 preset="ultrafast")
    return frames[0]


def test_timestamps():
    assert parse_timestamp("00:05") == 5.0
    assert parse_timestamp("01:02:03") == 3723.0          # 1 h 2 min 3 s
    assert parse_timestamp("12.5") == 12.5
    with pytest.raises(ValueError, match="mm:ss"):
        parse_timestamp("1:2:3:4")


def test_hdtf_lists(tmp_path):
    (tmp_path / "WRA_annotion_time.txt").write_text("Alice2.mp4 00:40-01:20 02:00-02:40 \nBob.mp4 00:05-02:55\n")
    (tmp_path / "WRA_crop_wh.txt").write_text("Alice2_1.mp4 416 498 12 498\n")
    (tmp_path / "WRA_video_url.txt").write_text("Alice2 https://www.youtube.com/watch?v=abc\n")
    spans, urls = read_hdtf_lists(tmp_path / "WRA_annotion_time.txt")
    assert [(s.video, s.index, s.start_s, s.end_s, s.crop) for s in spans] == [
        ("Alice2", 0, 40.0, 80.0, None), ("Alice2", 1, 120.0, 160.0, (416, 12, 498, 498)),  # x w y h -> x y w h
        ("Bob", 0, 5.0, 175.0, None)]
    assert urls == {"Alice2": "https://www.youtube.com/watch?v=abc"}
    assert hdtf_speaker("Alice2") == "Alice" and hdtf_speaker("Bob") == "Bob"
    (tmp_path / "WRA_annotion_time.txt").write_text("Bob.mp4 00:20-00:10\n")
    with pytest.raises(ValueError, match="ends before it starts"):
        read_hdtf_lists(tmp_path / "WRA_annotion_time.txt")


def test_hdtf_tree_gives_one_clip_per_span_cropped_and_names_missing_downloads(tmp_path):
    root = tmp_path / "hdtf"
    first = _video(root / "videos" / "WRA_Alice0.mp4", 6.0, seed=1)     # downloaded as <subset>_<name>.mp4
    lists = root / "HDTF_dataset"
    lists.mkdir()
    (lists / "WRA_annotion_time.txt").write_text("Alice0.mp4 00:01-00:03 00:04-00:06\nBob.mp4 00:00-00:02\n")
    (lists / "WRA_crop_wh.txt").write_text("Alice0_0.mp4 8 64 16 64\n")
    (lists / "WRA_video_url.txt").write_text("Alice0 https://y/a\nBob https://y/bob\n")
    params = IngestParams(source="hdtf", root=str(root), face_probe_frames=0, workers=1)
    res = run_ingest(params, root, tmp_path / "ingest", project_root=tmp_path, progress=False)
    clips = res.clips
    assert list(zip(clips.source_start_s, clips.source_end_s)) == [(1.0, 3.0), (4.0, 6.0)]
    assert list(clips.n_frames) == [50, 50] and set(clips.speaker_id) == {"Alice"}
    for wav in clips.audio_path:                                    # the audio is cut to the same span
        assert probe(tmp_path / wav).duration_s == pytest.approx(2.0, abs=0.03)
    assert list(clips.source_crop[0]) == [8, 16, 64, 64] and clips.source_crop[1] is None
    assert list(clips.width) == [64, 128] and list(clips.height) == [64, 96]
    # the crop is the window x 8..72, y 16..80 of the source frame (lossy: compare to the shifted window)
    frame = next(iter(read_frames(tmp_path / clips.video_path[0])))
    right = np.abs(frame.astype(int) - first[16:80, 8:72]).mean()
    wrong = np.abs(frame.astype(int) - first[0:64, 0:64]).mean()
    assert right < 8 < wrong
    q = res.quarantine.frame()
    assert list(q.reason_code) == ["unreadable"] and "https://y/bob" in q.message[0]
    assert res.n_inputs == 3 and validate_manifest(clips, "clips").success


def test_mead_layout_records_emotion_level_and_view(tmp_path):
    root = tmp_path / "mead"
    _video(root / "M003" / "video" / "front" / "angry" / "level_1" / "001.mp4", 1.2, seed=2)
    _video(root / "M003" / "video" / "left_30" / "happy" / "level_3" / "002.mp4", 1.2, seed=3)
    params = IngestParams(source="mead", root=str(root), face_probe_frames=0, workers=1)
    res = run_ingest(params, root, tmp_path / "ingest", project_root=tmp_path, progress=False)
    c = res.clips
    assert list(c.emotion) == ["angry", "happy"] == list(c["style"])
    assert list(c.emotion_level) == [1, 3] and list(c.camera_view) == ["front", "left_30"]
    assert set(c.speaker_id) == {"M003"} and validate_manifest(c, "clips").success
    (root / "stray.mp4").write_bytes(b"")
    with pytest.raises(ValueError, match="stray.mp4 is not <id>/video"):
        discover_mead(root, [".mp4"])


def test_voxceleb2_speaker_is_the_id_folder(tmp_path):
    for rel in ("dev/mp4/id00012/21Uxsk56VDQ/00001.mp4", "dev/mp4/id00012/abcdEFGhijk/00002.mp4",
                "dev/mp4/id00419/Zz9/00001.mp4"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    items = discover_voxceleb2(tmp_path / "dev" / "mp4", [".mp4"])
    assert [(i.relpath, i.speaker_id) for i in items] == [
        ("id00012/21Uxsk56VDQ/00001.mp4", "id00012"), ("id00012/abcdEFGhijk/00002.mp4", "id00012"),
        ("id00419/Zz9/00001.mp4", "id00419")]
    with pytest.raises(ValueError, match="<id>/<video>/<clip>.mp4"):
        discover_voxceleb2(tmp_path / "dev" / "mp4" / "id00012", [".mp4"])


def test_wav2lip_pair_list_gives_dubbing_pairs(tmp_path):
    root = tmp_path / "lrs2"
    for k, key in enumerate(("6330311066473698535/00011", "6339758276407584924/00098", "6356573073371408843/00023")):
        _video(root / "main" / f"{key}.mp4", 1.2, seed=10 + k)
    (root / "main" / "6330311066473698535" / "00011.txt").write_text("Text:  HELLO THERE\n")
    # Wav2Lip's columns: <audio source> <video>; the last line names a video that is not there
    (root / "lrs2.txt").write_text("6339758276407584924/00098 6330311066473698535/00011\n"
                                   "6356573073371408843/00023 6339758276407584924/00098\n"
                                   "6330311066473698535/00011 6399999999999999999/00001\n")
    assert read_pair_list(root / "lrs2.txt")[0] == ("6339758276407584924/00098", "6330311066473698535/00011")
    params = IngestParams(source="wav2lip_pairs", root=str(root), file_list="lrs2.txt", face_probe_frames=0,
                          workers=1)
    res = run_ingest(params, root, tmp_path / "ingest", project_root=tmp_path, progress=False)
    ids = dict(zip(res.clips.source_path, res.clips.clip_id))
    assert len(res.clips) == 3 and list(res.quarantine.frame().reason_code) == ["unreadable"]
    assert set(res.clips.split) == {"test"}                       # an evaluation list: every clip is test
    assert res.clips.set_index("source_path").transcript["main/6330311066473698535/00011.mp4"] == "hello there"
    pairs = res.dubbing_pairs
    assert list(zip(pairs.clip_id, pairs.audio_clip)) == [
        (ids["main/6330311066473698535/00011.mp4"], ids["main/6339758276407584924/00098.mp4"]),
        (ids["main/6339758276407584924/00098.mp4"], ids["main/6356573073371408843/00023.mp4"])]
    assert validate_manifest(pairs, "dubbing_pairs").success
