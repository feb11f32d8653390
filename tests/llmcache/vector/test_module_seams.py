"""Each module of `llmcache.vector` keeps to its own private attributes and names.

STYLE: a module that reaches into another's private attributes is one concept cut in two.
Read from the source with `ast`: an attribute ``x._name`` read or written on anything but
``self`` or ``cls`` must be a name the module itself defines (as a ``self._name``/
``cls._name`` attribute, a class or module level name, a function or a class), and a
``from m import _name`` must name a private *module* of a package, not a private object
of another module. Without types this cannot tell two classes of one module apart, so it
misses some reach-ins; every one it reports is real.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[3] / "src"
VECTOR = SRC / "llmcache" / "vector"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _own_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
        ):
            names.add(node.attr)
    return {name for name in names if _private(name)}


def _is_module(dotted: str) -> bool:
    path = SRC.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def reach_ins(path: Path) -> list[str]:
    """Where the module at ``path`` uses another module's private attributes or names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    own = _own_names(tree)
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and node.attr not in own
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.extend(
                f"{path.name}:{node.lineno}: from {node.module} import {alias.name}"
                for alias in node.names
                if _private(alias.name) and not _is_module(f"{node.module}.{alias.name}")
            )
    return found


@pytest.mark.parametrize("path", sorted(VECTOR.glob("*.py")), ids=lambda p: p.name)
def test_no_reach_into_another_modules_privates(path: Path) -> None:
    assert reach_ins(path) == []


def test_the_check_sees_a_reach_in(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(
        "from llmcache.vector.index import _write_archive\n"
        "class A:\n    def __init__(self):\n        self._mine = 1\n"
        "    def peek(self, other):\n        return other._mine, other._theirs\n"
    )
    assert reach_ins(path) == [
        "m.py:1: from llmcache.vector.index import _write_archive",
        "m.py:6: other._theirs",
    ]
