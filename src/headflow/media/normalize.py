"""Canonical media: 25 fps CFR H.264 mp4 and 16 kHz mono PCM wav, plus frame/audio I/O.

All transcoding runs the ffmpeg binary shipped by imageio-ffmpeg (no system ffmpeg needed).
Outputs are byte-for-byte reproducible on a given ffmpeg build: bitexact muxer/encoder flags, no
metadata, and a *fixed* x264 thread count, because x264's output depends on its thread count
(auto = 1.5 x cores would make the bytes depend on the machine). Writes are atomic.

Downmix: the mono track is the mean of the channels (ffmpeg's `-ac 1`), unless that mean loses more
than `max_downmix_loss_db` against the loudest channel: channels in antiphase (one wired or
exported with inverted polarity) cancel in the mean, and then the loudest channel alone is used
(`Downmix` says which was done).

Timing: both outputs are aligned to the source's time origin (fps `start_time=0`, aresample
`first_pts=0`), so video frame f and audio sample s*f/fps cover the same instant even when one
stream starts later than the other (the late one is padded: first frame repeated / silence).
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import decord
import imageio_ffmpeg
import numpy as np
import soundfile as sf

from headflow.atomic import atomic_output
from headflow.media.probe import MediaError, probe, require_streams

#: x264 threads, fixed so the bytes do not depend on the core count (1 vs 2 vs 4 all differ).
X264_THREADS = 4
_BITEXACT = ["-map_metadata", "-1", "-map_chapters", "-1", "-fflags", "+bitexact",
             "-flags:v", "+bitexact", "-flags:a", "+bitexact"]
_SWS = "bicubic+accurate_rnd+full_chroma_int"
#: filters that turn decoded frames upright, keyed by MediaInfo.rotation (clockwise degrees)
_ROTATE = {0: "", 90: "transpose=clock", 180: "hflip,vflip", 270: "transpose=cclock"}


def _ffmpeg(args: list[str], what: str, stdin_chunks: Iterable[bytes] | None = None) -> None:
    """Run ffmpeg; raise MediaError("unreadable") quoting its stderr (head and tail) on failure."""
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args]
    if stdin_chunks is None:
        cmd.insert(1, "-nostdin")
    # stderr goes to a file, not a pipe: a full pipe would deadlock while we feed stdin.
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin_chunks is not None else None,
                                stdout=subprocess.DEVNULL, stderr=err)
        try:
            if stdin_chunks is not None:
                assert proc.stdin is not None
                with contextlib.suppress(BrokenPipeError):  # ffmpeg died; its stderr says why
                    for chunk in stdin_chunks:
                        proc.stdin.write(chunk)
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.close()
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        err.seek(0)
        lines = err.read().decode("utf-8", "replace").strip().splitlines()
    if rc != 0:
        # ffmpeg 9 logs the cause first, then every thread's teardown: keep both ends.
        lines = lines if len(lines) <= 8 else [*lines[:3], "...", *lines[-4:]]
        raise MediaError("unreadable", f"ffmpeg failed ({what}), exit code {rc}: " + " | ".join(lines))


def _x264_args(fps: int, crf: int, preset: str, threads: int = X264_THREADS) -> list[str]:
    return ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
            "-threads", str(threads), "-r", str(fps), "-movflags", "+faststart"]


def _range_args(start_s: float | None, end_s: float | None) -> list[str]:
    """ffmpeg input options reading [start_s, end_s) of a file (input seeking: frame-accurate when
    transcoding, timestamps restarting at 0); [] for the whole file."""
    args = []
    if start_s:
        args += ["-ss", f"{start_s:.6f}"]
    if end_s is not None:
        args += ["-t", f"{end_s - (start_s or 0.0):.6f}"]
    return args


def normalize_video(src: str | os.PathLike[str], dst: str | os.PathLike[str], fps: int = 25,
                    crf: int = 18, preset: str = "medium", max_side: int | None = None,
                    start_s: float | None = None, end_s: float | None = None,
                    crop: tuple[int, int, int, int] | None = None) -> None:
    """Transcode the first video stream to canonical CFR H.264 mp4 (no audio).

    `start_s`/`end_s` (seconds of the source; None: its start/end) take part of the file, its first
    frame at t = 0; `crop` (x, y, w, h in upright source pixels, as HDTF's crop lists give it) keeps
    that window of each frame (clipped to the frame) before scaling.

    Frames are turned upright (`MediaInfo.rotation`; the output carries no rotation), the fps
    filter makes the rate constant, and frames are rescaled to square pixels, even dimensions
    and, if `max_side` is given, a longer side of at most `max_side` (never upscaled).

    Raises:
        MediaError: "unreadable" (probe or ffmpeg failure) or "no_video_stream".
    """
    info = probe(src)
    require_streams(info, video=True, audio=False)
    # Rotate explicitly from probe's answer instead of ffmpeg's autorotate, which ignores a bare
    # 'rotate' tag (e.g. MKV); overriding the input display matrix with 0 also keeps it out of
    # the output. Width in square pixels is iw*sar; the scale factor k never upscales; the 1e-6
    # keeps float error from truncating an exact 100.0 to 98.
    k = "1" if max_side is None else f"min(1,{int(max_side)}/max(iw*sar,ih))"
    window = "" if crop is None else (f"crop=w='min({crop[2]},iw-{max(crop[0], 0)})':h='min({crop[3]},ih-{max(crop[1], 0)})'"
                                      f":x={max(crop[0], 0)}:y={max(crop[1], 0)}:exact=1")
    filters = [_ROTATE[info.rotation], window, f"fps={fps}:start_time=0",
               f"scale=w='2*trunc(iw*sar*{k}/2+1e-6)':h='2*trunc(ih*{k}/2+1e-6)':flags={_SWS}",
               "setsar=1", "format=yuv420p"]
    vf = ",".join(f for f in filters if f)
    with atomic_output(dst) as tmp:
        _ffmpeg(["-display_rotation:V:0", "0", *_range_args(start_s, end_s), "-i", os.fspath(src), "-map", "0:V:0",
                 "-an", "-sn",
                 "-dn", "-vf", vf, *_x264_args(fps, crf, preset), *_BITEXACT, "-f", "mp4", os.fspath(tmp)],
                f"normalize_video {src} -> {dst}")


#: default of `max_downmix_loss_db`: a mean 10 dB under the loudest channel is cancellation, not a mix
#: (equal correlated channels lose 0 dB, uncorrelated ones 3 dB, one silent channel 6 dB).
MAX_DOWNMIX_LOSS_DB = 10.0


def _dbfs(mean_square: float) -> float:
    return 10 * math.log10(max(mean_square, 1e-20))


@dataclass(frozen=True)
class Downmix:
    """How `extract_audio` made the mono track from the first audio stream.

    Attributes:
        mode: "mono" (one channel in the source), "mean" (the channels averaged) or "channel" (the
            mean cancelled: one channel used alone).
        channel: the channel used alone (0-based, in the stream's layout order), else None.
        channel_dbfs: RMS level of each source channel (dBFS, full scale = 0; -200 for digital silence).
        mean_dbfs: RMS level of the mean of the channels (dBFS).
    """

    mode: Literal["mono", "mean", "channel"]
    channel: int | None
    channel_dbfs: tuple[float, ...]
    mean_dbfs: float

    @property
    def loss_db(self) -> float:
        """How far the mean lies below the loudest channel (dB; >= 0 up to rounding)."""
        return max(self.channel_dbfs) - self.mean_dbfs


def channel_levels(src: str | os.PathLike[str], start_s: float | None = None,
                   end_s: float | None = None) -> tuple[tuple[float, ...], float]:
    """RMS levels of each channel of the first audio stream and of their mean, decoded with PyAV.

    `start_s`/`end_s`: only decoded frames starting in [start_s, end_s) count (None: no bound).

    Streams the decode (sums of squares only), so long files need no memory for the samples.

    Returns:
        (per-channel dBFS, dBFS of the per-sample mean of the channels); -200 dBFS for no signal.

    Raises:
        MediaError: "no_audio_stream" or "unreadable" (the audio cannot be decoded).
    """
    p = os.fspath(src)
    try:
        with av.open(p, metadata_errors="ignore") as c:
            if not c.streams.audio:
                raise MediaError("no_audio_stream", f"{p}: no audio stream; expected an audio track")
            stream = c.streams.audio[0]
            planar = av.AudioResampler(format="fltp")  # (channels, samples) float32 whatever the codec
            sums: np.ndarray | None = None
            mean_sum, n = 0.0, 0

            def add(block: np.ndarray) -> None:
                nonlocal sums, mean_sum, n
                x = block.astype(np.float64)
                sums = (x ** 2).sum(axis=1) if sums is None else sums + (x ** 2).sum(axis=1)
                mean_sum += float((x.mean(axis=0) ** 2).sum())
                n += x.shape[1]

            for frame in c.decode(stream):
                t = frame.time
                if t is not None and ((start_s is not None and t < start_s) or (end_s is not None and t >= end_s)):
                    continue
                for g in planar.resample(frame):
                    add(g.to_ndarray())
            for g in planar.resample(None):
                add(g.to_ndarray())
    except av.FFmpegError as e:
        raise MediaError("unreadable", f"{p}: cannot decode audio ({e})") from e
    if sums is None or n == 0:
        return (-200.0,), -200.0
    return tuple(_dbfs(v / n) for v in sums), _dbfs(mean_sum / n)


def choose_downmix(channel_dbfs: tuple[float, ...], mean_dbfs: float,
                   max_loss_db: float = MAX_DOWNMIX_LOSS_DB) -> Downmix:
    """The mean of the channels, or the loudest channel when the mean is more than `max_loss_db` below it."""
    if len(channel_dbfs) == 1:
        return Downmix("mono", None, channel_dbfs, mean_dbfs)
    loudest = int(np.argmax(channel_dbfs))
    if channel_dbfs[loudest] - mean_dbfs > max_loss_db:
        return Downmix("channel", loudest, channel_dbfs, mean_dbfs)
    return Downmix("mean", None, channel_dbfs, mean_dbfs)


def extract_audio(src: str | os.PathLike[str], dst: str | os.PathLike[str], sample_rate: int = 16000,
                  max_downmix_loss_db: float = MAX_DOWNMIX_LOSS_DB, start_s: float | None = None,
                  end_s: float | None = None) -> Downmix:
    """Write the first audio stream as mono PCM s16le wav at `sample_rate`.

    `start_s`/`end_s`: that part of the file only (as `normalize_video`), the mix chosen on it.

    Mono is the mean of the channels, or the loudest channel alone when the mean lies more than
    `max_downmix_loss_db` below it (phase cancellation: see the module docstring).

    Returns:
        What was done (`Downmix`, with the measured levels).

    Raises:
        MediaError: "unreadable" (probe, decode or ffmpeg failure) or "no_audio_stream".
    """
    info = probe(src)
    require_streams(info, video=False, audio=True)
    if (info.audio_channels or 1) > 1:
        mix = choose_downmix(*channel_levels(src, start_s, end_s), max_loss_db=max_downmix_loss_db)
    else:
        mix = Downmix("mono", None, (), -200.0)
    pan = f"pan=mono|c0=c{mix.channel}," if mix.mode == "channel" else ""
    with atomic_output(dst) as tmp:
        _ffmpeg([*_range_args(start_s, end_s), "-i", os.fspath(src), "-map", "0:a:0", "-vn", "-sn", "-dn",
                 "-af", f"{pan}aresample=async=1:first_pts=0", "-ac", "1", "-ar", str(sample_rate),
                 "-c:a", "pcm_s16le", *_BITEXACT, "-f", "wav", os.fspath(tmp)],
                f"extract_audio {src} -> {dst}")
    return mix


def normalize_clip(src: str | os.PathLike[str], video_dst: str | os.PathLike[str],
                   audio_dst: str | os.PathLike[str], fps: int = 25, sample_rate: int = 16000,
                   crf: int = 18, preset: str = "medium", max_side: int | None = None,
                   max_downmix_loss_db: float = MAX_DOWNMIX_LOSS_DB, start_s: float | None = None,
                   end_s: float | None = None, crop: tuple[int, int, int, int] | None = None) -> Downmix:
    """Canonical video and audio of one clip; both streams are required (checked before encoding).

    `start_s`, `end_s`, `crop`: part of the file and a window of its frames (`normalize_video`).

    Returns:
        How the audio was mixed to mono (`extract_audio`).
    """
    require_streams(probe(src), video=True, audio=True)
    normalize_video(src, video_dst, fps=fps, crf=crf, preset=preset, max_side=max_side, start_s=start_s,
                    end_s=end_s, crop=crop)
    return extract_audio(src, audio_dst, sample_rate=sample_rate, max_downmix_loss_db=max_downmix_loss_db,
                         start_s=start_s, end_s=end_s)


def read_frames(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    """Yield RGB uint8 frames of shape (H, W, 3), decoded sequentially by decord.

    decord ignores rotation metadata; read normalized files (which carry none).
    """
    try:
        reader = decord.VideoReader(os.fspath(path), ctx=decord.cpu(0))
    except (decord.DECORDError, RuntimeError) as e:
        raise MediaError("unreadable", f"{path}: decord cannot open the video ({e})") from e
    for frame in reader:  # sequential; one get_batch of a long clip is 5-7x slower
        yield frame.asnumpy()


def read_audio(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Return (float32 mono samples in [-1, 1], sample rate) at the file's native rate.

    wav/flac are read with soundfile; other containers (e.g. mp4) are decoded with PyAV.
    Channels are averaged.
    """
    p = os.fspath(path)
    try:
        data, sr = sf.read(p, dtype="float32", always_2d=True)
        return np.ascontiguousarray(data.mean(axis=1, dtype=np.float32)), int(sr)
    except (sf.LibsndfileError, RuntimeError):
        pass  # not a soundfile format; try ffmpeg's demuxers
    try:
        with av.open(p, metadata_errors="ignore") as c:
            if not c.streams.audio:
                raise MediaError("no_audio_stream", f"{p}: no audio stream; expected an audio track")
            stream = c.streams.audio[0]
            sr = stream.codec_context.sample_rate
            planar = av.AudioResampler(format="fltp")  # (channels, samples) float32 whatever the codec
            chunks = [g.to_ndarray() for f in c.decode(stream) for g in planar.resample(f)]
            chunks += [g.to_ndarray() for g in planar.resample(None)]
    except av.FFmpegError as e:
        raise MediaError("unreadable", f"{p}: cannot decode audio ({e})") from e
    if not chunks:
        return np.zeros(0, np.float32), int(sr)
    return np.concatenate(chunks, axis=1).mean(axis=0, dtype=np.float32), int(sr)


def encode_video(frames: Iterable[np.ndarray], dst: str | os.PathLike[str], fps: int = 25,
                 crf: int = 18, audio: np.ndarray | None = None, sample_rate: int = 16000,
                 preset: str = "medium", audio_codec: str = "aac", threads: int = X264_THREADS) -> None:
    """Encode RGB uint8 frames (H, W, 3) to H.264 mp4 through an ffmpeg rawvideo pipe.

    Args:
        frames: Same-size RGB uint8 frames with even H and W (yuv420p needs them).
        audio: Optional mono float32 samples in [-1, 1] at `sample_rate`, muxed alongside.
        audio_codec: "aac" (128 kb/s, playable everywhere; deterministic on one ffmpeg build) or
            "pcm_s16le" (lossless PCM in mp4; exact samples, but browsers will not play it).
        threads: x264 threads; fixed per call site so the bytes do not depend on the machine (small
            videos encoded by a process pool are fastest with 1).
    """
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise ValueError(f"encode_video({dst}): no frames given")
    h, w = first.shape[:2]
    if first.dtype != np.uint8 or first.shape != (h, w, 3) or h % 2 or w % 2:
        raise ValueError(f"encode_video({dst}): expected RGB uint8 frames of even size (H, W, 3), "
                         f"got {first.dtype} {first.shape}")

    def chunks() -> Iterator[bytes]:
        yield np.ascontiguousarray(first).tobytes()
        for i, f in enumerate(it, start=1):
            if f.shape != first.shape or f.dtype != np.uint8:
                raise ValueError(f"encode_video({dst}): frame {i} is {f.dtype} {f.shape}, "
                                 f"expected uint8 {first.shape}")
            yield np.ascontiguousarray(f).tobytes()

    inputs = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "pipe:0"]
    outputs = ["-map", "0:v:0", "-sws_flags", _SWS, *_x264_args(fps, crf, preset, threads)]
    with atomic_output(dst) as tmp, contextlib.ExitStack() as stack:
        if audio is not None:
            samples = np.asarray(audio, dtype="<f4")
            if samples.ndim != 1:
                raise ValueError(f"encode_video({dst}): audio must be mono 1-D, got {samples.shape}")
            raw = stack.enter_context(tempfile.NamedTemporaryFile(
                prefix=f".{Path(dst).name}.", suffix=".f32", dir=tmp.parent))
            raw.write(samples.tobytes())
            raw.flush()
            inputs += ["-f", "f32le", "-ar", str(sample_rate), "-ac", "1", "-i", raw.name]
            outputs += ["-map", "1:a:0", "-c:a", audio_codec]
            outputs += ["-b:a", "128k"] if audio_codec == "aac" else []
        _ffmpeg([*inputs, *outputs, *_BITEXACT, "-f", "mp4", os.fspath(tmp)], f"encode_video -> {dst}",
                stdin_chunks=chunks())


__all__ = ["MAX_DOWNMIX_LOSS_DB", "X264_THREADS", "Downmix", "channel_levels", "choose_downmix", "encode_video",
           "extract_audio", "normalize_clip", "normalize_video", "read_audio", "read_frames"]
