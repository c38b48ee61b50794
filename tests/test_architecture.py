"""The architecture holds: layers checked by import-linter, no import cycles, a light import."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

import seawall
from _paths import ROOT


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_import_linter_contracts_hold() -> None:
    """lint-imports keeps every contract in pyproject.toml (layers, core, stores, integrations)."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    run = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def test_no_module_takes_part_in_an_import_cycle() -> None:
    """The static import graph of seawall (type-checking imports included) has no cycle."""
    graph = grimp.build_graph("seawall", cache_dir=None)
    assert _cycles(graph) == []


def test_the_cycle_finder_sees_a_cycle() -> None:
    """The cycle check itself: two modules importing each other are reported."""

    class Graph:  # the two queries _cycles makes of a grimp graph
        def __init__(self, imports: dict[str, set[str]]) -> None:
            self.imports = imports
            self.modules = set(imports)

        def find_modules_directly_imported_by(self, module: str) -> set[str]:
            return self.imports[module]

    graph = Graph({"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}, "pkg.c": {"pkg.a"}})
    assert _cycles(graph) == [["pkg.a", "pkg.b"]]  # type: ignore[arg-type]


def _loaded_by(code: str) -> list[str]:
    probe = (
        "import sys, json; before = set(sys.modules); "
        f"{code}; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return list(json.loads(out))


def test_import_seawall_loads_nothing_but_its_own_init() -> None:
    """`import seawall` loads the package module alone: no policy, no asyncio, ssl or logging."""
    assert _loaded_by("import seawall") == ["seawall"]


def test_a_name_is_loaded_with_its_module_on_first_use() -> None:
    """Touching seawall.CircuitBreaker loads the breaker family, and not the ASGI or httpx code."""
    loaded = _loaded_by("import seawall; seawall.CircuitBreaker")
    assert "seawall._breaker.breaker" in loaded
    assert [m for m in loaded if m.startswith(("seawall.asgi", "seawall.httpx"))] == []


def test_every_lazy_name_matches_its_static_import() -> None:
    """The lazy table, the type-checking imports and __all__ name the same objects."""
    import ast

    tree = ast.parse(Path(seawall.__file__).read_text(encoding="utf-8"))
    static: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom)
                for alias in stmt.names:
                    static[alias.name] = "." * stmt.level + (stmt.module or "")
    lazy = seawall._EXPORTS
    assert static == lazy
    assert sorted(lazy) == sorted(seawall.__all__)
    for name in seawall.__all__:
        assert getattr(seawall, name) is getattr(sys.modules[f"seawall{lazy[name]}"], name)


def test_every_top_level_module_sits_in_a_layer() -> None:
    """A new module of seawall must be placed in the layers contract, or this test fails."""
    import pkgutil
    import re
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    layers = config["tool"]["importlinter"]["contracts"][0]["layers"]
    placed = {name for layer in layers for name in re.split(r"\s*[|:]\s*", layer)}
    children = {info.name for info in pkgutil.iter_modules(seawall.__path__)}
    assert sorted(children - placed) == []
