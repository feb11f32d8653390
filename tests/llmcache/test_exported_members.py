"""The package face: `__all__` is sorted, complete, and every name imports."""

from __future__ import annotations

import subprocess
import sys

import llmcache


def test_all_is_sorted_and_unique() -> None:
    assert list(llmcache.__all__) == sorted(set(llmcache.__all__))


def test_every_public_name_is_exported() -> None:
    public = {name for name in vars(llmcache) if not name.startswith("_")}
    modules = {name for name, value in vars(llmcache).items()
               if type(value).__name__ == "module"}
    assert public - modules - {"annotations"} == set(llmcache.__all__)


def test_names_the_issue_promises() -> None:
    for name in ["Request", "make_key", "CachedResponse", "MemoryStore", "DiskStore",
                 "TieredStore", "ResponseCache", "EmbeddingCache", "CachePolicy",
                 "cached_generate", "MetricsCollector", "metrics", "get_backend",
                 "list_backends", "AIResponse", "CachedClient"]:
        assert hasattr(llmcache, name), name


def test_import_never_imports_plugins_or_pickle() -> None:
    code = ("import sys, llmcache; "
            "bad = [m for m in ('llmcache_ollama', 'pickle', 'redis') if m in sys.modules]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    # pickle may be imported by the stdlib itself (e.g. by multiprocessing); we only care
    # that plugins are not.
    assert "llmcache_ollama" not in out.stdout
