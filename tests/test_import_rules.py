"""DESIGN.md's import allow-list, no import cycles, and docs/ARCHITECTURE.md naming every package.

Read statically (tests/import_graph.py: every import, function-level ones included). A rule about a
package that does not exist yet checks nothing until it does; a new rule is a line in RULES.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from import_graph import ImportGraph

ROOT = Path(__file__).resolve().parents[1]
PKG = "headflow"
SHARED_LAYERS = ("nn", "losses", "augment")
FAMILY = re.compile(r"^headflow\.generators\.([a-z0-9_]+)")


def in_area(module: str, *areas: str) -> bool:
    """`module` is `headflow.<area>` or inside it, for one of `areas` (dotted: `generators`, `sync.data`)."""
    return any(module == f"{PKG}.{a}" or module.startswith(f"{PKG}.{a}.") for a in areas)


def family_of(module: str) -> str | None:
    m = FAMILY.match(module)
    return m.group(1) if m else None


def stage_modules(root: Path = ROOT) -> set[str]:
    """The stage edges: every module whose `run_stage` a `stages/<name>.py` entry point calls."""
    found = set()
    for path in (root / "stages").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and any(a.name == "run_stage" for a in node.names):
                found.add(node.module)
    return found


@dataclass(frozen=True)
class Rule:
    """`applies(module)` selects the importing modules; `allowed(module, target)` judges each headflow
    module it imports (`target`). `why` is the DESIGN.md sentence it enforces."""

    name: str
    why: str
    applies: object
    allowed: object


def family_may_import(module: str, target: str) -> bool:
    own = family_of(module)
    if family_of(target) is not None:
        return family_of(target) == own
    # the shared folders, shards, morphable, nmfc, landmarks68, catalog; config for the family's
    # params dataclass (config.require); the family registry generators/__init__ is not a dependency.
    # A generate stage's edge also needs the data conventions and the stage tools every stage uses:
    # audio (the Wav2Lip mel and its per-frame window rule, audio.mel), media (canonical decode / encode of the
    # output videos), manifest (the generation contract's writer, quarantine rows) and stage (validated
    # writes, the quarantine check); perceptual_weights resolves the perceptual loss's weights through the
    # registry for the families (nn/ and losses/ may not).
    return in_area(target, *SHARED_LAYERS, "training", "shards", "morphable", "nmfc", "landmarks68", "catalog",
                   "config", "audio", "media", "manifest", "stage", "perceptual_weights")


RULES = [
    Rule("shared layers", "nn/, losses/, augment/ import only torch, kornia, each other and checks (stdlib-only validation)",
         lambda m: in_area(m, *SHARED_LAYERS), lambda m, t: in_area(t, *SHARED_LAYERS, "checks")),
    Rule("training knows no family", "training/ imports no family and no stage",
         lambda m: in_area(m, "training"),
         lambda m, t: not in_area(t, "generators") and t not in stage_modules()),
    Rule("families compose through data", "a family imports the shared folders, shards/, morphable/, nmfc/, "
         "landmarks68 and catalog, never another family",
         lambda m: family_of(m) is not None, family_may_import),
    Rule("metrics judge", "metrics/ imports no generator",
         lambda m: in_area(m, "metrics"), lambda m, t: not in_area(t, "generators")),
    Rule("evaluate reads data", "evaluate/ reads generated manifests, shards and metrics/ (no generator code)",
         lambda m: in_area(m, "evaluate"), lambda m, t: not in_area(t, "generators")),
    Rule("demo stays the demo's", "production code never imports headflow.demo (the demo stage and demo_run may)",
         lambda m: not in_area(m, "demo") and m != f"{PKG}.demo_run", lambda m, t: not in_area(t, "demo")),
]

EXTERNAL = {
    # the shared layers may use the standard library besides torch and kornia
    "shared layers": set(sys.stdlib_module_names) | {"torch", "kornia"},
}


def violations(graph: ImportGraph, rules: list[Rule] = RULES) -> list[str]:
    found = []
    for rule in rules:
        for module in sorted(m for m in graph.files if rule.applies(m)):
            for target in sorted(graph.edges[module]):
                if not target.startswith(module + ".") and not module.startswith(target + ".") \
                        and not rule.allowed(module, target):
                    found.append(f"{rule.name}: {module} imports {target} ({rule.why})")
            if rule.name in EXTERNAL:
                for name in sorted(graph.external(module) - EXTERNAL[rule.name]):
                    found.append(f"{rule.name}: {module} imports {name} ({rule.why})")
    return found


@pytest.fixture(scope="module")
def graph() -> ImportGraph:
    return ImportGraph.build(ROOT / "src")


def test_the_import_allow_list_holds(graph):
    assert violations(graph) == []


def test_no_import_cycles(graph):
    # function-level imports count: they hide a cycle from Python's import machinery, not from a reader
    assert graph.cycles() == []


def test_the_stage_edges_are_found():
    assert {"headflow.faces.stage", "headflow.sync.sync_check", "headflow.sync.train_expert"} <= stage_modules()


def _write(root: Path, files: dict[str, str]) -> ImportGraph:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return ImportGraph.build(root / "src")


def test_the_rules_catch_each_kind_of_violation(tmp_path):
    graph = _write(tmp_path, {
        "src/headflow/nn/blocks.py": "import numpy\nfrom headflow.losses import gan\nimport math, torch\n",
        "src/headflow/losses/gan.py": "def f():\n    from headflow.catalog import CATALOG\n",
        "src/headflow/catalog.py": "",
        "src/headflow/training/loop.py": "from headflow.generators.lipsync import model\n",
        "src/headflow/generators/lipsync/model.py": "from headflow.nn import blocks\nfrom headflow.shards import x\n",
        "src/headflow/generators/lipsync/train.py": "from headflow.generators.styletalk.model import Net\n"
                                                    "from headflow.generators.lipsync import model\n",
        "src/headflow/generators/styletalk/model.py": "from headflow.faces import stage\n",
        "src/headflow/shards/x.py": "",
        "src/headflow/faces/stage.py": "",
        "src/headflow/metrics/fid.py": "from headflow.generators.lipsync.model import G\n",
        "src/headflow/align/run.py": "def f():\n    from headflow.demo.corpus import build\n",
        "src/headflow/demo/corpus.py": "from headflow.demo import render\n",
        "src/headflow/demo/render.py": "",
        "src/headflow/demo_run.py": "from headflow.demo import corpus\n",
    })
    found = violations(graph)
    expected = [
        ("shared layers", "headflow.losses.gan imports headflow.catalog"),
        ("shared layers", "headflow.nn.blocks imports numpy"),
        ("training knows no family", "headflow.training.loop imports headflow.generators.lipsync.model"),
        ("families compose through data", "headflow.generators.lipsync.train imports headflow.generators.styletalk.model"),
        ("families compose through data", "headflow.generators.styletalk.model imports headflow.faces.stage"),
        ("metrics judge", "headflow.metrics.fid imports headflow.generators.lipsync.model"),
        ("demo stays the demo's", "headflow.align.run imports headflow.demo.corpus"),
    ]
    assert [f.split(" (")[0] for f in found] == [f"{rule}: {what}" for rule, what in expected]


def test_the_cycle_finder_sees_a_function_level_cycle(tmp_path):
    graph = _write(tmp_path, {
        "src/headflow/a/__init__.py": "",
        "src/headflow/a/x.py": "from headflow.a import y\n",
        "src/headflow/a/y.py": "def f():\n    from headflow.a.x import g\n",
        "src/headflow/a/z.py": "from headflow.a import x\n",
    })
    assert graph.cycles() == [["headflow.a.x", "headflow.a.y"]]


def test_the_architecture_map_names_every_package():
    text = (ROOT / "docs/ARCHITECTURE.md").read_text()
    src = ROOT / "src" / PKG
    packages = sorted(p.name for p in src.iterdir() if p.is_dir() and any(p.rglob("*.py")))
    missing = [f"{p}/" for p in packages if f"`{p}/`" not in text]
    assert packages and not missing, f"docs/ARCHITECTURE.md does not say what these are (add them to the map): {missing}"


def test_readme_links_the_architecture_map():
    assert "docs/ARCHITECTURE.md" in (ROOT / "README.md").read_text()
