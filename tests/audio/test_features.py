"""The audio_features stage on made-up clips: cached mel, statistics, quarantine of silent audio."""

import numpy as np
import pandas as pd
import soundfile as sf

from headflow.audio.features import run_audio_features
from headflow.audio.params import AudioFeaturesParams
from headflow.validation import validate_manifest


def _clips(tmp_path, levels):
    rows = []
    for i, level in enumerate(levels):
        path = tmp_path / "media" / f"c{i}-000000000{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(i)
        sf.write(path, (level * rng.uniform(-1, 1, 32000)).astype(np.float32), 16000, subtype="PCM_16")
        rows.append({"clip_id": path.stem, "source_path": f"x/{i}.mp4", "audio_path": f"media/{path.name}",
                     "n_frames": 50, "fps": 25})
    return pd.DataFrame(rows)


def test_features_are_cached_per_clip_and_silence_is_quarantined(tmp_path):
    clips = _clips(tmp_path, [0.3, 0.0001, 0.5])
    res = run_audio_features(clips, AudioFeaturesParams(workers=1), tmp_path / "out", project_root=tmp_path,
                             progress=False)
    assert list(res.quarantine.frame().reason_code) == ["silent_audio"]
    feats = res.features
    assert list(feats.clip_id) == ["c0-0000000000", "c2-0000000002"]
    assert validate_manifest(feats, "audio_features").success
    mel = np.load(tmp_path / feats.mel_path[0])
    assert mel.shape == (161, 80) and feats.n_valid_windows[0] == 46   # (161 - 16) * 25 / 80 -> frames 0..45
    assert sorted(p.name for p in (tmp_path / "out" / "mel").iterdir()) == ["c0-0000000000.npy", "c2-0000000002.npy"]
