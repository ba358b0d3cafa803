"""Run logs: DVCLive metrics, the JSON history a project's dvc.yaml plots, progress bars.

DVCLive is created with `dvcyaml=None` (it never writes or edits dvc.yaml: the project declares
its own plots and metrics) and `save_dvc_exp=False` (it never creates a DVC experiment: `dvc exp
run` does that around the stage). One DVCLive step is one epoch; `RunLog.epoch` writes every
value of the epoch's history row under its own name: `<dir>/plots/metrics/<name>.tsv` and the
latest values in `<dir>/metrics.json`. `dvc plots show <dir>/plots/metrics` draws them.

Note on DVCLive's repository lookup: when the working directory lies in a Git repository
*without* DVC, `dvclive.Live` runs `dvc init` there (dvclive 3.49 `dvc.get_dvc_repo`). In a
headflow project DVC is always initialised, so this never happens in the pipeline; elsewhere pass
`live_dir=None` to `fit`.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from tqdm import tqdm

__all__ = ["RunLog", "write_history", "progress_bar"]


def write_history(rows: list[dict[str, Any]], path: Path, fields: tuple[str, ...] | None = None) -> None:
    """Write the per-epoch rows as a JSON list, atomically (`dvc plots` reads such files).

    Args:
        rows: one dict per epoch.
        path: destination (its folder is created).
        fields: keep only these keys, in this order (e.g. the ones a dvc.yaml plot names); None: all.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = rows if fields is None else [{k: r.get(k) for k in fields} for r in rows]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def progress_bar(iterable, desc: str, enabled: bool):
    """A tqdm bar over one epoch that disappears when done (quiet when disabled)."""
    return tqdm(iterable, desc=desc, disable=not enabled, leave=False)


class RunLog:
    """DVCLive on rank 0 for one training run (create with `RunLog.open`, close with `close`).

    Args:
        live: the `dvclive.Live` instance, or None to log nothing (other ranks, or logging off).
    """

    def __init__(self, live: Any | None):
        self.live = live

    @classmethod
    def open(cls, directory: Path | None, resume: bool, settings: dict[str, Any] | None = None) -> "RunLog":
        """DVCLive in `directory` (None: a no-op log). A fresh run clears the folder's old series;
        a resumed one keeps them and continues at the next epoch."""
        if directory is None:
            return cls(None)
        from dvclive import Live

        live = Live(dir=str(directory), resume=resume, report=None, save_dvc_exp=False, dvcyaml=None,
                    monitor_system=False)
        if settings is not None:
            live.log_params(settings)
        return cls(live)

    def epoch(self, index: int, row: dict[str, Any]) -> None:
        """Log every number of `row` (bools as 0/1; None and NaN skipped) at DVCLive step `index`."""
        if self.live is None:
            return
        self.live.step = index
        for name, value in row.items():
            if name in ("epoch", "step") or value is None or isinstance(value, str):
                continue
            value = float(value)
            if math.isfinite(value):
                self.live.log_metric(name, value)
        self.live.make_summary()

    def image(self, name: str, image: Any) -> None:
        """Log a PIL image (a sample grid) under `name` (e.g. "samples/epoch_003.png")."""
        if self.live is not None:
            self.live.log_image(name, image)

    def close(self) -> None:
        if self.live is not None:
            self.live.end()
