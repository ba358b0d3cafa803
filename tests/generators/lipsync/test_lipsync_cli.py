"""`headflow lipsync --video --audio --out`: one pair through normalisation, faces, the generator and blending."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from headflow import cli
from headflow.generators.lipsync.model import LipsyncGenerator, save_generator
from headflow.generators.lipsync.params import tiny_params


@pytest.fixture
def tiny_checkpoint(tmp_path):
    torch.manual_seed(0)
    p = tiny_params()
    path = tmp_path / "generator.pt"
    save_generator(LipsyncGenerator(p.model).eval(), p, path)
    return path


@pytest.mark.shared
def test_dubs_a_grid_clip_with_another_clips_audio(grid_dir, tiny_checkpoint, tmp_path, capsys):
    from headflow.manifest.generated import is_synthetic
    from headflow.media.probe import probe

    out = tmp_path / "dubbed.mp4"
    rc = cli.main(["lipsync", "--video", str(grid_dir / "bbaf2n.mpg"), "--audio", str(grid_dir / "lrwp9a.mpg"),
                   "--out", str(out), "--checkpoint", str(tiny_checkpoint), "--params", str(tmp_path / "none.yaml"),
                   "--quiet"])
    assert rc == 0
    info = probe(out)
    # Output frames = video frames that have a full 16-frame mel window of the *other* clip's audio
    # (valid_window_frames on that audio's mel, as extracted): shorter than the 75-frame input.
    from headflow.audio.mel import mel_spectrogram, valid_window_frames
    from headflow.media.normalize import extract_audio, read_audio

    extract_audio(grid_dir / "lrwp9a.mpg", tmp_path / "a.wav")
    n_mel = len(mel_spectrogram(read_audio(tmp_path / "a.wav")[0]))
    assert info.n_frames == valid_window_frames(n_mel, 75) < 75 and info.fps == 25 and info.has_audio
    assert abs(info.duration_s - info.n_frames / 25) < 0.1
    assert is_synthetic(out)
    assert "generated" in capsys.readouterr().out


def test_a_video_without_a_face_is_a_reason_code_not_a_crash(tiny_checkpoint, tmp_path, capsys):
    from headflow.media.normalize import encode_video

    rng = np.random.default_rng(0)
    video = tmp_path / "noise.mp4"
    sr = 16000
    encode_video((rng.integers(0, 255, (96, 128, 3), dtype=np.uint8) for _ in range(25)), video,
                 audio=(0.1 * np.sin(np.arange(sr) / 8)).astype(np.float32))
    rc = cli.main(["lipsync", "--video", str(video), "--audio", str(video), "--out", str(tmp_path / "o.mp4"),
                   "--checkpoint", str(tiny_checkpoint), "--params", str(tmp_path / "none.yaml"), "--quiet"])
    assert rc == 2
    assert "no_face" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


def test_a_missing_input_file_is_a_one_line_error_not_a_traceback(tiny_checkpoint, tmp_path, capsys):
    rc = cli.main(["lipsync", "--video", str(tmp_path / "nope.mp4"), "--audio", str(tmp_path / "nope.wav"),
                   "--out", str(tmp_path / "o.mp4"), "--checkpoint", str(tiny_checkpoint),
                   "--params", str(tmp_path / "none.yaml"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "nope.mp4" in err and "does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "o.mp4").exists()
