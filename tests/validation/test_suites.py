"""great-expectations suites: good manifests pass, broken ones fail with readable messages."""

import pandas as pd
import pytest

from headflow.manifest import Quarantine
from headflow.validation import SUITES, ValidationFailed, validate_manifest


def _clips_row(**over):
    row = {
        "clip_id": "s1_bbaf2n-0123456789", "source": "grid", "source_path": "s1/bbaf2n.mpg",
        "content_hash": "a" * 64, "speaker_id": "s1", "split": "train", "transcript": "bin blue",
        "transcript_source": "json", "words": None, "style": None, "native_container": "mpeg", "native_fps": 25.0,
        "native_n_frames": 75, "native_duration_s": 3.0, "native_width": 360, "native_height": 288,
        "rotation": 0, "native_video_codec": "mpeg1video", "native_audio_codec": "mp2",
        "native_sample_rate": 44100, "native_channels": 2, "n_audio_streams": 1,
        "video_path": "data/interim/ingest/media/x.mp4", "audio_path": "data/interim/ingest/media/x.wav",
        "fps": 25, "sample_rate": 16000, "n_frames": 75, "duration_s": 3.0, "width": 360, "height": 288,
        "n_faces_probe": 1,
    }
    row.update(over)
    return row


def test_every_suite_is_registered():
    assert {"clips", "quarantine", "corpus"} <= set(SUITES)


def test_good_clips_manifest_passes():
    report = validate_manifest(pd.DataFrame([_clips_row()]), "clips")
    assert report.success and report.n_expectations > 10


def test_failures_name_expectation_column_and_row_count():
    df = pd.DataFrame([_clips_row(), _clips_row(clip_id="s1_x-0123456788", split="dev", fps=30)])
    with pytest.raises(ValidationFailed) as err:
        validate_manifest(df, "clips")
    text = str(err.value)
    assert "expect_column_values_to_be_in_set on column 'split'" in text and "1 of 2 rows" in text
    assert "column 'fps'" in text
    assert "column 'content_hash'" in text   # duplicated hash


def test_quarantine_suite_rejects_bad_reason_codes():
    q = Quarantine("ingest")
    q.add("a-0123456789", "Not A Code", "x")
    report = validate_manifest(q.frame(), "quarantine", raise_on_failure=False)
    assert not report.success and "reason_code" in report.failures[0]


def test_style_columns_null_or_a_style_name():
    ok = pd.DataFrame([_clips_row(), _clips_row(clip_id="s1_y-0123456788", content_hash="b" * 64, style="smiling")])
    assert validate_manifest(ok, "clips").success
    bad = pd.DataFrame([_clips_row(style="Big Smile")])
    report = validate_manifest(bad, "clips", raise_on_failure=False)
    assert not report.success and "column 'style'" in report.failures[0]
    corpus = pd.DataFrame([{"source_path": "a/a_00.mp4", "kind": "good", "identity": "a", "sentence": "x",
                            "voice": "en-us", "rate_wpm": 150, "style": None, "n_frames": 80, "duration_s": 3.2,
                            "expected_stage": None, "expected_reason": None, "truth_path": "a/a_00.truth.npz"}])
    report = validate_manifest(corpus, "corpus", raise_on_failure=False)
    assert not report.success and "column 'style'" in " ".join(report.failures)   # a good clip needs one
    assert validate_manifest(corpus.assign(style="neutral"), "corpus").success
