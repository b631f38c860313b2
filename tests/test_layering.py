"""Imports point down the layers, and no two parts of the package import each other (issue 21).

Every import statement of the package (and of the Triton kernels, installed as pixelfade_fast.kernels) is read
with ast, function-level and TYPE_CHECKING imports included, and mapped to the parts it joins: a subpackage
(``engine``) or a top-level module (``config``). A part may import parts of its own layer or of the layers below;
the import graph between parts must have no cycle. Nothing is imported, so a violation cannot hide behind import order.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOT = "pixelfade_fast"  # its __init__ is the public facade: the top part, named "pixelfade_fast"
SOURCES = {"pixelfade_fast": ROOT, "kernels": f"{ROOT}.kernels"}  # folder -> the package it installs as
EXTENSIONS = {f"{ROOT}._C": "_cpp"}  # compiled modules, in the part that loads them

# Top to bottom; a part may import its own layer and the layers below.
LAYERS = (
    {"pixelfade_fast", "cli", "demo"},
    {"compat", "evaluation", "gallery", "training"},
    {"engine"},
    {"models", "ops", "schedules", "config", "_backend"},
    {"kernels", "_cpp", "reference", "data", "errors", "progress", "input_space", "feature_model", "op_checks",
     "step_args", "registry", "machine", "version", "storage_format",
     "atomic_file"},
)

# Imports allowed to break the rule, (importer, imported): why. Empty: every import points down.
KNOWN: dict[tuple[str, str], str] = {}


def _module_name(folder: str, path: Path) -> str:
    parts = [SOURCES[folder]] + list(path.relative_to(REPO / folder).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(folder, path): path for folder in SOURCES for path in sorted((REPO / folder).rglob("*.py"))}


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    base = base[:len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def imported_modules(importer: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module of the packages that ``path`` (module ``importer``) imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(importer, path.name == "__init__.py", node)
            # `from . import engine` imports the submodule; `from .. import __version__` the package itself
            for alias in node.names:
                name = f"{target}.{alias.name}"
                found.add(name if name in modules or name in EXTENSIONS else target)
    return {name for name in found if name.split(".")[0] == ROOT}


def part_of(module: str) -> str:
    if module in EXTENSIONS:
        return EXTENSIONS[module]
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def import_edges() -> dict[tuple[str, str], set[str]]:
    """{(importing part, imported part): the importing modules}, between different parts."""
    modules = _modules()
    edges: dict[tuple[str, str], set[str]] = {}
    for name, path in modules.items():
        for target in imported_modules(name, path, modules):
            edge = (part_of(name), part_of(target))
            if edge[0] != edge[1]:
                edges.setdefault(edge, set()).add(name)
    return edges


def _layer(part: str) -> int:
    for index, layer in enumerate(LAYERS):
        if part in layer:
            return index
    raise AssertionError(f"part {part!r} is in no layer: add it to LAYERS")


def _cycles(edges) -> list[list[str]]:
    """The strongly connected parts of more than one node (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def violations(edges: dict[tuple[str, str], set[str]], known=frozenset()) -> list[str]:
    """Upward imports and cycles among ``edges``, leaving out the ``known`` ones."""
    edges = {edge: who for edge, who in edges.items() if edge not in known}
    problems = [f"{a} imports {b}, a layer above it ({', '.join(sorted(who))})"
                for (a, b), who in sorted(edges.items()) if _layer(b) < _layer(a)]
    problems += [f"import cycle between {' and '.join(cycle)}" for cycle in _cycles(edges)]
    return problems


def test_every_part_is_in_one_layer():
    parts = {part for edge in import_edges() for part in edge}
    assert parts, "no imports found: the scan reads nothing"
    for part in parts:
        assert sum(part in layer for layer in LAYERS) == 1, part


def test_imports_point_down_and_form_no_cycle():
    assert violations(import_edges(), KNOWN) == []


def test_known_exceptions_still_exist():
    """A KNOWN entry that no longer happens must go, so the set only ever shrinks."""
    edges = import_edges()
    assert [edge for edge in KNOWN if edge not in edges] == []


def test_the_check_catches_upward_imports_and_cycles():
    assert violations({("engine", "models"): {"m"}}) == []
    assert violations({("models", "engine"): {"pixelfade_fast.models.x"}}) == [
        "models imports engine, a layer above it (pixelfade_fast.models.x)"]
    cycle = {("evaluation", "gallery"): {"a"}, ("gallery", "training"): {"b"}, ("training", "evaluation"): {"c"}}
    assert violations(cycle) == ["import cycle between evaluation and gallery and training"]
    assert violations(cycle, known={("training", "evaluation")}) == []


def test_function_level_and_relative_imports_are_seen(tmp_path):
    source = tmp_path / "pixelfade_fast" / "models" / "x.py"
    source.parent.mkdir(parents=True)
    source.write_text("import torch\ndef f():\n    from ..engine.features import frozen\n    from . import y\n"
                      "import pixelfade_fast.kernels.launch\nfrom .. import __version__, _C\n")
    modules = {"pixelfade_fast.models.y": source}
    found = imported_modules("pixelfade_fast.models.x", source, modules)
    assert found == {"pixelfade_fast.engine.features", "pixelfade_fast.models.y", "pixelfade_fast.kernels.launch",
                     "pixelfade_fast", "pixelfade_fast._C"}
    assert {part_of(m) for m in found} == {"engine", "models", "kernels", "pixelfade_fast", "_cpp"}


def test_importing_the_package_loads_no_model_zoo():
    """``import pixelfade_fast`` (protect, the engine) must not build the zoo's modules on the way."""
    code = "import sys, pixelfade_fast; print(sorted(m for m in sys.modules if m.startswith('pixelfade_fast.models')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"
