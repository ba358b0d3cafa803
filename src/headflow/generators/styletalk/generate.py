"""Generation with StyleTalk: phonemes of a driving clip + a style clip -> expression sequence -> mesh with
the target's identity and head pose -> NMFC (the existing renderer) and a shaded render video.

Head2HeadFS (which renders NMFC to photoreal video) does not exist yet, so the video is the Lambertian
shaded mesh in the 256x256 aligned crop (`headflow.nmfc.render.render_shaded`), with the driving audio;
the NMFC sequence is written beside it (`nmfc/<output>.nmfc.zip`, the fit3dmm layout) for a renderer to
pick up later: families compose through data. Per output, `expressions/<output>.npz` holds the generated
coefficients and the projected 68 landmarks in crop pixels (`exp` (N, K), `landmarks68` (N, 68, 2),
`landmarks68_fit` (the clip's own fitted expressions, same projection), `frame_start`, `frame_end`,
`style_clip`): the sidecar `headflow.manifest.generated.landmarks3d_path` names, what the evaluate stage's
`m_lmd_3d` reads.

Inference follows the released `inference_for_demo.py`: each frame's 2w + 1 phoneme window (SIL beyond the
utterance, `data.edge`), the style clip's expressions (its middle `style_len` frames; shorter clips are
masked, never padded with frames), one decoder pass per frame window.

Baselines of the issue, written beside the system's outputs in the same run, on the same tasks and frames, with
the same sidecars and render path (`params.baselines`, on `params.baseline_protocols`):

- `replay` (variant `<variant>+replay`): the style clip's own fitted expressions replayed on the utterance's
  frames (`replay_expressions`: frame f shows the style clip's frame f mod T_s: looped, or cut);
- `neutral` (variant `<variant>+neutral`): the decoder with the neutral style code, the mean style code of the
  training clips (`neutral_style_code`; training clips = the train split's shards that sync_check accepted
  without shifting their audio, as `train_styletalk` reads them).

The paper compares against other methods (Table 1), not these two; they isolate what the style clip and the
style code each contribute. The evaluate stage compares the system's variant against them
(`headflow.evaluate.aggregate.compare`, same-run variant baselines).

Phone labels come from the forced aligner (`align` -> `shard_labels`). A clip without them (no transcript) is
labelled by the phone recogniser (`recognizer.py`, trained by `train_styletalk_disc`) when
`generate_styletalk.recognizer` is "auto" (`read_styletalk_clip`); the outputs it drives are marked with the
variant "<variant>_recognised_phones" in generated.parquet (not "+": that names a same-run baseline) and `phones_source` in their expressions npz.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from headflow.generators.styletalk.data import ClipRejected, check_clip, phone_windows, StyleTalkClip
from headflow.generators.styletalk.geometry import project, to_crop_points
from headflow.generators.styletalk.model import StyleTalkNet
from headflow.generators.styletalk.params import EdgeRule

CROP = 256


def middle_style(exp: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """The middle `length` frames of a style clip (released `get_video_style_clip(start_idx="middle")`) with a
    pad mask; a shorter clip whole, the remaining slots masked. Returns ((length, K) float32, (length,) bool)."""
    T = len(exp)
    out = np.zeros((length, exp.shape[1]), np.float32)
    pad = np.ones(length, bool)
    if T >= length:
        s = (T - length + 1) // 2
        out[:], pad[:] = exp[s:s + length], False
    else:
        out[:T], pad[:T] = exp, False
    return out, pad


@torch.no_grad()
def style_code(net: StyleTalkNet, style_exp: np.ndarray, style_len: int) -> torch.Tensor:
    """s (1, d) of a style clip's expressions (T, K)."""
    style, pad = middle_style(style_exp, style_len)
    return net.style_code(torch.from_numpy(style)[None], torch.from_numpy(pad)[None])


@torch.no_grad()
def predict(net: StyleTalkNet, phones: np.ndarray, frames: np.ndarray, s: torch.Tensor, edge: EdgeRule = "silence",
            batch_frames: int = 256) -> np.ndarray:
    """Expression coefficients (N, K) float32 of `frames` of an utterance with phoneme labels `phones` (T,)
    and style code `s` (1, d)."""
    w = net.params.window
    wins = torch.from_numpy(phone_windows(phones, frames, w, edge))
    out = [net.decode(wins[i:i + batch_frames][None], s)[0] for i in range(0, len(wins), batch_frames)]
    return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, net.n_exp), np.float32)


BASELINES = ("replay", "neutral")
"""StyleTalk's same-run baselines (issue 18): see the module docstring."""


def baseline_variant(variant: str, baseline: str) -> str:
    """The generated.parquet variant of baseline `baseline` of system variant `variant`: "<variant>+<baseline>"
    (the DisCoHead "+source_warp" convention the evaluate stage compares against).

    Raises:
        ValueError: a baseline other than those of `BASELINES`.
    """
    if baseline not in BASELINES:
        raise ValueError(f"baseline {baseline!r}: expected one of {BASELINES}")
    return f"{variant}+{baseline}"


def replay_expressions(style_exp: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """The replay baseline: the style clip's expressions shown on an utterance's `frames`.

    Args:
        style_exp: (T_s, K) the style clip's fitted expression coefficients, T_s >= 1.
        frames: (N,) int frame indices of the utterance, >= 0.

    Returns:
        (N, K) float32; row i = style_exp[frames[i] mod T_s] (the style clip from its frame 0, looped when the
        utterance is longer, cut when it is shorter). Frames the fit marked invalid are replayed as stored.

    Raises:
        ValueError: an empty style clip or a negative frame index.
    """
    style_exp = np.asarray(style_exp)
    frames = np.asarray(frames, np.int64)
    if style_exp.ndim != 2 or len(style_exp) == 0:
        raise ValueError(f"style expressions of shape {style_exp.shape}: expected (T_s >= 1, K)")
    if frames.size and frames.min() < 0:
        raise ValueError(f"frame indices must be >= 0, got {int(frames.min())}")
    return np.ascontiguousarray(style_exp[frames % len(style_exp)], np.float32)


@torch.no_grad()
def neutral_style_code(net: StyleTalkNet, style_exps, style_len: int) -> torch.Tensor:
    """The neutral style code: the mean over clips of s = E_s(the clip's middle `style_len` frames), each clip
    encoded as a style clip is at generation (`style_code`).

    Args:
        net: the trained generator.
        style_exps: iterable of the training clips' expressions, each (T_i, K).
        style_len: style-clip frames of the checkpoint (`data.style_len`).

    Returns:
        (1, d) float32.

    Raises:
        ValueError: no clip (the message says which stage provides them).
    """
    codes = [style_code(net, np.asarray(e, np.float32), style_len) for e in style_exps]
    if not codes:
        raise ValueError("neutral_style_code: no training clip to average the style codes of; the neutral baseline "
                         "needs the train split's phones and expressions (dvc repro shard_labels), or drop neutral from "
                         "generate_styletalk.baselines")
    return torch.cat(codes).mean(0, keepdim=True)


def render(model, fit: dict, exp: np.ndarray, frames: np.ndarray) -> dict[str, np.ndarray]:
    """Meshes of `exp` (N, K) with the fit's identity and the head pose of `frames` (N,) of its clip.

    Returns:
        nmfc (N, 256, 256, 3) uint8, mask (N, 256, 256) bool, shaded (N, 256, 256, 3) uint8 (grey RGB),
        landmarks68 (N, 68, 2) float32 in crop pixels.
    """
    from headflow.nmfc.render import render_nmfc, render_shaded, to_crop

    f = np.asarray(frames)
    uvz = project(model, fit["id_coeffs"], exp, fit["rotation"][f], fit["scale"][f], fit["translation"][f])
    crop = to_crop(uvz, fit["crop_transforms"][f])
    nmfc, mask = render_nmfc(model, crop, CROP)
    shaded = render_shaded(model, crop, CROP)
    lm = to_crop_points(uvz[:, np.asarray(model.landmarks68)], fit["crop_transforms"][f])
    return {"nmfc": nmfc, "mask": mask, "shaded": np.repeat(shaded[..., None], 3, -1), "landmarks68": lm}


def landmarks_of(model, fit: dict, exp: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """(N, 68, 2) crop-pixel landmarks of expressions `exp` with the fit's identity and pose at `frames`."""
    f = np.asarray(frames)
    ids = np.asarray(model.landmarks68)
    uvz = project(model, fit["id_coeffs"], exp, fit["rotation"][f], fit["scale"][f], fit["translation"][f], ids)
    return to_crop_points(uvz, fit["crop_transforms"][f])


def choose_style_clip(clip_id: str, table, rule: str) -> str:
    """The style clip of `clip_id` (table: clip_id, speaker_id, style; sorted by clip_id): "self", or
    "same_style": the next clip (id order, wrapping) of the same speaker and style, else the clip itself."""
    if rule == "self":
        return clip_id
    row = table[table.clip_id == clip_id].iloc[0]
    same = table[(table.speaker_id == row.speaker_id) & (table["style"].fillna("") == (row["style"] or ""))]
    ids = sorted(same.clip_id)
    if len(ids) < 2:
        return clip_id
    return ids[(ids.index(clip_id) + 1) % len(ids)]


STAGE = "generate_styletalk"
RECOGNISED = "recognised_phones"
"""Suffix of the generated.parquet variant of outputs driven by recognised phones ("default_recognised_phones";
its baselines are "default_recognised_phones+replay", ...: "+" is reserved for same-run baselines)."""


def read_styletalk_clip(clip_id: str, shard_root: Path, labels_root: Path, style: str = "",
                        recognizer: Callable[[], object] | None = None) -> tuple[StyleTalkClip, bool]:
    """One clip's phone labels and expressions: the forced aligner's labels from its shard_labels sidecar, or,
    when the sidecar has none (no transcript) and `recognizer` is given, the recogniser's labels of the
    shard's mel (`recognizer.recognise`: one label per video frame of the shard; frames without a full mel
    window are invalid, never padded).

    Args:
        shard_root, labels_root: the shards and shard_labels folders.
        recognizer: None ("off"), or a callable returning the `PhoneRecognizer` (called only when needed, so
            a run whose clips all have labels never loads it).

    Returns:
        (the clip, whether its phones were recognised).

    Raises:
        ClipRejected: "no_phones" (no labels and no recogniser), "no_expressions", or "frame_count_mismatch"
            (the shard's frames and the expressions disagree).
    """
    from headflow.generators.styletalk.recognizer import recognise
    from headflow.shards import read_clip

    def reject(err: Exception) -> ClipRejected:
        return ClipRejected("no_expressions" if "no expressions" in str(err) else "no_phones", f"clip {clip_id}: {err}")

    try:
        s = read_clip(clip_id, ("phones", "expressions"), root=shard_root, labels_root=labels_root)
        phones, phone_valid, recognised = s.phones.styletalk_index, s.phones.valid, False
    except (ValueError, FileNotFoundError) as err:   # no sidecar, or one without phones / expressions
        if recognizer is None or "no phones" not in str(err):
            raise reject(err) from None
        try:
            s = read_clip(clip_id, ("mel", "expressions"), root=shard_root, labels_root=labels_root)
        except (ValueError, FileNotFoundError) as err2:
            raise reject(err2) from None
        n = len(s.valid)
        if len(s.expressions.exp) != n:
            raise ClipRejected("frame_count_mismatch", f"clip {clip_id}: {n} shard frames but "
                               f"{len(s.expressions.exp)} expression frames")
        phones, phone_valid = recognise(recognizer(), np.asarray(s.mel, np.float32), n, s.fps)
        recognised = True
    clip = StyleTalkClip(clip_id, np.asarray(phones, np.int64), np.asarray(s.expressions.exp, np.float32),
                         np.asarray(phone_valid, bool) & np.asarray(s.expressions.valid, bool), s.expressions.model,
                         style, s.speaker)
    return clip, recognised


def run_stage(params, progress: bool = True, *, clips_path: Path | None = None, faces_path: Path | None = None,
              audio_path: Path | None = None, shards_path: Path | None = None, labels_path: Path | None = None,
              fits_path: Path | None = None, model_dir: Path | None = None, out_dir: Path | None = None,
              metrics_path: Path | None = None, decisions_path: Path | None = None,
              recognizer_dir: Path | None = None) -> dict:
    """The `generate_styletalk` stage: an expression sequence, its NMFC and a shaded render per evaluation task.

    Writes `out_dir/videos/<clip>.<protocol>.mp4` (256x256 aligned-crop geometry, driving audio muxed, marked
    synthetic), `out_dir/nmfc/<...>.nmfc.zip`, `out_dir/expressions/<...>.npz`, `generated.parquet`,
    `quarantine.parquet` and the metrics (frames/s including rendering and encoding). On
    `params.baseline_protocols`, each baseline of `params.baselines` is written the same way as
    `<clip>.<protocol>.<baseline>.*`, variant `<variant>+<baseline>` (module docstring).
    `quarantine.parquet` and the metrics (frames/s including rendering and encoding). A driving clip without
    phone labels is labelled by the phone recogniser (`recognizer_dir/recognizer.pt`, default
    train_styletalk_disc's model folder) when `params.recognizer` is "auto" (`read_styletalk_clip`).

    Raises:
        FileNotFoundError: no model checkpoint (or no recogniser when a clip needs one).
        headflow.manifest.quarantine.TooManyRejected: too many outputs failed.
    """
    import time

    import pandas as pd

    from headflow.catalog import CATALOG, expert_clips
    from headflow.generators.styletalk.model import file_sha256, load_model
    from headflow.manifest import Quarantine, read_manifest
    from headflow.manifest.generated import dubbing_pairs, mark_synthetic, scored_range, write_generated
    from headflow.manifest.quarantine import check_accounting
    from headflow.manifest.schemas import GENERATED
    from headflow.media import MediaError
    from headflow.media.normalize import encode_video, read_audio
    from headflow.morphable.registry import load_model as load_morphable
    from headflow.nmfc.io import write_nmfc
    from headflow.shards import accepted_clips
    from headflow.stage import finish_quarantine, write_metrics
    from headflow.generators.styletalk.geometry import read_fit

    clips_path = Path(clips_path or CATALOG.manifest("ingest", "clips"))
    faces_path = Path(faces_path or CATALOG.manifest("faces", "faces"))
    audio_path = Path(audio_path or CATALOG.manifest("audio_features", "audio_features"))
    shards_path = Path(shards_path or CATALOG.manifest("shards", "shards"))
    labels_path = Path(labels_path or CATALOG.manifest("shard_labels", "shard_labels"))
    fits_path = Path(fits_path or CATALOG.manifest("fit3dmm", "fits"))
    model_dir = Path(model_dir or CATALOG.model("train_styletalk", "generator"))
    out_dir = Path(out_dir or CATALOG.folder(STAGE))
    metrics_path = Path(metrics_path or CATALOG.metrics(STAGE))
    decisions_path = Path(decisions_path or CATALOG.manifest("sync_check", "clips"))
    torch.set_num_threads(params.threads)

    ckpt = model_dir / "styletalk.pt" if params.checkpoint == "trained" else Path(params.checkpoint)
    net, saved = load_model(ckpt)
    sha = file_sha256(ckpt)
    train_data = saved["params"]["data"]
    style_len, edge = int(train_data["style_len"]), train_data["edge"]
    model = load_morphable(params.morphable_model)
    expression_model = saved["architecture"]["expression_model"]
    if model.name != expression_model:
        raise ValueError(f"{ckpt} generates expressions of {expression_model!r}; generate_styletalk.morphable_model "
                         f"loads {model.name!r}: set it to the model the expressions were fitted with")
    clips = expert_clips(clips_path, faces_path, audio_path)
    clips = clips[clips.split == params.split].reset_index(drop=True)
    if params.max_clips is not None:
        clips = clips.head(params.max_clips)
    info = clips.set_index("clip_id")
    shards = read_manifest(shards_path, "shards").set_index("clip_id")
    fits = read_manifest(fits_path, "fits").set_index("clip_id")
    pairs = dubbing_pairs(clips.clip_id)
    shard_root, labels_root = shards_path.parent, labels_path.parent
    quarantine = Quarantine(STAGE)
    tasks = []
    for c in clips.clip_id:
        for protocol in params.protocols:
            audio = c if protocol == "reconstruction" else pairs.get(c)
            if audio is None:
                quarantine.add(f"{c}.{protocol}", "no_dubbing_audio", f"{c}: dubbing needs at least two {params.split} "
                               "clips", info.at[c, "source_path"])
                continue
            tasks.append((c, protocol, audio))
    for sub in ("videos", "nmfc", "expressions"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
        for stale in (out_dir / sub).iterdir():
            stale.unlink()
    cache: dict[str, StyleTalkClip] = {}
    recognised: set[str] = set()
    recognizer_state: dict = {}

    def load_recognizer_once():
        if "net" not in recognizer_state:
            from headflow.generators.styletalk.recognizer import load_recognizer

            path = Path(recognizer_dir or CATALOG.model("train_styletalk_disc", "discriminators")) / "recognizer.pt" \
                if params.recognizer_checkpoint == "trained" else Path(params.recognizer_checkpoint)
            recognizer_state["net"] = load_recognizer(path)[0]
            recognizer_state["sha256"] = file_sha256(path)
        return recognizer_state["net"]

    def clip(cid: str) -> StyleTalkClip:
        if cid not in cache:
            cache[cid], was_recognised = read_styletalk_clip(
                cid, shard_root, labels_root, str(info.at[cid, "style"] or "") if cid in info.index else "",
                load_recognizer_once if params.recognizer == "auto" else None)
            if was_recognised:
                recognised.add(cid)
        return cache[cid]

    neutral = None
    if "neutral" in params.baselines:
        # the training clips as train_styletalk reads them: train split, accepted by sync_check, audio not shifted
        accepted = accepted_clips(decisions_path, shards_path)
        train_ids = sorted(accepted.clip_id[(accepted.split == "train") & (accepted.action != "shift")])
        train_exps = []
        for cid in train_ids:           # read as train_styletalk reads them: no recogniser, not cached
            try:
                train_exps.append(read_styletalk_clip(cid, shard_root, labels_root, "", None)[0].exp)
            except ClipRejected:        # no phones / expressions: train_styletalk quarantined it too
                continue
        neutral = neutral_style_code(net, train_exps, style_len)
    rows, n_frames, seconds, baseline_seconds = [], 0, 0.0, 0.0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc=STAGE, unit="output")
    for c, protocol, audio in tasks:
        out_id = f"{c}.{protocol}"
        t0 = time.perf_counter()
        try:
            if c not in fits.index:
                raise ClipRejected("no_fit", f"{out_id}: fit3dmm has no fit of {c} (quarantined there)")
            style_id = choose_style_clip(c, clips, params.style_source)
            driving, target, style = clip(audio), clip(c), clip(style_id)
            for x, need in ((driving, net.params.window_size), (target, 1), (style, 1)):
                check_clip(x, need, expression_model, net.n_exp)
            _, end = scored_range(target.n_frames, int(shards.at[audio, "n_mel_frames"]),
                                  fps=float(info.at[c, "fps"]))
            end = min(end, driving.n_frames, target.n_frames)
            start = net.params.window if edge == "inside" else 0
            end = min(end, driving.n_frames - net.params.window) if edge == "inside" else end
            if end - start < 1:
                raise ClipRejected("too_short", f"{out_id}: no frame with a full phoneme window and a full mel window "
                                   f"({driving.n_frames} phone frames, {target.n_frames} video frames)")
            frames = np.arange(start, end)
            s = style_code(net, style.exp, style_len)
            exp = predict(net, driving.phones, frames, s, edge, params.batch_frames)
            fit = read_fit(fits.at[c, "fit_path"] if "fit_path" in fits.columns else
                           fits_path.parent / "fits" / f"{c}.npz")
            if str(fit["model"]) != model.name:
                raise ClipRejected("wrong_expression_model", f"{out_id}: the fit of {c} uses {fit['model']!r}, the "
                                   f"model generates {model.name!r}")
            fitted = landmarks_of(model, fit, fit["exp_coeffs"][frames], frames)     # the clip's own fit
            wav, sr = read_audio(info.at[audio, "audio_path"])
            fps = int(round(float(info.at[c, "fps"])))
            a0, a1 = int(round(start * sr / fps)), int(round(end * sr / fps))
            track = np.zeros(a1 - a0, np.float32)
            part = np.asarray(wav, np.float32)[a0:a1]
            track[:len(part)] = part
            paths: dict[str | None, Path] = {}
            t_base = None
            todo = [None, *(params.baselines if protocol in params.baseline_protocols else ())]
            for b in todo:                            # the system, then its baselines: the same render path
                if b is None:
                    exp_b = exp
                else:
                    t_base = t_base or time.perf_counter()
                    exp_b = (replay_expressions(style.exp, frames) if b == "replay" else
                             predict(net, driving.phones, frames, neutral, edge, params.batch_frames))
                name = out_id if b is None else f"{out_id}.{b}"
                out = render(model, fit, exp_b, frames)
                write_nmfc(out_dir / "nmfc" / f"{name}.nmfc.zip", out["nmfc"], out["mask"])
                np.savez(out_dir / "expressions" / f"{name}.npz", exp=exp_b, landmarks68=out["landmarks68"],
                         landmarks68_fit=fitted, frame_start=start, frame_end=end, style_clip=style_id,
                         audio_clip=audio, phones_source="recognizer" if audio in recognised else "aligner")
                path = out_dir / "videos" / f"{name}.mp4"
                encode_video(out["shaded"], path, fps=fps, crf=params.crf, audio=track, sample_rate=sr, threads=1)
                mark_synthetic(path, "styletalk", sha, [c, audio, style_id])
                paths[b] = path
        except (ClipRejected, MediaError) as err:
            quarantine.add(out_id, err.reason_code, str(err), info.at[c, "source_path"])
            continue
        finally:
            if bar is not None:
                bar.update(1)
        t_end = time.perf_counter()
        seconds += (t_base or t_end) - t0
        baseline_seconds += t_end - t_base if t_base else 0.0
        n_frames += end - start
        system_variant = f"{params.variant}_{RECOGNISED}" if audio in recognised else params.variant
        for b, path in paths.items():
            variant = system_variant if b is None else baseline_variant(system_variant, b)
            rows.append({"clip_id": out_id, "family": "styletalk", "variant": variant, "seed": params.seed,
                         "protocol": protocol, "source_clip": c, "audio_clip": audio, "driver_clip": None,
                         "style_clip": style_id, "references": [], "output_kind": "video",
                         "output_path": path.as_posix(), "fps": float(info.at[c, "fps"]), "frame_start": int(start),
                         "frame_end": int(end), "checkpoint_sha256": sha})
    if bar is not None:
        bar.close()
    write_generated(pd.DataFrame(rows, columns=GENERATED.names), out_dir / "generated.parquet")
    n_system = sum("+" not in r["variant"] for r in rows)
    metrics = {"outputs": n_system, "baseline_outputs": len(rows) - n_system, "quarantined": len(quarantine),
               "frames": n_frames, "frames_per_s": round(n_frames / seconds, 2) if seconds else None,
               "seconds": round(seconds, 1), "baseline_seconds": round(baseline_seconds, 1),
               "checkpoint_sha256": sha, "variant": params.variant, "renderer": "shaded_mesh",
               "recognised_phone_clips": len(recognised), "recognizer_sha256": recognizer_state.get("sha256")}
    write_metrics(metrics_path, metrics)
    check_accounting([f"{c}.{p}" for c in clips.clip_id for p in params.protocols], sorted({r["clip_id"] for r in rows}),
                     [q["clip_id"] for q in quarantine.rows], STAGE)
    finish_quarantine(quarantine, out_dir / "quarantine.parquet", len(clips) * len(params.protocols),
                      params.max_reject_fraction)
    return metrics


__all__ = ["BASELINES", "baseline_variant", "choose_style_clip", "landmarks_of", "middle_style", "neutral_style_code",
           "predict", "render", "replay_expressions", "run_stage", "style_code"]
