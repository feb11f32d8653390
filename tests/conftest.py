"""Shared fixtures for the whole suite."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# CI machines are 2-core and noisy: no deadlines, bounded example counts.
settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """The URL of ``python -m llmcache_ollama.server --engine llama`` in its own process (as
    `make demo` runs it: llama.cpp cannot load a model in a process that imported usearch
    first, and the test session imports it); skips when the local model is not installed."""
    from llmcache_ollama.server.llama_engine import (
        ModelFileNotFound,
        find_smollm2_gguf,
        llama_cpp_available,
    )
    from llmcache_ollama.server.process import spawn_server

    if not llama_cpp_available():
        pytest.skip("llama-cpp-python is not installed (make test-real installs it)")
    try:
        find_smollm2_gguf()
    except ModelFileNotFound as exc:
        pytest.skip(str(exc))
    with spawn_server(engine="llama") as url:
        yield url
