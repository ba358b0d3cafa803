"""The `train_judge` stage: a second lip-sync expert that only the evaluation uses.

Generators are trained against the `train_expert` expert (its sync loss), so they can learn to fool
it; sync is therefore judged by an expert no generator trained against (DESIGN, "Evaluation
contract"). The judge *is* the `train_expert` stage (`headflow.sync.train_expert.run_stage`: the same
shards, the same train/val vs test speakers, the same training and held-out evaluation) run with its
own params block, `train_judge` (the same dataclass, `TrainExpertParams`): another seed, another face
input variant (`gray_norm`) and a smaller width, so it is not a copy of the expert either. Only its
paths differ, all from the catalog.

Inputs: `data/interim/shards` (face96 + mel). Outputs: `data/models/judge/{last,best}.pt`,
`data/interim/train_judge/{sync_eval,quarantine}.parquet`, `reports/metrics/train_judge.json`,
`reports/plots/judge_history.json`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from headflow.catalog import CATALOG
from headflow.sync.params import TrainExpertParams
from headflow.sync.train_expert import run_stage as train_expert_stage

STAGE = "train_judge"


def run_stage(params: TrainExpertParams, map_fn: Callable | None = None, progress: bool = True,
              shards_dir: Path = CATALOG.folder("shards"), out_dir: Path = CATALOG.folder(STAGE),
              model_dir: Path = CATALOG.model(STAGE, "judge"), metrics_path: Path = CATALOG.metrics(STAGE),
              plot_path: Path = CATALOG.plot(STAGE, "history")) -> dict:
    """Train the judge with the `train_expert` stage's code into the judge's own paths.

    Args:
        params: the `train_judge` block (a `TrainExpertParams`).
        map_fn, progress: as for `headflow.sync.train_expert.run_stage` (map_fn is unused there).
        shards_dir, out_dir, model_dir, metrics_path, plot_path: default to the catalog's `train_judge` paths.

    Returns:
        The metrics written to `metrics_path` (held-out balanced accuracy, offset recovery, seconds).

    Raises:
        RuntimeError: no clip of the training splits or none of the held-out split.
        headflow.manifest.TooManyRejected: more than `max_reject_fraction` of the clips unusable.
    """
    return train_expert_stage(params, map_fn=map_fn, progress=progress, shards_dir=Path(shards_dir),
                              out_dir=Path(out_dir), model_dir=Path(model_dir), metrics_path=Path(metrics_path),
                              plot_path=Path(plot_path))
