"""The syncnet_v2.model loader: syncnet_python's parameter names and shapes, forward shapes, MFCC framing."""

import math

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


def _psf_mfcc_frame(frame: np.ndarray, sr: int = 16000, nfft: int = 512, nfilt: int = 26, numcep: int = 13,
                    lifter: int = 22) -> np.ndarray:
    """python_speech_features.mfcc of one pre-emphasised 400-sample frame, step by step, written from its
    documented algorithm (base.py / sigproc.py) with plain loops: no code shared with headflow's `mfcc`.

    power spectrum |rfft(frame, 512)|^2 / 512 (rectangular window); 26 triangular filters whose edges are
    FFT bins floor((nfft + 1) * hz / sr) at points evenly spaced on the mel scale 2595 log10(1 + hz / 700)
    from 0 Hz to sr / 2; log filter energies; DCT-II with orthonormal scaling; lifter
    1 + (L / 2) sin(pi n / L); coefficient 0 replaced by the log of the frame's total power.
    """
    spec = np.fft.rfft(frame, nfft)
    power = [(z.real ** 2 + z.imag ** 2) / nfft for z in spec]
    top = 2595 * math.log10(1 + (sr / 2) / 700)
    edges = [math.floor((nfft + 1) * 700 * (10 ** (top * i / (nfilt + 1) / 2595) - 1) / sr) for i in range(nfilt + 2)]
    log_energy = []
    for j in range(nfilt):
        lo, mid, hi = edges[j], edges[j + 1], edges[j + 2]
        e = sum(power[i] * (i - lo) / (mid - lo) for i in range(lo, mid))
        e += sum(power[i] * (hi - i) / (hi - mid) for i in range(mid, hi))
        log_energy.append(math.log(e))
    out = []
    for n in range(numcep):
        scale = math.sqrt(1 / nfilt) if n == 0 else math.sqrt(2 / nfilt)
        c = scale * sum(log_energy[m] * math.cos(math.pi * n * (2 * m + 1) / (2 * nfilt)) for m in range(nfilt))
        out.append(c * (1 + lifter / 2 * math.sin(math.pi * n / lifter)))
    out[0] = math.log(sum(power))
    return np.array(out)


def test_mfcc_framing_matches_syncnet_python():
    rng = np.random.default_rng(0)
    audio = (rng.normal(size=16000) * 3000).astype(np.int16)       # 1 s
    cep = mfcc(audio)
    # python_speech_features works in float64 (int16 samples times the float pre-emphasis coefficient),
    # and so does `mfcc`.
    assert cep.dtype == np.float64
    assert cep.shape == (1 + int(np.ceil((16000 - 400) / 160)), 13)  # 100 Hz, 25 ms frames
    x = audio.astype(float)
    x = np.append(x[0], x[1:] - 0.97 * x[:-1])
    # Every coefficient of several frames (the first, interior ones, the last, zero-padded one) against
    # the step-by-step reference; frame k starts at sample 160 k.
    for k in (0, 3, 50, len(cep) - 1):
        frame = np.concatenate([x[160 * k:160 * k + 400], np.zeros(max(0, 160 * k + 400 - len(x)))])
        np.testing.assert_allclose(cep[k], _psf_mfcc_frame(frame), rtol=1e-9, atol=1e-9, err_msg=f"frame {k}")
    # Known constants: silence gives zero power, which python_speech_features replaces by float eps,
    # so coefficient 0 is log(eps) = log(2^-52) = -36.04 and the DCT of a constant log energy is zero
    # beyond coefficient 0.
    silent = mfcc(np.zeros(1600, np.int16))
    np.testing.assert_allclose(silent[:, 0], -52 * math.log(2))
    np.testing.assert_allclose(silent[:, 1:], 0, atol=1e-9)
    w = audio_windows(cep, 25)
    assert w.shape == (20, 1, 13, 20)         # frame 19 is the last whose 4f..4f+20 fits in 99
    # syncnet_python feeds the network `torch.from_numpy(cc.astype(float)).float()`: float32 copies of
    # the float64 MFCCs. audio_windows returns exactly that cast (no tolerance needed: casting is
    # deterministic), so keeping `mfcc` in float64 and the windows in float32 matches both steps.
    assert w.dtype == np.float32
    for f in (0, 2, 19):                      # video frame f pairs with MFCC frames 4f..4f+20
        np.testing.assert_array_equal(w[f, 0], cep[4 * f:4 * f + 20].T.astype(np.float32))
    assert not np.array_equal(w[2, 0], cep[9:29].T.astype(np.float32))


def test_a_corrupt_weights_file_is_a_clear_error_not_unpickling_advice(tmp_path):
    # torch's own error suggests weights_only=False, an unsafe load of an untrusted file; ours names the file.
    bad = tmp_path / "syncnet_v2.model"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match=r"syncnet_v2.model: cannot be read as syncnet_python's") as info:
        load_syncnet(bad)
    assert "weights_only" not in str(info.value)
