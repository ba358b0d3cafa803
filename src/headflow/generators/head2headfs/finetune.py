"""The fine-tuning stage `finetune_head2headfs`: a person-specific generator per new identity (section 3.4).

For each target (a speaker of the held-out split, never seen by the initialisation stage):

1. h_new = the mean E_id embedding of the T' fine-tuning frames (eq. 9; E_id in eval mode, frames with
   their background removed); E_id is not used after this.
2. G: every AdaIN layer -> affine instance norm with gamma = P_gamma h_new, beta = P_beta h_new
   (`Head2HeadGenerator.personalise`); everything else from the initialisation stage.
3. D^I: W -> one vector w initialised with h_new (`to_single_identity`); its convolutions, w_0, c and
   D^M, D^V from the initialisation stage.
4. The same losses but L_mch, the same harness, `loop.epochs` (15 in the paper) over the T' frames.

Output per target: `<model_dir>/<speaker>/generator.pt` (`model.save_person`) and the harness's folder;
`<model_dir>/targets.json` lists them (speaker, clip, frames, seconds, sha256) for the generate stage.

Baseline (`params.baselines: [random_init]`, the paper's table 2 ablation): the same steps 1-4 on the same
frames, from `random_initialised` networks (G, E_id and the discriminators built afresh with the same
architecture and torch's default initialisers, seeded by `random_init_seed`) instead of the initialisation
stage's; written to `<model_dir>/<speaker>/random_init/generator.pt`, its sha256 and seconds in the
target's `targets.json` entry (`random_init_sha256`, `random_init_seconds`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from headflow.generators.head2headfs.data import Head2HeadClip, Head2HeadWindows, remove_background, to_unit
from headflow.generators.head2headfs.model import (Discriminators, Head2HeadGenerator, Renderer, SequenceRenderer,
                                                   save_person)
from headflow.generators.head2headfs.params import FinetuneHead2HeadFSParams, Head2HeadFSParams

STAGE = "finetune_head2headfs"


@torch.no_grad()
def identity_of(renderer: Renderer, clip: Head2HeadClip, end: int, batch: int = 64) -> torch.Tensor:
    """h_new (n_f,): the mean E_id embedding of the valid frames < end, background removed (eq. 9)."""
    renderer.embedder.eval()
    idx = np.flatnonzero(clip.valid[:end])
    frames = to_unit(remove_background(clip.frames[idx], clip.masks[idx]))
    return torch.cat([renderer.embedder(frames[i:i + batch]) for i in range(0, len(frames), batch)]).mean(0)


def personalise(renderer: Renderer, discriminators: Discriminators, h_new: torch.Tensor
                ) -> tuple[Head2HeadGenerator, Discriminators]:
    """Copies of G and the discriminators initialised for one new identity (steps 2-3 of the module docstring)."""
    import copy

    g = copy.deepcopy(renderer.generator)
    g.personalise(h_new)
    d = copy.deepcopy(discriminators)
    d.image.to_single_identity(h_new)
    return g, d


def random_initialised(params: Head2HeadFSParams, n_identities: int, seed: int) -> tuple[Renderer, Discriminators]:
    """Fresh G + E_id and discriminators of the initialisation stage's architecture (the table 2 ablation's start).

    Args:
        params: the initialisation stage's params (the saved ones: same resolution, widths, discriminators).
        n_identities: rows of D^I's W (replaced by one vector in `personalise`; kept for the same layout).
        seed: seed of torch's default initialisers (the global RNG is left as it was).

    Returns:
        (renderer, discriminators), in train mode, with the layout of `train.load_init`'s.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Renderer(params.model), Discriminators(params, n_identities)


def finetune_target(clip: Head2HeadClip, init_params: Head2HeadFSParams, renderer: Renderer,
                    discriminators: Discriminators, ft: FinetuneHead2HeadFSParams, out_dir: Path, perceptual,
                    init_sha: str, accelerator: str = "auto", progress: bool = True) -> dict[str, Any]:
    """Fine-tune on the first `ft.frames` frames of `clip`; write `out_dir/generator.pt`.

    Returns:
        {"history", "generator", "generator_sha256" (None off rank 0), "h_new", "frames"}.
    """
    from headflow.generators.head2headfs.losses import FinetuneStep, loss_weights
    from headflow.generators.head2headfs.train import data_fingerprint
    from headflow.training.loop import fit
    from headflow.training.runtime import launch

    out_dir = Path(out_dir)
    torch.set_num_threads(ft.threads)
    rt = launch(ft.loop.seed, ft.loop.precision, accelerator)
    end = min(ft.frames, len(clip.valid))
    h_new = identity_of(renderer, clip, end)
    g, d = personalise(renderer, discriminators, h_new)
    samples = ft.samples_per_epoch or end
    data = Head2HeadWindows([clip], [clip.speaker], init_params.discriminator, 0, samples, ft.loop.seed, end=end)
    step = FinetuneStep(init_params, SequenceRenderer(g), d, perceptual.to(rt.device))
    settings = {"init_sha256": init_sha, "frames": end, "clip": clip.clip_id, "samples_per_epoch": samples,
                "perceptual": getattr(perceptual, "name", "none")}
    history = fit(rt, step, data, ft.loop, out_dir / "run", loss_weights=loss_weights(init_params, finetune=True),
                  settings=settings, fingerprint=data_fingerprint([clip]), name=f"head2headfs finetune {clip.speaker}",
                  progress=progress)
    sha = save_person(out_dir / "generator.pt", g, h_new, {"speaker": clip.speaker, "clip": clip.clip_id,
                                                           "frames": end, "init_sha256": init_sha}) if rt.is_main else None
    return {"history": history, "generator": out_dir / "generator.pt", "generator_sha256": sha, "h_new": h_new,
            "frames": end}


def choose_targets(rows, ft: FinetuneHead2HeadFSParams) -> dict[str, str]:
    """speaker -> the clip it is fine-tuned on (its first in id order) for the split's speakers (or `ft.targets`).

    Raises:
        ValueError: a speaker in `ft.targets` that the split does not have.
    """
    rows = rows[rows.split == ft.split].sort_values("clip_id")
    first = rows.groupby("speaker_id").clip_id.first().to_dict()
    if ft.targets is not None:
        missing = sorted(set(ft.targets) - set(first))
        if missing:
            raise ValueError(f"finetune_head2headfs.targets {missing} are not speakers of the {ft.split} split "
                             f"(it has {sorted(first)})")
        first = {s: first[s] for s in ft.targets}
    return dict(sorted(first.items()))


def run_stage(params: FinetuneHead2HeadFSParams, init_params: Head2HeadFSParams, progress: bool = True,
              accelerator: str = "auto", *, shards_path: Path | None = None, decisions_path: Path | None = None,
              labels_path: Path | None = None, init_dir: Path | None = None, out_dir: Path | None = None,
              model_dir: Path | None = None, metrics_path: Path | None = None) -> dict:
    """The `finetune_head2headfs` stage: one person-specific generator per target speaker.

    A target whose first clip has fewer than `min_frames` usable frames, no fit, or NMFC/crop counts that
    disagree is a quarantine row (never a truncated run). `targets.parquet`-like facts go to the metrics.

    Raises:
        ValueError: the initialisation checkpoint is of another resolution or width than `init_params`.
        headflow.manifest.quarantine.TooManyRejected: too many targets rejected.
    """
    import time

    from headflow.catalog import CATALOG
    from headflow.generators.head2headfs.data import ClipError, usable_starts
    from headflow.generators.head2headfs.model import file_sha256
    from headflow.generators.head2headfs.train import load_clip, load_init
    from headflow.manifest import Quarantine, write_json
    from headflow.perceptual_weights import perceptual_from_params
    from headflow.shards import accepted_clips
    from headflow.stage import finish_quarantine, write_metrics

    shards_path = Path(shards_path or CATALOG.manifest("shards", "shards"))
    decisions_path = Path(decisions_path or CATALOG.manifest("sync_check", "clips"))
    labels_path = Path(labels_path or CATALOG.manifest("shard_labels", "shard_labels"))
    init_dir = Path(init_dir or CATALOG.model("train_head2headfs", "generator"))
    out_dir = Path(out_dir or CATALOG.folder(STAGE))
    model_dir = Path(model_dir or CATALOG.model(STAGE, "generators"))
    metrics_path = Path(metrics_path or CATALOG.metrics(STAGE))

    rows = accepted_clips(decisions_path, shards_path)
    saved, _, renderer, discs = load_init(init_dir / "init.pt", init_params)
    init_sha = file_sha256(init_dir / "init.pt")
    perceptual = perceptual_from_params(saved.loss.perceptual_backend, input_range="[-1,1]")
    targets = choose_targets(rows, params)
    quarantine = Quarantine(STAGE)
    done: list[dict] = []
    source = dict(zip(rows.clip_id, rows.source_path))
    for speaker, clip_id in targets.items():
        try:
            clip = load_clip(clip_id, saved.model.image_size, saved.masks, shards_path.parent, labels_path.parent,
                             decisions=rows, end=params.frames)
            n_ok = int(clip.valid.sum())
            if n_ok < params.min_frames:
                raise ClipError("too_few_frames", f"{speaker} ({clip_id}): {n_ok} usable frames among the first "
                                f"{params.frames}, fewer than finetune_head2headfs.min_frames {params.min_frames}")
            if len(usable_starts(clip, saved.discriminator.frames_needed)) == 0:
                raise ClipError("too_short", f"{speaker} ({clip_id}): no {saved.discriminator.frames_needed + 2} "
                                "consecutive frames with a fit")
        except ClipError as err:
            quarantine.add(clip_id, err.reason_code, str(err), source.get(clip_id, ""))
            continue
        t0 = time.perf_counter()
        result = finetune_target(clip, saved, renderer, discs, params, model_dir / speaker, perceptual, init_sha,
                                 accelerator, progress)
        seconds = round(time.perf_counter() - t0, 1)
        extra = {}
        if "random_init" in params.baselines:
            t1 = time.perf_counter()
            r_renderer, r_discs = random_initialised(saved, discs.image.W.shape[0], params.random_init_seed)
            base = finetune_target(clip, saved, r_renderer, r_discs, params, model_dir / speaker / "random_init",
                                   perceptual, init_sha, accelerator, progress)
            extra = {"random_init_sha256": base["generator_sha256"],
                     "random_init_seconds": round(time.perf_counter() - t1, 1)}
        if result["generator_sha256"] is None:
            continue
        done.append({"speaker": speaker, "clip_id": clip_id, "frames": result["frames"],
                     "seconds": seconds, "steps": int(result["history"][-1]["step"]),
                     "generator_sha256": result["generator_sha256"],
                     "samples_per_s": float(np.mean([h["samples_per_s"] for h in result["history"]])), **extra})
    metrics = {"targets": len(targets), "finetuned": len(done), "quarantined": len(quarantine),
               "init_sha256": init_sha, "per_target": done, "baselines": list(params.baselines),
               "finetune_seconds": round(sum(d["seconds"] for d in done), 1),
               "random_init_seconds": round(sum(d.get("random_init_seconds", 0.0) for d in done), 1)}
    write_metrics(metrics_path, metrics)
    write_json(done, model_dir / "targets.json")
    finish_quarantine(quarantine, out_dir / "quarantine.parquet", len(targets), params.max_reject_fraction)
    return metrics


__all__ = ["finetune_target", "identity_of", "personalise", "random_initialised", "choose_targets", "run_stage"]
