"""ingest -> faces -> audio_features -> shards on a tiny demo corpus (3 clips, 192 px), in a temporary project."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from headflow import params as P

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_tiny_corpus_to_shards(tmp_path, monkeypatch, project_root):
    from headflow.audio.stage import run_stage as audio_features
    from headflow.demo.stage import run_stage as demo_corpus
    from headflow.faces.stage import run_stage as faces
    from headflow.ingest.stage import run_stage as ingest
    from headflow.shards import read_clip
    from headflow.shards.stage import run_stage as shards

    yaml = project_root / "params.yaml"
    monkeypatch.chdir(tmp_path)
    demo_corpus(replace(P.load("demo_corpus", yaml), n_clips=3, frame_size=192, bad_inputs=False, workers=1),
                progress=False)
    ingest(replace(P.load("ingest", yaml), face_probe_frames=2), progress=False)
    audio_features(replace(P.load("audio_features", yaml), workers=1), progress=False)
    faces(replace(P.load("faces", yaml), workers=1), progress=False)
    metrics = shards(replace(P.load("shards", yaml), workers=1), progress=False)

    accepted = pd.read_parquet("data/interim/faces/faces.parquet").merge(
        pd.read_parquet("data/interim/audio_features/audio_features.parquet"), on="clip_id")
    table = pd.read_parquet("data/interim/shards/shards.parquet")
    q = pd.read_parquet("data/interim/shards/quarantine.parquet")
    assert len(accepted) == len(table) + len(q) and len(table) >= 2           # rows in = out + quarantined
    print(f"shards: {metrics['clips']} clips, {metrics['frames']} frames, {metrics['mb_per_clip']} MB/clip, "
          f"{metrics['kb_per_frame']} KB/frame, {metrics['clips_per_s']} clips/s, compression {metrics['compression']}")
    for r in table.itertuples():
        shard = read_clip(r.clip_id, views=("face96", "crop256", "mouth", "eyes", "mel"))
        assert shard.crop256.pixels.shape == (r.n_frames, 256, 256, 3) and shard.mel.shape == (r.n_mel_frames, 80)
        v = np.flatnonzero(shard.valid)
        # a real face: the lips' landmarks lie inside the mouth box and the eyes inside the eye box
        assert ((shard.mouth.landmarks[v, 48:68] >= 0) & (shard.mouth.landmarks[v, 48:68] < 96)).all()
        eyes = shard.eyes.landmarks[v, 36:48]
        assert ((eyes[..., 0] >= 0) & (eyes[..., 0] < 160) & (eyes[..., 1] >= 0) & (eyes[..., 1] < 64)).all()
        assert shard.crop256.pixels[v].std() > 10                             # pixels, not an empty crop
