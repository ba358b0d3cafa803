"""The static import graph of headflow, read with `ast` (nothing is imported or run).

Every `import` and `from ... import` counts wherever it sits (module level, inside a function, under
`if TYPE_CHECKING`), because any of them can run. Used by tests/test_catalog.py (a stage's DVC deps
must cover every module its entry point reaches) and tests/test_import_rules.py (DESIGN.md's
allow-list, no cycles).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path


def module_name(path: Path, src: Path) -> str:
    """`src/headflow/faces/stage.py` -> `headflow.faces.stage`; a package's `__init__.py` -> the package."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, module: str, is_package: bool) -> set[str]:
    """Every dotted name `path` imports, relative imports resolved; `from a import b` gives `a` and `a.b`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[:len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


@dataclass
class ImportGraph:
    """Modules of one package (`files`: name -> path) and the package modules each imports (`edges`)."""

    package: str
    files: dict[str, Path]
    edges: dict[str, set[str]]

    @classmethod
    def build(cls, src: Path, package: str = "headflow") -> ImportGraph:
        files = {module_name(p, src): p for p in sorted((src / package).rglob("*.py"))}
        graph = cls(package, files, {})
        graph.edges = {m: graph.resolve(imported_names(p, m, p.name == "__init__.py")) for m, p in files.items()}
        return graph

    def resolve(self, names: set[str]) -> set[str]:
        """The package modules `names` load: each name's longest existing module, plus its packages' `__init__`s."""
        out = set()
        for name in names:
            if name != self.package and not name.startswith(self.package + "."):
                continue
            while name and name not in self.files:
                name = name.rpartition(".")[0]
            while name:
                if name in self.files:
                    out.add(name)
                name = name.rpartition(".")[0]
        return out

    def closure(self, start: set[str]) -> set[str]:
        """Every module reached from the modules `start` (included)."""
        seen, todo = set(), list(start)
        while todo:
            m = todo.pop()
            if m not in seen:
                seen.add(m)
                todo.extend(self.edges.get(m, ()))
        return seen

    def entry_closure(self, path: Path) -> set[str]:
        """Every package module a script outside the package (`stages/<name>.py`) reaches."""
        return self.closure(self.resolve(imported_names(path, path.stem, False)))

    def external(self, module: str) -> set[str]:
        """Top-level names of what `module` imports outside the package (`torch`, `numpy`, ...)."""
        path = self.files[module]
        names = imported_names(path, module, path.name == "__init__.py")
        return {n.split(".")[0] for n in names if n and n.split(".")[0] != self.package}

    def cycles(self) -> list[list[str]]:
        """Strongly connected components of more than one module (Tarjan), ignoring a module's
        imports of its own parent packages (`headflow.manifest.io` importing `headflow.manifest`
        runs nothing new)."""
        edges = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in self.edges.items()}
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        found: list[list[str]] = []

        def visit(v: str) -> None:
            index[v] = low[v] = len(index)
            stack.append(v)
            on_stack.add(v)
            for w in sorted(edges[v]):
                if w not in index:
                    visit(w)
                    low[v] = min(low[v], low[w])
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

        for v in sorted(edges):
            if v not in index:
                visit(v)
        return found
