"""Train StyleTalk on the shared harness: `train_styletalk_disc` (D_sync, D_style) and `train_styletalk`.

    python -m stages.train_styletalk_disc        # D_sync + D_style on real sequences (then frozen)
    python -m stages.train_styletalk             # E_a, E_s, E_d + D_tem, the frozen discriminators' terms

Paper "Implementation Details": D_sync and D_style are trained first with Adam 1e-4 and frozen; E_a, E_s,
E_d and D_tem are then trained jointly (Adam 1e-4) with eq. 9's weights. What is the family's own here:
reading the clips (phones and expressions from the shard_labels sidecars, the style from the ingest
manifest), the bad-input quarantine, the data fingerprint, and the two exported files
(`discriminators.pt`, `styletalk.pt`).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate

from headflow.config import to_dict
from headflow.training.checkpoint import load_export, save_export
from headflow.generators.styletalk.data import ClipRejected, DiscSamples, StyleTalkClip, StyleTalkSamples, check_clip
from headflow.generators.styletalk.discriminators import SequencePatchDiscriminator, StyleDiscriminator, SyncDiscriminator
from headflow.generators.styletalk.losses import DiscNets, DiscStep, StyleTalkGanStep, StyleTalkStep
from headflow.generators.styletalk.model import StyleTalkNet, file_sha256, save_model
from headflow.generators.styletalk.params import DiscParams, StyleTalkParams

log = logging.getLogger("headflow")

DISC_FORMAT = "headflow.styletalk_disc/1"


def data_fingerprint(clips: list[StyleTalkClip]) -> str:
    """blake2b-128 of the clips' ids, styles, phones, expressions and validity, in order."""
    h = hashlib.blake2b(digest_size=16)
    for c in clips:
        h.update(f"{c.clip_id}|{c.style}|{c.expression_model}".encode())
        for arr in (c.phones, c.exp, c.valid):
            arr = np.ascontiguousarray(arr)
            h.update(f"{arr.dtype}|{arr.shape}".encode())
            h.update(arr.data)
    return h.hexdigest()


def screen_clips(clips: list[StyleTalkClip], min_frames: int, expression_model: str, n_exp: int,
                 classes: list[str] | None, stage: str) -> tuple[list[StyleTalkClip], list[dict]]:
    """The usable clips and quarantine rows for the others (`check_clip`; a style outside `classes`)."""
    keep, rejected = [], []
    for c in clips:
        try:
            check_clip(c, min_frames, expression_model, n_exp)
            if classes is not None and c.style not in classes:
                raise ClipRejected("unknown_style", f"clip {c.clip_id}: style {c.style!r} is not one D_style knows "
                                   f"({classes})")
        except ClipRejected as err:
            rejected.append({"clip_id": c.clip_id, "stage": stage, "reason_code": err.reason_code, "message": str(err)})
            continue
        keep.append(c)
    return keep, rejected


def _fixed_batch(ds, n: int, device) -> dict | None:
    if ds is None:
        return None
    return {k: v.to(device) for k, v in default_collate([ds[i] for i in range(n)]).items()}




# --------------------------------------------------------------------------------- the discriminators

def build_discriminators(params: DiscParams, n_exp: int, classes: list[str]) -> DiscNets:
    """D_sync and D_style of `params` for `n_exp` modes and the style `classes` (untrained)."""
    return DiscNets(SyncDiscriminator(params.sync, n_exp, params.window),
                    StyleDiscriminator(n_exp, params.style, classes))


def train_discriminators(train_clips: list[StyleTalkClip], val_clips: list[StyleTalkClip], params: DiscParams,
                         out_dir: Path, mouth_mean: torch.Tensor, mouth_basis: torch.Tensor, expression_model: str,
                         accelerator: str = "auto", progress: bool = True) -> dict[str, Any]:
    """Pretrain D_sync and D_style; export `out_dir/discriminators.pt`.

    Args:
        mouth_mean, mouth_basis: the mouth mesh (`geometry.MouthMesh` buffers) D_sync reads.

    Returns:
        {"history", "quarantine", "path", "sha256", "classes", "n_train_clips", "n_val_clips"}.

    Raises:
        ValueError: no style label at all, or no usable clip (one style only logs a warning).
    """
    from headflow.training.loop import fit
    from headflow.training.runtime import launch

    torch.set_num_threads(params.threads)
    n_exp = int(mouth_basis.shape[0])
    need = max(params.clip_len, 2 * params.min_shift + params.sync.frames + 1)
    train, rejected = screen_clips(train_clips, need, expression_model, n_exp, None, "train_styletalk_disc")
    classes = sorted({c.style for c in train})
    if not classes:
        raise ValueError("train_styletalk_disc: no training clip has a style label; check the `style` column or "
                         "set style_rule: speaker")
    if len(classes) < 2:
        # One style (a tiny or single-style corpus): D_style's softmax over one class is constant, so its
        # loss and the generator's style term carry no signal; D_sync still trains. Said loudly, not hidden.
        log.warning("train_styletalk_disc: only one style among the training clips (%s): D_style and the style "
                    "loss are constant; StyleTalk's style control needs at least two styles (check the `style` "
                    "column or set style_rule: speaker)", classes[0])
    val, rejected_val = screen_clips(val_clips, need, expression_model, n_exp, classes, "train_styletalk_disc")
    rt = launch(params.seed, params.loop.precision, accelerator)
    nets = build_discriminators(params, n_exp, classes)
    nets.sync.set_geometry(mouth_mean, mouth_basis)
    data = DiscSamples(train, classes, params.window, params.sync.frames, params.clip_len, params.min_shift,
                       params.edge, params.samples_per_epoch, params.seed)
    val_ds = DiscSamples(val, classes, params.window, params.sync.frames, params.clip_len, params.min_shift,
                         params.edge, 64, params.seed + 7919) if val else None
    step = DiscStep(nets, _fixed_batch(val_ds, 64, rt.device) if val_ds else None)
    # the recogniser (trained after, from its own block) is no part of the discriminators: changing it must not
    # restart their run
    family = {k: v for k, v in to_dict(params).items() if k not in ("loop", "threads", "recognizer")}
    settings = {"params": family, "classes": classes, "expression_model": expression_model}
    history = fit(rt, step, data, params.loop, out_dir / "run", loss_weights={"sync_bce": 1.0, "style_ce": 1.0},
                  settings=settings, fingerprint=data_fingerprint(train + val), name="styletalk discriminators",
                  select=("val_sync_acc", "max") if val_ds else None, progress=progress)
    sha = None
    path = out_dir / "discriminators.pt"
    if rt.is_main:
        sha = save_export({"format": DISC_FORMAT, "params": to_dict(params), "n_exp": n_exp, "classes": classes,
                     "expression_model": expression_model, "sync": nets.sync.state_dict(),
                     "style": nets.style.state_dict()}, path)
    return {"history": history, "quarantine": rejected + rejected_val, "path": path, "sha256": sha,
            "classes": classes, "n_train_clips": len(train), "n_val_clips": len(val)}


def load_discriminators(path: Path) -> tuple[SyncDiscriminator, StyleDiscriminator, dict]:
    """D_sync and D_style from `discriminators.pt`, frozen (eval mode, no gradients to their parameters).

    Raises:
        FileNotFoundError: no file (says how to make one); ValueError: another format.
    """
    from headflow.config import from_dict

    state = load_export(path, DISC_FORMAT, "StyleTalk discriminators",
                        "train them with `dvc repro train_styletalk_disc` or set train_styletalk.discriminators")
    params = from_dict(DiscParams, state["params"], "discriminators.params")
    nets = build_discriminators(params, state["n_exp"], state["classes"])
    nets.sync.load_state_dict(state["sync"])
    nets.style.load_state_dict(state["style"])
    meta = {k: v for k, v in state.items() if k not in ("sync", "style")}
    return nets.sync.requires_grad_(False).eval(), nets.style.requires_grad_(False).eval(), meta


# --------------------------------------------------------------------------------- the generator

def train_styletalk(train_clips: list[StyleTalkClip], val_clips: list[StyleTalkClip], params: StyleTalkParams,
                    out_dir: Path, expression_model: str, n_exp: int, lower: tuple[int, ...], upper: tuple[int, ...],
                    d_sync: SyncDiscriminator | None = None, d_style: StyleDiscriminator | None = None,
                    disc_sha: str | None = None, accelerator: str = "auto", progress: bool = True) -> dict[str, Any]:
    """Train E_a, E_s, E_d (and D_tem) with the frozen D_sync / D_style; export `out_dir/styletalk.pt`.

    Returns:
        {"history", "quarantine", "path", "sha256", "classes", "n_train_clips", "n_val_clips"}.

    Raises:
        ValueError: no usable clip, or the triplet term on clips of a single style.
    """
    from headflow.training.loop import fit
    from headflow.training.runtime import launch

    torch.set_num_threads(params.threads)
    classes = list(d_style.classes) if d_style is not None else None
    train, rejected = screen_clips(train_clips, params.data.clip_len, expression_model, n_exp, classes, "train_styletalk")
    val, rejected_val = screen_clips(val_clips, params.data.clip_len, expression_model, n_exp, classes, "train_styletalk")
    if not train:
        raise ValueError(f"train_styletalk: none of {len(train_clips)} training clips is usable "
                         f"({sorted({r['reason_code'] for r in rejected})})")
    classes = classes or sorted({c.style for c in train})
    if params.loss.trip > 0 and len({c.style for c in train}) < 2:
        raise ValueError("train_styletalk: the triplet term needs clips of at least two styles; set loss.trip: 0")
    rt = launch(params.seed, params.loop.precision, accelerator)
    net = StyleTalkNet(params.model, n_exp, lower, upper)
    d = params.data
    w = params.model.window
    data = StyleTalkSamples(train, classes, d.clip_len, d.style_len, w, d.edge, params.samples_per_epoch, params.seed)
    val_ds = StyleTalkSamples(val, classes, d.clip_len, d.style_len, w, d.edge, params.val_clips, params.seed + 7919,
                              fixed_epoch=0) if val else None
    val_batch = _fixed_batch(val_ds, params.val_clips, rt.device) if val_ds else None
    if d_sync is not None:
        d_sync = d_sync.to(rt.device)
    if d_style is not None:
        d_style = d_style.to(rt.device)
    if params.loss.tem > 0:
        step = StyleTalkGanStep(net, SequencePatchDiscriminator(n_exp, params.tem), params.loss, d_sync, d_style, val_batch)
    else:
        step = StyleTalkStep(net, params.loss, d_sync, d_style, val_batch)
    family = {k: v for k, v in to_dict(params).items() if k not in ("loop", "threads")}
    settings = {"params": family, "discriminators_sha256": disc_sha, "expression_model": expression_model,
                "lower": list(lower), "upper": list(upper), "classes": classes}
    fingerprint = data_fingerprint(train + val)
    history = fit(rt, step, data, params.loop, out_dir / "run", loss_weights=step.weights(), settings=settings,
                  fingerprint=fingerprint, name="styletalk", select=("val_l1", "min") if val_batch else None,
                  progress=progress)
    sha = None
    path = out_dir / "styletalk.pt"
    if rt.is_main:
        sha = save_model(net, to_dict(params), expression_model, path,
                         {"classes": classes, "discriminators_sha256": disc_sha, "data": fingerprint})
    return {"history": history, "quarantine": rejected + rejected_val, "path": path, "sha256": sha,
            "classes": classes, "n_train_clips": len(train), "n_val_clips": len(val)}


# --------------------------------------------------------------------------------- the stages

STAGE_DISC = "train_styletalk_disc"
STAGE = "train_styletalk"


def read_clips(rows, shards_root: Path, labels_root: Path, style_rule: str) -> tuple[list[StyleTalkClip], list[dict]]:
    """`StyleTalkClip`s of the rows (clip_id, split, speaker_id, style) that carry phones and expressions.

    Returns:
        (clips, quarantine rows for clips whose sidecar lacks phones or expressions).
    """
    from headflow.shards import read_clip

    clips, rejected = [], []
    for r in rows.itertuples():
        try:
            shard = read_clip(r.clip_id, ("phones", "expressions"), root=shards_root, labels_root=labels_root)
        except (ValueError, FileNotFoundError) as err:      # shard_labels lacks the source, or the whole sidecar
            code = "no_expressions" if "no expressions" in str(err) else "no_phones"
            rejected.append({"clip_id": r.clip_id, "stage": "", "reason_code": code, "message": str(err)})
            continue
        ph, ex = shard.phones, shard.expressions
        style = (r.style if isinstance(r.style, str) and r.style else "") if style_rule == "style" else r.speaker_id
        clips.append(StyleTalkClip(r.clip_id, np.asarray(ph.styletalk_index, np.int64), np.asarray(ex.exp, np.float32),
                                   np.asarray(ph.valid, bool) & np.asarray(ex.valid, bool), ex.model, style,
                                   r.speaker_id))
    return clips, rejected


def stage_rows(shards_path: Path, decisions_path: Path, clips_path: Path, labels_path: Path, splits: tuple[str, ...]):
    """The accepted shards (sync_check keep or shift) of `splits` with the ingest style and label flags."""
    from headflow.manifest import read_manifest
    from headflow.shards import accepted_clips

    rows = accepted_clips(decisions_path, shards_path)
    rows = rows[rows.split.isin(splits)]
    ingest = read_manifest(clips_path, "clips")[["clip_id", "style"]]
    labels = read_manifest(labels_path, "shard_labels")[["clip_id", "has_phones", "has_expressions"]]
    rows = rows.merge(ingest, on="clip_id", how="left").merge(labels, on="clip_id", how="left")
    return rows.sort_values("clip_id", ignore_index=True)


def _finish(stage: str, rows, result: dict, extra_rejected: list[dict], out_dir: Path, max_reject: float) -> None:
    from headflow.manifest import Quarantine
    from headflow.manifest.quarantine import check_accounting
    from headflow.stage import finish_quarantine

    quarantine = Quarantine(stage)
    source = dict(zip(rows.clip_id, rows.source_path))
    for q in extra_rejected + result["quarantine"]:
        quarantine.add(q["clip_id"], q["reason_code"], q["message"], source.get(q["clip_id"], ""))
    bad = {q["clip_id"] for q in quarantine.rows}
    used = [c for c in rows.clip_id if c not in bad]
    check_accounting(list(rows.clip_id), used, [q["clip_id"] for q in quarantine.rows], stage)
    finish_quarantine(quarantine, out_dir / "quarantine.parquet", len(rows), max_reject)


def _split_rows(rows, shards_path: Path, labels_path: Path, style_rule: str):
    clips, rejected = read_clips(rows, shards_path.parent, labels_path.parent, style_rule)
    split = dict(zip(rows.clip_id, rows.split))
    shifted = set(rows.clip_id[rows.action == "shift"])
    out: dict[str, list[StyleTalkClip]] = {"train": [], "val": []}
    for c in clips:
        if c.clip_id in shifted:        # phone labels follow the audio; sync_check moved this clip's audio
            rejected.append({"clip_id": c.clip_id, "stage": "", "reason_code": "audio_shifted",
                             "message": f"clip {c.clip_id}: sync_check shifted its audio; its phone labels would be "
                                        "off by that shift"})
            continue
        out[split[c.clip_id]].append(c)
    return out, rejected


def _paths(shards_path, decisions_path, clips_path, labels_path):
    from headflow.catalog import CATALOG

    return (Path(shards_path or CATALOG.manifest("shards", "shards")),
            Path(decisions_path or CATALOG.manifest("sync_check", "clips")),
            Path(clips_path or CATALOG.manifest("ingest", "clips")),
            Path(labels_path or CATALOG.manifest("shard_labels", "shard_labels")))


def run_disc_stage(params: DiscParams, progress: bool = True, accelerator: str = "auto", *,
                   shards_path: Path | None = None, decisions_path: Path | None = None, clips_path: Path | None = None,
                   labels_path: Path | None = None, out_dir: Path | None = None, model_dir: Path | None = None,
                   metrics_path: Path | None = None) -> dict:
    """The `train_styletalk_disc` stage: D_sync and D_style on the train split (validated on val)."""
    from headflow.catalog import CATALOG
    from headflow.generators.styletalk.geometry import MouthMesh
    from headflow.morphable.registry import load_model
    from headflow.stage import Timer, write_metrics

    shards_path, decisions_path, clips_path, labels_path = _paths(shards_path, decisions_path, clips_path, labels_path)
    out_dir = Path(out_dir or CATALOG.folder(STAGE_DISC))
    model_dir = Path(model_dir or CATALOG.model(STAGE_DISC, "discriminators"))
    metrics_path = Path(metrics_path or CATALOG.metrics(STAGE_DISC))
    rows = stage_rows(shards_path, decisions_path, clips_path, labels_path, ("train", "val"))
    by_split, rejected = _split_rows(rows, shards_path, labels_path, params.style_rule)
    model = load_model(params.morphable_model)
    mesh = MouthMesh(model, params.sync.n_points)
    with Timer() as timer:
        result = train_discriminators(by_split["train"], by_split["val"], params, model_dir, mesh.mean, mesh.basis,
                                      model.name, accelerator, progress)
    if result["sha256"] is None:
        return {}
    recognizer = fit_recognizer(by_split["train"], by_split["val"], params, model_dir, shards_path, labels_path) \
        if params.recognizer.steps > 0 else {}
    last = result["history"][-1]
    metrics = {"n_train_clips": result["n_train_clips"], "n_val_clips": result["n_val_clips"],
               "classes": result["classes"], "val_sync_acc": last.get("val_sync_acc"),
               "val_style_acc": last.get("val_style_acc"), "sync_bce": last.get("sync_bce"),
               "style_ce": last.get("style_ce"), "train_seconds": round(timer.seconds, 1),
               "samples_per_s": float(np.mean([h["samples_per_s"] for h in result["history"]])),
               "sha256": result["sha256"], **recognizer}
    write_metrics(metrics_path, metrics)
    _finish(STAGE_DISC, rows, result, [dict(q, stage=STAGE_DISC) for q in rejected], out_dir,
            params.max_reject_fraction)
    return metrics


def fit_recognizer(train: list[StyleTalkClip], val: list[StyleTalkClip], params: DiscParams, model_dir: Path,
                   shards_path: Path, labels_path: Path) -> dict[str, Any]:
    """Train the phone recogniser (`recognizer.py`, `params.recognizer`) on the training clips' aligned frame
    labels (`phone_valid` frames) and the shards' mel (the audio's own, unshifted: the labels follow the audio);
    export `model_dir/recognizer.pt`.

    Returns:
        Metrics: recognizer_seconds (reading included), recognizer_train_frames, recognizer_val_frame_acc
        (held-out speakers; None without val clips), recognizer_sha256.
    """
    import time

    from headflow.generators.styletalk.recognizer import LabelledAudio, frame_accuracy, save_recognizer, train_recognizer
    from headflow.shards import read_clip

    rp = params.recognizer
    t0 = time.perf_counter()

    def audio(clips: list[StyleTalkClip]) -> list[LabelledAudio]:
        out = []
        for c in clips:
            s = read_clip(c.clip_id, ("mel", "phones"), root=shards_path.parent, labels_root=labels_path.parent)
            out.append(LabelledAudio(np.asarray(s.mel, np.float32), np.asarray(s.phones.styletalk_index, np.int64),
                                     np.asarray(s.phones.valid, bool), s.fps))
        return out

    train_audio, val_audio = audio(train), audio(val)
    net = train_recognizer(train_audio, rp.steps, rp.batch, rp.lr, rp.width, rp.seed, rp.cmvn, rp.freq_mask,
                           rp.time_mask, rp.noise_copies)
    val_acc = round(frame_accuracy(net, val_audio), 4) if val_audio else None
    n_train = int(sum(c.valid.sum() for c in train_audio))
    sha = save_recognizer(net, Path(model_dir) / "recognizer.pt",
                          {"params": to_dict(rp), "train_clips": [c.clip_id for c in train], "train_frames": n_train,
                           "val_frame_acc": val_acc})
    return {"recognizer_seconds": round(time.perf_counter() - t0, 1), "recognizer_train_frames": n_train,
            "recognizer_val_frame_acc": val_acc, "recognizer_sha256": sha}


def resolve_discriminators(setting: str, disc_dir: Path) -> Path | None:
    """`train_styletalk.discriminators` -> a path ("trained": `disc_dir/discriminators.pt`), None for "none"."""
    if setting == "none":
        return None
    return Path(disc_dir) / "discriminators.pt" if setting == "trained" else Path(setting)


def run_stage(params: StyleTalkParams, progress: bool = True, accelerator: str = "auto", *,
              shards_path: Path | None = None, decisions_path: Path | None = None, clips_path: Path | None = None,
              labels_path: Path | None = None, disc_dir: Path | None = None, out_dir: Path | None = None,
              model_dir: Path | None = None, metrics_path: Path | None = None, plot_path: Path | None = None) -> dict:
    """The `train_styletalk` stage: the generator on the train split, validated on val; writes
    `model_dir/styletalk.pt`, `model_dir/run/` (harness checkpoints, history), quarantine, metrics, plot."""
    from headflow.catalog import CATALOG
    from headflow.generators.styletalk.geometry import mode_subsets
    from headflow.manifest import write_json
    from headflow.morphable.registry import load_model
    from headflow.stage import Timer, write_metrics

    shards_path, decisions_path, clips_path, labels_path = _paths(shards_path, decisions_path, clips_path, labels_path)
    disc_dir = Path(disc_dir or CATALOG.model(STAGE_DISC, "discriminators"))
    out_dir = Path(out_dir or CATALOG.folder(STAGE))
    model_dir = Path(model_dir or CATALOG.model(STAGE, "generator"))
    metrics_path = Path(metrics_path or CATALOG.metrics(STAGE))
    plot_path = Path(plot_path or CATALOG.plot(STAGE, "history"))
    rows = stage_rows(shards_path, decisions_path, clips_path, labels_path, ("train", "val"))
    by_split, rejected = _split_rows(rows, shards_path, labels_path, params.data.style_rule)
    model = load_model(params.morphable_model)
    lower, upper = mode_subsets(model.name, model.exp_names, model.n_exp)
    disc_path = resolve_discriminators(params.discriminators, disc_dir)
    d_sync = d_style = None
    disc_sha = None
    if disc_path is not None:
        d_sync, d_style, meta = load_discriminators(disc_path)
        disc_sha = file_sha256(disc_path)
        if meta["expression_model"] != model.name:
            raise ValueError(f"{disc_path} was trained on expressions of {meta['expression_model']!r}, this run uses "
                             f"{model.name!r}; retrain train_styletalk_disc")
    with Timer() as timer:
        result = train_styletalk(by_split["train"], by_split["val"], params, model_dir, model.name, model.n_exp, lower,
                                 upper, d_sync, d_style, disc_sha, accelerator, progress)
    if result["sha256"] is None:
        return {}
    history = result["history"]
    last = history[-1]
    metrics = {"n_train_clips": result["n_train_clips"], "n_val_clips": result["n_val_clips"],
               "epochs": len(history), "steps": int(last["step"]),
               **{k: last.get(k) for k in ("val_l1", "val_ssim", "val_p_sync", "val_style_acc", "rec", "trip", "sync",
                                           "style", "tem", "tem_d")},
               "train_sequences_per_s": float(np.mean([h["samples_per_s"] for h in history])),
               "train_seconds": round(timer.seconds, 1), "sha256": result["sha256"],
               "discriminators": str(disc_path) if disc_path else "none"}
    write_metrics(metrics_path, metrics)
    keys = ("epoch", "train_loss", "d_loss", "rec", "trip", "sync", "style", "tem", "tem_d", "val_l1", "val_ssim",
            "val_p_sync", "val_style_acc")
    write_json([{k: h.get(k) for k in keys if k in h} for h in history], plot_path)
    _finish(STAGE, rows, result, [dict(q, stage=STAGE) for q in rejected], out_dir, params.max_reject_fraction)
    return metrics
