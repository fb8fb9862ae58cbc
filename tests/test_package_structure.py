"""The house stays walkable: no import cycles, one home for SQL, modules that say
which rules they implement and stay small (STYLE.md habit 1).

Read from the package's own source with `ast`, so an import inside a function
or under `TYPE_CHECKING` counts as much as one at the top: a cycle hidden in a
function is still a cycle a reader has to untangle.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "stepped_temporal"
#: a module past this many lines is asking to be split (STYLE.md: ~300)
MAX_LINES = 330
#: Stepped's tables: only `store/` (and the user's `achievements.py`) name them
TABLES = ("Achievement", "LaneClaim", "OutboundPerformance", "StepRecord")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:  # Alembic's scripts, not the package's code
            continue
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The package's modules that `name` imports, anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:  # `from . import x` imports the module x
                submodule = f"{target}.{alias.name}"
                targets.add(submodule if submodule in MODULES else target)
    return {target for target in targets if target in MODULES and target != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_graph_is_read_from_the_source():
    """The reader sees the imports that matter (else the cycle test proves nothing)."""
    assert "stepped_temporal.store.schema" in GRAPH["stepped_temporal.store.achievements"]
    assert "stepped_temporal.client" in GRAPH["stepped_temporal.actors"]
    assert "stepped_temporal.preparing" in GRAPH["stepped_temporal.activities"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    """No module imports one that imports it back, directly or through others."""
    assert _cycles(GRAPH) == []


def test_the_client_side_does_not_import_activities():
    """Starting, completing and inspecting actions need no activity module: the
    client reads Stepped's tables through `store/` like the activities do."""
    activity_modules = {
        f"stepped_temporal.{name}"
        for name in ("activities", "preparing", "stepping", "jobs", "finishing", "execution")
    }

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for other in GRAPH[todo.pop()] - seen:
                seen.add(other)
                todo.append(other)
        return seen

    for module in ("client", "lane_view", "actors", "trees"):
        assert reach(f"stepped_temporal.{module}") & activity_modules == set(), module


def test_only_the_store_names_steppeds_tables():
    """Stepped's tables have one home (store/): nobody else writes their SQL."""
    allowed = {"stepped_temporal.achievements"}  # the user's names, re-exported
    for name, path in MODULES.items():
        if name.startswith("stepped_temporal.store") or name in allowed:
            continue
        used = {
            node.id
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Name) and node.id in TABLES
        }
        assert not used, f"{name} uses {sorted(used)}: statements on them belong in store/"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_module_names_its_rules_and_stays_small(name: str):
    """Each module opens with a docstring naming the S-rules it implements, and is
    small enough to read in one sitting."""
    source = MODULES[name].read_text()
    docstring = ast.get_docstring(ast.parse(source))
    assert docstring, f"{name} has no module docstring"
    assert re.search(r"\bS\d+(\.\d+)?\b", docstring), f"{name}'s docstring names no S-rule"
    lines = source.count("\n")
    assert lines <= MAX_LINES, f"{name} has {lines} lines (split it: one concept per module)"


def test_the_architecture_note_names_what_exists():
    """docs/architecture.md sends a newcomer to `module.name`s: each must exist."""
    import importlib

    note = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    references = set(re.findall(r"`([a-z_/]+(?:\.[A-Za-z_]+)+)", note))
    assert len(references) > 30  # the note is read, not skipped
    missing = []
    for reference in sorted(references):
        parts = reference.replace("/", ".").split(".")
        if parts[-1] == "py":
            parts.pop()
        if parts[0] == "tests":
            assert (PACKAGE.parent / reference).exists(), reference
            continue
        for cut in range(len(parts), 0, -1):
            try:
                found = importlib.import_module("stepped_temporal." + ".".join(parts[:cut]))
                break
            except ImportError:
                continue
        else:
            missing.append(reference)
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute, None)
        if found is None:
            missing.append(reference)
    assert missing == []
