"""The package's layers (README, "Architecture"): which may import which, no import cycle, and every
module importable on its own. Read from the source (every import statement, lazy ones too)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import synthswap

ROOT = Path(synthswap.__file__).parent

# Lowest first: a module may import from its own layer and the layers below, never above.
LAYERS = {
    "foundation": {"synthswap", "atomic", "locking", "info", "options", "overlap", "pngtext", "media", "precision",
                   "training", "patch_gan"},
    "library": {"faces", "faceset", "extract", "gan", "swap", "synth", "metrics", "provenance", "report",
                "pretrained", "export_weights", "demo_inputs", "enhance", "space"},
    "orchestration": {"cache", "stages", "run", "study", "estimate"},
    "front ends": {"serve", "cli", "__main__"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """synthswap module -> the synthswap modules it imports (anywhere in the file)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + [base])
                deps |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def _unit(module: str) -> str:
    """The package (or top-level module) a module belongs to: its place in LAYERS."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "synthswap"


def _layer(unit: str) -> int:
    return next(i for i, units in enumerate(LAYERS.values()) if unit in units)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_package_has_a_layer_and_imports_only_its_own_and_lower_ones():
    graph = import_graph()
    units = {_unit(m) for m in graph}
    placed = set().union(*LAYERS.values())
    assert units <= placed, f"not in LAYERS (add it to the README's architecture too): {units - placed}"
    upward = sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps if _layer(_unit(d)) > _layer(_unit(m)))
    assert upward == [], upward
    # the web app runs jobs through the library and `run`, never through the command line's code
    assert not [f"{m} -> {d}" for m, deps in graph.items() for d in deps
                if _unit(m) == "serve" and _unit(d) == "cli"]


def test_no_import_cycle_between_modules_or_packages():
    graph = import_graph()
    assert _cycles(graph) == []
    packages: dict[str, set[str]] = {}
    for m, deps in graph.items():
        packages.setdefault(_unit(m), set()).update(_unit(d) for d in deps if _unit(d) != _unit(m))
    assert _cycles(packages) == []


def test_every_module_imports():
    """The fast tier's floor: each module loads (no missing name, no import-time cycle)."""
    names = [m.name for m in pkgutil.walk_packages(synthswap.__path__, "synthswap.")
             if not m.name.endswith("__main__")]
    assert len(names) > 60
    for name in names:
        importlib.import_module(name)
