"""normalize_video / extract_audio / encode_video / readers on tiny media made here (+ GRID)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import soundfile as sf

from headflow.media import (
    MediaError,
    decode_check,
    encode_video,
    extract_audio,
    normalize_clip,
    normalize_video,
    probe,
    read_audio,
    read_frames,
)



def ffmpeg(*args: str) -> None:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error",
                    "-y", *args], check=True)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """2 s 30 fps 160x120 H.264 with 44.1 kHz stereo AAC; variants without audio / video."""
    d = tmp_path_factory.mktemp("normalize_src")
    m = {n: d / n for n in ("av30.mp4", "video.mp4", "audio.wav", "rot.mp4", "anamorphic.mkv")}
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30:duration=2",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=2", "-ac", "2",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
           str(m["av30.mp4"]))
    ffmpeg("-i", str(m["av30.mp4"]), "-map", "0:v", "-c", "copy", str(m["video.mp4"]))
    ffmpeg("-i", str(m["av30.mp4"]), "-map", "0:a", "-c:a", "pcm_s16le", str(m["audio.wav"]))
    ffmpeg("-display_rotation", "-90", "-i", str(m["video.mp4"]), "-c", "copy", str(m["rot.mp4"]))
    # 161x121 stored pixels shown twice as wide: odd size, non-square pixels (FFV1 keeps odd sizes)
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=1", "-vf",
           "scale=161:121,setsar=2", "-pix_fmt", "yuv444p", "-c:v", "ffv1", str(m["anamorphic.mkv"]))
    return m


def test_normalize_30fps_to_25fps(src: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "out" / "clip.mp4"  # parent folder is created
    normalize_video(src["av30.mp4"], dst)
    info = probe(dst)
    assert (info.video_codec, info.has_audio, info.rotation) == ("h264", False, 0)
    assert info.fps == pytest.approx(25.0)
    assert abs(info.n_frames - round(2.0 * 25)) <= 1
    assert decode_check(dst, info) == info.n_frames
    assert (info.width, info.height) == (160, 120)
    assert sorted(p.name for p in dst.parent.iterdir()) == ["clip.mp4"]  # no temp file left
    umask = os.umask(0)
    os.umask(umask)
    assert dst.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's owner-only 0600


def test_normalize_applies_rotation_and_writes_none(src: dict[str, Path], tmp_path: Path) -> None:
    assert probe(src["rot.mp4"]).rotation == 90
    normalize_video(src["rot.mp4"], tmp_path / "rot.mp4")
    out = probe(tmp_path / "rot.mp4")
    assert (out.width, out.height, out.rotation) == (120, 160, 0)
    frame = next(read_frames(tmp_path / "rot.mp4"))
    assert frame.shape == (160, 120, 3)


def test_normalize_square_pixels_even_size_and_max_side(src: dict[str, Path], tmp_path: Path) -> None:
    normalize_video(src["anamorphic.mkv"], tmp_path / "a.mp4")
    info = probe(tmp_path / "a.mp4")
    assert (probe(src["anamorphic.mkv"]).width, probe(src["anamorphic.mkv"]).height) == (161, 121)
    assert (info.width, info.height) == (322, 120)  # 161*2 wide, 121 -> even 120
    normalize_video(src["anamorphic.mkv"], tmp_path / "b.mp4", max_side=100)
    info = probe(tmp_path / "b.mp4")
    assert (info.width, info.height) == (100, 36)  # k = 100/322: 2*trunc(50.0), 2*trunc(18.79)
    normalize_video(src["av30.mp4"], tmp_path / "c.mp4", max_side=1000)  # never upscales
    assert (probe(tmp_path / "c.mp4").width, probe(tmp_path / "c.mp4").height) == (160, 120)


def test_extract_audio_to_16k_mono(src: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "a.wav"
    extract_audio(src["av30.mp4"], dst)
    meta = sf.info(dst)
    assert (meta.samplerate, meta.channels, meta.subtype) == (16000, 1, "PCM_16")
    duration = probe(src["av30.mp4"]).duration_s
    assert abs(meta.frames - 2.0 * 16000) <= 2 and duration == pytest.approx(2.0, abs=0.02)
    x, sr = read_audio(dst)
    assert x.dtype == np.float32 and x.ndim == 1 and sr == 16000
    # a 440 Hz sine survives resampling: 16000-sample window, so rfft bins are 1 Hz apart
    spectrum = np.abs(np.fft.rfft(x[8000:24000]))
    assert int(np.argmax(spectrum)) == pytest.approx(440, abs=2)


def test_missing_streams_are_reported_and_write_nothing(src: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(MediaError) as e:
        extract_audio(src["video.mp4"], tmp_path / "a.wav")
    assert e.value.reason_code == "no_audio_stream"
    with pytest.raises(MediaError) as e:
        normalize_video(src["audio.wav"], tmp_path / "v.mp4")
    assert e.value.reason_code == "no_video_stream"
    with pytest.raises(MediaError) as e:
        normalize_clip(src["video.mp4"], tmp_path / "v.mp4", tmp_path / "a.wav")
    assert e.value.reason_code == "no_audio_stream"
    assert list(tmp_path.iterdir()) == []


def test_normalize_is_deterministic(src: dict[str, Path], tmp_path: Path) -> None:
    for run in ("1", "2"):
        normalize_clip(src["av30.mp4"], tmp_path / f"v{run}.mp4", tmp_path / f"a{run}.wav")
    assert sha256(tmp_path / "v1.mp4") == sha256(tmp_path / "v2.mp4")
    assert sha256(tmp_path / "a1.wav") == sha256(tmp_path / "a2.wav")


def test_ffmpeg_failure_keeps_old_output(src: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "v.mp4"
    dst.write_bytes(b"previous")
    with pytest.raises(MediaError) as e:
        normalize_video(src["av30.mp4"], dst, preset="no-such-preset")
    assert e.value.reason_code == "unreadable" and "ffmpeg failed" in str(e.value)
    assert "preset" in str(e.value).lower()  # the tail of ffmpeg's stderr is in the message
    assert dst.read_bytes() == b"previous" and sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def _frames(n: int, h: int = 64, w: int = 96) -> list[np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 200)], -1).astype(np.uint8)
    return [np.roll(base, 2 * i, axis=1) for i in range(n)]


@pytest.mark.parametrize("audio_codec", ["aac", "pcm_s16le"])
def test_encode_video_roundtrip_and_determinism(tmp_path: Path, audio_codec: str) -> None:
    frames = _frames(25)
    audio = np.zeros(16000, np.float32)
    audio[4000] = 0.9  # a click at 0.25 s = frame 6.25
    for run in ("1", "2"):
        encode_video(iter(frames), tmp_path / f"e{run}.mp4", audio=audio, audio_codec=audio_codec)
    assert sha256(tmp_path / "e1.mp4") == sha256(tmp_path / "e2.mp4")
    info = probe(tmp_path / "e1.mp4")
    assert (info.n_frames, info.width, info.height, info.audio_codec) == (25, 96, 64, audio_codec)
    decoded = list(read_frames(tmp_path / "e1.mp4"))
    assert len(decoded) == 25 and decoded[7].shape == (64, 96, 3)
    assert np.abs(decoded[7].astype(int) - frames[7]).mean() < 3  # crf 18 on a smooth ramp
    extract_audio(tmp_path / "e1.mp4", tmp_path / "e1.wav")
    back, sr = read_audio(tmp_path / "e1.wav")
    # ffmpeg honours the AAC priming edit list: same length, click at the same sample
    assert sr == 16000 and len(back) == 16000 and int(np.argmax(np.abs(back))) == 4000
    if audio_codec == "pcm_s16le":
        np.testing.assert_allclose(back, audio, atol=1 / 32767)


def test_encode_video_rejects_bad_frames_atomically(tmp_path: Path) -> None:
    frames = _frames(5)
    with pytest.raises(ValueError, match="frame 3"):
        encode_video(frames[:3] + [frames[3][:, :50]] + frames[4:], tmp_path / "v.mp4",
                     audio=np.zeros(800, np.float32))
    with pytest.raises(ValueError, match="even size"):
        encode_video([np.zeros((63, 96, 3), np.uint8)], tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []


def test_readers_raise_media_error(tmp_path: Path) -> None:
    (tmp_path / "bad.mp4").write_bytes(b"not a video" * 100)
    with pytest.raises(MediaError) as e:
        next(read_frames(tmp_path / "bad.mp4"))
    assert e.value.reason_code == "unreadable" and "bad.mp4" in str(e.value)
    with pytest.raises(MediaError) as e:
        read_audio(tmp_path / "bad.mp4")
    assert e.value.reason_code == "unreadable"


def test_read_audio_from_mp4_averages_channels(src: dict[str, Path]) -> None:
    x, sr = read_audio(src["av30.mp4"])  # PyAV path (soundfile cannot read mp4)
    assert sr == 44100 and x.dtype == np.float32 and abs(len(x) - 2 * 44100) < 2048


@pytest.mark.shared
def test_normalize_grid_clip(tmp_path: Path, grid_dir: Path) -> None:
    clip = sorted(grid_dir.glob("*.mpg"))[0]
    normalize_clip(clip, tmp_path / "v.mp4", tmp_path / "a.wav")
    info = probe(tmp_path / "v.mp4")
    assert (info.width, info.height, info.fps, info.n_frames) == (360, 288, 25.0, 75)
    meta = sf.info(tmp_path / "a.wav")
    # GRID's MP2 track is ~2.978 s (131328 samples at 44.1 kHz), a bit shorter than the video
    assert (meta.samplerate, meta.channels) == (16000, 1)
    assert abs(meta.frames - 131328 * 16000 / 44100) <= 2


def _speechlike(n: int, sr: int, seed: int = 0) -> np.ndarray:
    """Noise shaped by a 4 Hz syllable envelope, about -23 dBFS RMS."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    return (0.1 * rng.standard_normal(n) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)


@pytest.mark.parametrize("layout, expected_mode, expected_channels", [
    ("stereo_antiphase", "channel", {0, 1}),   # R = -L: the mean is silence, either channel is the speech
    ("stereo_correlated", "mean", {None}),     # the ordinary case: the mean loses 0 dB
    ("stereo_one_silent", "mean", {None}),     # the mean loses 6 dB (< 10): kept
    ("quad_antiphase_pairs", "channel", {2, 3}),  # L/R and Ls/Rs each in antiphase; the rear pair is louder
    ("5.1_centre_only", "channel", {2}),       # speech on FC alone: the mean of 6 loses 20*log10(6) = 15.6 dB
])
@pytest.mark.parametrize("codec", ["pcm_s16le", "aac"])
def test_downmix_keeps_speech_whatever_the_channel_layout(tmp_path: Path, layout: str, expected_mode: str,
                                                          expected_channels: set, codec: str) -> None:
    sr, n = 16000, 16000    # at the canonical rate, so resampling removes none of the noise's band
    x = _speechlike(n, sr)
    zero = np.zeros(n, np.float32)
    channels = {
        "stereo_antiphase": [x, -x], "stereo_correlated": [x, x], "stereo_one_silent": [x, zero],
        "quad_antiphase_pairs": [0.5 * x, -0.5 * x, x, -x],
        "5.1_centre_only": [zero, zero, x, zero, zero, zero],
    }[layout]
    raw = tmp_path / "raw.wav"
    sf.write(raw, np.stack(channels, axis=1), sr, subtype="FLOAT")
    src = tmp_path / ("src.mkv" if codec == "aac" else "src.wav")
    ffmpeg("-i", str(raw), "-c:a", codec, *(["-b:a", "256k"] if codec == "aac" else []), str(src))
    mix = extract_audio(src, tmp_path / "out.wav")
    assert mix.mode == expected_mode and mix.channel in expected_channels, mix
    y, _ = read_audio(tmp_path / "out.wav")
    level = 10 * np.log10(np.mean(y[1600:-1600].astype(np.float64) ** 2))
    speech = 10 * np.log10(np.mean(x.astype(np.float64) ** 2))
    # the speech survives at its level: exact for the cancelled layouts, -6 dB for one silent channel
    assert level == pytest.approx(speech - (6.02 if layout == "stereo_one_silent" else 0.0), abs=1.0)
