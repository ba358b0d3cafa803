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


def test_wrong_sample_rate_short_and_unreadable_audio_are_quarantined(tmp_path):
    """The three other reason codes, each on the input that must get it, next to one good clip."""
    clips = _clips(tmp_path, [0.3])
    rng = np.random.default_rng(5)
    media = tmp_path / "media"
    sf.write(media / "r-00000000aa.wav", (0.3 * rng.uniform(-1, 1, 88200)).astype(np.float32), 44100, subtype="PCM_16")
    # 0.1 s = 1600 samples: ~11 mel frames at 80/s, short of one 16-frame (0.2 s) window
    sf.write(media / "s-00000000bb.wav", (0.3 * rng.uniform(-1, 1, 1600)).astype(np.float32), 16000, subtype="PCM_16")
    (media / "u-00000000cc.wav").write_bytes(b"not a wav file at all" * 10)
    extra = [{"clip_id": stem, "source_path": f"x/{stem}.mp4", "audio_path": f"media/{stem}.wav", "n_frames": 50,
              "fps": 25} for stem in ("r-00000000aa", "s-00000000bb", "u-00000000cc")]
    clips = pd.concat([clips, pd.DataFrame(extra)], ignore_index=True)
    res = run_audio_features(clips, AudioFeaturesParams(workers=1), tmp_path / "out", project_root=tmp_path,
                             progress=False)
    q = res.quarantine.frame().set_index("clip_id")
    assert q.reason_code.to_dict() == {"r-00000000aa": "wrong_sample_rate", "s-00000000bb": "audio_too_short",
                                       "u-00000000cc": "unreadable"}
    assert "44100 Hz, expected 16000" in q.message["r-00000000aa"]
    assert "0.10 s gives no complete 0.2 s mel window" in q.message["s-00000000bb"]
    assert "u-00000000cc.wav" in q.message["u-00000000cc"]
    assert list(res.features.clip_id) == ["c0-0000000000"]
    assert sorted(p.name for p in (tmp_path / "out" / "mel").iterdir()) == ["c0-0000000000.npy"]
