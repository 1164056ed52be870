"""The imports between the project's own modules: no circle, and the layers hold.

Read from the source with `ast`, nothing imported: every import statement counts, those
under `if TYPE_CHECKING:` and inside functions included (a circle that only type checking
closes still ties the modules together). `from package import name` points at the module
package.name when there is one, else at the package; an import of a.b points at a.b only
(not at the package a as well, whose __init__ Python runs first: counting that would tie
every package to what its __init__ re-exports)."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gossip", "node", "simulations", "chaos", "benchmarks", "scripts")
# What each layer must not import (a package, and every module under it): the core knows
# no driver, the drivers no tool. Inside node/, each room imports only the floors below
# it: the peer wire; the server (one node's state and loops); monitoring and the recipes,
# each on the server alone; node.state, which assembles them; the web face; the tools.
_ABOVE_SERVER = {"node.monitoring", "node.recipes", "node.state", "node.web", "node.tools"}
FORBIDDEN = {
    "gossip": {"node", "simulations", "chaos", "benchmarks", "scripts"},
    "node": {"chaos", "benchmarks", "scripts"},
    "simulations": {"node", "chaos", "benchmarks", "scripts"},
    "node.wire": {"node.server", *_ABOVE_SERVER},
    "node.server": _ABOVE_SERVER,
    "node.monitoring": _ABOVE_SERVER - {"node.monitoring"},
    "node.recipes": _ABOVE_SERVER - {"node.recipes"},
    "node.state": {"node.web", "node.tools"},
    "node.web": {"node.tools"},
}

Graph = Mapping[str, set[str]]


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the project's packages, by dotted name (a package by its own name)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _resolve(name: str, modules: Mapping[str, Path]) -> str | None:
    """The project module `name` names: itself, or the nearest enclosing one (a.b.func -> a.b)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _imported(tree: ast.AST, module: str, is_package: bool) -> Iterable[str]:
    """The dotted names every import statement of a module points at."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, up level - 1 more
                package = module.split(".") if is_package else module.split(".")[:-1]
                anchor = ".".join(package[: len(package) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        targets = {_resolve(name, modules) for name in _imported(tree, module, path.name == "__init__.py")}
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def circles(graph: Graph) -> list[list[str]]:
    """One circle (a -> b -> ... -> a) in each group of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(start: str) -> None:  # Tarjan's strongly connected components, without recursion
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(group)

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return [_circle_in(graph, group) for group in groups]


def _circle_in(graph: Graph, group: set[str]) -> list[str]:
    """A shortest circle through the group's first module (breadth first, inside the group)."""
    start = min(group)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & group):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"no circle in {sorted(group)}")


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def layer_breaches(graph: Graph) -> list[str]:
    return sorted({
        f"{module} imports {target}"
        for layer, forbidden in FORBIDDEN.items()
        for module, targets in graph.items() if _within(module, layer)
        for target in targets if any(_within(target, above) for above in forbidden)
    })


@functools.cache
def project_graph() -> dict[str, set[str]]:
    return import_graph(module_files())


def test_no_import_circle() -> None:
    found = circles(project_graph())
    assert not found, "import circles: " + "; ".join(" -> ".join(c) for c in found)


def test_the_layers_hold() -> None:
    assert not (breaches := layer_breaches(project_graph())), breaches


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The checks find a circle closed under TYPE_CHECKING, inside a function, or through a
    relative import, and a layer breach."""
    files = {
        "gossip/__init__.py": "",
        "gossip/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gossip.b import B\n",
        "gossip/b.py": "def f() -> None:\n    import gossip.c.thing\n",
        "gossip/c.py": "from . import a\nfrom gossip import version\n",
        "gossip/version.py": "import node.api\n",
        "node/__init__.py": "",
        "node/api.py": "from gossip.version import x\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(module_files(tmp_path))
    assert graph["gossip.b"] == {"gossip.c"} and graph["gossip.c"] == {"gossip.a", "gossip.version"}
    assert sorted(map(sorted, [set(c) for c in circles(graph)])) == [
        ["gossip.a", "gossip.b", "gossip.c"],
        ["gossip.version", "node.api"],
    ]
    assert circles(graph)[0][0] == circles(graph)[0][-1]
    assert layer_breaches(graph) == ["gossip.version imports node.api"]


def test_the_rooms_of_node_are_floors() -> None:
    """A room importing one above it breaches, as does a module under it; the floors below
    and node.state's name alone (not node.state_x) do not."""
    graph = {
        "node.wire.transport": {"node.server.clockcheck", "gossip.codec"},
        "node.server.pump": {"node.wire.transport", "node.recipes.jobs"},
        "node.recipes.jobs": {"node.server.local_state", "node.state_x"},
        "node.state": {"node.recipes.jobs", "node.monitoring.health", "node.web.app"},
        "node.web.app": {"node.state", "node.tools.testing"},
        "node.tools.testing": {"node.web.app", "node.state"},
    }
    assert layer_breaches(graph) == [
        "node.server.pump imports node.recipes.jobs",
        "node.state imports node.web.app",
        "node.web.app imports node.tools.testing",
        "node.wire.transport imports node.server.clockcheck",
    ]
