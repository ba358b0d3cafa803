"""The plumbing of bench/discohead_grid.py on one real GRID clip and one bad input, with a randomly initialised
tiny DisCoHead: protocol, variant labels, row counts and the accounting (inputs = outputs + quarantined).

It claims nothing about quality: an untrained network's output is not a face (the scoring quarantines it as
`no_face`, which is part of what is checked: a failure is a row, never a drop).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.shared]

ROOT = Path(__file__).resolve().parents[2]
CLIP = "bbaf2n"


def _no_face_video(path: Path) -> None:
    """2 s of flat grey frames with silent audio: no face for the tracker to find."""
    from headflow.media.normalize import encode_video

    encode_video(np.full((50, 96, 96, 3), 128, np.uint8), path, fps=25, audio=np.zeros(32000, np.float32),
                 sample_rate=16000, threads=1)


def _first_seconds(src: Path, dst: Path, tmp: Path, seconds: float = 1.6) -> None:
    """The first `seconds` of a GRID clip (video and audio) as one mp4, so the face tracking stays short."""
    from headflow.media.normalize import encode_video, extract_audio, normalize_video, read_audio, read_frames

    normalize_video(src, tmp / "v.mp4", fps=25, end_s=seconds)
    extract_audio(src, tmp / "a.wav", sample_rate=16000, end_s=seconds)
    wav, sr = read_audio(tmp / "a.wav")
    encode_video(np.stack(list(read_frames(tmp / "v.mp4"))), dst, fps=25, audio=wav, sample_rate=sr, threads=1)


def test_discohead_grid_rows_protocol_and_accounting(grid_dir, tmp_path):
    from bench.discohead_grid import PROTOCOL, run
    from headflow.generators.discohead.model import DisCoHeadGenerator, save_generator
    from headflow.generators.discohead.params import tiny_params
    from headflow.media import read_frames
    from headflow.params import load

    clip = grid_dir / f"{CLIP}.mpg"
    if not clip.is_file():
        pytest.skip(f"GRID clip {clip} not found")
    params = tiny_params()
    torch.manual_seed(0)
    ckpt = tmp_path / "generator.pt"
    save_generator(DisCoHeadGenerator(params.model).eval(), params, ckpt)
    bad = tmp_path / "noface.mp4"
    _no_face_video(bad)
    real = tmp_path / f"{CLIP}.mp4"
    _first_seconds(clip, real, tmp_path)                     # 40 of its 75 frames
    evaluate = dataclasses.replace(load("evaluate", ROOT / "params.yaml"), sample_frames=2, n_boot=50)
    res = run([real, bad], ckpt, tmp_path / "work", evaluate, load("faces", ROOT / "params.yaml"), judge=None,
              progress=False)

    variant = params.variant_name                              # "affine-DM" for the default head motion / encoder
    acc = res["accounting"]
    # clips in = clips generated + clips quarantined; the grey video is a quarantine row with its reason
    assert acc["clips_in"] == 2 and acc["clips_generated"] == 1 and acc["clips_quarantined"] == 1
    q_clip = [q for q in res["quarantine"] if q["clip_id"] == "noface"]
    assert len(q_clip) == 1 and q_clip[0]["reason_code"] == "no_face" and q_clip[0]["message"]
    # outputs in (the output and its same-run source warp) = outputs scored + outputs quarantined
    assert acc["outputs_in"] == 2 == acc["outputs_scored"] + acc["outputs_quarantined"]
    q_out = [q for q in res["quarantine"] if q["clip_id"].startswith("discohead/")]
    assert len(q_out) == acc["outputs_quarantined"] and all(q["reason_code"] for q in q_out)

    pc = res["per_clip"]
    assert set(pc.protocol) == {PROTOCOL} and set(pc.clip_id) == {CLIP}   # the bad input has no scored row
    labels = sorted(f"{s}:{v}" if isinstance(v, str) else s for s, v in zip(pc.system, pc.variant))
    assert labels == sorted(["ground_truth", "baseline_static_frame", "baseline_reference_fill",
                             f"discohead:{variant}", f"discohead:{variant}+source_warp"])
    gen = pc[pc.system == "discohead"]
    assert (gen.status == "failed").sum() == acc["outputs_quarantined"]
    # every system is scored on the same frames: evaluate.frame_start (5, DisCoHead's first 400 ms window) on
    assert pc.frame_start.nunique() == 1 and int(pc.frame_start.iloc[0]) == evaluate.frame_start
    assert pc.frame_end.nunique() == 1
    # the written videos cover the generated range at the aligned crop's 256x256
    for name in (f"{CLIP}.{PROTOCOL}.mp4", f"{CLIP}.{PROTOCOL}.source_warp.mp4"):
        frames = list(read_frames(tmp_path / "work" / "videos" / name))
        assert frames[0].shape == (256, 256, 3)
        assert len(frames) == int(pc.frame_end.iloc[0]) - evaluate.frame_start

    agg = res["aggregates"]
    lpips = agg[agg.metric == "lpips"]
    assert len(lpips) and lpips["mean"].isna().all() and lpips.note.str.contains("LPIPS weights").all()
    assert {"fid_face", "fid_inception", "psnr", "ssim", "akd", "aed"} <= set(agg.metric)
    m = res["motion"][CLIP]                                 # an affine tiny model: the transformation's statistics
    assert m["scale_min"] <= m["scale_max"] and np.isfinite([m["scale_abs_dev"], m["shift_abs"]]).all()
    comp = res["comparisons"]
    own = comp[(comp.variant == variant) & (comp.opponent == f"discohead:{variant}+source_warp")]
    assert len(own) and set(comp.opponent) >= {"baseline_static_frame", "baseline_reference_fill"}


def test_motion_stats_known_scales_and_mouth():
    """A stand-in predictor whose A_{S<-D} for driver frame f is s_f I (zero shift): the scales come back as
    s_f, and a mouth opening made proportional to s_f gives r = +1 (derived: Pearson r of a positive linear map)."""
    from types import SimpleNamespace

    from bench.discohead_grid import motion_stats

    n = 8
    scales = np.linspace(0.8, 1.1, n)

    class Motion:
        def __call__(self, source, driver):
            f = driver[:, 0, 0, 0].numpy() * 255          # each driver frame carries its index in pixel (0, 0)
            theta = torch.zeros(len(f), 2, 3)
            theta[:, 0, 0] = theta[:, 1, 1] = torch.from_numpy(scales[np.round(f).astype(int)]).float()
            return {"theta": theta}

    gen = SimpleNamespace(params=SimpleNamespace(head_motion="affine"), head_motion=Motion())
    frames = np.zeros((n, 8, 8, 3), np.uint8)
    frames[:, 0, 0, 0] = np.arange(n)
    lm = np.zeros((n, 68, 2), np.float32)
    lm[:, 36:42, 0], lm[:, 42:48, 0] = 0.0, 10.0           # inter-ocular distance 10 px
    for a, b in ((61, 67), (62, 66), (63, 65)):
        lm[:, b, 1] = 3.0 * scales                         # inner-lip gap 3 s_f px: opening 0.3 s_f
    clip = SimpleNamespace(frames=frames, landmarks=lm)
    got = motion_stats(gen, clip, 2, n, batch_frames=3)
    assert got["scale_min"] == pytest.approx(scales[2], abs=1e-6)
    assert got["scale_max"] == pytest.approx(scales[-1], abs=1e-6)
    assert got["scale_abs_dev"] == pytest.approx(np.mean(np.abs(scales[2:] - 1)), abs=1e-6)
    assert got["shift_abs"] == 0.0
    assert got["r_scale_mouth"] == pytest.approx(1.0, abs=1e-6)
    tps = SimpleNamespace(params=SimpleNamespace(head_motion="tps"))
    assert set(motion_stats(tps, clip, 2, n).values()) == {None}
