"""The package layout keeps its promises (issue #11): no import cycles, a small
root, every package saying what it owns, and no long module without a reason."""

from __future__ import annotations

import ast
from pathlib import Path

import keyturn

SOURCE = Path(keyturn.__file__).parent
#: Modules allowed directly in keyturn/ (the few shared roots; see docs/architecture.md).
MAX_ROOT_MODULES = 12
#: Longer modules must say why at the top of their docstring.
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in SOURCE.rglob("*.py")}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_at_load(name: str, path: Path) -> set[str]:
    """The keyturn modules ``name`` imports when it is loaded: module-level
    imports, not those under ``if TYPE_CHECKING:`` or inside functions."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                visit(node.orelse)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
                visit(getattr(node, "finalbody", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package
                    for _ in range(node.level - 1):
                        parent = parent.rpartition(".")[0]
                    base = f"{parent}.{base}" if base else parent
                for alias in node.names:
                    child = f"{base}.{alias.name}"
                    found.add(child if child in MODULES else base)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return {module for module in found if module in MODULES and module != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check itself works: a -> b -> c -> a is reported, a tree is not."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_there_are_no_import_cycles() -> None:
    """No keyturn module imports, at load time, one that (in)directly imports it."""
    graph = {name: imports_at_load(name, path) for name, path in MODULES.items()}
    assert cycles(graph) == []


def test_the_root_holds_only_the_shared_modules() -> None:
    """At most about a dozen modules live directly in keyturn/; the rest is by domain."""
    root = sorted(path.name for path in SOURCE.glob("*.py"))
    assert len(root) <= MAX_ROOT_MODULES, root


def test_every_package_says_what_it_owns() -> None:
    """Each package's __init__ has a docstring (what the domain owns, what it
    must not import)."""
    for init in SOURCE.rglob("__init__.py"):
        if "migrations" in init.parts:
            continue
        docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert docstring and len(docstring.split()) >= 10, f"{init} says nothing"


def test_long_modules_say_why() -> None:
    """A module over ~300 lines explains its length at the top of its docstring."""
    for name, path in MODULES.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) <= MAX_LINES or "migrations" in path.parts:
            continue
        head = "\n".join(lines[:20])
        assert "Over 300 lines" in head, f"{name} has {len(lines)} lines and no reason"
