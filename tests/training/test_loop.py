"""The harness on a toy GAN family (tiny MLPs on 8x8 images): named terms, D/G alternation, lazy R1,
EMA, sample grids, DVCLive series, the weight-name check, and resume == straight."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from headflow.training.config import LoopConfig
from headflow.training.loop import fit
from headflow.training.runtime import launch

WEIGHTS = {"g_adv": 1.0, "g_mean": 0.5, "d_real": 1.0, "d_fake": 1.0, "r1": 0.1}


class Squares(Dataset):
    """n 8x8 grey images, each a bright 3x3 square at a fixed random place on a dark background."""

    def __init__(self, n: int = 32):
        g = torch.Generator().manual_seed(123)
        self.images = torch.full((n, 1, 8, 8), 0.1)
        for i, (r, c) in enumerate(torch.randint(0, 6, (n, 2), generator=g).tolist()):
            self.images[i, :, r:r + 3, c:c + 3] = 0.9
        self.epochs: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


class ToyGAN:
    """The family side: networks, named unweighted terms, R1 hook, per-step noise from the harness's generator."""

    def __init__(self):
        self.generator = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 64), nn.Sigmoid())
        self.discriminator = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
        self.calls: list[str] = []
        self.untouched: list[bool] = []     # did the other network's update leave this one alone?
        self._snapshot: list[torch.Tensor] | None = None

    def _snap(self, net: nn.Module) -> None:
        self._snapshot = [p.detach().clone() for p in net.parameters()]

    def _same(self, net: nn.Module) -> None:
        if self._snapshot is not None:
            self.untouched.append(all(torch.equal(a, p) for a, p in zip(self._snapshot, net.parameters())))

    def prepare(self, batch: torch.Tensor, generator: torch.Generator):
        z = torch.randn(len(batch), 4, generator=generator).to(batch.device)
        return batch, z

    def fake(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z).view(-1, 1, 8, 8)

    def d_losses(self, batch):
        real, z = batch
        self._same(self.discriminator)      # the G update before must not have moved D
        self.calls.append("d")
        with torch.no_grad():
            fake = self.fake(z)
        self._snap(self.generator)
        return {"d_real": F.softplus(-self.discriminator(real)).mean(),
                "d_fake": F.softplus(self.discriminator(fake)).mean()}

    def d_real_logits(self, batch):
        self.calls.append("r1")
        real = batch[0].detach().requires_grad_(True)
        return real, self.discriminator(real)

    def g_losses(self, batch):
        _, z = batch
        self._same(self.generator)          # the D updates before must not have moved G
        self.calls.append("g")
        fake = self.fake(z)
        self._snap(self.discriminator)
        return {"g_adv": F.softplus(-self.discriminator(fake)).mean(), "g_mean": (fake.mean() - 0.3) ** 2}

    def samples(self, batch, generator: nn.Module) -> torch.Tensor:
        z = torch.linspace(-1, 1, 64).view(16, 4)
        return generator(z).view(-1, 1, 8, 8)

    def evaluate(self, generator: nn.Module) -> dict[str, float]:
        with torch.no_grad():
            return {"fake_mean": float(generator(torch.zeros(8, 4)).mean())}


def loop(epochs: int, **kw) -> LoopConfig:
    return LoopConfig(**{"epochs": epochs, "batch_size": 16, "lr": 2e-3, "betas": (0.5, 0.99), "r1_every": 3,
                         "ema_decay": 0.5, **kw})


def train(tmp, epochs: int, weights=WEIGHTS, fingerprint: str = "toy", n: int = 32, live_dir="default", **kw):
    rt = launch(seed=7, accelerator="cpu")
    family = ToyGAN()                       # built after launch: seeded initial weights
    data = Squares(n)
    history = fit(rt, family, data, loop(epochs, **kw), tmp, loss_weights=weights, settings={"toy": 1},
                  fingerprint=fingerprint, select=("fake_mean", "max"), progress=False, live_dir=live_dir)
    return family, data, history


def test_toy_gan_logs_every_term_alternates_d_and_g_and_runs_r1_every_k(tmp_path):
    family, data, history = train(tmp_path, epochs=2, n=48)    # 48 images / 16 = 3 steps per epoch, 6 steps
    # One D update, R1 on steps 0 and 3 (every r1_every = 3), then one G update, per step.
    expected = [c for s in range(6) for c in (["d", "r1", "g"] if s % 3 == 0 else ["d", "g"])]
    assert family.calls == expected
    assert family.untouched and all(family.untouched)         # neither update moves the other network
    assert data.epochs[-2:] == [0, 1]
    for row in history:
        for name in ("g_adv", "g_mean", "d_real", "d_fake", "r1", "train_loss", "d_loss", "fake_mean", "lr"):
            assert name in row, name
        # train_loss is the weighted sum of G's terms (means of sums = sums of means).
        assert row["train_loss"] == pytest.approx(row["g_adv"] + 0.5 * row["g_mean"], rel=1e-6)
        assert row["d_loss"] == pytest.approx(row["d_real"] + row["d_fake"], rel=1e-6)
        assert row["r1"] >= 0
    for name in ("g_adv", "g_mean", "d_real", "d_fake", "r1", "fake_mean"):
        lines = (tmp_path / "dvclive/plots/metrics" / f"{name}.tsv").read_text().splitlines()
        assert len(lines) == 1 + 2, name                       # header + one value per epoch
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    g, ema = state["networks"]["generator"], state["ema"]
    assert not all(torch.equal(g[k], ema[k]) for k in g)      # the EMA copy lags the trained G
    launch(seed=7, accelerator="cpu")
    initial = ToyGAN().generator.state_dict()                  # the same seeded initial weights
    assert not any(torch.equal(initial[k], ema[k]) for k in ema)   # ... but it follows G (update runs)
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "history.json").is_file()
    from PIL import Image

    grid = Image.open(tmp_path / "samples/epoch_002.png")
    assert grid.size == (2 + 4 * 10, 2 + 4 * 10)               # 16 samples of 8x8, 4 per row, 2 px gaps


def test_two_steps_then_resume_equals_four_steps_straight(tmp_path):
    _, _, straight = train(tmp_path / "a", epochs=2, live_dir=None)
    _, _, first = train(tmp_path / "b", epochs=1, live_dir=None)
    _, _, resumed = train(tmp_path / "b", epochs=2, live_dir=None)
    assert len(first) == 1 and [r["step"] for r in resumed] == [2, 4]
    a = torch.load(tmp_path / "a/last.pt", weights_only=True)
    b = torch.load(tmp_path / "b/last.pt", weights_only=True)
    for part in ("generator", "discriminator"):
        assert all(torch.equal(a["networks"][part][k], b["networks"][part][k]) for k in a["networks"][part])
    assert all(torch.equal(a["ema"][k], b["ema"][k]) for k in a["ema"])
    timing = {"samples_per_s", "data_wait_fraction", "prepare_fraction", "seconds"}
    assert [{k: v for k, v in r.items() if k not in timing} for r in straight] == \
           [{k: v for k, v in r.items() if k not in timing} for r in resumed]


def test_other_data_is_not_resumed(tmp_path, caplog):
    train(tmp_path, epochs=1, live_dir=None)
    with caplog.at_level(logging.WARNING, logger="headflow.training"):
        _, _, history = train(tmp_path, epochs=2, fingerprint="other corpus", live_dir=None)
    assert [r["epoch"] for r in history] == [1, 2]
    assert any("other data" in r.getMessage() and "starting afresh" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("weights, missing, extra", [
    ({k: v for k, v in WEIGHTS.items() if k != "g_mean"}, "g_mean", None),
    ({**WEIGHTS, "perceptual": 1.0}, None, "perceptual"),
])
def test_loss_weights_must_name_exactly_the_terms(tmp_path, weights, missing, extra):
    with pytest.raises(ValueError) as err:
        train(tmp_path, epochs=1, weights=weights, live_dir=None)
    text = str(err.value)
    assert "terms returned" in text and "loss_weights names" in text     # both sets are named
    assert (missing or extra) in text


def test_max_minutes_stops_after_the_epoch_that_runs_out_and_a_resume_continues(tmp_path, caplog):
    # A budget of ~0 s runs out during the first epoch: one of three epochs is trained, checkpointed
    # and logged; resuming with no budget trains the remaining two (loop.max_minutes may change).
    with caplog.at_level(logging.WARNING, logger="headflow.training"):
        _, _, first = train(tmp_path, epochs=3, live_dir=None, max_minutes=1e-9)
    assert [r["epoch"] for r in first] == [1]
    assert "max_minutes" in caplog.text and "after epoch 1 of 3" in caplog.text
    _, _, resumed = train(tmp_path, epochs=3, live_dir=None)
    assert [r["epoch"] for r in resumed] == [1, 2, 3]
    with pytest.raises(ValueError, match="max_minutes"):
        loop(1, max_minutes=0).validate()


def test_stop_epoch_trains_the_first_epochs_of_the_longer_schedule(tmp_path):
    # 2 of a 3-epoch cosine schedule equal the first two epochs of the full 3-epoch run (same LR per step),
    # not a 2-epoch run (whose cosine ends sooner).
    _, _, stopped = train(tmp_path / "a", epochs=3, live_dir=None, stop_epoch=2, lr_schedule="cosine")
    _, _, full = train(tmp_path / "b", epochs=3, live_dir=None, lr_schedule="cosine")
    _, _, short = train(tmp_path / "c", epochs=2, live_dir=None, lr_schedule="cosine")
    assert [r["epoch"] for r in stopped] == [1, 2]
    assert [r["lr"] for r in stopped] == [r["lr"] for r in full[:2]] != [r["lr"] for r in short]
    with pytest.raises(ValueError, match="stop_epoch"):
        loop(2, stop_epoch=3).validate()


def test_sync_batchnorm_only_under_multi_process_cuda_and_the_conversion_keeps_the_state():
    """SyncBatchNorm applies under DDP on CUDA only (no CPU kernel); converting keeps every BN state entry,
    so checkpoints load either way, and a checkpoint from before the setting may still resume."""
    from torch import nn

    from headflow.training.loop import MAY_CHANGE, sync_batchnorm_applies

    cfg = LoopConfig(epochs=1, batch_size=2, lr=1e-3)
    assert cfg.sync_batchnorm is True
    assert sync_batchnorm_applies(cfg, 2, "cuda")
    assert not sync_batchnorm_applies(cfg, 1, "cuda") and not sync_batchnorm_applies(cfg, 2, "cpu")
    assert not sync_batchnorm_applies(LoopConfig(epochs=1, batch_size=2, lr=1e-3, sync_batchnorm=False), 2, "cuda")
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Sequential(nn.Conv3d(1, 2, 1), nn.BatchNorm3d(2)))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    nn.SyncBatchNorm.convert_sync_batchnorm(net)          # what fit does, in place
    assert isinstance(net[1], nn.SyncBatchNorm) and isinstance(net[2][1], nn.SyncBatchNorm)
    after = net.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    assert "loop.sync_batchnorm" in MAY_CHANGE
