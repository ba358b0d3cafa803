"""Experiment comparison: the evaluation metrics of several DVC experiments side by side, on one offline page.

    headflow report --exp baseline exp-1a2b3 ...      # runs `dvc exp show --json`
    headflow report --exp A B --json exp_show.json     # from a saved `dvc exp show --json`

Reads `reports/metrics/evaluate.json` of each experiment (keys `<protocol>/<system>[:<variant>]/<metric>`)
and the params, and writes a page in the report's style: the params that differ, a table per protocol
with a row per (system, metric) and a column per experiment, cells that differ from the first
experiment highlighted with their difference, and a bar chart per metric (a bar per experiment for
each system). Nothing is fetched: the charts are embedded PNGs.
"""

from __future__ import annotations

import html
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from headflow.catalog import CATALOG
from headflow.evaluate.report import fmt, page, png_data_uri

METRICS_FILE = CATALOG.metrics("evaluate").as_posix()


@dataclass
class Experiment:
    """One row of `dvc exp show`: its name, revision, flattened params and evaluation metrics."""

    name: str
    rev: str
    params: dict[str, object] = field(default_factory=dict)
    metrics: dict[str, object] = field(default_factory=dict)


def _flatten(d: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def _experiment(entry: dict, metrics_file: str) -> Experiment:
    data = entry.get("data") or {}
    params = {}
    for file, content in (data.get("params") or {}).items():
        params.update(_flatten((content or {}).get("data") or {}))
    metrics = ((data.get("metrics") or {}).get(metrics_file) or {}).get("data") or {}
    rev = entry.get("rev") or data.get("rev") or ""
    name = entry.get("name") or ("workspace" if rev == "workspace" else rev[:7])
    return Experiment(name, rev, params, _flatten(metrics))


def parse_exp_show(obj: list | str, metrics_file: str = METRICS_FILE) -> list[Experiment]:
    """Every experiment in `dvc exp show --json` output (DVC 3): the workspace, baselines and their experiments.

    Args:
        obj: the parsed JSON (a list of baseline entries) or its text.
        metrics_file: the metrics file to read per experiment.

    Returns:
        Experiments in the order DVC lists them (workspace first), baseline commits followed by the
        experiments derived from them.

    Raises:
        ValueError: the JSON is not a list of `dvc exp show` entries.
    """
    if isinstance(obj, str):
        obj = json.loads(obj)
    if not isinstance(obj, list) or not all(isinstance(e, dict) and "rev" in e for e in obj):
        raise ValueError("not `dvc exp show --json` output: expected a list of entries with a 'rev' (DVC 3 layout)")
    out = []
    for entry in obj:
        out.append(_experiment(entry, metrics_file))
        for exp in entry.get("experiments") or []:
            for rev in exp.get("revs") or []:
                e = _experiment(rev, metrics_file)
                e.name = rev.get("name") or exp.get("name") or e.name
                out.append(e)
    return out


def select(experiments: list[Experiment], wanted: list[str]) -> list[Experiment]:
    """The experiments named in `wanted` (by name, or a revision prefix of 4+ characters), in that order.

    Raises:
        KeyError: a name matches nothing; the message lists what `dvc exp show` knows.
    """
    chosen = []
    for w in wanted:
        hit = next((e for e in experiments if e.name == w), None) or next(
            (e for e in experiments if len(w) >= 4 and e.rev.startswith(w)), None)
        if hit is None:
            known = ", ".join(e.name for e in experiments)
            raise KeyError(f"no experiment '{w}' in `dvc exp show`; known: {known}")
        chosen.append(hit)
    return chosen


def run_exp_show(cwd: Path = Path(".")) -> list:
    """`dvc exp show --json` of the project at `cwd` (the dvc next to the running Python first)."""
    import shutil
    import sys

    local = Path(sys.executable).parent / "dvc"
    dvc = str(local) if local.exists() else (shutil.which("dvc") or "dvc")
    proc = subprocess.run([dvc, "exp", "show", "--json"], cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"`dvc exp show --json` failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout)


def _number(v) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str) and v.strip().lower() in ("inf", "infinity", "+inf"):
        return float("inf")
    return None


def _split(key: str) -> tuple[str, str, str] | None:
    parts = key.split("/")
    return (parts[0], "/".join(parts[1:-1]), parts[-1]) if len(parts) >= 3 else None


def differs(values: list, rel: float = 1e-9) -> list[bool]:
    """For each value, whether it differs from the first (numbers compared with a tiny tolerance)."""
    first = values[0]
    out = []
    for v in values:
        a, b = _number(first), _number(v)
        if a is not None and b is not None:
            out.append(not (a == b or (np.isfinite(a) and np.isfinite(b) and abs(a - b) <= rel * max(abs(a), 1.0))))
        else:
            out.append(v != first)
    return out


def _cell(v, first, changed: bool) -> str:
    text = fmt(_number(v)) if _number(v) is not None else ("&mdash;" if v is None else html.escape(str(v)))
    if changed and _number(v) is not None and _number(first) is not None and np.isfinite(_number(v) - _number(first)):
        text += f"<br><span class=\"ci\">{_number(v) - _number(first):+.4g}</span>"
    return f"<td class=\"{'diff' if changed else ''}\">{text}</td>"


def _charts(experiments: list[Experiment], protocol: str, rows: dict[str, list[str]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    imgs = []
    for metric, systems in rows.items():
        vals = np.array([[_number(e.metrics.get(f"{protocol}/{s}/{metric}")) or np.nan for e in experiments]
                         for s in systems], np.float64)
        vals[~np.isfinite(vals)] = np.nan
        if np.isnan(vals).all():
            continue
        fig, ax = plt.subplots(figsize=(5.2, 0.5 * len(systems) * max(1, len(experiments) / 2) + 1.0))
        h = 0.8 / len(experiments)
        for j, e in enumerate(experiments):
            ax.barh(np.arange(len(systems)) + j * h, np.nan_to_num(vals[:, j]), height=h, label=e.name)
        ax.set_yticks(np.arange(len(systems)) + 0.4 - h / 2, systems, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{protocol}: {metric}", fontsize=9)
        ax.legend(fontsize=7)
        imgs.append(f"<img alt=\"{protocol} {metric}\" src=\"{png_data_uri(fig)}\">")
    return "<div class=\"charts\">" + "".join(imgs) + "</div>"


def build_comparison(experiments: list[Experiment]) -> str:
    """The comparison page's HTML (see the module docstring)."""
    if not experiments:
        raise ValueError("build_comparison: no experiment to show")
    names = [html.escape(e.name) for e in experiments]
    head = "".join(f"<th>{n}<br><span class=\"ci\">{html.escape(e.rev[:7])}</span></th>" for n, e in zip(names, experiments))
    body = [f"<p>{len(experiments)} experiments from <code>dvc exp show --json</code>; cells that differ from the "
            f"first ({names[0]}) are highlighted with their difference. Metrics: <code>{METRICS_FILE}</code>.</p>"]
    keys = sorted({k for e in experiments for k in e.params})
    changed = [(k, [e.params.get(k) for e in experiments]) for k in keys]
    changed = [(k, v) for k, v in changed if any(differs(v))]
    body.append("<h2>params that differ</h2>")
    if changed:
        body.append(f"<table class=\"params\"><tr><th class=\"name\">param</th>{head}</tr>" + "".join(
            f"<tr><td class=\"name\">{html.escape(k)}</td>" + "".join(_cell(x, v[0], d) for x, d in zip(v, differs(v)))
            + "</tr>" for k, v in changed) + "</table>")
    else:
        body.append("<p class=\"muted\">none</p>")
    all_keys = sorted({k for e in experiments for k in e.metrics})
    protocols = sorted({s[0] for k in all_keys if (s := _split(k)) and s[0] != "speed"})
    for protocol in protocols:
        body.append(f"<h2>{html.escape(protocol)}</h2><table class=\"compare\" data-protocol=\"{html.escape(protocol)}\">"
                    f"<tr><th class=\"name\">system</th><th class=\"name\">metric</th>{head}</tr>")
        chart_rows: dict[str, list[str]] = {}
        for k in all_keys:
            s = _split(k)
            if not s or s[0] != protocol:
                continue
            values = [e.metrics.get(k) for e in experiments]
            flags = differs(values)
            body.append(f"<tr data-key=\"{html.escape(k)}\"><td class=\"name\">{html.escape(s[1])}</td><td class=\"name\">"
                        f"{html.escape(s[2])}</td>" + "".join(_cell(v, values[0], f) for v, f in zip(values, flags)) + "</tr>")
            if s[2] != "n_failed":
                chart_rows.setdefault(s[2], []).append(s[1])
        body.append("</table>")
        body.append(_charts(experiments, protocol, chart_rows))
    speed = [k for k in all_keys if k.startswith("speed/")]
    if speed:
        body.append(f"<h2>speed</h2><table><tr><th class=\"name\">metric</th>{head}</tr>" + "".join(
            f"<tr><td class=\"name\">{html.escape(k)}</td>" + "".join(
                _cell(e.metrics.get(k), experiments[0].metrics.get(k), False) for e in experiments) + "</tr>"
            for k in speed) + "</table>")
    return page("headflow experiment comparison", "\n".join(body))


def write_comparison(wanted: list[str], out: Path, exp_show: list | None = None, cwd: Path = Path(".")) -> Path:
    """Select experiments from `dvc exp show` (or the given parsed JSON) and write the page atomically."""
    from headflow.manifest import atomic_output

    experiments = select(parse_exp_show(exp_show if exp_show is not None else run_exp_show(cwd)), wanted)
    text = build_comparison(experiments)
    with atomic_output(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o644)
    return Path(out)
