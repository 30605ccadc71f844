"""The import structure of ``medviz/``: no cycles, no private names across modules, no Streamlit.

Every module is read with :mod:`ast` (nothing is imported), found with :mod:`pkgutil`.
An import counts as *top level* when it runs while the module is imported (module body,
class bodies, ``if``/``try`` blocks), and as *function level* inside a ``def``; imports
under ``if TYPE_CHECKING:`` never run and are ignored. ``from pkg import name`` is an edge
to ``pkg.name`` when that is a module, else to ``pkg``; implicit imports of parent
packages are not edges (Python runs them first, so they cannot deadlock).
"""

from __future__ import annotations

import ast
import pkgutil
from dataclasses import dataclass
from pathlib import Path

import medviz

ROOT = Path(medviz.__file__).parent
# Nothing is skipped: build and bench tooling lives in tools/ and bench/ (issue #12).
SKIPPED: frozenset[str] = frozenset()
# A module longer than this states at the top of its docstring why it stays one module.
MAX_LINES = 600
# Function-level imports allowed to point back up the layers (importer, target), with why.
UPWARD_CALLS = {
    # Explainer.explain()/heatmaps() run a method of the registry, whose methods run on
    # the Explainer: a convenience for callers, imported when called.
    ("medviz.explain.engine", "medviz.explain.methods"),
}


@dataclass(frozen=True)
class Import:
    """One import statement's effect: ``importer`` needs ``target`` (a medviz module)."""

    importer: str
    target: str
    names: tuple[str, ...]  # names taken by ``from target import ...`` (empty for ``import``)
    top_level: bool
    line: int


def all_modules() -> dict[str, Path]:
    """``{dotted name: file}`` of every module and package of ``medviz/``."""
    found = {"medviz": ROOT / "__init__.py"}

    def walk(folder: Path, prefix: str) -> None:
        for info in pkgutil.iter_modules([str(folder)]):
            name = f"{prefix}.{info.name}"
            if info.ispkg:
                found[name] = folder / info.name / "__init__.py"
                walk(folder / info.name, name)
            else:
                found[name] = folder / f"{info.name}.py"

    walk(ROOT, "medviz")
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str:
    parts = module.split(".") if is_package else module.split(".")[:-1]
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """Every import of a medviz module made by ``module`` (source at ``path``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    out: list[Import] = []

    def visit(node: ast.AST, top_level: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child, top_level)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "medviz" or alias.name.startswith("medviz."):
                    out.append(Import(module, alias.name, (), top_level, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            source = (
                _resolve_relative(module, is_package, node.level, node.module)
                if node.level
                else node.module or ""
            )
            if source == "medviz" or source.startswith("medviz."):
                plain = tuple(a.name for a in node.names if f"{source}.{a.name}" not in modules)
                if plain:
                    out.append(Import(module, source, plain, top_level, node.lineno))
                for alias in node.names:
                    if f"{source}.{alias.name}" in modules:
                        out.append(
                            Import(module, f"{source}.{alias.name}", (), top_level, node.lineno)
                        )
        inner = top_level and not isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
        )
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    for statement in tree.body:
        visit(statement, True)
    return out


def import_graph() -> list[Import]:
    """Every medviz → medviz import in the package, skipped modules left out."""
    modules = all_modules()
    edges: list[Import] = []
    for name, path in sorted(modules.items()):
        if name in SKIPPED:
            continue
        edges.extend(i for i in imports_of(name, path, modules) if i.target not in SKIPPED)
    return edges


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle ``[a, b, ..., a]`` per strongly connected component that has one.

    Args:
        graph: ``{module: modules it imports}``.

    Returns:
        Cycles, each starting and ending at its component's smallest name; empty if none.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)

    cycles = []
    for component in components:
        start = min(component)
        if len(component) == 1 and start not in graph.get(start, ()):
            continue
        # Breadth-first search inside the component for the shortest way back to start.
        previous: dict[str, str] = {}
        frontier = [start]
        end = None
        while frontier and end is None:
            following = []
            for node in frontier:
                for nxt in sorted(graph.get(node, ())):
                    if nxt == start:
                        end = node
                        break
                    if nxt in component and nxt not in previous:
                        previous[nxt] = node
                        following.append(nxt)
                if end is not None:
                    break
            frontier = following
        path = [start]
        node = end
        while node is not None and node != start:
            path.insert(1, node)
            node = previous[node]
        cycles.append([*path, start])
    return sorted(cycles)


# ------------------------------------------------------------------- the checker itself


def test_find_cycles_names_a_cycle_and_passes_a_tree():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"x": {"x"}}) == [["x", "x"]]


def test_imports_are_classified_top_level_or_function_level(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import medviz.metrics\n"
        "from medviz.store import ModelCard, _fmt\n"
        "if TYPE_CHECKING:\n"
        "    from medviz.zoo import ARCHITECTURES\n"
        "class C:\n"
        "    from medviz import errors\n"
        "def f():\n"
        "    from medviz.inference import predict_proba\n"
    )
    modules = all_modules()
    found = {(i.target, i.names, i.top_level) for i in imports_of("medviz.probe", source, modules)}
    assert found == {
        ("medviz.metrics", (), True),
        ("medviz.store", ("ModelCard", "_fmt"), True),
        ("medviz.errors", (), True),
        ("medviz.inference", ("predict_proba",), False),
    }


# ------------------------------------------------------------------- the package


def test_walk_finds_the_package():
    modules = all_modules()
    assert {"medviz", "medviz.cli", "medviz.metrics", "medviz.explain.engine"} <= set(modules)
    assert len(import_graph()) > 50


def test_no_import_cycle_among_top_level_imports():
    graph: dict[str, set[str]] = {}
    for edge in import_graph():
        if edge.top_level:
            graph.setdefault(edge.importer, set()).add(edge.target)
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles)


def test_function_level_imports_hide_no_cycle_but_the_listed_upward_calls():
    """A function-local import must not be a way round a cycle (except ``UPWARD_CALLS``)."""
    graph: dict[str, set[str]] = {}
    for edge in import_graph():
        if (edge.importer, edge.target) not in UPWARD_CALLS:
            graph.setdefault(edge.importer, set()).add(edge.target)
    cycles = find_cycles(graph)
    assert not cycles, "import cycles through function-level imports:\n" + "\n".join(
        " → ".join(c) for c in cycles
    )


def test_no_private_name_is_imported_from_another_module():
    offences = [
        f"{e.importer}:{e.line} imports {name} from {e.target}"
        for e in import_graph()
        for name in e.names
        if name.startswith("_") and not name.startswith("__") and e.target != e.importer
    ]
    assert not offences, "\n".join(offences)


def test_only_medviz_ui_imports_streamlit():
    """Anywhere in a module, functions included."""
    offences = []
    for name, path in all_modules().items():
        if name == "medviz.ui" or name.startswith("medviz.ui."):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(t == "streamlit" or t.startswith("streamlit.") for t in targets):
                offences.append(f"{name}:{node.lineno}")
    assert not offences, "Streamlit imported outside medviz/ui: " + ", ".join(offences)


def test_tooling_is_not_in_the_package():
    modules = set(all_modules())
    assert "medviz.make_models" not in modules and "medviz.explain.benchmark" not in modules


def test_long_modules_say_why_they_stay_one_module():
    offences = []
    for name, path in all_modules().items():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_LINES:
            doc = ast.get_docstring(ast.parse(text)) or ""
            if "Why one module" not in doc:
                offences.append(f"{name}: {text.count(chr(10))} lines")
    assert not offences, "split these or say why they stay one module:\n" + "\n".join(offences)
