"""The syncnet_v2.model loader: syncnet_python's parameter names and shapes, forward shapes, MFCC framing."""

import numpy as np
import pytest
import torch

from headflow.metrics.syncnet import SyncNetV2, audio_windows, load_syncnet, mfcc


def _bn(prefix, c):
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}


def _released_shapes() -> dict:
    """syncnet_python's SyncNetModel.S state_dict (name -> shape), written out from its layer list."""
    s = {}
    for i, (cin, cout, k) in zip([0, 4, 8, 11, 14, 18], [(1, 64, (3, 3)), (64, 192, (3, 3)), (192, 384, (3, 3)),
                                                          (384, 256, (3, 3)), (256, 256, (3, 3)), (256, 512, (5, 4))]):
        s[f"netcnnaud.{i}.weight"], s[f"netcnnaud.{i}.bias"] = (cout, cin, *k), (cout,)
        s.update(_bn(f"netcnnaud.{i + 1}", cout))
    for i, (cin, cout, k) in zip([0, 4, 8, 11, 14, 18], [(3, 96, (5, 7, 7)), (96, 256, (1, 5, 5)), (256, 256, (1, 3, 3)),
                                                          (256, 256, (1, 3, 3)), (256, 256, (1, 3, 3)), (256, 512, (1, 6, 6))]):
        s[f"netcnnlip.{i}.weight"], s[f"netcnnlip.{i}.bias"] = (cout, cin, *k), (cout,)
        s.update(_bn(f"netcnnlip.{i + 1}", cout))
    for head in ("netfcaud", "netfclip"):
        s[f"{head}.0.weight"], s[f"{head}.0.bias"] = (512, 512), (512,)
        s.update(_bn(f"{head}.1", 512))
        s[f"{head}.3.weight"], s[f"{head}.3.bias"] = (1024, 512), (1024,)
    return s


def test_released_state_dict_loads_and_embeds(tmp_path):
    shapes = _released_shapes()
    assert {k: tuple(v.shape) for k, v in SyncNetV2().state_dict().items()} == shapes
    g = torch.Generator().manual_seed(0)
    state = {k: (torch.tensor(7) if k.endswith("num_batches_tracked") else
                 torch.rand(v, generator=g) + (0.5 if "running_var" in k else 0)) for k, v in shapes.items()}
    path = tmp_path / "syncnet_v2.model"
    torch.save(state, path)
    model = load_syncnet(path)
    assert torch.equal(model.state_dict()["netcnnlip.18.weight"], state["netcnnlip.18.weight"])
    with torch.no_grad():
        assert model.embed_audio(torch.zeros(2, 1, 13, 20)).shape == (2, 1024)
        assert model.embed_face(torch.zeros(2, 3, 5, 224, 224)).shape == (2, 1024)
    del state["netfclip.3.bias"]
    torch.save(state, path)
    with pytest.raises(ValueError, match="missing.*netfclip.3.bias"):
        load_syncnet(path)


def test_missing_weights_name_the_registry_entry(monkeypatch, tmp_path):
    from headflow.models import MissingWeights

    monkeypatch.setenv("HEADFLOW_MODELS", str(tmp_path))
    with pytest.raises(MissingWeights, match="syncnet_v2.model"):
        load_syncnet()


def test_mfcc_framing_matches_syncnet_python():
    rng = np.random.default_rng(0)
    audio = (rng.normal(size=16000) * 3000).astype(np.int16)       # 1 s
    cep = mfcc(audio)
    assert cep.shape == (1 + int(np.ceil((16000 - 400) / 160)), 13)  # 100 Hz, 25 ms frames
    x = audio.astype(float)
    x = np.append(x[0], x[1:] - 0.97 * x[:-1])
    frame = x[160 * 3:160 * 3 + 400]                                  # 4th frame: log energy of its 512-pt spectrum
    assert cep[3, 0] == pytest.approx(np.log((np.abs(np.fft.rfft(frame, 512)) ** 2).sum() / 512))
    w = audio_windows(cep, 25)
    assert w.shape == (20, 1, 13, 20)         # frame 19 is the last whose 4f..4f+20 fits in 99 and np.array_equal(w[2, 0], cep[8:28].T)
