"""Long recordings cut at pauses (headflow.ingest.segment) and their ingest as clips with source ranges."""

import numpy as np
import pytest

from headflow.ingest.ingest import run_ingest
from headflow.ingest.params import IngestParams
from headflow.ingest.segment import FRAME_S, HOP_S, find_pauses, frame_levels_db, plan_segments
from headflow.media import encode_video

SR = 16000


def _bursts(spans_s, total_s, sr=SR):
    """A 220 Hz tone (0.3 amplitude) during each (start, end) span, digital silence elsewhere."""
    t = np.arange(int(total_s * sr)) / sr
    audio = np.zeros_like(t)
    for a, b in spans_s:
        on = (t >= a) & (t < b)
        audio[on] = 0.3 * np.sin(2 * np.pi * 220 * t[on])
    return audio


def test_frame_levels_known_answer():
    # A full-scale square wave (+-1) has RMS 1 -> 0 dBFS; amplitude 0.1 -> -20 dBFS.
    x = np.where(np.arange(SR) % 40 < 20, 1.0, -1.0)
    levels = frame_levels_db(x, SR)
    assert len(levels) == 1 + (SR - 320) // 160 and np.allclose(levels, 0.0)
    assert np.allclose(frame_levels_db(0.1 * x, SR), -20.0)


def test_find_pauses_locates_the_silence():
    audio = _bursts([(0.0, 1.0), (1.5, 2.5)], 2.5)
    pauses = find_pauses(frame_levels_db(audio, SR), pause_db=25, min_pause_s=0.2)
    # frames entirely inside [1.0, 1.5): the first starts at 1.00 s, the last ends at 1.50 s
    assert len(pauses) == 1
    assert pauses[0][0] == pytest.approx(1.0, abs=HOP_S + 1e-9) and pauses[0][1] == pytest.approx(1.5, abs=HOP_S + 1e-9)
    # too short to count at min_pause_s = 0.6
    assert find_pauses(frame_levels_db(audio, SR), pause_db=25, min_pause_s=0.6) == []


def test_plan_cuts_at_the_latest_pause_within_reach():
    levels = np.zeros(1000)
    # 10 s, segments 1..4 s, pauses centred on the 25 fps grid at 3.00, 3.48 and 6.48 s:
    # from 0 the window is [1, 4] -> latest centre 3.48; from 3.48 it is [4.48, 7.48] -> 6.48;
    # 3.52 s remain (<= 4): the last segment.
    segs = plan_segments(10.0, levels, [(2.9, 3.1), (3.38, 3.58), (6.38, 6.58)], 1.0, 4.0, 25)
    assert [(s.start_s, s.end_s, s.end) for s in segs] == [(0.0, 3.48, "pause"), (3.48, 6.48, "pause"),
                                                            (6.48, 10.0, "end")]
    # a centre off the grid moves to the nearest frame boundary: 3.5 s = 87.5 frames -> 88 (3.52 s)
    assert plan_segments(10.0, levels, [(3.4, 3.6)], 1.0, 4.0, 25)[0].end_s == pytest.approx(3.52)


def test_plan_without_pauses_cuts_at_the_quietest_instant_on_the_frame_grid():
    levels = np.zeros(600)
    levels[250] = -60.0        # frame 250 spans [2.50, 2.52) s: centre 2.51 s -> frame grid (0.04 s) 2.52 s
    segs = plan_segments(6.0, levels, [], 1.0, 4.0, 25)
    assert [(s.start_s, s.end_s, s.end) for s in segs] == [(0.0, 2.52, "forced"), (2.52, 6.0, "end")]
    assert 250 * HOP_S + FRAME_S / 2 == pytest.approx(2.51)


def test_plan_refuses_bounds_that_cannot_always_be_met():
    with pytest.raises(ValueError, match="max_duration_s"):
        plan_segments(10.0, np.zeros(1000), [], 3.0, 4.0, 25)


def _long_video(path, spans, total_s, fps=25):
    n = int(total_s * fps)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
    frames = [np.roll(np.kron(base, np.ones((8, 8, 1), np.uint8)), i, axis=1) for i in range(n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    encode_video(frames, path, fps=fps, audio=_bursts(spans, total_s).astype(np.float32), sample_rate=SR,
                 preset="ultrafast")


def test_a_long_video_becomes_consecutive_clips_cut_at_pauses(tmp_path):
    root = tmp_path / "raw"
    # speech in bursts with pauses centred at 2.6 s and 5.6 s; 8 s in all, max_duration_s 4
    _long_video(root / "ann" / "talk.mp4", [(0.2, 2.4), (2.8, 5.4), (5.8, 7.8)], 8.0)
    params = IngestParams(source="folder", root=str(root), max_duration_s=4.0, face_probe_frames=0, workers=1)
    lost = run_ingest(params, root, tmp_path / "off", project_root=tmp_path, progress=False)
    assert list(lost.quarantine.frame().reason_code) == ["too_long"]
    assert "ingest.segment.enabled" in lost.quarantine.frame().message[0]

    params.segment.enabled = True
    res = run_ingest(params, root, tmp_path / "on", project_root=tmp_path, progress=False)
    clips = res.clips
    assert len(res.quarantine) == 0 and len(clips) == 3 == res.n_inputs
    starts, ends = list(clips.source_start_s), list(clips.source_end_s)
    assert starts[0] == 0.0 and ends[-1] == pytest.approx(8.0, abs=0.05)
    assert starts[1:] == ends[:-1]                                    # no gap, no overlap
    assert starts[1] == pytest.approx(2.6, abs=0.05) and starts[2] == pytest.approx(5.6, abs=0.05)
    assert list(clips.segment_index) == [0, 1, 2] and list(clips.segment_end) == ["pause", "pause", "end"]
    assert (clips.duration_s <= 4.0 + 0.05).all()
    assert int(clips.n_frames.sum()) == 200                          # every frame of the 8 s kept once
    assert clips.clip_id.is_unique and clips.content_hash.is_unique
    assert res.segmentation == {"end": 1, "inputs_cut": 1, "pause": 2, "segments": 3}
