"""Head2HeadFS reenactment baselines: retrieval by NMFC distance, the random-initialisation fine-tuning
(table 2's ablation) and their generated.parquet rows and mask sidecars."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from headflow.generators.head2headfs.data import synthetic_clip
from headflow.generators.head2headfs.params import FinetuneHead2HeadFSParams, tiny_params


def test_retrieve_nearest_returns_the_stored_frame_for_an_equal_query():
    from headflow.generators.head2headfs.generate import retrieval_frames, retrieve_nearest

    rng = np.random.default_rng(0)
    bank = rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
    order = np.array([3, 7, 0, 11, 3])
    assert retrieve_nearest(bank[order], bank).tolist() == order.tolist()
    assert retrieve_nearest(bank[order], bank, size=8).tolist() == order.tolist()      # downsampled first
    assert retrieve_nearest(bank[order], bank, chunk=2).tolist() == order.tolist()     # chunking changes nothing
    # any query: the index of the smallest L2 distance, as a plain loop finds it
    query = rng.integers(0, 256, (9, 16, 16, 3), dtype=np.uint8)
    d = ((query[:, None].astype(np.float64) - bank[None]) ** 2).sum(axis=(2, 3, 4))
    assert retrieve_nearest(query, bank).tolist() == d.argmin(1).tolist()
    # the baseline's frames and masks are those of the retrieved fine-tuning frames
    clip = synthetic_clip(10, "t", 16, seed=3)
    frames, masks = retrieval_frames(clip.nmfc[[6, 2]], clip.frames, clip.nmfc, clip.masks)
    want = retrieve_nearest(clip.nmfc[[6, 2]], clip.nmfc)
    assert np.array_equal(frames, clip.frames[want]) and masks.dtype == np.float32
    assert np.array_equal(masks, clip.masks[want].astype(np.float32))
    with pytest.raises(ValueError, match="bank of NMFC frames is empty"):
        retrieve_nearest(bank[:1], bank[:0])
    with pytest.raises(ValueError, match="same"):
        retrieve_nearest(bank[:, :8, :8], bank)


def test_random_init_differs_from_the_init_stage_with_the_same_architecture(tmp_path):
    from headflow.generators.head2headfs.finetune import finetune_target, random_initialised
    from headflow.generators.head2headfs.model import Discriminators, Renderer, load_person
    from headflow.losses.perceptual import PerceptualLoss

    p = tiny_params()
    torch.manual_seed(0)
    init_r, init_d = Renderer(p.model), Discriminators(p, 2)        # stands in for init.pt's networks
    state = torch.get_rng_state()
    rand_r, rand_d = random_initialised(p, 2, seed=1)
    assert torch.equal(torch.get_rng_state(), state)                 # the global RNG is left as it was
    again_r, _ = random_initialised(p, 2, seed=1)
    for a, b in ((init_r, rand_r), (init_d, rand_d)):
        sa, sb = a.state_dict(), b.state_dict()
        assert list(sa) == list(sb) and all(sa[k].shape == sb[k].shape for k in sa)
        weights = [k for k in sa if k.endswith("weight") and sa[k].dim() == 4]
        assert weights and all(not torch.equal(sa[k], sb[k]) for k in weights)
    assert all(torch.equal(x, y) for x, y in zip(rand_r.state_dict().values(), again_r.state_dict().values()))

    clip = synthetic_clip(12, "new", p.model.image_size, seed=5)
    ft = FinetuneHead2HeadFSParams(frames=10, min_frames=5, samples_per_epoch=1,
                                   loop=dataclasses.replace(FinetuneHead2HeadFSParams().loop, epochs=1))
    perceptual = PerceptualLoss("weight_free", input_range="[-1,1]")
    out = {}
    for name, (r, d) in {"init": (init_r, init_d), "random_init": (rand_r, rand_d)}.items():
        res = finetune_target(clip, p, r, d, ft, tmp_path / name, perceptual, "0" * 64, "cpu", progress=False)
        out[name] = load_person(res["generator"], p.model)[0].state_dict()   # same architecture as the params
    assert list(out["init"]) == list(out["random_init"])
    assert all(out["init"][k].shape == out["random_init"][k].shape for k in out["init"])
    assert not torch.equal(out["init"]["to_frame.weight"], out["random_init"]["to_frame.weight"])


def test_baseline_rows_and_mask_sidecars_follow_the_contract(tmp_path):
    import pandas as pd

    from headflow.evaluate.stage import _gen_key, read_generated_manifests
    from headflow.generators.head2headfs.generate import output_masks, output_row, write_masks
    from headflow.manifest.generated import masks_path, write_generated
    from headflow.manifest.schemas import GENERATED

    videos = tmp_path / "generate_head2headfs" / "videos"
    sha = "ab" * 32
    rows = []
    for kind, variants in (("self", ["default", "default+retrieval", "default+random_init"]),
                           ("cross", ["default", "default+random_init"])):
        task = {"speaker": "t", "target_clip": "t_1", "driver": "t_2" if kind == "self" else "u_1", "kind": kind}
        for v in variants:
            suffix = "" if v == "default" else "." + v.split("+")[1]
            path = videos / f"{task['driver']}.t.{kind}{suffix}.mp4"
            rows.append(output_row(task, v, path, 20, sha))
            pred = output_masks(np.full((20, 8, 8), 0.75, np.float32))
            write_masks(path, pred, np.ones((20, 256, 256), bool) if kind == "self" else None)
    df = write_generated(pd.DataFrame(rows, columns=GENERATED.names), tmp_path / "generated.parquet")
    got, invalid = read_generated_manifests([tmp_path / "generated.parquet"], tmp_path)
    assert not invalid and len(got) == 5 and len({_gen_key(r) for r in got}) == 5
    by = df.set_index(["clip_id", "variant"])
    self_rows = by.loc["t_2.t.self"]
    # the baselines are the system's task: same source, driver, audio, protocol and frame range
    for col in ("source_clip", "driver_clip", "audio_clip", "protocol", "frame_start", "frame_end", "output_kind"):
        assert self_rows[col].nunique() == 1, col
    assert self_rows.source_clip.iloc[0] == "t_2" and by.loc[("u_1.t.cross", "default"), "source_clip"] == "t_1"
    assert set(df.variant) == {"default", "default+retrieval", "default+random_init"}
    assert (df.frame_start == 0).all() and (df.frame_end == 20).all() and (df.protocol == "reenactment").all()
    with np.load(masks_path(by.loc[("t_2.t.self", "default+retrieval"), "output_path"])) as z:
        assert z["pred"].shape == (20, 256, 256) and z["pred"].all() and z["reference"].all()
        assert (int(z["frame_start"]), int(z["frame_end"])) == (0, 20)
    with np.load(masks_path(by.loc[("u_1.t.cross", "default+random_init"), "output_path"])) as z:
        assert "reference" not in z.files                                   # no ground truth in cross
