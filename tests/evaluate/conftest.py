"""Fixtures of the evaluation tests: a tiny project of real faces, scored once per session."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

CLIPS = {
    "astro_a-000000000a": ("astronaut", "test", 24, 0),
    "astro_b-000000000b": ("astronaut", "test", 24, 1),
    "hopper_a-000000000c": ("grace_hopper", "test", 24, 2),
    "hopper_t-000000000d": ("grace_hopper", "train", 20, 3),
}
TEST_CLIPS = sorted(c for c, v in CLIPS.items() if v[1] == "test")


def tiny_params(**kw):
    """EvaluateParams shrunk for tests: 2 sampled frames, a +-3 frame sync scan, one process."""
    from headflow.evaluate.params import EvaluateParams

    base = dict(sample_frames=2, max_offset=3, min_pairs=3, workers=1, n_boot=200, report_clips=2)
    base.update(kw)
    return EvaluateParams(**base)


@pytest.fixture(scope="session")
def eval_project(tmp_path_factory) -> Path:
    """The tiny project (ingest, faces, audio_features manifests, media, mels, untrained judge and expert)."""
    from fixture import build_project

    root = tmp_path_factory.mktemp("evaluate") / "project"
    build_project(root, CLIPS)
    return root


def copy_project(src: Path, dst: Path) -> Path:
    """A copy of the fixture project without the evaluate outputs (each stage run gets its own)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("evaluate", "reports", "generate_*"))
    return dst


def write_generated_outputs(root: Path) -> dict[str, str]:
    """Generated outputs of two fake families under `root`, good and bad; returns {output: expected verdict}.

    copycat: reconstruction of astro_a = its exact frames (an identical video), of hopper_a = exact
    256x256 aligned crops (the aligned geometry), of astro_b = a video without audio; dubbing: a video
    one frame short, a file of garbage bytes, a missing file. blank: a grey video with audio (no face);
    its other reconstruction tasks are not generated at all.
    """
    import numpy as np
    import pandas as pd
    import soundfile as sf

    from fixture import read_clip
    from headflow.evaluate.crops import cut
    from headflow.manifest.generated import dubbing_pairs, mark_synthetic, write_generated
    from headflow.media import encode_video

    lm = pd.read_parquet(root / "data/interim/faces/landmarks.parquet")
    pairs = dubbing_pairs(TEST_CLIPS)
    out = root / "data/interim/generate_copycat"
    out.mkdir(parents=True, exist_ok=True)
    rows, verdicts = [], {}

    def row(family, cid, src, kind, name, n, protocol="reconstruction", audio=None):
        return dict(clip_id=cid, family=family, variant="default", seed=0, protocol=protocol, source_clip=src,
                    audio_clip=audio or src, driver_clip=None, style_clip=None, references=[0], output_kind=kind,
                    output_path=f"data/interim/generate_copycat/{name}", fps=25.0, frame_start=0, frame_end=n,
                    checkpoint_sha256="ab" * 32)

    a, b, h = TEST_CLIPS        # astro_a, astro_b, hopper_a
    fa, fb, fh = (read_clip(root, c) for c in (a, b, h))
    wav = {c: sf.read(root / f"data/interim/ingest/media/{c}.wav", dtype="float32")[0] for c in TEST_CLIPS}
    np.savez(out / "a_exact.npz", frames=np.stack(fa))
    rows.append(row("copycat", "rec_a", a, "images", "a_exact.npz", len(fa)))
    verdicts["rec_a"] = "ok"
    m256 = np.stack(lm[lm.clip_id == h].sort_values("frame").crop_transform.to_numpy()).reshape(-1, 2, 3)
    np.savez(out / "h_aligned.npz", frames=np.stack([cut(f, m, 256) for f, m in zip(fh, m256)]))
    rows.append(row("copycat", "rec_h", h, "images", "h_aligned.npz", len(fh)))
    verdicts["rec_h"] = "ok"
    encode_video(fb, out / "b_silent.mp4", crf=12, preset="ultrafast", threads=1)
    rows.append(row("copycat", "rec_b", b, "video", "b_silent.mp4", len(fb)))
    verdicts["rec_b"] = "no_audio"
    encode_video(fa[:-1], out / "a_short.mp4", crf=12, preset="ultrafast", threads=1, audio=wav[pairs[a]])
    mark_synthetic(out / "a_short.mp4", "copycat", "ab" * 32, [a, pairs[a]])
    rows.append(row("copycat", "dub_a", a, "video", "a_short.mp4", len(fa), "dubbing", pairs[a]))
    verdicts["dub_a"] = "wrong_frame_count"
    (out / "b_garbage.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    rows.append(row("copycat", "dub_b", b, "video", "b_garbage.mp4", len(fb), "dubbing", pairs[b]))
    verdicts["dub_b"] = "unreadable"
    rows.append(row("copycat", "dub_h", h, "video", "h_missing.mp4", len(fh), "dubbing", pairs[h]))
    verdicts["dub_h"] = "missing_output"
    grey = [np.full_like(fa[0], 128) for _ in fa]
    encode_video(grey, out / "blank_a.mp4", crf=12, preset="ultrafast", threads=1, audio=wav[a])
    rows.append(row("blank", "rec_a", a, "video", "blank_a.mp4", len(fa)))
    verdicts["blank/rec_a"] = "no_face"
    write_generated(rows, out / "generated.parquet")
    return verdicts


@pytest.fixture(scope="session")
def evaluated(eval_project, tmp_path_factory):
    """The fixture project with generated outputs, after one run of the evaluate stage: (root, metrics, seconds)."""
    import time

    from headflow.evaluate.stage import run_stage

    root = copy_project(eval_project, tmp_path_factory.mktemp("evaluated") / "project")
    verdicts = write_generated_outputs(root)
    t = time.perf_counter()
    metrics = run_stage(tiny_params(), root=root, progress=False)
    return root, metrics, verdicts, time.perf_counter() - t
