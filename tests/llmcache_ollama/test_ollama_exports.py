"""The packages' faces: sorted, complete ``__all__``; the shared HTTP layer belongs to neither
plugin; the test server's old home still answers, with a deprecation."""

from __future__ import annotations

import ast
import doctest
import importlib
import subprocess
import sys
import types
from pathlib import Path

import llmcache_testserver
import pytest

import llmcache_http
import llmcache_ollama

SRC = Path(llmcache_ollama.__file__).resolve().parent.parent


@pytest.mark.parametrize("module", [llmcache_ollama, llmcache_http, llmcache_testserver])
def test_all_is_sorted_and_complete(module: types.ModuleType) -> None:
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert module.__all__ == sorted(module.__all__)
    assert set(module.__all__) == public


def _imports(package: str) -> set[str]:
    found: set[str] = set()
    for path in (SRC / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize(
    ("package", "others"),
    [
        ("llmcache_ollama", ("llmcache_openai",)),
        ("llmcache_openai", ("llmcache_ollama",)),
        ("llmcache_http", ("llmcache_ollama", "llmcache_openai")),
        ("llmcache", ("llmcache_http", "llmcache_ollama", "llmcache_openai")),
    ],
)
def test_no_package_imports_another_plugin_or_the_http_layer_into_the_core(
    package: str, others: tuple[str, ...]
) -> None:
    crossing = {
        name
        for name in _imports(package)
        if any(name == o or name.startswith(o + ".") for o in others)
    }
    assert not crossing, f"{package} imports {sorted(crossing)}"


def test_the_old_server_module_forwards_with_a_deprecation() -> None:
    import llmcache_ollama.server as old

    with pytest.warns(DeprecationWarning, match="llmcache_testserver"):
        server_class = old.OllamaServer
    assert server_class is llmcache_testserver.OllamaServer


def test_the_old_server_command_runs_the_new_one() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "llmcache_ollama.server", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "llmcache_testserver" in done.stderr  # where it moved
    assert "python -m llmcache_testserver" in done.stdout  # the new command's own help


@pytest.mark.parametrize(
    "module_name",
    [
        "llmcache_testserver",
        "llmcache_testserver.api",
        "llmcache_testserver.app",
        "llmcache_testserver.demo_engine",
        "llmcache_testserver.engines",
        "llmcache_testserver.openai_api",
        "llmcache_testserver.process",
        "llmcache_testserver.state",
    ],
)
def test_the_test_servers_doctests_run(module_name: str) -> None:
    # `make test` runs the doctests of src/ only; the server's own live in tools/.
    failures, tried = doctest.testmod(importlib.import_module(module_name))
    assert failures == 0 and tried > 0
