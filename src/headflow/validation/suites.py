"""Expectation suites per manifest, in code (reviewed like code, versioned with the schemas)."""

from __future__ import annotations

from collections.abc import Callable

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.expectations.row_conditions import Column

from headflow.manifest.schemas import schema_for

CLIP_ID_REGEX = r"^[a-z0-9_]+-[0-9a-f]{10}$"


def _columns(manifest: str) -> list:
    return [gxe.ExpectTableColumnsToMatchOrderedList(column_list=schema_for(manifest).names)]


def _not_null(*cols: str) -> list:
    return [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in cols]


def clips_suite() -> list:
    return [
        *_columns("clips"),
        *_not_null("clip_id", "source", "source_path", "content_hash", "speaker_id", "split",
                   "video_path", "audio_path", "fps", "sample_rate", "n_frames", "duration_s"),
        gxe.ExpectColumnValuesToBeUnique(column="clip_id"),
        gxe.ExpectColumnValuesToBeUnique(column="content_hash"),
        gxe.ExpectColumnValuesToMatchRegex(column="clip_id", regex=CLIP_ID_REGEX),
        gxe.ExpectColumnValuesToMatchRegex(column="content_hash", regex=r"^[0-9a-f]{64}$"),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=["train", "val", "test"]),
        gxe.ExpectColumnValuesToMatchRegex(column="style", regex=r"^[a-z][a-z0-9_]*$"),   # nulls are skipped
        gxe.ExpectColumnValuesToBeInSet(column="fps", value_set=[25]),
        gxe.ExpectColumnValuesToBeInSet(column="sample_rate", value_set=[16000]),
        gxe.ExpectColumnValuesToBeBetween(column="duration_s", min_value=0.2, max_value=3600),
        gxe.ExpectColumnValuesToBeBetween(column="n_frames", min_value=5),
        gxe.ExpectColumnValuesToBeBetween(column="native_fps", min_value=1, max_value=240),
        gxe.ExpectColumnValuesToBeInSet(column="rotation", value_set=[0, 90, 180, 270]),
        gxe.ExpectColumnValuesToBeBetween(column="width", min_value=16),
        gxe.ExpectColumnValuesToBeBetween(column="height", min_value=16),
    ]


def quarantine_suite() -> list:
    return [
        *_columns("quarantine"),
        *_not_null("clip_id", "stage", "reason_code", "message"),
        gxe.ExpectColumnValuesToMatchRegex(column="reason_code", regex=r"^[a-z][a-z0-9_]*$"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["clip_id", "stage"]),
    ]


def corpus_suite() -> list:
    return [
        *_columns("corpus"),
        *_not_null("source_path", "kind", "identity"),
        gxe.ExpectColumnValuesToBeUnique(column="source_path"),
        gxe.ExpectColumnValuesToBeInSet(column="kind", value_set=["good", "bad"]),
        gxe.ExpectColumnValuesToBeBetween(column="duration_s", min_value=0.0, max_value=60.0),
        # Good clips are 3-6 s of talking face with ground truth beside them.
        gxe.ExpectColumnValuesToBeBetween(column="duration_s", min_value=3.0, max_value=6.0,
                                          row_condition=Column("kind") == "good"),
        gxe.ExpectColumnValuesToNotBeNull(column="truth_path", row_condition=Column("kind") == "good"),
        gxe.ExpectColumnValuesToNotBeNull(column="style", row_condition=Column("kind") == "good"),
        gxe.ExpectColumnValuesToMatchRegex(column="style", regex=r"^[a-z][a-z0-9_]*$"),
        gxe.ExpectColumnValuesToNotBeNull(column="expected_reason", row_condition=Column("kind") == "bad"),
    ]


def audio_features_suite() -> list:
    return [
        *_columns("audio_features"),
        *_not_null("clip_id", "mel_path", "n_mel_frames", "n_valid_windows", "rms_dbfs"),
        gxe.ExpectColumnValuesToBeUnique(column="clip_id"),
        gxe.ExpectColumnValuesToMatchRegex(column="clip_id", regex=CLIP_ID_REGEX),
        gxe.ExpectColumnValuesToBeBetween(column="n_valid_windows", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="mel_min", min_value=-4.0, max_value=4.0),
        gxe.ExpectColumnValuesToBeBetween(column="mel_max", min_value=-4.0, max_value=4.0),
        gxe.ExpectColumnValuesToBeBetween(column="peak", min_value=0.0, max_value=1.0),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="n_mel_frames", column_B="n_valid_windows"),
    ]


def alignments_suite() -> list:
    return [
        *_columns("alignments"),
        *_not_null("clip_id", "backend", "transcript", "n_words", "duration_s", "n_frames", "textgrid_path"),
        gxe.ExpectColumnValuesToBeUnique(column="clip_id"),
        gxe.ExpectColumnValuesToMatchRegex(column="clip_id", regex=CLIP_ID_REGEX),
        gxe.ExpectColumnValuesToBeInSet(column="backend", value_set=["builtin", "mfa"]),
        gxe.ExpectColumnValuesToBeBetween(column="n_words", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="n_phones", min_value=1),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="n_words", column_B="n_aligned_words", or_equal=True),
        gxe.ExpectColumnValuesToBeBetween(column="duration_s", min_value=0.0, strict_min=True),
        gxe.ExpectColumnValuesToMatchRegex(column="textgrid_path", regex=r"\.TextGrid$"),
    ]


def _interval_suite(manifest: str) -> list:
    return [
        *_columns(manifest),
        *_not_null("clip_id", "word_index", "word", "start", "end"),
        gxe.ExpectColumnValuesToBeBetween(column="start", min_value=0.0),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="end", column_B="start"),
    ]


def words_suite() -> list:
    return [*_interval_suite("words"), gxe.ExpectCompoundColumnsToBeUnique(column_list=["clip_id", "word_index"]),
            gxe.ExpectColumnValueLengthsToBeBetween(column="word", min_value=1)]


def phones_suite() -> list:
    from headflow.align.phones import PHONES

    return [*_interval_suite("phones"), gxe.ExpectColumnValuesToBeInSet(column="phone", value_set=list(PHONES)),
            gxe.ExpectColumnValuesToBeBetween(column="phone_index", min_value=0, max_value=len(PHONES) - 1),
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["clip_id", "start"])]


def frame_labels_suite() -> list:
    from headflow.align.phones import PHONES

    return [
        *_columns("frame_labels"),
        *_not_null("clip_id", "frame", "phone", "phone_index", "styletalk_index"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["clip_id", "frame"]),
        gxe.ExpectColumnValuesToBeBetween(column="frame", min_value=0),
        gxe.ExpectColumnValuesToBeInSet(column="phone", value_set=list(PHONES)),
        gxe.ExpectColumnValuesToBeBetween(column="phone_index", min_value=0, max_value=len(PHONES) - 1),
        gxe.ExpectColumnValuesToBeBetween(column="styletalk_index", min_value=0, max_value=40),
    ]


def faces_suite() -> list:
    return [
        *_columns("faces"),
        *_not_null("clip_id", "crop_path", "n_frames", "detection_rate", "n_tracks", "chosen_track",
                   "mean_face_size", "mean_iod"),
        gxe.ExpectColumnValuesToBeUnique(column="clip_id"),
        gxe.ExpectColumnValuesToMatchRegex(column="clip_id", regex=CLIP_ID_REGEX),
        gxe.ExpectColumnValuesToBeBetween(column="detection_rate", min_value=0.0, max_value=1.0),
        gxe.ExpectColumnValuesToBeBetween(column="n_tracks", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="n_frames", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="mean_face_size", min_value=1.0),
        gxe.ExpectColumnValuesToBeBetween(column="mean_iod", min_value=1.0),
        gxe.ExpectColumnValuesToBeBetween(column="runner_up_ratio", min_value=0.0, max_value=1.0),
    ]


def landmarks_suite() -> list:
    return [
        *_columns("landmarks"),
        *_not_null("clip_id", "frame", "valid", "detected", "box", "crop_transform"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["clip_id", "frame"]),
        gxe.ExpectColumnValuesToBeBetween(column="frame", min_value=0),
        gxe.ExpectColumnValuesToMatchRegex(column="clip_id", regex=CLIP_ID_REGEX),
        # Valid frames carry landmarks; invalid ones carry none (never -1 or a copied frame).
        gxe.ExpectColumnValuesToNotBeNull(column="landmarks", row_condition=Column("valid") == True),  # noqa: E712
        gxe.ExpectColumnValuesToNotBeNull(column="landmarks_raw", row_condition=Column("valid") == True),  # noqa: E712
        gxe.ExpectColumnValuesToBeNull(column="landmarks", row_condition=Column("valid") == False),  # noqa: E712
        gxe.ExpectColumnValuesToNotBeNull(column="score", row_condition=Column("detected") == True),  # noqa: E712
        gxe.ExpectColumnValuesToBeBetween(column="crop_outside", min_value=0.0, max_value=1.0),   # nulls skipped
    ]


def sync_eval_suite() -> list:
    return [
        *_columns("sync_eval"),
        *_not_null("clip_id", "applied_shift"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["clip_id", "applied_shift"]),
        gxe.ExpectColumnValuesToBeBetween(column="lse_d", min_value=0.0, max_value=2.0),
        gxe.ExpectColumnValuesToBeBetween(column="lse_c", min_value=0.0),
    ]


def sync_check_suite() -> list:
    return [
        *_columns("sync_check"),
        *_not_null("clip_id", "action", "audio_shift_frames", "mel_path"),
        gxe.ExpectColumnValuesToBeUnique(column="clip_id"),
        gxe.ExpectColumnValuesToMatchRegex(column="clip_id", regex=CLIP_ID_REGEX),
        gxe.ExpectColumnValuesToBeInSet(column="action", value_set=["keep", "shift", "drop"]),
        gxe.ExpectColumnValuesToBeInSet(column="reason", value_set=[
            "sync_offset", "sync_low_confidence", "too_short_for_sync", "frame_count_mismatch", "disabled",
            "sync_offset_short"]),
        gxe.ExpectColumnValuesToBeBetween(column="lse_d", min_value=0.0, max_value=2.0),
        gxe.ExpectColumnValuesToBeBetween(column="lse_c", min_value=0.0),
        gxe.ExpectColumnValuesToBeBetween(column="offset", min_value=-100, max_value=100),
        # only shifted clips carry a correction, and every shifted clip has one
        gxe.ExpectColumnValuesToBeInSet(column="audio_shift_frames", value_set=[0],
                                        row_condition=Column("action") != "shift"),
        gxe.ExpectColumnValuesToNotBeInSet(column="audio_shift_frames", value_set=[0],
                                           row_condition=Column("action") == "shift"),
    ]


def decisions_suite() -> list:
    return [
        *_columns("decisions"),
        *_not_null("clip_id", "decision", "audio_shift_frames", "mel_path"),
        gxe.ExpectColumnValuesToBeUnique(column="clip_id"),
        gxe.ExpectColumnValuesToMatchRegex(column="clip_id", regex=CLIP_ID_REGEX),
        gxe.ExpectColumnValuesToBeInSet(column="decision", value_set=["keep", "drop"]),
        gxe.ExpectColumnValuesToBeInSet(column="reason", value_set=[
            "sync_offset", "sync_low_confidence", "too_short_for_sync", "frame_count_mismatch", "disabled",
            "sync_offset_short"]),
        # a dropped clip carries no correction
        gxe.ExpectColumnValuesToBeInSet(column="audio_shift_frames", value_set=[0],
                                        row_condition=Column("decision") == "drop"),
    ]


def fits_suite() -> list:
    return [
        *_columns("fits"),
        *_not_null("clip_id", "model", "n_id", "n_exp", "n_frames", "n_valid", "reproj_px_median",
                   "reproj_iod_median", "reproj_iod_p90", "fit_path", "nmfc_path"),
        gxe.ExpectColumnValuesToBeUnique(column="clip_id"),
        gxe.ExpectColumnValuesToMatchRegex(column="clip_id", regex=CLIP_ID_REGEX),
        gxe.ExpectColumnValuesToBeBetween(column="n_exp", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="n_id", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="n_valid", min_value=1),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="n_frames", column_B="n_valid", or_equal=True),
        gxe.ExpectColumnValuesToBeBetween(column="reproj_iod_median", min_value=0.0, max_value=1.0),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="reproj_iod_p90", column_B="reproj_iod_median",
                                                    or_equal=True),
        gxe.ExpectColumnValuesToBeBetween(column="nmfc_coverage", min_value=0.0, max_value=1.0),
        gxe.ExpectColumnValuesToBeBetween(column="jaw_open_r", min_value=-1.0, max_value=1.0),
        # one model per run: coefficients of different models do not mix in one table downstream
        gxe.ExpectColumnUniqueValueCountToBeBetween(column="model", min_value=0, max_value=1),
    ]


def expressions_suite() -> list:
    return [
        *_columns("expressions"),
        *_not_null("clip_id", "frame", "valid", "exp", "angles", "translation", "scale"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["clip_id", "frame"]),
        gxe.ExpectColumnValuesToBeBetween(column="frame", min_value=0),
        gxe.ExpectColumnValuesToMatchRegex(column="clip_id", regex=CLIP_ID_REGEX),
        gxe.ExpectColumnValuesToBeBetween(column="scale", min_value=0.0, strict_min=True),
    ]


def shards_suite() -> list:
    return [
        *_columns("shards"),
        *_not_null("clip_id", "path", "source_path", "speaker_id", "split", "fps", "video_path", "mel_path", "n_frames", "n_valid",
                   "n_mel_frames", "sizes", "codec", "bytes", "sha256"),
        gxe.ExpectColumnValuesToBeUnique(column="clip_id"),
        gxe.ExpectColumnValuesToMatchRegex(column="clip_id", regex=CLIP_ID_REGEX),
        gxe.ExpectColumnValuesToMatchRegex(column="path", regex=r"/clips/[a-z0-9_]+-[0-9a-f]{10}\.npz$"),
        gxe.ExpectColumnValuesToMatchRegex(column="sha256", regex=r"^[0-9a-f]{64}$"),
        gxe.ExpectColumnValuesToMatchRegex(column="sizes", regex=r"^face96=96x96 crop256=256x256(?: [a-z]+=\d+x\d+)*$"),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=["train", "val", "test"]),
        gxe.ExpectColumnValuesToBeInSet(column="codec", value_set=["zstd", "zlib"]),
        gxe.ExpectColumnValuesToBeBetween(column="n_frames", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="n_valid", min_value=0),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="n_frames", column_B="n_valid", or_equal=True),
        gxe.ExpectColumnValuesToBeBetween(column="n_mel_frames", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="bytes", min_value=1),
    ]


def shard_labels_suite() -> list:
    return [
        *_columns("shard_labels"),
        *_not_null("clip_id", "path", "n_frames", "has_phones", "n_labelled", "has_expressions", "has_nmfc",
                   "bytes", "sha256"),
        gxe.ExpectColumnValuesToBeUnique(column="clip_id"),
        gxe.ExpectColumnValuesToMatchRegex(column="clip_id", regex=CLIP_ID_REGEX),
        gxe.ExpectColumnValuesToMatchRegex(column="sha256", regex=r"^[0-9a-f]{64}$"),
        gxe.ExpectColumnValuesToBeBetween(column="n_labelled", min_value=0),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="n_frames", column_B="n_labelled", or_equal=True),
        # a source is referenced exactly when it is there
        gxe.ExpectColumnValuesToNotBeNull(column="nmfc_path", row_condition=Column("has_nmfc") == True),  # noqa: E712
        gxe.ExpectColumnValuesToBeNull(column="nmfc_path", row_condition=Column("has_nmfc") == False),  # noqa: E712
        gxe.ExpectColumnValuesToMatchRegex(column="nmfc_sha256", regex=r"^[0-9a-f]{64}$",
                                           row_condition=Column("has_nmfc") == True),  # noqa: E712
        gxe.ExpectColumnValuesToNotBeNull(column="expression_model",
                                          row_condition=Column("has_expressions") == True),  # noqa: E712
        gxe.ExpectColumnValuesToBeBetween(column="n_exp", min_value=1),
        gxe.ExpectColumnValuesToBeInSet(column="n_labelled", value_set=[0],
                                        row_condition=Column("has_phones") == False),  # noqa: E712
    ]


SHA256_REGEX = r"^[0-9a-f]{64}$"
NAME_REGEX = r"^[a-z][a-z0-9_]*$"


def generated_suite() -> list:
    """The generation contract: what every generate_<family> stage promises the evaluate stage."""
    from headflow.manifest.schemas import OUTPUT_KINDS, PROTOCOLS

    return [
        *_columns("generated"),
        *_not_null("clip_id", "family", "variant", "seed", "protocol", "source_clip", "references", "output_kind",
                   "output_path", "fps", "frame_start", "frame_end", "checkpoint_sha256"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["family", "variant", "seed", "clip_id"]),
        gxe.ExpectColumnValuesToMatchRegex(column="family", regex=NAME_REGEX),
        gxe.ExpectColumnValuesToBeInSet(column="protocol", value_set=list(PROTOCOLS)),
        gxe.ExpectColumnValuesToBeInSet(column="output_kind", value_set=list(OUTPUT_KINDS)),
        gxe.ExpectColumnValuesToMatchRegex(column="checkpoint_sha256", regex=SHA256_REGEX),
        gxe.ExpectColumnValuesToBeBetween(column="fps", min_value=1.0, max_value=240.0),
        gxe.ExpectColumnValuesToBeBetween(column="frame_start", min_value=0),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="frame_end", column_B="frame_start"),
        # audio-driven protocols name their audio; reenactment names its driver
        gxe.ExpectColumnValuesToNotBeNull(column="audio_clip", row_condition=Column("protocol") == "reconstruction"),
        gxe.ExpectColumnValuesToNotBeNull(column="audio_clip", row_condition=Column("protocol") == "dubbing"),
        gxe.ExpectColumnValuesToNotBeNull(column="driver_clip", row_condition=Column("protocol") == "reenactment"),
    ]


def per_clip_suite() -> list:
    from headflow.manifest.schemas import PROTOCOLS

    return [
        *_columns("per_clip"),
        *_not_null("system", "protocol", "clip_id", "frame_start", "frame_end", "status"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["system", "variant", "seed", "protocol", "clip_id"]),
        gxe.ExpectColumnValuesToBeInSet(column="protocol", value_set=list(PROTOCOLS)),
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=["ok", "failed"]),
        gxe.ExpectColumnValuesToNotBeNull(column="reason_code", row_condition=Column("status") == "failed"),
        gxe.ExpectColumnValuesToNotBeNull(column="family", row_condition=Column("seed").is_not_null()),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="frame_end", column_B="frame_start"),
        gxe.ExpectColumnValuesToBeBetween(column="ssim", min_value=-1.0, max_value=1.0),
        gxe.ExpectColumnValuesToBeBetween(column="ssim_masked", min_value=-1.0, max_value=1.0),
        gxe.ExpectColumnValuesToBeBetween(column="csim", min_value=-1.0, max_value=1.0),
        gxe.ExpectColumnValuesToBeBetween(column="cpbd", min_value=0.0, max_value=1.0),
        gxe.ExpectColumnValuesToBeBetween(column="lap_var", min_value=0.0),
        gxe.ExpectColumnValuesToBeBetween(column="f_lmd", min_value=0.0),
        gxe.ExpectColumnValuesToBeBetween(column="m_lmd", min_value=0.0),
        gxe.ExpectColumnValuesToBeBetween(column="lse_d", min_value=0.0),
    ]


def aggregates_suite() -> list:
    return [
        *_columns("aggregates"),
        *_not_null("system", "protocol", "metric", "n", "n_dropped", "n_failed", "ci"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["system", "variant", "protocol", "metric"]),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="high", column_B="low", or_equal=True),
        gxe.ExpectColumnValuesToBeBetween(column="ci", min_value=0.0, max_value=1.0, strict_min=True, strict_max=True),
    ]


def comparisons_suite() -> list:
    return [
        *_columns("comparisons"),
        *_not_null("system", "protocol", "opponent", "metric", "winner"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["system", "variant", "protocol", "opponent", "metric"]),
        gxe.ExpectColumnValuesToBeInSet(column="winner", value_set=["system", "opponent", "none"]),
    ]


def dubbing_pairs_suite() -> list:
    return [
        *_columns("dubbing_pairs"),
        *_not_null("clip_id", "audio_clip", "video_key", "audio_key"),
        gxe.ExpectColumnValuesToBeUnique(column="clip_id"),          # each video dubbed once
        gxe.ExpectColumnValuesToMatchRegex(column="clip_id", regex=CLIP_ID_REGEX),
        gxe.ExpectColumnValuesToMatchRegex(column="audio_clip", regex=CLIP_ID_REGEX),
    ]


BUILDERS: dict[str, Callable[[], list]] = {
    "clips": clips_suite,
    "dubbing_pairs": dubbing_pairs_suite,
    "quarantine": quarantine_suite,
    "corpus": corpus_suite,
    "audio_features": audio_features_suite,
    "alignments": alignments_suite,
    "words": words_suite,
    "phones": phones_suite,
    "frame_labels": frame_labels_suite,
    "faces": faces_suite,
    "landmarks": landmarks_suite,
    "sync_eval": sync_eval_suite,
    "sync_check": sync_check_suite,
    "decisions": decisions_suite,
    "fits": fits_suite,
    "expressions": expressions_suite,
    "shards": shards_suite,
    "shard_labels": shard_labels_suite,
    "generated": generated_suite,
    "per_clip": per_clip_suite,
    "aggregates": aggregates_suite,
    "comparisons": comparisons_suite,
}
SUITES = tuple(BUILDERS)


def build_suite(manifest: str) -> gx.ExpectationSuite:
    if manifest not in BUILDERS:
        raise KeyError(f"no expectation suite for manifest '{manifest}'; known: {sorted(BUILDERS)}")
    return gx.ExpectationSuite(name=manifest, expectations=BUILDERS[manifest]())
