"""Fixtures for the OpenAI plugin: the project's test server (its ``/v1`` routes) on
loopback, and real httpx clients on it.

- ``server``: a fresh `OllamaServer` over a default `EchoEngine`;
- ``client`` / ``aclient``: an `OpenAIClient` / `AsyncOpenAIClient` on ``server.openai_url``
  (model ``llama3.2``, fast retries);
- ``no_openai_env``: ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY`` unset for the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from llmcache_testserver import EchoEngine, OllamaServer

from llmcache_openai import AsyncOpenAIClient, OpenAIClient

MODEL = "llama3.2"


@pytest.fixture(autouse=True)
def no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own OPENAI_* variables must not leak into (or out through) tests."""
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.fixture
def server() -> Iterator[OllamaServer]:
    with OllamaServer(EchoEngine()) as running:
        yield running


@pytest.fixture
def client(server: OllamaServer) -> Iterator[OpenAIClient]:
    with OpenAIClient(server.openai_url, model=MODEL, timeout=10, backoff=0.01) as c:
        yield c


@pytest.fixture
async def aclient(server: OllamaServer) -> AsyncIterator[AsyncOpenAIClient]:
    async with AsyncOpenAIClient(server.openai_url, model=MODEL, timeout=10, backoff=0.01) as c:
        yield c
