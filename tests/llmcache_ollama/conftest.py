"""Fixtures for the Ollama plugin: real servers on loopback, real httpx clients.

- ``ollama_server``: a fresh `OllamaServer` over a default `EchoEngine` on a free port;
- ``make_ollama_server(latency_ms=, per_item_ms=, faults=, engine=, **echo_options)``: more
  servers, with latency or faults, all stopped at the end of the test;
- ``client`` / ``aclient``: an `OllamaClient` / `AsyncOllamaClient` on ``ollama_server``;
- ``closed_port``: a loopback port nothing listens on.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from llmcache_testserver import EchoEngine, Engine, Faults, OllamaServer

from llmcache_ollama import AsyncOllamaClient, OllamaClient

ServerFactory = Callable[..., OllamaServer]


@pytest.fixture
def ollama_server() -> Iterator[OllamaServer]:
    with OllamaServer(EchoEngine()) as server:
        yield server


@pytest.fixture
def make_ollama_server() -> Iterator[ServerFactory]:
    started: list[OllamaServer] = []

    def make(
        *,
        latency_ms: float = 0.0,
        per_item_ms: float = 0.0,
        faults: Faults | None = None,
        engine: Engine | None = None,
        **echo_options: Any,
    ) -> OllamaServer:
        if engine is None:
            engine = EchoEngine(latency_ms=latency_ms, per_item_ms=per_item_ms, **echo_options)
        server = OllamaServer(engine, faults=faults).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def client(ollama_server: OllamaServer) -> Iterator[OllamaClient]:
    with OllamaClient(ollama_server.url, timeout=10) as c:
        yield c


@pytest.fixture
async def aclient(ollama_server: OllamaServer) -> AsyncIterator[AsyncOllamaClient]:
    async with AsyncOllamaClient(ollama_server.url, timeout=10) as c:
        yield c


@pytest.fixture
def closed_port() -> int:
    """A port that refuses connections (bound, then released; nothing re-binds it here)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class CountingTransport(httpx.HTTPTransport):
    """A real transport that counts the requests it is asked to send (attempts, retries)."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        return super().handle_request(request)


class AsyncCountingTransport(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        return await super().handle_async_request(request)


@pytest.fixture
def counting_transport() -> CountingTransport:
    """Give it to a client as ``transport=``; the client closes it."""
    return CountingTransport()


@pytest.fixture
def async_counting_transport() -> AsyncCountingTransport:
    return AsyncCountingTransport()
