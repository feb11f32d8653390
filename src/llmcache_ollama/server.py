"""Deprecated: the test server moved to its own distribution, `llmcache_testserver`.

The Ollama- and OpenAI-compatible server is test and benchmark tooling, so it no longer
ships in the plugin: install ``tools/llmcache-testserver`` (the Makefile's test, bench and
demo setups do), then ``from llmcache_testserver import OllamaServer`` and
``python -m llmcache_testserver``. Until then, the names of `llmcache_testserver` still
resolve here and ``python -m llmcache_ollama.server`` still runs it, each with a warning.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from typing import Any

__all__: list[str] = []

MOVED = (
    "llmcache_ollama.server moved to llmcache_testserver (pip install -e "
    "tools/llmcache-testserver): use `from llmcache_testserver import ...` and "
    "`python -m llmcache_testserver`"
)


def _testserver(module: str = "llmcache_testserver") -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(MOVED) from exc


def __getattr__(name: str) -> Any:
    if name.startswith("__"):  # probes (doctest's __test__, copy's __deepcopy__ ...)
        raise AttributeError(name)
    value = getattr(_testserver(), name)
    warnings.warn(MOVED, DeprecationWarning, stacklevel=2)
    return value


if __name__ == "__main__":
    print(f"warning: {MOVED}", file=sys.stderr)
    try:
        main = _testserver("llmcache_testserver.__main__").main
    except ImportError:
        sys.exit(1)  # the warning above says what to install
    sys.exit(main())
