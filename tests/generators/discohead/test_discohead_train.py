"""train_discohead's parts: unusable clips, fixed validation frames, fingerprint, resume equivalence."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from headflow.generators.discohead.model import load_generator
from headflow.generators.discohead.params import _with, tiny_params
from headflow.generators.discohead.train import data_fingerprint, split_usable, train_discohead, validation_batch
from tests.generators.discohead.conftest import synthetic_clip


def test_clips_without_usable_frames_become_quarantine_rows():
    good = synthetic_clip(30, "good", seed=0)
    no_audio = dataclasses.replace(synthetic_clip(30, "short_audio", seed=1), mel=np.zeros((20, 80), np.float32))
    blind = synthetic_clip(30, "no_eyes", seed=2)
    blind.landmarks[:, 36:48] = np.nan
    keep, rows = split_usable([good, no_audio, blind])
    assert [c.clip_id for c in keep] == ["good"]
    assert [(r["clip_id"], r["reason_code"]) for r in rows] == [("short_audio", "no_usable_frames"),
                                                                 ("no_eyes", "no_usable_frames")]


def test_validation_batch_is_fixed_and_uses_the_first_frame_as_source():
    clips = [synthetic_clip(30, "v", seed=3)]
    a, b = validation_batch(clips, tiny_params()), validation_batch(clips, tiny_params())
    assert all(torch.equal(a[k], b[k]) for k in a)
    first = torch.from_numpy(clips[0].frames[0]).permute(2, 0, 1).float() / 255
    assert all(torch.equal(s, first) for s in a["source"])


def test_fingerprint_changes_with_the_data():
    clip = synthetic_clip(30, "a", seed=0)
    other = dataclasses.replace(clip, mel=clip.mel + 1)
    assert data_fingerprint([clip]) != data_fingerprint([other])
    assert data_fingerprint([clip]) == data_fingerprint([synthetic_clip(30, "a", seed=0)])


@pytest.mark.slow      # three tiny training runs (Fabric, DVCLive, checkpoints): ~10 s idle, minutes on a loaded machine
def test_resumed_run_equals_an_uninterrupted_one(tmp_path):
    # Two epochs in one run vs one epoch, then a second run of the same settings raised to two epochs
    # (`loop.epochs` may change on resume): the exported weights must be identical.
    clips, val = [synthetic_clip(30, "a", seed=1), synthetic_clip(30, "b", seed=2)], [synthetic_clip(25, "v", seed=3)]
    two = _with(tiny_params(), loop={"epochs": 2})
    whole = train_discohead(clips, val, two, tmp_path / "whole", accelerator="cpu", progress=False)
    train_discohead(clips, val, tiny_params(), tmp_path / "parts", accelerator="cpu", progress=False)
    parts = train_discohead(clips, val, two, tmp_path / "parts", accelerator="cpu", progress=False)
    assert int(parts["history"][-1]["step"]) == int(whole["history"][-1]["step"]) == 4
    a, _ = load_generator(whole["generator"])
    b, _ = load_generator(parts["generator"])
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert [r["l1"] for r in parts["history"]] == [r["l1"] for r in whole["history"]]
