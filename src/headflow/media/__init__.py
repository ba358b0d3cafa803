"""Media I/O: probe and reject unusable files, normalize to canonical 25 fps / 16 kHz mono media."""

from headflow.media.normalize import (
    MAX_DOWNMIX_LOSS_DB,
    X264_THREADS,
    Downmix,
    channel_levels,
    choose_downmix,
    encode_video,
    extract_audio,
    normalize_clip,
    normalize_video,
    read_audio,
    read_frames,
)
from headflow.media.probe import (
    MIN_DECODED_FRACTION,
    REASON_CODES,
    MediaError,
    MediaInfo,
    decode_check,
    probe,
    require_streams,
)

__all__ = [
    "MAX_DOWNMIX_LOSS_DB",
    "MIN_DECODED_FRACTION",
    "REASON_CODES",
    "X264_THREADS",
    "Downmix",
    "MediaError",
    "MediaInfo",
    "channel_levels",
    "choose_downmix",
    "decode_check",
    "encode_video",
    "extract_audio",
    "normalize_clip",
    "normalize_video",
    "probe",
    "read_audio",
    "read_frames",
    "require_streams",
]
