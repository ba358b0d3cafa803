"""Train the lip-sync expert: the expert's side of the training harness (`headflow.training`).

    python -m stages.train_expert                                 # CPU or one GPU
    torchrun --nproc_per_node=4 -m stages.train_expert            # DDP; rank 0 logs and checkpoints

What is the expert's own: balanced sync / off-sync pairs (`SyncPairs`), batched augmentation of
the face and mel windows (`ExpertStep.prepare`), the loss (`ExpertStep.g_losses`: one term,
"sync_bce", the binary cross-entropy of the cosine-similarity sync probability, Wav2Lip's
`color_syncnet_train.py`), the held-out evaluation (loss, balanced accuracy, TPR, TNR at 0.5) and
the ln 2 stall rule. Everything else (devices, DDP, seeding, the sampler, the learning-rate
schedule, checkpoints and the resume rule, DVCLive and the JSON history) is the harness's.

Wav2Lip users report the expert sitting at loss ln 2 = 0.693 for days: the embeddings collapse to
"always 0.5". The harness's stall watch warns once the running loss has stayed within
`loop.stall_tolerance` of ln 2 for `loop.stall_steps` steps after warm-up, with what usually helps.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import DataLoader

from headflow.nn.expert import GREY_INPUTS, ExpertConfig, SyncExpert, sync_loss, sync_probability
from headflow.sync.config import TrainConfig, expert_loop
from headflow.sync.data import Augment, ClipArrays, SyncPairs, augment_batch, prepare_clip, to_float, warp_mel
from headflow.training.checkpoint import CheckpointError, Fingerprint, load_checkpoint, save_checkpoint
from headflow.training.loop import MAY_CHANGE, fit
from headflow.training.runtime import Accelerator, launch
from headflow.training.stall import StallRule

__all__ = ["TrainConfig", "expert_loop", "ExpertStep", "LOSS_WEIGHTS", "STALL", "train_expert", "evaluate",
           "data_fingerprint", "training_settings", "load_expert", "save_expert"]

log = logging.getLogger("headflow.expert")
LN2 = math.log(2)
LOSS_WEIGHTS = {"sync_bce": 1.0}
"""The expert's only loss term, unweighted (a single term needs no weight in params.yaml)."""
STALL = StallRule(
    value=LN2, meaning="ln 2: the embeddings predict 0.5 for everything",
    advice="lower the learning rate (1e-4 or below) or lengthen the warm-up; keep batches balanced (half "
           "positives) with enough other-clip negatives; check that face and audio windows are aligned (a "
           "constant offset in the data makes sync unlearnable)")


@torch.no_grad()
def evaluate(model: SyncExpert, data: SyncPairs, batch_size: int, device: str | torch.device | None = None,
             mirror: bool = False, groups: Sequence[str | None] | None = None) -> dict:
    """Loss and balanced accuracy (threshold 0.5) of `model` on a fixed set of pairs.

    Args:
        model: the expert (left in eval mode).
        data: fixed pairs (`SyncPairs`; faces uint8 (15, 48, 96), mels (1, 80, 16), labels 1 = in sync).
        batch_size: pairs per forward pass.
        device: default: the model's.
        mirror: test-time averaging over the horizontal mirror: the sync probability is the mean of the
            window's and its mirror image's (both with the same mel). Training draws mirrored windows
            with probability 1/2 (`Augment.mirror`), so both views are in the training distribution.
        groups: optional label per pair (len(data) of them, e.g. the speaking style of the pair's face clip,
            `SyncPairs.face_clip`); None labels are left out of the breakdown.

    Returns:
        {"loss": BCE, "balanced_accuracy": (TPR + TNR) / 2, "tpr": ..., "tnr": ...}, each in [0, 1]
        except the loss (>= 0); with `groups`, also "by_group": {label: {"balanced_accuracy", "tpr",
        "tnr", "n_pos", "n_neg"}} over the pairs with that label, at the same 0.5 threshold.

    Raises:
        ValueError: `groups` of another length than `data`.
    """
    if groups is not None and len(groups) != len(data):
        raise ValueError(f"groups: one label per pair expected ({len(data)}), got {len(groups)}")
    device = device or next(model.parameters()).device
    model.eval()
    probs, labels = [], []
    for face, mel, y in DataLoader(data, batch_size=batch_size):
        face, mel = to_float(face.to(device)), mel.to(device)
        p = sync_probability(*model(face, mel))
        if mirror:
            p = 0.5 * (p + sync_probability(*model(face.flip(-1), mel)))
        probs.append(p.cpu())
        labels.append(y)
    p, y = torch.cat(probs), torch.cat(labels)
    loss = torch.nn.functional.binary_cross_entropy(p, y.float()).item()
    overall = _rates(p > 0.5, y > 0.5)
    out = {"loss": loss, **{k: overall[k] for k in ("balanced_accuracy", "tpr", "tnr")}}   # the history's fields
    if groups is not None:
        label = np.array(groups, dtype=object)
        out["by_group"] = {g: _rates(p[torch.from_numpy(label == g)] > 0.5, y[torch.from_numpy(label == g)] > 0.5)
                           for g in sorted({g for g in groups if g is not None})}
    return out


def _rates(pred: torch.Tensor, pos: torch.Tensor) -> dict:
    """Balanced accuracy, TPR, TNR (each in [0, 1]; a rate over no pairs counts as 0) and the class counts
    of boolean predictions `pred` against boolean labels `pos` (True = in sync)."""
    n_pos, n_neg = int(pos.sum().item()), int((~pos).sum().item())
    tpr = (pred & pos).sum().item() / max(n_pos, 1)
    tnr = (~pred & ~pos).sum().item() / max(n_neg, 1)
    return {"balanced_accuracy": 0.5 * (tpr + tnr), "tpr": tpr, "tnr": tnr, "n_pos": n_pos, "n_neg": n_neg}


class ExpertStep:
    """The expert for the harness: one network, one loss term, batched augmentation, evaluation.

    Batches are `SyncPairs` samples collated: (face uint8 (B, 15, 48, 96), mel (B, 1, 80, 16),
    label (B,) with 1 = in sync).
    """

    stall = STALL

    def __init__(self, model: SyncExpert, cfg: TrainConfig, val_data: SyncPairs):
        self.generator = model
        self.cfg, self.val_data = cfg, val_data
        self.aug = Augment(rotate_deg=cfg.augment_rotate_deg, scale=cfg.augment_scale, shift=cfg.augment_shift,
                           blur_sigma=cfg.augment_blur_sigma, jpeg_quality=cfg.augment_jpeg_quality,
                           gamma=cfg.augment_gamma, light_gradient=cfg.augment_light_gradient)
        self.colour = cfg.model.face_input not in GREY_INPUTS

    def prepare(self, batch, generator: torch.Generator):
        """Faces to float in [0, 1]; with `augment`, random geometry / colour of the faces and a
        frequency warp of the mels, drawn from `generator` (the step's: resuming repeats them)."""
        face, mel, y = batch
        face = to_float(face)
        if self.cfg.augment:
            face = augment_batch(face, generator, self.aug, colour=self.colour)
            mel = warp_mel(mel, generator, self.cfg.augment_mel_warp)
        return face, mel, y

    def g_losses(self, batch) -> dict[str, torch.Tensor]:
        face, mel, y = batch
        fe, ae = self.generator(face, mel)
        return {"sync_bce": sync_loss(fe, ae, y)}

    def evaluate(self, model: SyncExpert) -> dict[str, float]:
        return {f"val_{k}": v for k, v in evaluate(model, self.val_data, self.cfg.loop.batch_size).items()}


def training_settings(cfg: TrainConfig) -> dict:
    """The expert's settings as the checkpoint stores them: every `TrainConfig` field but `loop`
    (the harness stores that itself), whatever subclass `cfg` is (the stage's params add fields
    that do not shape training, such as `threads`)."""
    return {f.name: asdict(cfg)[f.name] for f in fields(TrainConfig) if f.name != "loop"}


def train_expert(train_clips: list[ClipArrays], val_clips: list[ClipArrays], cfg: TrainConfig, out_dir: Path,
                 accelerator: Accelerator = "auto", progress: bool = True,
                 live_dir: Path | None | Literal["default"] = "default") -> list[dict]:
    """Train (or resume from `out_dir/last.pt`) and return the per-epoch history.

    Writes (rank 0): `last.pt` every epoch, `best.pt` at the best validation balanced accuracy,
    `history.json` (per epoch: train loss, `sync_bce`, val loss / balanced accuracy / TPR / TNR,
    learning rate, samples/s, data-wait and augmentation (`prepare_fraction`) shares of the epoch's
    time, the stall flag), DVCLive in `out_dir/dvclive` (`live_dir`). A checkpoint resumes only with
    the same settings (except `loop.epochs`, `loop.num_workers`) and the same clips.

    Args:
        train_clips, val_clips: per-clip arrays (raw: the expert's clip-level centring is applied here).
        cfg: a `TrainConfig` (the stage passes its `TrainExpertParams`).
        out_dir: the checkpoint folder.
        accelerator: "auto" (CUDA when available), "cpu", "cuda".
        progress: tqdm bar per epoch.
        live_dir: DVCLive folder ("default": `out_dir/dvclive`; None: off).

    Raises:
        ValueError: settings out of range; clips without a complete window (from `SyncPairs`).
    """
    cfg.validate()
    rt = launch(cfg.loop.seed, cfg.loop.precision, accelerator)
    model = SyncExpert(cfg.model)
    fingerprint = data_fingerprint(train_clips, val_clips)
    train_clips = [prepare_clip(model, c) for c in train_clips]   # whole-clip centring, as the scorer does
    val_clips = [prepare_clip(model, c) for c in val_clips]
    seed = cfg.loop.seed
    train_data = SyncPairs(train_clips, cfg.samples_per_epoch, seed, cfg.min_shift, cfg.other_clip_fraction)
    val_data = SyncPairs(val_clips, cfg.val_samples, seed + 1, cfg.min_shift, cfg.other_clip_fraction)
    return fit(rt, ExpertStep(model, cfg, val_data), train_data, cfg.loop, Path(out_dir),
               loss_weights=LOSS_WEIGHTS, settings=training_settings(cfg), fingerprint=fingerprint,
               may_change=MAY_CHANGE, select=("val_balanced_accuracy", "max"), live_dir=live_dir, name="expert",
               progress=progress)


def data_fingerprint(train_clips: list[ClipArrays], val_clips: list[ClipArrays]) -> str:
    """Digest of the training and validation clips (ids, speakers, fps, crops, mels, valid masks) in order.

    Stored in each checkpoint: a run resumes only on the data it was trained on.
    """
    fp = Fingerprint()
    for part, clips in (("train", train_clips), ("val", val_clips)):
        fp.update(part)
        for c in clips:
            fp.update(f"{c.clip_id}|{c.speaker}|{c.fps}")
            for arr in (c.mouths, c.mel, c.valid):
                fp.update(arr)
    return fp.hexdigest()


def load_expert(path: Path, device: str = "cpu") -> SyncExpert:
    """A trained expert (eval mode) from a checkpoint written by `train_expert` or `save_expert`.

    A run with `loop.ema_decay` > 0 loads the EMA copy of the weights: the network the harness evaluated
    each epoch and selected `best.pt` on, so the loaded expert is the one the history's figures describe.

    Raises:
        FileNotFoundError: no file at `path` (the message says how to train one).
        ValueError: a checkpoint of another layout (e.g. written before the training harness) or
            without the expert's settings; retrain it.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"expert checkpoint {path} not found; train it with `dvc repro train_expert`")
    try:
        state = load_checkpoint(path, device)
        cfg = ExpertConfig(**state["settings"]["family"]["model"])
        # With `loop.ema_decay` > 0 the harness evaluated (and selected best.pt on) the EMA copy: that is
        # the expert the figures describe, so it is the one loaded.
        weights = state["ema"] if state.get("ema") is not None else state["networks"]["generator"]
    except (CheckpointError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a lip-sync expert checkpoint this version can load ({err}); retrain it "
                         "with `dvc repro train_expert` (or `python -m stages.train_expert`)") from err
    model = SyncExpert(cfg).to(device)
    model.load_state_dict(weights)
    return model.eval()


def save_expert(model: SyncExpert, path: Path) -> None:
    """Write `model` as a checkpoint `load_expert` reads (no optimiser state: it cannot be resumed).

    For experts built outside `train_expert` (tests, converted weights).
    """
    save_checkpoint({"settings": {"loop": None, "family": {"model": asdict(model.config)}}, "data": None,
                     "epoch": 0, "step": 0, "networks": {"generator": model.state_dict()}, "optimizers": {},
                     "ema": None, "stall": None, "history": [], "best": None}, Path(path))
