"""Module tests of the input kinds of ../shared/cases that came out right from the start (codecs and
containers, streams starting late, variable frame rate), on small files made here, so each keeps its
right value without the shared material (tests/e2e/test_cases.py runs the real cases end to end)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from headflow.media import decode_check, extract_audio, normalize_video, probe, read_audio, read_frames


def ffmpeg(*args: str) -> None:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
                   check=True)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """2 s of 25 fps 160x120 testsrc2 (its picture changes every frame) and a 2 s 440 Hz tone at 48 kHz."""
    d = tmp_path_factory.mktemp("kinds")
    out = {"video": d / "video.mkv", "audio": d / "audio.wav"}
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=2", "-c:v", "ffv1", str(out["video"]))
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2", "-c:a", "pcm_s16le",
           str(out["audio"]))
    return out


def _tone_hz(x: np.ndarray, sr: int) -> int:
    """The strongest frequency (Hz) of 1 s of `x` from its middle (1 Hz rfft bins)."""
    mid = len(x) // 2
    return int(np.argmax(np.abs(np.fft.rfft(x[mid - sr // 2: mid + sr // 2]))))


# (file, ffmpeg output options): the cases mulaw8k, webm, hevc10 and gray, each with its codecs
KINDS = {
    "mulaw8k.mov": ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-c:a", "pcm_mulaw", "-ar", "8000", "-ac", "1"],
    "vp9_opus.webm": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k",
                      "-c:a", "libopus"],
    "hevc_main10.mov": ["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le", "-tag:v", "hvc1",
                        "-x265-params", "log-level=none", "-c:a", "aac"],
    "ffv1_grey_flac.mkv": ["-c:v", "ffv1", "-pix_fmt", "gray", "-c:a", "flac"],
}


@pytest.mark.parametrize("name", list(KINDS))
def test_codecs_and_containers_become_canonical_media(base, tmp_path, name):
    src = tmp_path / name
    ffmpeg("-i", str(base["video"]), "-i", str(base["audio"]), "-map", "0:v", "-map", "1:a", *KINDS[name], str(src))
    info = probe(src)
    # 2 s at 25 fps: 50 frames, each decodable; the audio's own length 2 s (Opus and AAC pad a few ms)
    assert info.n_frames == 50 and decode_check(src, info) == 50, info
    assert info.audio_duration_s == pytest.approx(2.0, abs=0.03), info
    normalize_video(src, tmp_path / "v.mp4", preset="ultrafast")
    canonical = probe(tmp_path / "v.mp4")
    assert (canonical.video_codec, canonical.fps, canonical.n_frames) == ("h264", 25.0, 50)
    assert (canonical.width, canonical.height) == (160, 120)
    extract_audio(src, tmp_path / "a.wav")
    x, sr = read_audio(tmp_path / "a.wav")
    assert sr == 16000 and len(x) == pytest.approx(2.0 * sr, abs=0.03 * sr)
    assert _tone_hz(x, sr) == pytest.approx(440, abs=2)      # mu-law at 8 kHz still carries the 440 Hz tone


@pytest.mark.parametrize("late", ["audio", "video"])
def test_a_stream_starting_late_keeps_the_file_timing(base, tmp_path, late):
    """One stream starts 0.6 s after the other (`-itsoffset`, an mp4 edit list): the canonical wav and
    video both start at the file's time 0, the late one padded, so the offset stays measurable."""
    src = tmp_path / f"{late}_late.mp4"
    offset = ["-itsoffset", "0.6"]
    ffmpeg(*(offset if late == "video" else []), "-i", str(base["video"]),
           *(offset if late == "audio" else []), "-i", str(base["audio"]),
           "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           "-c:a", "aac", str(src))
    normalize_video(src, tmp_path / "v.mp4", preset="ultrafast")
    extract_audio(src, tmp_path / "a.wav")
    x, sr = read_audio(tmp_path / "a.wav")
    frames = np.stack([f.mean(axis=2) for f in read_frames(tmp_path / "v.mp4")]).astype(np.float32)
    if late == "audio":
        # the wav: 0.6 s of silence, then the tone (to 2.6 s); the 50 frames are the picture's own
        rms = lambda a, b: float(np.sqrt(np.mean(x[int(a * sr): int(b * sr)] ** 2)))  # noqa: E731
        assert rms(0.0, 0.55) < 1e-3 < rms(0.7, 2.5) and len(x) == pytest.approx(2.6 * sr, abs=0.03 * sr)
        assert len(frames) == 50
    else:
        # the video: 15 copies of the first picture (0.6 s at 25 fps), then its 50 frames; the wav the tone's 2 s
        assert len(frames) == 65 and len(x) == pytest.approx(2.0 * sr, abs=0.03 * sr)
        step = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2))     # mean change from one frame to the next
        assert step[:14].max() < 1.0 < step[15:].min(), step


def test_variable_frame_rate_maps_each_instant_to_the_frame_shown_then(base, tmp_path):
    """A phone-style VFR file: the first second at 25 fps, then each frame held 80 ms (12.5 fps,
    timescale 1/600 s). The canonical 25 fps video shows at frame f the source frame on screen at f/25 s:
    source frames 0-24, then 25, 25, 26, 26, ... (each held two canonical frames), within one frame."""
    src = tmp_path / "vfr.mp4"
    # pts of source frame n (s): n/25 for n < 25, then 1 + (n - 25) * 0.08: the last, n = 49, at 2.92 s,
    # held 1/25 s (the muxer gives the last packet the nominal rate's duration): 2.96 s, 74 frames at 25 fps
    ffmpeg("-i", str(base["video"]), "-vf", "setpts='if(lt(N,25),N/25,1+(N-25)*0.08)/TB'", "-fps_mode", "passthrough",
           "-video_track_timescale", "600", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(src))
    normalize_video(src, tmp_path / "v.mp4", preset="ultrafast")
    ours = np.stack([f.mean(axis=2) for f in read_frames(tmp_path / "v.mp4")]).astype(np.float32)
    theirs = np.stack([f.mean(axis=2) for f in read_frames(src)]).astype(np.float32)
    assert len(theirs) == 50 and probe(src).duration_s == pytest.approx(2.96) and len(ours) == 74
    shown = np.array([f if f < 25 else 25 + (f - 25) // 2 for f in range(74)])
    nearest = np.array([np.abs(theirs - o).mean(axis=(1, 2)).argmin() for o in ours])
    assert np.abs(nearest - shown).max() <= 1, nearest - shown


def test_a_file_name_with_quotes_apostrophes_spaces_and_parentheses(base, tmp_path):
    """ffmpeg gets its arguments as a list (no shell), so any name works; the clip id is a safe slug."""
    from headflow.manifest import clip_id_for
    from headflow.media import normalize_clip

    src = tmp_path / "odd_name" / 'it\'s a "take" (2).mp4'
    src.parent.mkdir()
    ffmpeg("-i", str(base["video"]), "-i", str(base["audio"]), "-map", "0:v", "-map", "1:a", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(src))
    normalize_clip(src, tmp_path / "v.mp4", tmp_path / "a.wav", preset="ultrafast")
    assert probe(tmp_path / "v.mp4").n_frames == 50 and probe(tmp_path / "a.wav").audio_sample_rate == 16000
    # every run of characters outside [a-z0-9] becomes one '_'; then '-' and 10 hex digits
    clip_id = clip_id_for('odd_name/it\'s a "take" (2).mp4', "0" * 64)
    assert clip_id.startswith("odd_name_it_s_a_take_2-") and len(clip_id) == len("odd_name_it_s_a_take_2-") + 10
