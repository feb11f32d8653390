"""Fixtures of the parity suite: the test server on loopback, and a pool for sync doors."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from llmcache_testserver import EchoEngine, OllamaServer


@pytest.fixture
def server() -> Iterator[OllamaServer]:
    with OllamaServer(EchoEngine()) as running:
        yield running


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    # 24 threads: 20 concurrent callers must all be in flight at once.
    with ThreadPoolExecutor(max_workers=24) as executor:
        yield executor
