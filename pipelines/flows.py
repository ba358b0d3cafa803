"""Prefect flows for the whole pipeline: `train`, `generate`, `evaluate` and `pipeline` (which calls them
and `preprocess`), each task the same stage function as the DVC stage of the same name.

    python -m pipelines.flows pipeline                       # every stage, in dvc.yaml's order
    python -m pipelines.flows train --models expert lipsync  # some trainings only
    python -m pipelines.flows pipeline --dask tcp://host:8786  # clip-level tasks on a Dask cluster
    prefect deploy --all && prefect worker start -p headflow   # the deployments of prefect.yaml (UI runs)

Stage -> function (the DVC stage `python -m stages.<stage>` calls the same one):
  train_expert -> headflow.sync.train_expert.run_stage, train_judge -> headflow.evaluate.judge.run_stage,
  train_<family> / generate_<family> -> headflow.generators.FAMILIES[family].train / .generate,
  evaluate -> headflow.evaluate.stage.run_stage; the preprocessing stages as in pipelines.preprocess.

The UI shows one subflow run per flow and one task run per stage (the clip shards of a stage are its
child task runs), and these artifacts: `<stage>-quarantine` (rows quarantined by reason code) for every
stage that has a quarantine manifest, `<stage>-metrics` (the stage's metrics), `<model>-history` (the
per-epoch losses) and `<model>-samples` (links to the sample grids) for each training, `evaluation`
and `evaluation-report` (table and link) for evaluate, and while a training runs its task logs carry
one line per epoch and its `<model>-progress` artifact advances (epoch / epochs).

DVC stays the cache of record: a flow writes exactly the files `dvc repro` would, so afterwards
`dvc status` lists the stages whose outputs changed and `dvc commit -f` records them in dvc.lock
(README, "Prefect and scale-out").
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import re
from pathlib import Path
from collections.abc import Callable
from typing import Any

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.artifacts import (create_markdown_artifact, create_progress_artifact,  # noqa: E402
                               create_table_artifact, update_progress_artifact)
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.context import FlowRunContext  # noqa: E402

from headflow import params as P  # noqa: E402
from headflow.catalog import CATALOG  # noqa: E402
from headflow.generators import FAMILIES  # noqa: E402
from pipelines.preprocess import STAGES, _report_evaluation, _table, preprocess, stage_artifacts, stage_task  # noqa: E402

EXPERT_STAGES = ["demo_corpus", "ingest", "audio_features", "align", "faces", "shards"]
"""The preprocessing the expert needs; the rest of preprocessing (sync_check onwards) needs the expert."""
AFTER_EXPERT = ["sync_check", "fit3dmm", "expressions", "shard_labels"]
MODELS = ["expert", "judge", *FAMILIES]
"""What `train` trains: the lip-sync expert, the evaluation's sync judge and every generator family."""


def train_stage_of(model: str) -> str:
    """The DVC stage that trains `model` ("expert" -> "train_expert", "lipsync" -> "train_lipsync")."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose from {MODELS}")
    return f"train_{model}"


# ---------------------------------------------------------------- training progress in the UI

_EPOCH = re.compile(r"^%s epoch %d/%d: train loss %.4f")


class EpochProgress(logging.Handler):
    """Turns the training loop's per-epoch log line (`headflow.training.loop._log_epoch`) into a Prefect
    progress artifact (epoch / epochs, 0-100, its description the last epoch and train loss) and a line in
    the task run's log.

    Attach to the `headflow.training` logger around one training task (`with EpochProgress(key): ...`).
    """

    def __init__(self, key: str):
        super().__init__(logging.INFO)
        self.key, self.artifact = key, None

    def emit(self, record: logging.LogRecord) -> None:
        if not isinstance(record.msg, str) or not _EPOCH.match(record.msg) or len(record.args or ()) < 4:
            return
        name, epoch, epochs, loss = record.args[:4]
        percent = 100.0 * float(epoch) / max(float(epochs), 1.0)
        text = f"{name}: epoch {epoch}/{epochs}, train loss {float(loss):.4f}"
        try:
            if self.artifact is None:
                self.artifact = create_progress_artifact(percent, key=self.key, description=text)
            else:
                update_progress_artifact(self.artifact, percent, description=text)
            get_run_logger().info("%s: epoch %s/%s, train loss %.4f", name, epoch, epochs, loss)
        except Exception:      # noqa: BLE001 - progress display must never stop a training
            self.handleError(record)

    def __enter__(self) -> EpochProgress:
        logger = logging.getLogger("headflow.training")
        self._level = logger.level
        logger.addHandler(self)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: Any) -> None:
        logger = logging.getLogger("headflow.training")
        logger.removeHandler(self)
        logger.setLevel(self._level)


# ---------------------------------------------------------------- artifacts

def training_artifacts(model: str) -> None:
    """`<model>-history` (per-epoch rows of every history.json under the model folder) and `<model>-samples`."""
    stage = train_stage_of(model)
    key = model.replace("_", "-")
    folder = Path(next(iter(CATALOG.stage(stage).models.values())))
    rows = []
    for path in sorted(folder.rglob("history.json")):
        for row in json.loads(path.read_text()):
            rows.append({"run": path.parent.relative_to(folder).as_posix() or ".",
                         **{k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}})
    create_table_artifact(key=f"{key}-history", table=_table(rows), description=f"{stage}: one row per epoch")
    markdown = samples_markdown(folder)
    if markdown:
        create_markdown_artifact(key=f"{key}-samples", markdown=markdown,
                                 description=f"{stage}: the last sample grid of each run, and where all of them are")


INLINE_SAMPLES = 4          # sample grids shown inline per model (the last epoch of each run folder)
INLINE_SIZE = 512           # their longer side in pixels, so the artifact stays ~100 KB per image


def png_data_uri(path: Path, max_side: int = INLINE_SIZE) -> str:
    """A PNG file as a `data:image/png;base64,...` URI, downscaled (aspect kept) so its longer side is at most
    `max_side` pixels. The Prefect UI shows it inline in a markdown artifact; a `file://` link would not
    open from the UI's http page, and the UI may run on another machine than the files."""
    import base64
    import io

    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        im.thumbnail((max_side, max_side))
        buf = io.BytesIO()
        im.save(buf, "PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def samples_markdown(folder: Path, inline: int = INLINE_SAMPLES) -> str:
    """Markdown for a model folder's sample grids (`**/samples/*.png`, DVCLive's copies skipped): the last
    grid of each samples folder inline (at most `inline` of them), then every grid's path under the
    project. Empty when there is none."""
    grids = sorted(p for p in folder.rglob("samples/*.png") if "dvclive" not in p.relative_to(folder).parts)
    if not grids:
        return ""
    last = {p.parent: p for p in grids}         # sorted, so the last one of each folder wins (epoch_NNN.png)
    parts = [f"**{p.relative_to(folder).as_posix()}**\n\n![{p.stem}]({png_data_uri(p)})"
             for p in list(last.values())[:inline]]
    parts.append(f"All {len(grids)} sample grids, under `{folder.as_posix()}`: "
                 + ", ".join(f"`{p.relative_to(folder).as_posix()}`" for p in grids))
    return "\n\n".join(parts)


# ---------------------------------------------------------------- tasks and flows

def training_stages_of(model: str) -> list[str]:
    """Every DVC stage that trains `model`, in order (a family's extra ones included: StyleTalk's
    `train_styletalk_disc` before `train_styletalk`, Head2HeadFS's `finetune_head2headfs` after its
    `train_head2headfs`)."""
    return FAMILIES[model].training_stages() if model in FAMILIES else [train_stage_of(model)]


def stage_function_target(stage: str) -> str | None:
    """"module:function" of a family's training stage (the function its `stages/<stage>.py` calls), or None."""
    for fam in FAMILIES.values():
        if stage == f"train_{fam.name}":
            return fam.train.target
        if stage == f"generate_{fam.name}":
            return fam.generate.target
        for name, target, _ in fam.extra_training:
            if stage == name:
                return target
    return None


# The params blocks a family stage's function takes after its own, in the order `stages/<stage>.py` passes
# them (Head2HeadFS's fine-tuning and generation rebuild the initialisation stage's networks).
# tests/scaleout/test_flows.py checks this table against every stage's entry point.
EXTRA_PARAM_BLOCKS: dict[str, tuple[str, ...]] = {
    "finetune_head2headfs": ("train_head2headfs",),
    "generate_head2headfs": ("train_head2headfs",),
}


def _stylemap_measures() -> dict:
    """generate_stylemap's measurements, which the family may not import itself (stages/generate_stylemap.py)."""
    from headflow.generators.stylemap.generate import Measures
    from headflow.metrics.transfer import identity_interval, pose_intervals, transfer_identity

    return {"measures": Measures(pose_intervals, transfer_identity, identity_interval)}


# The keyword arguments a family stage's function takes from its `stages/<stage>.py` besides the params
# blocks (functions of headflow areas the family may not import): stage -> a factory of those keywords.
# tests/scaleout/test_flows.py checks the keyword names against every stage's entry point.
EXTRA_KWARGS: dict[str, Callable[[], dict]] = {
    "generate_stylemap": _stylemap_measures,
}


def stage_param_blocks(stage: str) -> list[str]:
    """The params.yaml blocks the flows pass to `stage`'s function, in order: its own, then EXTRA_PARAM_BLOCKS."""
    return [stage, *EXTRA_PARAM_BLOCKS.get(stage, ())]


def _call_family_stage(stage: str, params_path: str) -> dict:
    """Call a family stage's function with its params blocks (`stage_param_blocks`) and keywords
    (`EXTRA_KWARGS`), as `python -m stages.<stage>` does."""
    module, _, name = stage_function_target(stage).partition(":")
    fn = getattr(importlib.import_module(module), name)
    extra = EXTRA_KWARGS[stage]() if stage in EXTRA_KWARGS else {}
    return fn(*(P.load(block, params_path) for block in stage_param_blocks(stage)), progress=False, **extra)


@task(cache_policy=NO_CACHE)
def train_task(model: str, params_path: str, stage: str | None = None) -> dict:
    """One training stage of `model` (default `train_<model>`): the DVC stage's own function, its
    per-epoch progress shown in the UI."""
    stage = stage or train_stage_of(model)
    with EpochProgress(f"{stage.replace('_', '-')}-progress"):
        if model in FAMILIES:
            metrics = _call_family_stage(stage, params_path)
        else:
            metrics = stage_task.fn(stage, params_path)
    if stage == train_stage_of(model):
        training_artifacts(model)
    stage_artifacts(stage, metrics)
    return metrics


@task(cache_policy=NO_CACHE)
def generate_task(family: str, params_path: str) -> dict:
    """`generate_<family>`: FAMILIES[family].generate, as the DVC stage calls it."""
    stage = f"generate_{family}"
    metrics = _call_family_stage(stage, params_path)
    stage_artifacts(stage, metrics)
    return metrics


@flow(name="train", log_prints=True)
def train(params_path: str = "params.yaml", models: list[str] | None = None) -> dict:
    """Train `models` (default: MODELS: the expert, the judge and every generator family) in that order.

    Raises:
        ValueError: a name that is not in MODELS.
    """
    chosen = MODELS if models is None else [m for m in MODELS if m in models]
    for m in models or ():
        train_stage_of(m)
    return {stage: train_task.with_options(name=stage)(m, params_path, stage)
            for m in chosen for stage in training_stages_of(m)}


@flow(name="generate", log_prints=True)
def generate(params_path: str = "params.yaml", families: list[str] | None = None) -> dict:
    """Run `generate_<family>` for `families` (default: every family in FAMILIES)."""
    chosen = list(FAMILIES) if families is None else families
    unknown = sorted(set(chosen) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown families {unknown}; choose from {list(FAMILIES)}")
    return {f"generate_{f}": generate_task.with_options(name=f"generate_{f}")(f, params_path) for f in chosen}


@flow(name="evaluate", log_prints=True)
def evaluate(params_path: str = "params.yaml") -> dict:
    """The `evaluate` stage (ground truth, baselines, every generated output); tables and report link."""
    metrics = stage_task.with_options(name="evaluate")("evaluate", params_path)
    stage_artifacts("evaluate", metrics)
    _report_evaluation(metrics)
    return metrics


def _pipeline_run_name() -> str:
    """The flow run's name: the `experiment` parameter when given, else "pipeline-<params file stem>"."""
    from prefect.runtime import flow_run

    params = flow_run.parameters or {}
    return params.get("experiment") or f"pipeline-{Path(params.get('params_path') or 'params.yaml').stem}"


@flow(name="pipeline", log_prints=True, flow_run_name=_pipeline_run_name)
def pipeline(params_path: str = "params.yaml", build_demo: bool | None = None,
             stages: list[str] | None = None, shard_size: int | None = None, experiment: str | None = None) -> dict:
    """Every stage of dvc.yaml in its order, as subflows: preprocess (up to shards), train (expert),
    preprocess (sync_check onwards), train (judge, families), generate, evaluate.

    Args:
        params_path: the params file.
        build_demo: build the demo corpus first (default: when ingest reads the demo corpus).
        stages: run only these DVC stages (any of the flows' stages; default: all).
        shard_size: clips per shard task in the preprocessing stages (default: each stage's own).
        experiment: a name for this run (the flow run's name in the UI, and the Git/DVC experiment to
            record it under by hand: `dvc exp save -n <experiment>` after `dvc commit`).

    Returns:
        {stage: its metrics} for every stage run.

    Raises:
        ValueError: a name in `stages` that is no stage of the pipeline.
    """
    known = [*STAGES, *(s for m in MODELS for s in training_stages_of(m)), *(f"generate_{f}" for f in FAMILIES)]
    unknown = sorted(set(stages or ()) - set(known))
    if unknown:
        raise ValueError(f"stages {unknown} are not pipeline stages; choose from {known}")
    want = (lambda s: True) if stages is None else (lambda s: s in stages)  # noqa: E731
    out: dict[str, Any] = {}
    runner = FlowRunContext.get().task_runner   # subflows get this run's task runner (Dask with --dask)

    def sub(f):
        return f.with_options(task_runner=runner.duplicate())

    def pre(names: list[str]) -> None:
        chosen = [s for s in names if want(s)]
        if chosen:
            out.update(sub(preprocess)(params_path, build_demo, chosen, shard_size))

    def fit(models: list[str]) -> None:
        chosen = [m for m in models if any(want(s) for s in training_stages_of(m))]
        if chosen:
            out.update(sub(train)(params_path, chosen))

    pre(EXPERT_STAGES)
    fit(["expert"])
    pre(AFTER_EXPERT)
    fit(["judge"])
    for family in FAMILIES:   # dvc.yaml's order: each family's training stages, then its generate stage
        fit([family])
        if want(f"generate_{family}"):
            out.update(sub(generate)(params_path, [family]))
    if want("evaluate"):
        out["evaluate"] = sub(evaluate)(params_path)
    return out


FLOWS = {"pipeline": pipeline, "train": train, "generate": generate, "evaluate": evaluate, "preprocess": preprocess}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("flow", choices=list(FLOWS), help="the flow to run (`pipeline`: every stage, in dvc.yaml's order)")
    ap.add_argument("--params", default="params.yaml", help="the params file (default %(default)s)")
    ap.add_argument("--stages", nargs="+", help="pipeline/preprocess: only these stages")
    ap.add_argument("--models", nargs="+", choices=MODELS, help="train: only these models")
    ap.add_argument("--shard-size", type=int, help="clips per shard task (default: each stage's own)")
    ap.add_argument("--dask", metavar="ADDRESS", help="clip-level tasks on an existing Dask scheduler")
    ap.add_argument("--experiment", help="pipeline: the run's name")
    args = ap.parse_args(argv)
    if not Path(args.params).is_file():
        raise SystemExit(f"{args.params} not found: run from the project root")
    chosen = FLOWS[args.flow]
    if args.dask:
        from pipelines.preprocess import dask_runner

        chosen = chosen.with_options(task_runner=dask_runner(args.dask, Path.cwd()))
    kwargs: dict[str, Any] = {"params_path": args.params}
    if args.flow in ("pipeline", "preprocess"):
        kwargs.update(stages=args.stages, shard_size=args.shard_size)
    if args.flow == "pipeline":
        kwargs.update(experiment=args.experiment)
    elif args.flow == "train":
        kwargs.update(models=args.models)
    chosen(**kwargs)


if __name__ == "__main__":
    main()
