"""The Ollama clients pass `llmcache.testing`'s backend suites over real HTTP on loopback."""

from __future__ import annotations

import pytest
from llmcache_testserver import OllamaServer

from llmcache.backends import AsyncBackend, Backend
from llmcache.testing import AsyncBackendConformance, BackendConformance
from llmcache_ollama import AsyncOllamaClient, OllamaClient


class _OnTheTestServer:
    other_model = "qwen3"
    embed_model = "nomic-embed-text"

    @pytest.fixture(autouse=True)
    def _server(self, ollama_server: OllamaServer) -> None:
        self.url = ollama_server.url


class TestOllamaClientConformance(_OnTheTestServer, BackendConformance):
    def make_backend(self) -> Backend:
        return OllamaClient(self.url, timeout=10)


class TestAsyncOllamaClientConformance(_OnTheTestServer, AsyncBackendConformance):
    def make_backend(self) -> AsyncBackend:
        return AsyncOllamaClient(self.url, timeout=10)
