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


# -- every other suite: one good row passes, one corrupted value fails, naming the expectation -------
def _good_row(manifest: str) -> dict:
    """A plausible row of `manifest`: a value of each column's type, then the columns the suite constrains."""
    import pyarrow as pa

    from headflow.manifest.schemas import schema_for

    row = {}
    for f in schema_for(manifest):
        t = f.type
        if pa.types.is_string(t):
            row[f.name] = "x"
        elif pa.types.is_boolean(t):
            row[f.name] = True
        elif pa.types.is_integer(t):
            row[f.name] = 1
        elif pa.types.is_floating(t):
            row[f.name] = 0.5
        elif pa.types.is_fixed_size_list(t):
            row[f.name] = [0.5] * t.list_size
        else:
            row[f.name] = None
    row.update(GOOD[manifest])
    return row


CID = "s1_bbaf2n-0123456789"
GOOD = {
    "corpus": dict(source_path="good/a.mp4", kind="good", identity="tom", duration_s=4.0, truth_path="good/a.npz",
                   expected_reason=None),
    "audio_features": dict(clip_id=CID, mel_path="mel/a.npy", n_mel_frames=240, n_valid_windows=70, mel_min=-4.0,
                           mel_max=3.5, peak=0.8),
    "alignments": dict(clip_id=CID, backend="builtin", n_words=6, n_aligned_words=6, n_phones=20, duration_s=3.0,
                       textgrid_path="textgrids/a.TextGrid"),
    "words": dict(clip_id=CID, word_index=0, word="bin", start=0.1, end=0.4),
    "phones": dict(clip_id=CID, word_index=0, word="bin", phone="B", phone_index=3, start=0.1, end=0.2),
    "frame_labels": dict(clip_id=CID, frame=0, phone="SIL", phone_index=0, styletalk_index=31),
    "faces": dict(clip_id=CID, n_frames=75, detection_rate=1.0, n_tracks=1, chosen_track=0, runner_up_ratio=0.0,
                  mean_face_size=90.0, mean_iod=40.0),
    "landmarks": dict(clip_id=CID, frame=0, valid=True, detected=True, score=0.9),
    "sync_eval": dict(clip_id=CID, applied_shift=0, recovered_offset=0, lse_d=0.8, lse_c=0.2, note=None),
    "sync_check": dict(clip_id=CID, offset=0, lse_d=0.8, lse_c=0.2, action="keep", audio_shift_frames=0, reason=None,
                       mel_path="mel/a.npy", n_windows=71),
    "fits": dict(clip_id=CID, model="builtin_demo", n_id=12, n_exp=17, n_frames=75, n_valid=75,
                 reproj_iod_median=0.02, reproj_iod_p90=0.03, nmfc_coverage=0.4, jaw_open_r=0.9),
    "expressions": dict(clip_id=CID, frame=0, valid=True, exp=[0.1, 0.2], angles=[1.0, 2.0, 3.0],
                        translation=[100.0, 120.0], scale=10.0),
}

# manifest: (column, corrupted value, the expectation that must name it)
CORRUPT = {
    "corpus": ("duration_s", 9.0, "expect_column_values_to_be_between"),                 # a good clip of 9 s
    "audio_features": ("mel_max", 4.5, "expect_column_values_to_be_between"),            # outside Wav2Lip's [-4, 4]
    "alignments": ("backend", "kaldi", "expect_column_values_to_be_in_set"),
    "words": ("end", 0.05, "expect_column_pair_values_a_to_be_greater_than_b"),           # ends before it starts
    "phones": ("phone", "ZZ", "expect_column_values_to_be_in_set"),
    "frame_labels": ("styletalk_index", 41, "expect_column_values_to_be_between"),
    "faces": ("detection_rate", 1.5, "expect_column_values_to_be_between"),
    # a valid frame without landmarks
    "landmarks": ("landmarks", None, "expect_column_values_to_not_be_null"),
    "sync_eval": ("lse_d", 2.5, "expect_column_values_to_be_between"),                    # unit embeddings: <= 2
    # a kept clip with a correction
    "sync_check": ("audio_shift_frames", 3, "expect_column_values_to_be_in_set"),
    "fits": ("reproj_iod_p90", 0.01, "expect_column_pair_values_a_to_be_greater_than_b"),  # p90 below the median
    "expressions": ("scale", 0.0, "expect_column_values_to_be_between"),
}


def test_every_suite_has_a_corruption_test():
    assert set(CORRUPT) == set(SUITES) - {"clips", "quarantine"}


@pytest.mark.parametrize("manifest", sorted(CORRUPT))
def test_suite_rejects_a_corrupted_row_and_names_the_expectation(manifest):
    good = _good_row(manifest)
    ok = validate_manifest(pd.DataFrame([good, good | _second(manifest)]), manifest, raise_on_failure=False)
    assert ok.success, ok.failures
    column, value, expectation = CORRUPT[manifest]
    bad = pd.DataFrame([good, good | _second(manifest) | {column: value}])
    with pytest.raises(ValidationFailed) as err:
        validate_manifest(bad, manifest)
    failures = err.value.failures
    assert len(failures) == 1, failures
    named = (f"{expectation} on column '{column}'", f"{expectation} on table {{'column_A': '{column}'")  # pairs: A
    assert failures[0].startswith(named) and "1 of 2 rows" in failures[0], failures


def _second(manifest: str) -> dict:
    """What a second row must change to stay unique (ids, frames, indices)."""
    return {"corpus": dict(source_path="good/b.mp4"), "words": dict(word_index=1), "phones": dict(start=0.15, end=0.2),
            "frame_labels": dict(frame=1), "landmarks": dict(frame=1), "sync_eval": dict(applied_shift=5),
            "expressions": dict(frame=1)}.get(manifest, dict(clip_id="s1_bbaf3n-0123456788"))
