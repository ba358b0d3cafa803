"""generate_styletalk's phone labels: the forced aligner's when the clip has them, else the phone recogniser's
(`recognizer: auto`), else a no_phones rejection; and train_styletalk_disc's recogniser export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from headflow.generators.styletalk.data import ClipRejected, StyleTalkClip
from headflow.generators.styletalk.generate import read_styletalk_clip
from headflow.generators.styletalk.recognizer import PhoneRecognizer, mel_windows, recognise
from headflow.shards import read_clip
from headflow.shards.store import write_shard

N = 30          # video frames at 25 fps
N_MEL = 90      # 80 mel frames per second: 96 would cover all 30 windows; 90 leaves frames 24..29 without one


def _write(root: Path, clip_id: str, with_phones: bool) -> None:
    rng = np.random.default_rng(len(clip_id))
    write_shard(root / "shards" / "clips" / f"{clip_id}.npz",
                {"valid": np.ones(N, bool), "mel": rng.normal(0, 1, (N_MEL, 80)).astype(np.float32)},
                {"speaker_id": "spk", "split": "test", "fps": 25.0, "views": {}})
    arrays = {"exp": rng.normal(0, 1, (N, 6)).astype(np.float32), "angles": np.zeros((N, 3), np.float32),
              "translation": np.zeros((N, 2), np.float32), "scale": np.ones(N, np.float32),
              "expression_valid": np.ones(N, bool)}
    if with_phones:
        arrays |= {"phone_index": np.full(N, 5, np.int16), "styletalk_index": np.full(N, 4, np.int16),
                   "phone_valid": np.ones(N, bool)}
    write_shard(root / "labels" / "clips" / f"{clip_id}.npz", arrays,
                {"has_phones": with_phones, "has_expressions": True, "has_nmfc": False, "expression_model": "test"})


class _Calls:
    """A recogniser factory that counts how often generation asks for the network."""

    def __init__(self):
        import torch

        torch.manual_seed(0)
        self.net, self.n = PhoneRecognizer(8, cmvn=True).eval(), 0

    def __call__(self) -> PhoneRecognizer:
        self.n += 1
        return self.net


def test_a_clip_without_phone_labels_gets_the_recognisers_labels_of_its_length(tmp_path):
    _write(tmp_path, "untranscribed", with_phones=False)
    calls = _Calls()
    clip, recognised = read_styletalk_clip("untranscribed", tmp_path / "shards", tmp_path / "labels", "calm", calls)
    assert recognised and calls.n == 1 and isinstance(clip, StyleTalkClip)
    assert len(clip.phones) == N == len(clip.exp) == len(clip.valid)
    # frames 0..23 have a full 16-frame mel window (int(80 t / 25) + 16 <= 90 -> t <= 23); the rest are invalid, SIL
    assert clip.valid.tolist() == [True] * 24 + [False] * 6
    assert np.all(clip.phones[24:] == 31) and np.all((clip.phones >= 0) & (clip.phones < 41))
    mel = read_clip("untranscribed", ("mel",), root=tmp_path / "shards").mel
    assert np.array_equal(clip.phones, recognise(calls.net, mel, N)[0])     # the shard's own (unshifted) mel
    assert len(mel_windows(mel, N)[1]) == 24
    assert clip.style == "calm" and clip.speaker == "spk" and clip.expression_model == "test"


def test_the_forced_aligners_labels_are_used_when_present(tmp_path):
    _write(tmp_path, "transcribed", with_phones=True)
    calls = _Calls()
    clip, recognised = read_styletalk_clip("transcribed", tmp_path / "shards", tmp_path / "labels", "", calls)
    assert not recognised and calls.n == 0        # the recogniser is never loaded
    assert np.all(clip.phones == 4) and clip.valid.all()


def test_without_a_recogniser_a_clip_without_labels_is_rejected_as_no_phones(tmp_path):
    _write(tmp_path, "untranscribed", with_phones=False)
    with pytest.raises(ClipRejected, match="has no phones") as err:
        read_styletalk_clip("untranscribed", tmp_path / "shards", tmp_path / "labels", "", None)
    assert err.value.reason_code == "no_phones"


def test_the_disc_stage_exports_a_recogniser_trained_on_the_train_clips_labels(tmp_path):
    from headflow.generators.styletalk.params import tiny_disc_params
    from headflow.generators.styletalk.recognizer import load_recognizer
    from headflow.generators.styletalk.train import fit_recognizer

    for cid in ("a", "b"):
        _write(tmp_path, cid, with_phones=True)
    clips = [StyleTalkClip(c, np.full(N, 4), np.zeros((N, 6), np.float32), np.ones(N, bool), "test") for c in "ab"]
    out = fit_recognizer(clips[:1], clips[1:], tiny_disc_params(), tmp_path / "models",
                         tmp_path / "shards" / "shards.parquet", tmp_path / "labels" / "shard_labels.parquet")
    assert out["recognizer_train_frames"] == N and 0 <= out["recognizer_val_frame_acc"] <= 1
    net, meta = load_recognizer(tmp_path / "models" / "recognizer.pt")
    assert meta["train_clips"] == ["a"] and meta["params"]["steps"] == tiny_disc_params().recognizer.steps
    assert net.cmvn == tiny_disc_params().recognizer.cmvn
