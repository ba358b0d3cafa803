"""The ingest stage on made-up inputs (every quarantine reason) and on the real GRID clips."""

import shutil

import numpy as np
import pytest

from headflow.ingest.ingest import run_ingest
from headflow.ingest.params import IngestParams
from headflow.manifest import check_accounting
from headflow.media import encode_video, probe
from headflow.validation import validate_manifest


def _clip(path, seconds, fps=30, audio=True, size=(96, 128), seed=0, audio_seconds=None):
    rng = np.random.default_rng(seed)
    n = int(seconds * fps)
    base = rng.integers(0, 255, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
    frames = [np.roll(np.kron(base, np.ones((8, 8, 1), np.uint8)), i, axis=1) for i in range(n)]
    sr = 16000
    n_audio = int((seconds if audio_seconds is None else audio_seconds) * sr)
    wav = (0.1 * np.sin(2 * np.pi * 220 * np.arange(n_audio) / sr)).astype(np.float32) if audio else None
    path.parent.mkdir(parents=True, exist_ok=True)
    encode_video(frames, path, fps=fps, audio=wav, sample_rate=sr)
    return path


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    _clip(root / "ann" / "good1.mp4", 2.0, seed=1)
    (root / "ann" / "good1.txt").write_text("hello world\n")
    _clip(root / "bob" / "good2.mp4", 1.5, fps=25, seed=2)
    shutil.copyfile(root / "bob" / "good2.mp4", root / "bob" / "good2_copy.mp4")
    _clip(root / "bob" / "silent.mp4", 1.5, audio=False, seed=3)
    _clip(root / "cat" / "short.mp4", 0.4, seed=4)
    _clip(root / "cat" / "long.mp4", 4.0, seed=5)
    data = (root / "ann" / "good1.mp4").read_bytes()
    (root / "cat" / "cut.mp4").write_bytes(data[: len(data) // 3])
    (root / "cat" / "garbage.mp4").write_bytes(b"\x00not a video" * 100)
    return root


def test_every_input_is_accepted_or_quarantined_with_its_reason(bad_folder, tmp_path, caplog):
    params = IngestParams(source="folder", root=str(bad_folder), max_duration_s=3.0, face_probe_frames=0,
                          workers=1)
    with caplog.at_level("WARNING", logger="headflow"):
        result = run_ingest(params, bad_folder, tmp_path / "ingest", project_root=tmp_path, progress=False)
    # Two speakers of one usable clip each: none can be held out, and ingest says so instead of leaving
    # val and test silently empty.
    assert "no speaker for val and test: 0 speaker(s) have >= 2 usable clips" in caplog.text
    reasons = dict(zip(result.quarantine.frame().source_path, result.quarantine.frame().reason_code))
    # every message names its file relative to the root, as source_path does (the media layer's errors too)
    for path, message in zip(result.quarantine.frame().source_path, result.quarantine.frame().message):
        assert message.startswith(f"{path}:") and str(bad_folder) not in message, message
    assert reasons == {
        "bob/good2_copy.mp4": "duplicate_content", "bob/silent.mp4": "no_audio_stream",
        "cat/short.mp4": "too_short", "cat/long.mp4": "too_long", "cat/cut.mp4": "unreadable",
        "cat/garbage.mp4": "unreadable",
    }
    clips = result.clips
    assert list(clips.source_path) == ["ann/good1.mp4", "bob/good2.mp4"]
    assert result.n_inputs == 8 == len(clips) + len(result.quarantine)
    check_accounting([*clips.clip_id, *result.quarantine.frame().clip_id], list(clips.clip_id),
                     list(result.quarantine.frame().clip_id), "ingest")
    good1 = clips.iloc[0]
    assert good1.native_fps == pytest.approx(30.0) and good1.transcript == "hello world"
    assert good1.n_frames == 50 and good1.duration_s == pytest.approx(2.0, abs=0.05)
    canon = probe(tmp_path / good1.video_path)
    assert canon.fps == pytest.approx(25.0) and not canon.has_audio
    audio = probe(tmp_path / good1.audio_path)
    assert audio.audio_sample_rate == 16000 and audio.audio_channels == 1
    assert validate_manifest(clips, "clips").success
    # Only accepted clips leave media behind.
    assert sorted(p.name for p in (tmp_path / "ingest" / "media").iterdir()) == sorted(
        [f"{c}.mp4" for c in clips.clip_id] + [f"{c}.wav" for c in clips.clip_id])


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory):
    """Inputs of the kinds real folders hold: streams of different lengths, upper-case extensions and
    sidecars, UTF-16 and undecodable transcripts, files ingest cannot take."""
    root = tmp_path_factory.mktemp("odd")
    _clip(root / "ann" / "audio_short.mp4", 2.0, fps=25, seed=1, audio_seconds=1.0)
    _clip(root / "ann" / "video_short.mp4", 1.2, fps=25, seed=2, audio_seconds=2.0)
    _clip(root / "ann" / "near.mp4", 2.0, fps=25, seed=3, audio_seconds=1.9)
    _clip(root / "bob" / "LOUD.MP4", 1.2, fps=25, seed=4)
    (root / "bob" / "LOUD.TXT").write_bytes("hello w\u00f6rld\r\n".encode("utf-16"))   # BOM + UTF-16-LE
    _clip(root / "bob" / "phone.M4V", 1.2, fps=25, seed=5)
    _clip(root / "cat" / "latin.mp4", 1.2, fps=25, seed=6)
    (root / "cat" / "latin.txt").write_bytes("caf\u00e9 \u2019n\u2019 cake".encode("cp1252"))
    _clip(root / "cat" / "broken.mp4", 1.2, fps=25, seed=7)
    (root / "cat" / "broken.txt").write_bytes(b"abc \x81\x8d def")   # invalid UTF-8, undefined in cp1252
    (root / "cat" / "notes.md").write_text("# notes\n")
    (root / "cat" / "still.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    _clip(root / "cat" / "old.flv.bin", 1.2, fps=25, seed=8)
    return root


def test_odd_inputs_get_their_verdicts(odd_folder, tmp_path):
    params = IngestParams(source="folder", root=str(odd_folder), face_probe_frames=0, workers=1, min_duration_s=0.5)
    result = run_ingest(params, odd_folder, tmp_path / "ingest", project_root=tmp_path, progress=False)
    q = result.quarantine.frame()
    assert dict(zip(q.source_path, q.reason_code)) == {
        "ann/audio_short.mp4": "av_length_mismatch",    # 1.0 s of audio for 2.0 s of video
        "ann/video_short.mp4": "av_length_mismatch",    # 2.0 s of audio for 1.2 s of video
        "cat/broken.mp4": "transcript_encoding",
        "cat/still.jpg": "unsupported_extension", "cat/old.flv.bin": "unsupported_extension",
    }
    messages = dict(zip(q.source_path, q.message))
    assert "audio is 1.00 s shorter" in messages["ann/audio_short.mp4"]
    assert "video is 0.80 s shorter" in messages["ann/video_short.mp4"]
    assert "cp1252" in messages["cat/broken.mp4"] and "utf-8" in messages["cat/broken.mp4"]
    clips = result.clips.set_index("source_path")
    assert sorted(clips.index) == ["ann/near.mp4", "bob/LOUD.MP4", "bob/phone.M4V", "cat/latin.mp4"]
    assert clips.loc["bob/LOUD.MP4"].transcript == "hello w\u00f6rld" and clips.loc["bob/LOUD.MP4"].transcript_source == "txt"
    assert clips.loc["cat/latin.mp4"].transcript == "caf\u00e9 \u2019n\u2019 cake"
    assert result.transcript_encodings == {"cp1252": 1, "utf-16 (BOM)": 1}
    assert result.n_inputs == 9 == len(clips) + len(q) and result.other_files == 4   # 3 transcripts + notes.md
    # a wider tolerance takes both length mismatches
    wide = IngestParams(source="folder", root=str(odd_folder), face_probe_frames=0, workers=1, min_duration_s=0.5,
                        max_av_length_diff_s=1.5)
    result = run_ingest(wide, odd_folder, tmp_path / "wide", project_root=tmp_path, progress=False)
    assert "av_length_mismatch" not in set(result.quarantine.frame().reason_code)


def test_ingest_is_deterministic(bad_folder, tmp_path):
    params = IngestParams(source="folder", root=str(bad_folder), max_duration_s=3.0, face_probe_frames=0,
                          workers=2)
    a = run_ingest(params, bad_folder, tmp_path / "a", project_root=tmp_path, progress=False)
    b = run_ingest(params, bad_folder, tmp_path / "b", project_root=tmp_path, progress=False)
    assert list(a.clips.clip_id) == list(b.clips.clip_id)
    for cid in a.clips.clip_id:
        for ext in (".mp4", ".wav"):
            assert (tmp_path / "a" / "media" / f"{cid}{ext}").read_bytes() == \
                   (tmp_path / "b" / "media" / f"{cid}{ext}").read_bytes()


@pytest.mark.shared
def test_real_grid_clips(grid_dir, tmp_path):
    import json

    params = IngestParams(source="grid", root=str(grid_dir), transcripts_json="transcripts.json", workers=2)
    result = run_ingest(params, grid_dir, tmp_path / "ingest", project_root=tmp_path, progress=False)
    assert len(result.quarantine) == 0, result.quarantine.frame().to_dict("records")
    clips = result.clips
    assert len(clips) == 6
    truth = json.loads((grid_dir / "transcripts.json").read_text())
    for row in clips.itertuples():
        stem = row.source_path.rsplit(".", 1)[0]
        assert row.transcript == truth[stem]
        assert row.native_fps == pytest.approx(25.0)
        assert row.native_duration_s == pytest.approx(3.0, abs=0.05)
        assert row.duration_s == pytest.approx(3.0, abs=0.05) and row.n_frames == 75
        assert (row.native_width, row.native_height) == (360, 288)
        assert row.native_sample_rate == 44100 and row.native_channels == 2
        assert row.n_faces_probe == 1
    swwp = clips[clips.source_path == "swwp2s.mpg"].iloc[0]
    assert [w["word"] for w in swwp.words] == truth["swwp2s"].split()
    assert swwp.words[0]["start"] == pytest.approx(12250 / 25000)
    assert validate_manifest(clips, "clips").success


def test_demo_source_splits_on_usable_speakers_and_carries_styles(tmp_path):
    import pandas as pd

    root = tmp_path / "raw"
    layout = {"ann/ann_00.mp4": 1.2, "ann/ann_01.mp4": 1.2, "bob/bob_00.mp4": 1.2, "bob/bob_01.mp4": 1.2,
              "dan/dan_00.mp4": 1.2, "dan/dan_01.mp4": 1.2, "cat/cat_00.mp4": 1.2, "cat/cat_01.mp4": 0.4,
              "solo/solo_00.mp4": 1.2, "bad/two_faces.mp4": 1.2, "bad/too_short.mp4": 0.4}
    for seed, (rel, seconds) in enumerate(layout.items()):
        _clip(root / rel, seconds, fps=25, seed=10 + seed)
    styles = ["neutral", "smiling", "exaggerated", "neutral", "restrained", "neutral", "neutral", "smiling", "neutral"]
    pd.DataFrame({"source_path": list(layout), "kind": ["good"] * 9 + ["bad"] * 2, "style": styles + [None, None]}
                 ).to_parquet(root / "corpus.parquet")
    params = IngestParams(source="demo", root=str(root), face_probe_frames=0, workers=1)
    result = run_ingest(params, root, tmp_path / "ingest", project_root=tmp_path, progress=False)
    clips = result.clips.set_index("source_path")
    assert sorted(result.quarantine.frame().source_path) == ["bad/too_short.mp4", "cat/cat_01.mp4"]
    assert validate_manifest(result.clips, "clips").success
    expected_style = {rel: s for rel, s in zip(layout, styles + [None, None]) if rel in clips.index}
    assert {rel: (None if pd.isna(s) else s) for rel, s in clips["style"].items()} == expected_style
    split = clips.groupby("speaker_id")["split"].first().to_dict()
    # cat lost a clip to quarantine (1 usable < 2), solo has one clip, bad/ is known-bad: all train.
    assert split["cat"] == split["solo"] == split["bad"] == "train"
    # Three eligible speakers (ann, bob, dan): one each in train, val and test.
    assert sorted(split[s] for s in ("ann", "bob", "dan")) == ["test", "train", "val"]
    # The folder source records no style.
    folder = run_ingest(IngestParams(source="folder", root=str(root), face_probe_frames=0, workers=1), root,
                        tmp_path / "folder", project_root=tmp_path, progress=False)
    assert folder.clips["style"].isna().all()
