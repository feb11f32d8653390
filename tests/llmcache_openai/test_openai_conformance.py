"""The OpenAI clients pass the same `llmcache.testing` backend suites as the Ollama ones,
over real HTTP on loopback (the test server's ``/v1`` routes), sync and async, streamed and
not."""

from __future__ import annotations

import pytest
from llmcache_testserver import OllamaServer

from llmcache.backends import AsyncBackend, Backend
from llmcache.testing import AsyncBackendConformance, BackendConformance
from llmcache_openai import AsyncOpenAIClient, OpenAIClient


class _OnTheTestServer:
    other_model = "qwen3"
    embed_model = "nomic-embed-text"

    @pytest.fixture(autouse=True)
    def _server(self, server: OllamaServer) -> None:
        self.url = server.openai_url


class TestOpenAIClientConformance(_OnTheTestServer, BackendConformance):
    def make_backend(self) -> Backend:
        return OpenAIClient(self.url, model="llama3.2", timeout=10)


class TestAsyncOpenAIClientConformance(_OnTheTestServer, AsyncBackendConformance):
    def make_backend(self) -> AsyncBackend:
        return AsyncOpenAIClient(self.url, model="llama3.2", timeout=10)
