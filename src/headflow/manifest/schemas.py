"""pyarrow schemas of every manifest headflow writes, keyed by manifest name (the file stem).

Later stages register their manifests here too, so one place documents every column.
"""

from __future__ import annotations

import pyarrow as pa

WORD = pa.struct([("word", pa.string()), ("start", pa.float64()), ("end", pa.float64())])

QUARANTINE = pa.schema([
    ("clip_id", pa.string()),        # id of the rejected input (derived from its path when it has no content)
    ("stage", pa.string()),          # the stage that rejected it
    ("reason_code", pa.string()),    # machine-readable: unreadable, no_audio_stream, ...
    ("message", pa.string()),        # what was found and what was expected
    ("source_path", pa.string()),    # where the input came from, relative to its source root
])

CLIPS = pa.schema([
    ("clip_id", pa.string()),
    ("source", pa.string()),              # demo | folder | grid | lrs2
    ("source_path", pa.string()),         # relative to the source root
    ("content_hash", pa.string()),        # sha256 of the source file
    ("speaker_id", pa.string()),
    ("split", pa.string()),               # train | val | test (by speaker)
    ("transcript", pa.string()),          # null when the source has none
    ("transcript_source", pa.string()),   # txt | lab | align | json | filelist | null
    ("words", pa.list_(WORD)),            # word alignment shipped with the source (GRID .align), else null
    ("native_container", pa.string()),
    ("native_fps", pa.float64()),
    ("native_n_frames", pa.int64()),
    ("native_duration_s", pa.float64()),
    ("native_width", pa.int32()),
    ("native_height", pa.int32()),
    ("rotation", pa.int16()),
    ("native_video_codec", pa.string()),
    ("native_audio_codec", pa.string()),
    ("native_sample_rate", pa.int32()),
    ("native_channels", pa.int16()),
    ("n_audio_streams", pa.int16()),
    ("video_path", pa.string()),          # canonical 25 fps CFR H.264, relative to the project root
    ("audio_path", pa.string()),          # canonical 16 kHz mono PCM wav
    ("fps", pa.int16()),
    ("sample_rate", pa.int32()),
    ("n_frames", pa.int64()),
    ("duration_s", pa.float64()),
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("n_faces_probe", pa.int16()),        # faces seen on sampled frames (max over samples); null if not probed
])

DEMO_CORPUS = pa.schema([
    ("source_path", pa.string()),         # relative to the demo root
    ("kind", pa.string()),                # good | bad
    ("identity", pa.string()),            # portrait used (bad clips: what they were made from)
    ("sentence", pa.string()),
    ("voice", pa.string()),
    ("rate_wpm", pa.int32()),
    ("n_frames", pa.int64()),
    ("duration_s", pa.float64()),
    ("expected_stage", pa.string()),      # bad inputs: the stage that must reject it
    ("expected_reason", pa.string()),     # bad inputs: the reason code it must get
    ("truth_path", pa.string()),          # ground-truth npz beside the clip (good clips)
])

AUDIO_FEATURES = pa.schema([
    ("clip_id", pa.string()),
    ("mel_path", pa.string()),            # (n_mel_frames, 80) float32 .npy, Wav2Lip normalisation [-4, 4]
    ("n_mel_frames", pa.int64()),         # 80 per second
    ("n_video_frames", pa.int64()),
    ("n_valid_windows", pa.int64()),      # leading video frames whose 16-frame mel window is complete
    ("duration_s", pa.float64()),
    ("rms_dbfs", pa.float64()),
    ("peak", pa.float64()),
    ("clipped_fraction", pa.float64()),
    ("mel_min", pa.float64()),
    ("mel_max", pa.float64()),
])

SCHEMAS: dict[str, pa.Schema] = {
    "quarantine": QUARANTINE,
    "clips": CLIPS,
    "corpus": DEMO_CORPUS,
    "audio_features": AUDIO_FEATURES,
}


def schema_for(kind: str) -> pa.Schema:
    """The schema of manifest `kind` (e.g. 'clips', 'quarantine')."""
    try:
        return SCHEMAS[kind]
    except KeyError:
        raise KeyError(f"no schema registered for manifest '{kind}'; known: {sorted(SCHEMAS)}") from None
