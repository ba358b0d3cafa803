"""Inspect a media file: streams, sizes, rates, frame count, rotation; reject unusable files.

Everything here goes through PyAV (the project's ffmpeg has no ffprobe). `probe` is cheap: it
demuxes the packets of the first video and audio streams (no decoding) and decodes only the first
video frame (to validate it and read the display matrix). `decode_check` is the expensive full
decode that catches truncated-but-openable files.

Frame counts and durations are the ones the container *presents*, i.e. what a player (and ffmpeg's
decoder, so the canonical media) shows, not what it stores: an mp4/mov edit list (a stream-copy cut,
`ffmpeg -ss T -i in.mp4 -c copy out.mp4`) keeps the packets back to the previous keyframe but
marks those before T as discarded (AV_PKT_FLAG_DISCARD, negative timestamps); the decoder drops their
frames, so they are not counted. Packets of Matroska/WebM/MPEG-TS files with negative or missing
timestamps are not flagged and ffmpeg presents them (it shifts the file's start to 0), so they count.
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
    """Presented video frames, the frames the decoder yields from an intact file: the container's index
    count less the packets its edit list discards, when that agrees with the stream's duration (so a
    truncated file still shows the frames it lost, for `decode_check`), else the demuxed packets not
    marked as discarded (MPEG-PS, Matroska without a count)."""
    duration_s: float | None
    """Presented video duration (s) when there is video, else the audio stream's or the container's."""
    rotation: int
    """Clockwise degrees (0/90/180/270) to turn decoded frames for display: the legacy `rotate`
    tag convention that phones write. A display matrix of CCW angle a gives (-a) % 360."""
    video_codec: str | None
    audio_codec: str | None
    audio_sample_rate: int | None
    audio_channels: int | None
    n_audio_streams: int
    audio_duration_s: float | None = None
    """Presented duration (s) of the first audio stream: its non-discarded packets' total duration,
    else their time span, else the stream header's; None without audio."""

    @property
    def video_content_s(self) -> float | None:
        """Seconds of picture the video stream holds: presented frames / average rate (duration_s when
        either is unknown). Unlike `duration_s` it ignores the stream's start offset and timestamps that
        a demuxer cannot give (negative Matroska timestamps), so it compares with `audio_duration_s`."""
        if self.n_frames and self.fps:
            return self.n_frames / self.fps
        return self.duration_s if self.has_video else None


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
            a0 = audio[0] if audio else None
            video, audio_s = _scan(p, c, vs, a0)
            duration = video.get("duration_s")
            if duration is None and audio_s is not None:
                duration = audio_s
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
                audio_duration_s=audio_s,
            )
    except av.FFmpegError as e:
        raise _unreadable(p, f"cannot open or decode ({e})") from e


def _close(a: float, b: float, fps: float | None) -> bool:
    """Whether durations (s) a and b agree within 2 frames or 2% (one frame = 1/fps, default 1/25)."""
    frame = 1.0 / (fps or 25.0)
    return abs(a - b) <= max(2 * frame, 0.02 * max(a, b))


def _span(pts: list[tuple[int, int]], tb) -> float | None:
    """Seconds from the first presentation time to the last packet's end, or None without timestamps."""
    if not pts or not tb:
        return None
    start = min(p for p, _ in pts)
    end = max(p + d for p, d in pts)
    return float((end - start) * tb) if end > start else None


def _scan(p: str, c: av.container.InputContainer, vs: av.video.stream.VideoStream | None,
          a0: av.audio.stream.AudioStream | None) -> tuple[dict, float | None]:
    """One demux pass over the first video and audio streams: (video facts, audio duration in s).

    Counts the presented (non-discarded, non-empty) packets of each stream and their timestamps;
    decodes the first video frame only.
    """
    streams = [s for s in (vs, a0) if s is not None]
    first: av.VideoFrame | None = None
    n_video = n_discarded = 0
    v_pts: list[tuple[int, int]] = []
    a_pts: list[tuple[int, int]] = []
    a_total, a_all_timed = 0, True
    for packet in c.demux(*streams):
        is_video = vs is not None and packet.stream is vs
        if is_video and first is None:
            # the final empty packet flushes decoders with B-frame delay
            first = next(iter(packet.decode()), None)
        if packet.size == 0:
            continue
        if packet.is_discard:
            n_discarded += is_video
            continue
        if is_video:
            n_video += 1
            if packet.pts is not None:
                v_pts.append((packet.pts, packet.duration or 0))
        else:
            a_total += packet.duration or 0
            a_all_timed &= bool(packet.duration)
            if packet.pts is not None:
                a_pts.append((packet.pts, packet.duration or 0))
    audio_s = None
    if a0 is not None:
        tb = a0.time_base
        audio_s = ((float(a_total * tb) if a_total and a_all_timed and tb else _span(a_pts, tb))
                   or (float(a0.duration * tb) if a0.duration and tb else None))
    if vs is None:
        return {}, audio_s
    if first is None:
        raise _unreadable(p, f"video stream ({vs.codec_context.name}) has no decodable frame")
    rate = vs.average_rate or vs.guessed_rate
    fps = float(rate) if rate else None
    tb = vs.time_base
    header = float(vs.duration * tb) if vs.duration and tb else None
    # The index's count (less the discarded packets) when it agrees with the stream's presented
    # duration: it still counts frames a truncated file has lost, so decode_check can find them missing.
    # Otherwise (no count, or one that disagrees: MPEG-PS) the packets demuxed here.
    indexed = vs.frames - n_discarded if vs.frames > 0 else None
    trusted = indexed is not None and indexed > 0 and (
        fps is None or header is None or _close(indexed / fps, header, fps))
    n_frames = indexed if trusted else (n_video or None)
    # The first of (indexed count: the header's duration, then the packets' span; demuxed count: the
    # other way round) that agrees with the count, else frames / rate (timestamps a demuxer cannot
    # give, e.g. negative Matroska ones). MPEG-PS headers hold an estimate (GRID: 2.98 s for 3.0 s).
    by_count = n_frames / fps if n_frames and fps else None
    order = (header, _span(v_pts, tb)) if trusted else (_span(v_pts, tb), header)
    duration = next((d for d in order if d and (by_count is None or _close(d, by_count, fps))), by_count or header)
    rotation = _rotation_cw(first, vs)
    w, h = first.width, first.height
    if rotation in (90, 270):
        w, h = h, w
    return {"width": w, "height": h, "fps": fps, "n_frames": n_frames, "duration_s": duration,
            "rotation": rotation}, audio_s


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
