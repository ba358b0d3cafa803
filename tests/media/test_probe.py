"""probe / require_streams / decode_check on tiny media made here, plus the shared GRID clips."""

from __future__ import annotations

import pickle
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from headflow.media import MediaError, decode_check, probe, require_streams



def ffmpeg(*args: str) -> None:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error",
                    "-y", *args], check=True)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """2 s 160x120 30 fps H.264 + 44.1 kHz stereo AAC, and variants of it."""
    d = tmp_path_factory.mktemp("probe_media")
    m = {name: d / name for name in ("av.mp4", "faststart.mp4", "video.mp4", "audio.wav",
                                     "rot_cw90.mp4", "rot_ccw90.mp4", "rot_180.mp4", "rot_tag.mkv")}
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30:duration=2",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=2",
           "-ac", "2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
           str(m["av.mp4"]))  # default mp4: moov atom at the end
    ffmpeg("-i", str(m["av.mp4"]), "-c", "copy", "-movflags", "+faststart", str(m["faststart.mp4"]))
    ffmpeg("-i", str(m["av.mp4"]), "-map", "0:v", "-c", "copy", str(m["video.mp4"]))
    ffmpeg("-i", str(m["av.mp4"]), "-map", "0:a", "-c:a", "pcm_s16le", str(m["audio.wav"]))
    # ffmpeg 9 drops `-metadata:s:v rotate=90` in mp4; -display_rotation (counter-clockwise,
    # an input option) writes the display matrix. A phone's rotate=90 tag is -90 here.
    for name, ccw in (("rot_cw90.mp4", "-90"), ("rot_ccw90.mp4", "90"), ("rot_180.mp4", "180")):
        ffmpeg("-display_rotation", ccw, "-i", str(m["video.mp4"]), "-c", "copy", str(m[name]))
    # MKV keeps a bare tag (as ROTATE) and no matrix: the legacy path.
    ffmpeg("-i", str(m["video.mp4"]), "-c", "copy", "-metadata:s:v", "rotate=90", str(m["rot_tag.mkv"]))
    return m


def test_probe_video_with_audio(media: dict[str, Path]) -> None:
    info = probe(media["av.mp4"])
    assert info.path == str(media["av.mp4"])
    assert info.container.startswith("mov,mp4")
    assert (info.has_video, info.has_audio) == (True, True)
    assert (info.width, info.height) == (160, 120)
    assert info.fps == pytest.approx(30.0)
    assert info.n_frames == 60  # 2 s * 30 fps
    assert info.duration_s == pytest.approx(2.0, abs=0.02)
    assert info.rotation == 0
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.audio_sample_rate, info.audio_channels, info.n_audio_streams) == (44100, 2, 1)
    require_streams(info)  # both present: no error


def test_video_only_has_no_audio(media: dict[str, Path]) -> None:
    info = probe(media["video.mp4"])
    assert info.has_video and not info.has_audio
    assert info.audio_codec is None and info.audio_sample_rate is None and info.n_audio_streams == 0
    require_streams(info, audio=False)
    with pytest.raises(MediaError) as e:
        require_streams(info)
    assert e.value.reason_code == "no_audio_stream"
    assert str(media["video.mp4"]) in str(e.value)


def test_audio_only_has_no_video(media: dict[str, Path]) -> None:
    info = probe(media["audio.wav"])
    assert info.has_audio and not info.has_video
    assert info.container == "wav"
    assert info.width is None and info.fps is None and info.n_frames is None
    assert info.duration_s == pytest.approx(2.0, abs=0.03)
    assert (info.audio_sample_rate, info.audio_channels) == (44100, 2)
    with pytest.raises(MediaError) as e:
        require_streams(info)
    assert e.value.reason_code == "no_video_stream"
    with pytest.raises(MediaError) as e:
        decode_check(media["audio.wav"], info)
    assert e.value.reason_code == "no_video_stream"


@pytest.mark.parametrize("content", [None, b"", np.random.default_rng(0).bytes(50_000),
                                     b"this is not a video\n" * 200])
def test_unreadable_files(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "clip.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(MediaError) as e:
        probe(path)
    assert e.value.reason_code == "unreadable"
    assert str(path) in str(e.value)


def _truncate(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def test_truncated_mp4_without_moov_fails_in_probe(media: dict[str, Path], tmp_path: Path) -> None:
    # moov is at the end of a default mp4, so 40% of the bytes carry no index: probe rejects it.
    cut = _truncate(media["av.mp4"], tmp_path / "cut.mp4", 0.4)
    with pytest.raises(MediaError) as e:
        probe(cut)
    assert e.value.reason_code == "unreadable" and str(cut) in str(e.value)


def test_truncated_faststart_mp4_passes_probe_fails_decode_check(media: dict[str, Path],
                                                                 tmp_path: Path) -> None:
    # With moov first the index survives: probe believes 60 frames, decoding finds fewer.
    cut = _truncate(media["faststart.mp4"], tmp_path / "cut.mp4", 0.4)
    info = probe(cut)
    assert info.n_frames == 60
    with pytest.raises(MediaError) as e:
        decode_check(cut, info)
    assert e.value.reason_code == "unreadable"
    assert "truncated" in str(e.value) and "of 60 expected" in str(e.value) and str(cut) in str(e.value)


def test_decode_check_counts_all_frames(media: dict[str, Path]) -> None:
    assert decode_check(media["av.mp4"], probe(media["av.mp4"])) == 60


@pytest.mark.parametrize(("name", "rotation"), [("rot_cw90.mp4", 90), ("rot_ccw90.mp4", 270),
                                                ("rot_180.mp4", 180), ("rot_tag.mkv", 90)])
def test_rotation_is_clockwise_and_swaps_size(media: dict[str, Path], name: str, rotation: int) -> None:
    info = probe(media[name])
    assert info.rotation == rotation
    assert (info.width, info.height) == ((160, 120) if rotation == 180 else (120, 160))


@pytest.fixture(scope="module")
def stream_copy_cuts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 2 s 25 fps clip with one keyframe, cut at 0.7 s by stream copy (`-ss 0.7 -i src -c copy`) into
    each container, with ffmpeg's default timestamp handling and with negative timestamps kept."""
    d = tmp_path_factory.mktemp("cuts")
    src = d / "src.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=2",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=2",
           "-c:v", "libx264", "-preset", "ultrafast", "-g", "250", "-bf", "2", "-pix_fmt", "yuv420p", "-c:a", "aac",
           str(src))
    out = {}
    for ext in ("mp4", "mov", "mkv", "ts"):
        for mode in ("auto", "disabled"):
            out[f"{ext}-{mode}"] = d / f"cut_{mode}.{ext}"
            ffmpeg("-ss", "0.7", "-i", str(src), "-c", "copy", "-avoid_negative_ts", mode, str(out[f"{ext}-{mode}"]))
    return out


@pytest.mark.parametrize("name", ["mp4-auto", "mp4-disabled", "mov-auto", "mov-disabled", "mkv-auto",
                                  "mkv-disabled", "ts-auto", "ts-disabled"])
def test_stream_copy_cuts_count_the_frames_the_container_presents(stream_copy_cuts: dict[str, Path],
                                                                   name: str) -> None:
    """Edit lists (mp4, mov) hide the packets before the cut, flagged discarded: not counted. Matroska and
    MPEG-TS keep them visible (negative or shifted timestamps) and ffmpeg shows them: counted. Either way
    probe's count is what the decoder yields and what the canonical video holds (known answer: the cut at
    0.7 s keeps the frames at 0.72 s and later, 50 - ceil(0.7 * 25) = 32, the edit list hiding 18)."""
    import av

    from headflow.media import normalize_video

    path = stream_copy_cuts[name]
    info = probe(path)
    with av.open(str(path)) as c:
        packets = sum(1 for pk in c.demux(c.streams.video[0]) if pk.size)
    assert decode_check(path, info) == info.n_frames
    canonical = path.with_name(path.name + ".canonical.mp4")
    normalize_video(path, canonical, preset="ultrafast")
    assert probe(canonical).n_frames == info.n_frames
    if name.startswith(("mp4", "mov")):
        assert (packets, info.n_frames) == (50, 32)
    else:
        assert info.n_frames == packets
    assert info.duration_s == pytest.approx(info.n_frames / 25, abs=0.045)
    assert info.audio_duration_s == pytest.approx(info.video_content_s, abs=0.1)


def test_media_error_pickles_and_checks_reason() -> None:
    err = pickle.loads(pickle.dumps(MediaError("no_audio_stream", "x.mp4: no audio")))
    assert (err.reason_code, str(err)) == ("no_audio_stream", "x.mp4: no audio")
    with pytest.raises(ValueError, match="unknown reason_code"):
        MediaError("bad_code", "msg")


def _grid_clips(grid_dir: Path) -> list[Path]:
    clips = sorted(grid_dir.glob("*.mpg"))
    assert clips, f"no .mpg files in {grid_dir}"
    return clips


@pytest.mark.shared
def test_grid_clips_probe_as_documented(grid_dir: Path) -> None:
    # README: 360x288, 25 fps, 3 s, MPEG-1 video + MP2 44.1 kHz stereo. MPEG-PS states no frame
    # count, so n_frames and duration come from demuxed packets (75 * 40 ms = 3.0 s; the
    # container's own estimate is 2.98 s). Audio is slightly shorter (~2.978 s).
    for clip in _grid_clips(grid_dir):
        info = probe(clip)
        assert info.container == "mpeg"
        assert (info.width, info.height, info.rotation) == (360, 288, 0), clip
        assert info.fps == pytest.approx(25.0)
        assert info.n_frames == 75, clip
        assert info.duration_s == pytest.approx(3.0, abs=0.01), clip
        assert (info.video_codec, info.audio_codec) == ("mpeg1video", "mp2")
        assert (info.audio_sample_rate, info.audio_channels, info.n_audio_streams) == (44100, 2, 1)
        assert decode_check(clip, info) == 75
