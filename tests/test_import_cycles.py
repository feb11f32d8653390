"""No two modules in ``src/`` import each other, directly or around a longer loop.

STYLE: two modules that import each other are one concept cut in two. The graph is read
from the source with `ast` (nothing is imported), over every package in ``src/``.

What makes an edge from module ``a`` to module ``b``:

- ``import b`` and ``from b import name`` where ``name`` is not a submodule of ``b``;
  ``from p import b`` where ``p.b`` is a module is an edge to ``p.b``, not to ``p``
  (so a package ``__init__`` that imports its submodules is the edge ``p -> p.b``, and a
  submodule that does ``from p import z`` for a name ``z`` is the edge ``p.y -> p``).
  Relative imports are resolved. An import of a module that is not in ``src/`` (stdlib,
  third party) is no edge; a name imported from a package is an edge to that package only.
- Wherever the import statement stands: at module level, in a function body (a deferred
  import), or under ``if TYPE_CHECKING:``. Deferring an import, or keeping it for the type
  checker only, changes when it runs, not that each module needs the other: moving the
  import into a function is how such cycles hide from the interpreter. Counted this way the
  tree had exactly the four cycles issue 14 names (``backends/mock``-``_mock_replies``,
  ``vector/index``-``_index_io``, ``vector/ann``-``_ann_io``-``autoindex``,
  ``vector/semantic``-``_lookup``/``_restore``); with deferred and type-only imports left
  out, three of them were invisible.

Importing ``p.b`` also runs ``p/__init__``; that is no edge from the importer to ``p``
(every module would then depend on its package's whole face).

A cycle still present that someone else is removing goes in `KNOWN_CYCLES`, named; the
test fails on any cycle not listed, and on a listed one that is gone (strike it off).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: Cycles known and being removed elsewhere: frozenset of module names -> who and why.
KNOWN_CYCLES: dict[frozenset[str], str] = {}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    kind: str  # "module", "deferred" (in a function) or "type-only" (under TYPE_CHECKING)

    def __str__(self) -> str:
        return f"{self.source}:{self.line} -> {self.target} ({self.kind})"


def source_modules(src: Path = SRC) -> dict[str, Path]:
    """Every module of every package in ``src`` (a directory with ``__init__.py``)."""
    modules: dict[str, Path] = {}
    for init in sorted(src.glob("*/__init__.py")):
        for path in sorted(init.parent.rglob("*.py")):
            parts = list(path.relative_to(src).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement with its kind (see the module docstring)."""

    def walk(node: ast.AST, kind: str) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, kind
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    yield from walk_stmt(stmt, "type-only")
                for stmt in child.orelse:
                    yield from walk_stmt(stmt, kind)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from walk(child, "deferred" if kind == "module" else kind)
            else:
                yield from walk(child, kind)

    def walk_stmt(stmt: ast.stmt, kind: str) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            yield stmt, kind
        else:
            yield from walk(stmt, kind)

    yield from walk(tree, "module")


def _resolve(name: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = name.split(".") if is_package else name.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_edges(modules: dict[str, Path]) -> list[Edge]:
    """The edges between ``modules`` (see the module docstring for what counts)."""
    edges: list[Edge] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, kind in _import_nodes(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _resolve(name, path.name == "__init__.py", node)
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            for target in targets:
                while target and target not in modules:  # `import a.b.c` of a non-module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.append(Edge(name, target, node.lineno, kind))
    return list(dict.fromkeys(edges))  # `from m import a, b`: one edge


def cycles(edges: list[Edge]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm,
    iterative, so a deep chain of imports cannot overflow the stack)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
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
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def describe(cycle: frozenset[str], edges: list[Edge]) -> str:
    inside = sorted(
        (e for e in edges if e.source in cycle and e.target in cycle),
        key=lambda e: (e.source, e.line),
    )
    return " + ".join(sorted(cycle)) + "\n" + "\n".join(f"    {e}" for e in inside)


def test_no_import_cycle_in_src() -> None:
    edges = import_edges(source_modules())
    found = set(cycles(edges))
    new = [describe(c, edges) for c in sorted(found - KNOWN_CYCLES.keys(), key=sorted)]
    gone = [" + ".join(sorted(c)) for c in KNOWN_CYCLES if c not in found]
    assert not new, "import cycles in src/:\n" + "\n".join(new)
    assert not gone, "listed in KNOWN_CYCLES but gone (strike them off): " + "; ".join(gone)


# ------------------------------------------------------------ the checker's own checks


def _tree(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return source_modules(tmp_path)


def test_the_checker_sees_every_kind_of_import(tmp_path: Path) -> None:
    modules = _tree(
        tmp_path,
        {
            "p/__init__.py": "from p.a import A\n",
            "p/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from p.b import B\n"
            "A = 1\n",
            "p/b.py": "def f():\n    from . import a\n    return a\n",
            "p/c.py": "from .sub import d\n",
            "p/sub/__init__.py": "",
            "p/sub/d.py": "import p.c\nimport json\n",
            "p/e.py": "from p import A\n",  # a name of the package: the edge e -> p
        },
    )
    edges = import_edges(modules)
    assert {(e.source, e.target, e.kind) for e in edges} == {
        ("p", "p.a", "module"),
        ("p.a", "p.b", "type-only"),
        ("p.b", "p.a", "deferred"),
        ("p.c", "p.sub.d", "module"),
        ("p.sub.d", "p.c", "module"),
        ("p.e", "p", "module"),
    }
    assert sorted(sorted(c) for c in cycles(edges)) == [["p.a", "p.b"], ["p.c", "p.sub.d"]]


def test_a_package_importing_its_submodules_is_no_cycle(tmp_path: Path) -> None:
    modules = _tree(
        tmp_path,
        {
            "q/__init__.py": "from q.x import X\nfrom q.y import Y\n",
            "q/x.py": "X = 1\n",
            "q/y.py": "from q.x import X\nY = X\n",
        },
    )
    assert cycles(import_edges(modules)) == []
