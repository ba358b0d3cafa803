"""Inspect a media file: streams, sizes, rates, frame count, rotation; reject unusable files.

Everything here goes through PyAV (the project's ffmpeg has no ffprobe). `probe` is cheap: it
opens the container and decodes only the first video frame (to validate it and read the display
matrix). Packets are demuxed (not decoded) only when the container does not state a frame count
that agrees with its duration, e.g. MPEG-PS files such as GRID's. `decode_check` is the expensive
full decode that catches truncated-but-openable files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import av

REASON_CODES = ("unreadable", "no_video_stream", "no_audio_stream")

#: decode_check rejects a stream that yields fewer than this fraction of the expected frames.
MIN_DECODED_FRACTION = 0.9


class MediaError(Exception):
    """A file that cannot be used; carries a machine-readable reason code for the quarantine."""

    def __init__(self, reason_code: str, message: str):
        if reason_code not in REASON_CODES:
            raise ValueError(f"unknown reason_code {reason_code!r}; expected one of {REASON_CODES}")
        super().__init__(message)
        self.reason_code = reason_code
        self.message = message

    def __reduce__(self):
        # Default Exception pickling replays self.args (message only); Prefect/Dask workers
        # ship exceptions between processes, so keep both fields.
        return (type(self), (self.reason_code, self.message))


@dataclass(frozen=True)
class MediaInfo:
    """What `probe` learned about one file. Sizes are in display orientation."""

    path: str
    container: str
    """Demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2" or "mpeg"."""
    has_video: bool
    has_audio: bool
    width: int | None
    """Frame width after the rotation is applied (coded pixels; sample aspect ratio not applied)."""
    height: int | None
    fps: float | None
    """Native average frame rate."""
    n_frames: int | None
    """Container frame count, or the number of demuxed video packets when it is absent/inconsistent."""
    duration_s: float | None
    """Video stream duration when there is video, else the audio stream's or the container's."""
    rotation: int
    """Clockwise degrees (0/90/180/270) to turn decoded frames for display: the legacy `rotate`
    tag convention that phones write. A display matrix of CCW angle a gives (-a) % 360."""
    video_codec: str | None
    audio_codec: str | None
    audio_sample_rate: int | None
    audio_channels: int | None
    n_audio_streams: int


def _primary_video(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    # Cover art in audio files shows up as a one-picture video stream; it is not video.
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def _rotation_cw(frame: av.VideoFrame, stream: av.video.stream.VideoStream) -> int:
    ccw = float(frame.rotation or 0.0)  # from the DISPLAYMATRIX side data, counter-clockwise
    if ccw == 0.0:
        tags = {k.lower(): v for k, v in stream.metadata.items()}  # MKV stores it as ROTATE
        try:  # older muxers/containers only carry the clockwise 'rotate' tag
            return int(round(float(tags.get("rotate", 0)) / 90.0)) * 90 % 360
        except ValueError:
            return 0
    return int(round(-ccw / 90.0)) * 90 % 360


def _unreadable(path: str, what: str) -> MediaError:
    return MediaError("unreadable", f"{path}: {what}; expected a readable video/audio file")


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Read stream metadata, decoding only the first video frame.

    Raises:
        MediaError: "unreadable" when the file is missing, empty, not media, has neither audio
            nor video, or its first video frame cannot be decoded (e.g. an mp4 cut before its
            moov atom). Missing streams are not an error here; see `require_streams`.
    """
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise _unreadable(p, "file does not exist")
    if os.path.getsize(p) == 0:
        raise _unreadable(p, "file is empty (0 bytes)")
    try:
        with av.open(p, metadata_errors="ignore") as c:
            vs = _primary_video(c)
            audio = list(c.streams.audio)
            if vs is None and not audio:
                raise _unreadable(p, f"no video or audio stream in container {c.format.name!r}")
            video = _probe_video(p, c, vs) if vs is not None else {}
            a0 = audio[0] if audio else None
            duration = video.get("duration_s")
            if duration is None and a0 is not None and a0.duration:
                duration = float(a0.duration * a0.time_base)
            if duration is None and c.duration:
                duration = c.duration / av.time_base
            return MediaInfo(
                path=p,
                container=c.format.name,
                has_video=vs is not None,
                has_audio=a0 is not None,
                width=video.get("width"),
                height=video.get("height"),
                fps=video.get("fps"),
                n_frames=video.get("n_frames"),
                duration_s=duration,
                rotation=video.get("rotation", 0),
                video_codec=vs.codec_context.name if vs is not None else None,
                audio_codec=a0.codec_context.name if a0 is not None else None,
                audio_sample_rate=a0.codec_context.sample_rate if a0 is not None else None,
                audio_channels=a0.codec_context.layout.nb_channels if a0 is not None else None,
                n_audio_streams=len(audio),
            )
    except av.FFmpegError as e:
        raise _unreadable(p, f"cannot open or decode ({e})") from e


def _probe_video(p: str, c: av.container.InputContainer, vs: av.video.stream.VideoStream) -> dict:
    rate = vs.average_rate or vs.guessed_rate
    fps = float(rate) if rate else None
    tb = vs.time_base
    duration = float(vs.duration * tb) if vs.duration and tb else None
    header_n = vs.frames if vs.frames > 0 else None
    # Trust the header count only when it agrees with duration * fps; otherwise count packets.
    consistent = header_n is not None and (
        fps is None or duration is None or abs(header_n - duration * fps) <= max(2.0, 0.02 * header_n)
    )
    first: av.VideoFrame | None = None
    n_packets, t_min, t_end = 0, None, None
    for packet in c.demux(vs):
        if first is None:  # the final empty packet flushes decoders with B-frame delay
            first = next(iter(packet.decode()), None)
        if packet.size > 0:
            n_packets += 1
            if packet.pts is not None:
                t_min = packet.pts if t_min is None else min(t_min, packet.pts)
                end = packet.pts + (packet.duration or 0)
                t_end = end if t_end is None else max(t_end, end)
        if first is not None and consistent:
            break
    if first is None:
        raise _unreadable(p, f"video stream ({vs.codec_context.name}) has no decodable frame")
    n_frames = header_n
    if not consistent:
        n_frames = n_packets
        if t_min is not None and t_end is not None and tb and t_end > t_min:
            duration = float((t_end - t_min) * tb)
    rotation = _rotation_cw(first, vs)
    w, h = first.width, first.height
    if rotation in (90, 270):
        w, h = h, w
    return {"width": w, "height": h, "fps": fps, "n_frames": n_frames, "duration_s": duration,
            "rotation": rotation}


def require_streams(info: MediaInfo, video: bool = True, audio: bool = True) -> None:
    """Raise MediaError("no_video_stream"/"no_audio_stream") when a required stream is absent."""
    if video and not info.has_video:
        raise MediaError("no_video_stream", f"{info.path}: no video stream (container "
                         f"{info.container!r}); expected a talking-face video with a video track")
    if audio and not info.has_audio:
        raise MediaError("no_audio_stream", f"{info.path}: no audio stream (container "
                         f"{info.container!r}); expected speech audio alongside the video")


def decode_check(path: str | os.PathLike[str], info: MediaInfo) -> int:
    """Decode the whole video stream sequentially and return the number of decoded frames.

    PyAV without pixel conversion: ~2.5x faster than decord here, which converts every frame
    to RGB (see the module tests' notes / report).

    Raises:
        MediaError: "no_video_stream" without video; "unreadable" when decoding fails or yields
            fewer than MIN_DECODED_FRACTION of the expected frames (a truncated file).
    """
    p = os.fspath(path)
    require_streams(info, video=True, audio=False)
    expected = info.n_frames
    if expected is None and info.duration_s and info.fps:
        expected = round(info.duration_s * info.fps)
    n = 0
    try:
        with av.open(p, metadata_errors="ignore") as c:
            vs = _primary_video(c)
            if vs is None:
                raise MediaError("no_video_stream", f"{p}: no video stream on re-open")
            vs.thread_type = "AUTO"
            for _ in c.decode(vs):
                n += 1
    except av.FFmpegError as e:
        raise MediaError("unreadable", f"{p}: video is truncated or corrupt: decoded {n} of "
                         f"{expected} expected frames before a decode error ({e})") from e
    if expected and n < MIN_DECODED_FRACTION * expected:
        raise MediaError("unreadable", f"{p}: video is truncated: decoded {n} of {expected} expected "
                         f"frames (< {MIN_DECODED_FRACTION:.0%}); re-export or re-download the file")
    return n


__all__ = ["MIN_DECODED_FRACTION", "REASON_CODES", "MediaError", "MediaInfo", "decode_check", "probe",
           "require_streams"]
