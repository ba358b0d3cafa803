"""great-expectations suites: good manifests pass, broken ones fail with readable messages."""

from pathlib import Path

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
        "n_faces_probe": 1, "source_start_s": None, "source_end_s": None, "source_crop": None,
        "segment_index": None, "segment_end": None, "emotion": None, "emotion_level": None, "camera_view": None,
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
    "decisions": dict(clip_id=CID, decision="drop", reason="sync_offset", audio_shift_frames=0, mel_path="mel/a.npy"),
    "shards": dict(clip_id=CID, path=f"data/interim/shards/clips/{CID}.npz", split="train", fps=25, n_frames=75,
                   n_valid=73, n_mel_frames=256, sizes="face96=96x96 crop256=256x256 mouth=96x96 eyes=64x160",
                   codec="zstd", bytes=123456, sha256="a" * 64),
    "shard_labels": dict(clip_id=CID, path=f"data/interim/shard_labels/clips/{CID}.npz", n_frames=75,
                         has_phones=True, n_labelled=70, has_expressions=True, expression_model="builtin_demo",
                         n_exp=17, has_nmfc=True, nmfc_path=f"data/interim/fit3dmm/nmfc/{CID}.nmfc.zip",
                         nmfc_sha256="b" * 64, bytes=4567, sha256="c" * 64),
    "generated": dict(clip_id=CID, family="lipsync", variant="default", seed=0, protocol="dubbing", source_clip=CID,
                      audio_clip="s2_other-0123456789", driver_clip=None, style_clip=None, references=[3, 17],
                      output_kind="video", output_path="data/interim/generate_lipsync/videos/a.mp4", fps=25.0,
                      frame_start=0, frame_end=70, checkpoint_sha256="d" * 64),
    "per_clip": dict(system="ground_truth", family=None, variant=None, seed=None, protocol="reconstruction",
                     clip_id=CID, frame_start=1, frame_end=70, status="ok", reason_code=None, ssim=1.0,
                     ssim_masked=1.0, csim=0.99, cpbd=0.3, lap_var=120.0, f_lmd=0.0, m_lmd=0.0, lse_d=0.8),
    "aggregates": dict(system="ground_truth", variant=None, protocol="reconstruction", metric="ssim", n=10,
                       n_dropped=0, n_failed=0, ci=0.95, low=0.98, high=1.0),
    "comparisons": dict(system="lipsync", variant="default", protocol="dubbing", opponent="baseline_unedited",
                        metric="lse_c", winner="system"),
    "dubbing_pairs": dict(clip_id=CID, audio_clip="s1_bbaf3n-0123456788", video_key="s1/bbaf2n",
                          audio_key="s1/bbaf3n"),
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
    # a dropped clip with an audio correction
    "decisions": ("audio_shift_frames", 3, "expect_column_values_to_be_in_set"),
    # fewer video frames than frames with valid landmarks
    "shards": ("n_frames", 50, "expect_column_pair_values_a_to_be_greater_than_b"),
    # has_nmfc without the NMFC it claims
    "shard_labels": ("nmfc_path", None, "expect_column_values_to_not_be_null"),
    "generated": ("protocol", "remix", "expect_column_values_to_be_in_set"),            # not a protocol
    "per_clip": ("ssim", 1.5, "expect_column_values_to_be_between"),                     # SSIM lies in [-1, 1]
    "aggregates": ("ci", 1.0, "expect_column_values_to_be_between"),                     # a 100% interval is no interval
    "comparisons": ("winner", "both", "expect_column_values_to_be_in_set"),
    "dubbing_pairs": ("audio_clip", "not a clip id", "expect_column_values_to_match_regex"),
}

# Suites whose corruption test lives in another file (the manifest needs a stage's own fixture to be
# plausible): suite -> "tests/<file>.py::<test>". Each named test must exist and validate a manifest of
# that suite (`validate_manifest(..., "<suite>", ...)`); test_every_suite_has_a_corruption_test checks it.
ELSEWHERE: dict[str, str] = {}

TESTS = Path(__file__).resolve().parents[1]


def _corruption_test_elsewhere(where: str, suite: str) -> str | None:
    """None when `where` ("tests/<file>.py::<test>") is a test function that calls validate_manifest on
    `suite`; otherwise what is wrong."""
    import ast

    file, _, name = where.partition("::")
    path = TESTS.parent / file
    if not name.startswith("test_") or not path.is_file():
        return f"{where}: expected tests/<file>.py::test_<name> of an existing file"
    funcs = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef) and n.name == name]
    if not funcs:
        return f"{where}: no function {name} in {file}"
    for call in ast.walk(funcs[0]):
        if not isinstance(call, ast.Call):
            continue
        callee = getattr(call.func, "id", getattr(call.func, "attr", None))
        if callee == "validate_manifest" and any(isinstance(a, ast.Constant) and a.value == suite for a in call.args[1:2]):
            return None
    return f"{where}: {name} never calls validate_manifest(..., {suite!r})"


def test_every_suite_has_a_corruption_test():
    assert not set(CORRUPT) & set(ELSEWHERE), "a suite's corruption test lives in one place"
    assert set(CORRUPT) | set(ELSEWHERE) == set(SUITES) - {"clips", "quarantine"}
    problems = [p for suite, where in ELSEWHERE.items() if (p := _corruption_test_elsewhere(where, suite))]
    assert not problems, problems


def test_a_corruption_test_elsewhere_must_exist_and_validate_its_suite():
    shards = "tests/shards/test_shards_stage.py::test_the_suite_rejects_a_broken_manifest"
    assert _corruption_test_elsewhere(shards, "shards") is None
    assert "never calls" in _corruption_test_elsewhere(shards, "shard_labels")
    assert "no function" in _corruption_test_elsewhere("tests/shards/test_shards_stage.py::test_nope", "shards")
    assert "existing file" in _corruption_test_elsewhere("tests/nope.py::test_x", "shards")
    rerun = "tests/shards/test_shards_stage.py::test_rerun_gives_the_same_bytes"
    assert "never calls" in _corruption_test_elsewhere(rerun, "shards")


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
            "expressions": dict(frame=1), "aggregates": dict(metric="psnr"),
            "comparisons": dict(metric="m_lmd")}.get(manifest, dict(clip_id="s1_bbaf3n-0123456788"))
