"""Generation-side pure functions: mask blur, pasting through the inverse crop transform, chunks, crops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from headflow.generators.lipsync import data, generate
from headflow.generators.lipsync.model import LipsyncGenerator
from headflow.generators.lipsync.params import tiny_params


def test_numpy_mask_blur_equals_the_training_blur():
    rng = np.random.default_rng(0)
    mask = (rng.random((96, 96)) > 0.5).astype(np.float32)
    mask[:, :10] = 1                                                       # touches the crop border
    ours = generate.blur_mask_np(mask)
    theirs = data.blur_mask(torch.from_numpy(mask)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert ours[50, 0] < 0.8                                               # fades out at the border (zero outside)


def test_paste_back_through_a_translation_and_a_scale():
    frame = np.full((200, 240, 3), 40, np.uint8)
    crop = np.ones((96, 96, 3), np.float32)                                # white
    mask = np.zeros((96, 96), np.float32)
    mask[30:80, 20:76] = 1
    # Crop = frame box x 60..155, y 50..145 (translation by (-60, -50)).
    M = np.array([[1.0, 0.0, -60.0], [0.0, 1.0, -50.0]])
    out = generate.paste_back(frame, crop, mask, M)
    assert (out[50 + 55, 60 + 48] == 255).all()                           # mask centre -> white
    assert (out[10, 10] == 40).all() and (out[50 + 5, 60 + 5] == 40).all()  # outside the mask: untouched
    assert 40 < out[50 + 30, 60 + 48, 0] < 255                             # mask edge: feathered
    # Crop = a 192 px box at (20, 4) shrunk by half: crop pixel (48, 55) sits at frame (20 + 2*48 + 0.5, ...).
    M2 = np.array([[0.5, 0.0, -10.0 - 0.25], [0.0, 0.5, -2.0 - 0.25]])
    out2 = generate.paste_back(frame, crop, mask, M2)
    x, y = int(round((48 + 10.25) / 0.5)), int(round((55 + 2.25) / 0.5))
    assert (out2[y, x] == 255).all() and (out2[2, 2] == 40).all()
    assert (generate.paste_back(frame, crop, np.zeros((96, 96), np.float32), M) == frame).all()
    whole = generate.paste_back(frame, crop, None, M)                      # no mask head: whole crop pasted
    assert (whole[50:146, 60:156] == 255).all() and (whole[49, 100] == 40).all()


def test_frame_chunks_cover_valid_frames_in_runs_of_at_most_five():
    valid = np.array([1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0, 1], bool)
    assert generate.frame_chunks(valid, 0, 13) == [(0, 5), (5, 7), (8, 10), (12, 13)]
    assert generate.frame_chunks(valid, 0, 9) == [(0, 5), (5, 7), (8, 9)]


def test_generate_crops_fills_the_range_and_never_uses_a_chunk_frame_as_reference():
    from tests.generators.lipsync.conftest import render_face, template_landmarks

    p = tiny_params()
    torch.manual_seed(0)
    g = LipsyncGenerator(p.model).eval()
    opens = [float(o % 10) for o in range(23)]
    lm = np.stack([template_landmarks(o) for o in opens])
    faces = np.stack([render_face(x) for x in lm])
    valid = np.ones(23, bool)
    valid[6] = False
    mel = np.random.default_rng(0).standard_normal((70, 80)).astype(np.float32)
    # 70 mel frames: frame 16 starts at int(51.2) = 51 -> 67 <= 70 fits, frame 17 at 54 -> 70 fits,
    # frame 18 at int(57.6) = 57 -> 73 does not: the generated range is [0, 18).
    res = generate.generate_crops(g, faces, lm, valid, mel, p.data)
    assert res.frame_end == 18
    assert res.generated.tolist() == [f < 18 and f != 6 for f in range(23)]
    np.testing.assert_array_equal(res.crops[~res.generated], faces[~res.generated] / np.float32(255))
    for start, refs in res.references.items():
        stop = next(e for s, e in generate.frame_chunks(valid, 0, 18) if s == start)
        assert not any(start <= r < stop for r in refs) and len(refs) == p.data.n_references
    assert res.masks is not None and res.masks[~res.generated].sum() == 0


def test_write_output_is_a_playable_video_of_the_range_with_audio_of_its_length(tmp_path):
    from headflow.media.probe import probe
    from tests.generators.lipsync.conftest import render_face, template_landmarks

    t, h, w = 12, 120, 160
    frames = np.full((t, h, w, 3), 50, np.uint8)
    M = np.array([[1.0, 0.0, -30.0], [0.0, 1.0, -10.0]])                  # crop = box x 30..125, y 10..105
    crops = np.stack([render_face(template_landmarks(o)) for o in range(t)]).astype(np.float32) / 255
    res = generate.GeneratedCrops(crops, np.ones((t, 96, 96), np.float32), np.arange(t) < 9, 10, {})
    sr = 16000
    audio = (0.3 * np.sin(np.arange(sr) * 2 * np.pi * 220 / sr)).astype(np.float32)   # 1 s
    out = tmp_path / "out.mp4"
    assert generate.write_output(frames, res, np.repeat(M[None], t, 0), audio, out) == (0, 10)
    info = probe(out)
    assert info.has_video and info.has_audio and info.n_frames == 10 and info.fps == 25
    assert abs(info.duration_s - 10 / 25) < 0.06                           # 0.4 s of video and audio
    from headflow.media.normalize import read_frames

    decoded = list(read_frames(out))
    assert len(decoded) == 10
    assert abs(int(decoded[9][60, 80, 0]) - 50) <= 3                      # frame 9 not generated: the source
    assert abs(int(decoded[0][60, 80, 0]) - 50) > 20                      # frame 0 generated: the face
    with pytest.raises(ValueError, match="empty generated range"):
        generate.write_output(frames, generate.GeneratedCrops(crops, None, np.zeros(t, bool), 0, {}), np.repeat(M[None], t, 0),
                              audio, tmp_path / "empty.mp4")
