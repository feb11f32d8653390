"""Fixtures for the proxy: the test server in this process, the proxy as a real process.

- ``upstream``: an `OllamaServer` (OpenAI routes under ``/v1``) on a free loopback port,
  one per module; tests read ``upstream.calls`` as deltas and send prompts of their own
  (``fresh``);
- ``proxy``: ``llmcache proxy --upstream <upstream> --port 0`` in a child process, one per
  module, started once it printed its startup line (`proxy_process.launch`);
- ``start_proxy(upstream_url, *options)``: more proxies, stopped at the end of the test.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator

import pytest
from llmcache_testserver import EchoEngine, OllamaServer
from proxy_process import ProxyProcess, launch


@pytest.fixture(scope="module")
def upstream() -> Iterator[OllamaServer]:
    with OllamaServer(EchoEngine()) as server:
        yield server


@pytest.fixture(scope="module")
def proxy(upstream: OllamaServer) -> Iterator[ProxyProcess]:
    started = launch(upstream.url)
    yield started
    started.close()


@pytest.fixture
def start_proxy() -> Iterator[Callable[..., ProxyProcess]]:
    started: list[ProxyProcess] = []

    def start(upstream_url: str, *options: str, env: dict[str, str] | None = None) -> ProxyProcess:
        p = launch(upstream_url, *options, env=env)
        started.append(p)
        return p

    yield start
    for p in started:
        p.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fresh(request: pytest.FixtureRequest) -> str:
    """A text no other test sends, so cache entries of one test never answer another."""
    return f"{request.node.name} {os.getpid()}"
