"""`import llmcache` stays lean: the heavy libraries load where they are first used.

Each check runs in a fresh interpreter (this test process has imported everything long
ago), and reads `sys.modules` there. What a name costs is paid when the name is used:
``llmcache.SemanticCache`` imports numpy, ``llmcache.PostgresStore`` does not import
psycopg until a store is built, and the ``llmcache`` command answers ``--help`` and
``stats`` without numpy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("numpy", "httpx", "rich", "typer", "redis", "psycopg")


def loaded_after(code: str, *watched: str) -> dict[str, bool]:
    """Run `code` in a fresh interpreter; which of `watched` it left in `sys.modules`."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps({{m: m in sys.modules for m in {list(watched)!r}}}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    loaded: dict[str, bool] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_import_llmcache_loads_no_heavy_library() -> None:
    loaded = loaded_after("import llmcache", *HEAVY)
    assert [name for name, yes in loaded.items() if yes] == []


def test_the_everyday_names_load_no_heavy_library() -> None:
    # The names of the quickstart and the chapter: a decorator, a client, the stores, the
    # batching helpers, the errors.
    code = (
        "from llmcache import (AsyncCachedClient, AsyncStore, BatchProcessor, CachedClient,"
        " CachePolicy, DiskStore, LLMCacheError, MemoryStore, ResponseCache, StoreError,"
        " TieredStore, cached_generate, parallel_map)"
    )
    loaded = loaded_after(code, *HEAVY)
    assert [name for name, yes in loaded.items() if yes] == []


def test_a_semantic_name_loads_numpy_when_used() -> None:
    loaded = loaded_after("import llmcache\nllmcache.SemanticCache", "numpy")
    assert loaded == {"numpy": True}


def test_postgres_store_is_a_name_without_psycopg() -> None:
    loaded = loaded_after("from llmcache import PostgresStore", "psycopg", "numpy")
    assert loaded == {"psycopg": False, "numpy": False}


def run_cli(*args: str) -> dict[str, bool]:
    code = (
        "import sys\nfrom llmcache.cli import main\n"
        f"sys.argv = ['llmcache', *{list(args)!r}]\n"
        "try:\n    main()\nexcept SystemExit as exit:\n"
        "    assert not exit.code, exit.code"
    )
    return loaded_after(code, "numpy")


def test_cli_help_does_not_import_numpy() -> None:
    assert run_cli("--help") == {"numpy": False}


def test_cli_stats_does_not_import_numpy(tmp_path: Path) -> None:
    from llmcache import CachedResponse, DiskStore

    with DiskStore(tmp_path / "cache") as store:
        store.set("k", CachedResponse(content="answer", model="m"))
    assert run_cli("stats", "--path", str(tmp_path / "cache")) == {"numpy": False}


@pytest.mark.parametrize(
    "name",
    [
        "EmbeddingCache",
        "EmbeddingBatcher",
        "SemanticCache",
        "VectorIndex",
        "Embedder",
        "PostgresStore",
    ],
)
def test_a_lazy_name_is_the_module_object(name: str) -> None:
    import importlib

    import llmcache

    value = getattr(llmcache, name)
    assert getattr(importlib.import_module(value.__module__), name) is value
    assert name in dir(llmcache)
