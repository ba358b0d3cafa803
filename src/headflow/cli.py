"""The `headflow` command: `headflow models list`, `headflow models fetch NAME`, `headflow params`,
`headflow report [--exp A B ...]`."""

from __future__ import annotations

import argparse
import sys


def _models_list(_: argparse.Namespace) -> int:
    from headflow import models

    print(f"models folder: {models.models_dir()}  (${models.ENV_VAR})")
    for r in models.status():
        mark = "ok     " if r["present"] else "missing"
        print(f"  {mark} {r['name']:<26} {r['backend']:<15} {r['path']}")
        if not r["present"]:
            print(f"          fetch: headflow models fetch {r['name']}   ({r['url']})")
    return 0


def _models_fetch(args: argparse.Namespace) -> int:
    from headflow import models

    for name in args.names:
        path = models.fetch(name)
        print(f"{name}: {path} sha256 {models.sha256_of(path)}")
    return 0


def _params(args: argparse.Namespace) -> int:
    from pathlib import Path

    from headflow.config import describe
    from headflow.params import BLOCKS, block_class, load

    names = [args.block] if args.block else list(BLOCKS)
    current = Path(args.params).exists()
    if not current:
        print(f"({args.params} not found: defaults only)")
    for name in names:
        cls = block_class(name)
        print(f"{name}: {cls.__name__}  {' '.join((cls.__doc__ or '').split())}")
        for line in describe(cls, load(name, args.params) if current else None, name):
            print(line)
    return 0


def _report(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from headflow.catalog import CATALOG

    if args.exp:
        from headflow.evaluate.compare import write_comparison

        exp_show = json.loads(Path(args.json).read_text()) if args.json else None
        out = write_comparison(args.exp, Path(args.out or "reports/compare.html"), exp_show)
    else:
        from headflow.evaluate.report import write_report

        out = write_report(Path(args.data or CATALOG.folder("evaluate")),
                           Path(args.out or CATALOG.report("evaluate", "page")))
    print(f"report: {out.resolve().as_uri()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="headflow", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    models = sub.add_parser("models", help="pretrained weights: list, fetch (explicit downloads only)")
    msub = models.add_subparsers(dest="action", required=True)
    msub.add_parser("list", help="registered weights and whether they are on disk").set_defaults(fn=_models_list)
    fetch = msub.add_parser("fetch", help="download weights from their official URL (needs a network)")
    fetch.add_argument("names", nargs="+")
    fetch.set_defaults(fn=_models_fetch)
    params = sub.add_parser("params", help="every field of the params blocks: type, default, value in use, docs")
    params.add_argument("block", nargs="?", help="one block (default: all)")
    params.add_argument("--params", default="params.yaml", help="the params file giving the values in use")
    params.set_defaults(fn=_params)
    report = sub.add_parser("report", help="the evaluation report page; with --exp, several DVC experiments side by side")
    report.add_argument("--exp", nargs="+", metavar="NAME", help="experiment names or revisions (dvc exp show)")
    report.add_argument("--json", help="a saved `dvc exp show --json` instead of running it")
    report.add_argument("--data", help="the evaluate stage's output folder (default data/interim/evaluate)")
    report.add_argument("--out", help="the page (default reports/report.html, or reports/compare.html with --exp)")
    report.set_defaults(fn=_report)
    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except (KeyError, OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
