"""The generate_stylemap stage on four synthetic clips: outputs per the contract and quarantine rows for bad inputs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from headflow.generators.stylemap.model import StylemapGenerator, save_generator
from headflow.generators.stylemap.params import GenerateStylemapParams, tiny_params

N = 8


def _shard(face: bool, fitted: bool, seed: int):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (N, 256, 256, 3), dtype=np.uint8)
    transform = np.tile(np.eye(2, 3), (N, 1, 1)) if face else np.full((N, 2, 3), np.nan)
    points = rng.uniform(60, 200, (68, 2)).astype(np.float32)       # not degenerate: the landmark baseline fits them
    landmarks = np.tile(points, (N, 1, 1)) if face else np.full((N, 68, 2), np.nan, np.float32)
    expr = SimpleNamespace(angles=np.zeros((N, 3), np.float32), valid=np.full(N, fitted))
    return SimpleNamespace(crop256=SimpleNamespace(pixels=pixels, transform=transform, landmarks=landmarks),
                           expressions=expr, valid=np.full(N, face))


@pytest.mark.slow
def test_outputs_and_reason_codes(tmp_path, monkeypatch):
    import headflow.catalog as catalog
    from headflow.generators.stylemap.generate import Measures, run_stage
    from headflow.metrics.transfer import identity_interval, pose_intervals, transfer_identity
    from headflow.manifest import read_manifest
    from headflow.manifest.generated import read_synthetic_tag

    params = tiny_params()
    save_generator(StylemapGenerator(params.model), params, tmp_path / "model" / "generator.pt", {"mean_pose": [0, 0, 0]})
    # a (neutral, p) and b (smiling, q) are good; c has no face; d has no fitted pose.
    # style_pairs: a -> b, b -> d, c -> d, d -> b (another style and speaker, in id order)
    spec = {"a": ("neutral", "p", True, True), "b": ("smiling", "q", True, True), "c": ("smiling", "q", False, True),
            "d": ("neutral", "r", True, False)}
    rows = []
    for i, (c, (style, speaker, _, _)) in enumerate(spec.items()):
        np.save(tmp_path / f"{c}.npy", np.zeros((60, 80), np.float32))     # 60 mel frames: all 8 video frames scored
        sf.write(tmp_path / f"{c}.wav", np.zeros(16000, np.float32), 16000)
        rows.append({"clip_id": c, "split": "test", "style": style, "speaker_id": speaker, "fps": 25.0, "n_frames": N,
                     "source_path": f"src/{c}.mp4", "audio_path": str(tmp_path / f"{c}.wav"),
                     "mel_path": str(tmp_path / f"{c}.npy")})
    monkeypatch.setattr(catalog, "expert_clips", lambda *a: pd.DataFrame(rows))
    shards = {c: _shard(face, fit, i) for i, (c, (_, _, face, fit)) in enumerate(spec.items())}
    out = tmp_path / "out"
    metrics = run_stage(
        GenerateStylemapParams(max_reject_fraction=0.9), progress=False, model_dir=tmp_path / "model", out_dir=out,
        metrics_path=tmp_path / "metrics.json", read_shard=lambda c: shards[c],
        measures=Measures(pose_intervals, transfer_identity, identity_interval))
    everything = read_manifest(out / "generated.parquet", "generated")
    gen = everything[everything.variant == "default"]
    assert sorted(gen.clip_id) == ["a.reconstruction", "a.transfer", "b.reconstruction", "d.transfer"]
    # the landmark baseline: one row per reconstruction output, same task and range, its own video; the
    # landmarks do not move, so every warped frame is the source crop (frame 0) itself, up to the codec
    base = everything[everything.variant == "default+landmark_similarity"].set_index("clip_id")
    assert sorted(base.index) == ["a.reconstruction", "b.reconstruction"]
    assert (base.frame_start == 1).all() and (base.frame_end == N).all() and (base.protocol == "reconstruction").all()
    from headflow.media.normalize import read_frames

    warped = np.stack(list(read_frames(base.at["a.reconstruction", "output_path"])))
    assert warped.shape == (N - 1, 256, 256, 3)
    # noise frames lose much to x264's 4:2:0 chroma (~45 grey levels), independent noise frames differ by ~85
    to_source = np.abs(warped.astype(float) - shards["a"].crop256.pixels[0]).mean()
    assert to_source < 0.7 * np.abs(warped.astype(float) - shards["a"].crop256.pixels[3]).mean()
    ident = pd.read_parquet(out / "transfer_identity.parquet")
    assert sorted(ident.clip_id) == ["a.transfer", "d.transfer"] and (ident.frames == 7).all()
    assert metrics["baseline_outputs"] == 2 and metrics["identity_outputs"] == 2 and metrics["pose_clips"] == 2
    tr = gen.set_index("clip_id")
    assert tr.at["a.transfer", "driver_clip"] == "b" and tr.at["a.transfer", "style_clip"] == "b"
    assert tr.at["a.reconstruction", "driver_clip"] == "a" and (gen.frame_start == 1).all() and (gen.frame_end == N).all()
    assert read_synthetic_tag(tr.at["a.transfer", "output_path"])["headflow_family"] == "stylemap"
    q = pd.read_parquet(out / "quarantine.parquet").set_index("clip_id").reason_code.to_dict()
    assert q == {"b.transfer": "no_fitted_pose", "c.reconstruction": "no_face", "c.transfer": "no_face",
                 "d.reconstruction": "no_fitted_pose"}
    assert metrics["outputs"] == 4 and metrics["quarantined"] == 4 and metrics["frames"] == 4 * (N - 1)
