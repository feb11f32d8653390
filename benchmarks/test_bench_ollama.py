"""CachedOllamaClient against the Ollama-compatible server on loopback.

- 50 identical concurrent ``generate`` calls at 200 ms server latency: one server call, and
  about one latency of wall time (baseline: one plain call to the same server).
- A warm ``CachedOllamaClient.generate`` hit costs at most 3x a memory hit through
  ``@cached_generate`` (baseline), both measured here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from llmcache_testserver import EchoEngine, OllamaServer

from llmcache import MemoryStore, cached_generate
from llmcache_ollama import AsyncOllamaClient, CachedOllamaClient, OllamaClient

PROMPT = "Extract the task from: finish the quarterly report by Friday, high priority."


@pytest.fixture(scope="module")
def slow_server() -> Iterator[OllamaServer]:
    with OllamaServer(EchoEngine(latency_ms=200)) as server:
        yield server


@pytest.fixture(scope="module")
def fast_server() -> Iterator[OllamaServer]:
    with OllamaServer(EchoEngine()) as server:
        yield server


def test_one_call_at_200ms(benchmark: Any, slow_server: OllamaServer) -> None:
    benchmark.group = "50 concurrent identical misses"
    benchmark.extra_info["role"] = "baseline"

    async def one() -> None:
        async with AsyncOllamaClient(slow_server.url, timeout=10) as client:
            await client.generate(PROMPT, options={"temperature": 0})

    benchmark.pedantic(lambda: asyncio.run(one()), rounds=3, iterations=1)


def test_fifty_concurrent_identical_calls(benchmark: Any, slow_server: OllamaServer) -> None:
    benchmark.group = "50 concurrent identical misses"
    benchmark.extra_info.update(role="candidate", target=1.5)
    upstream: list[int] = []

    async def fifty() -> None:
        before = slow_server.calls["generate"]
        client = CachedOllamaClient(AsyncOllamaClient(slow_server.url, timeout=10), MemoryStore())
        async with client as cached:
            results = await asyncio.gather(
                *(cached.generate(PROMPT, temperature=0) for _ in range(50))
            )
        assert len({r.content for r in results}) == 1
        upstream.append(slow_server.calls["generate"] - before)

    benchmark.pedantic(lambda: asyncio.run(fifty()), rounds=3, iterations=1)
    assert upstream == [1, 1, 1]
    benchmark.extra_info["server_calls_per_round"] = upstream


def test_decorator_memory_hit(benchmark: Any) -> None:
    benchmark.group = "warm hit: CachedOllamaClient vs decorator"
    benchmark.extra_info["role"] = "baseline"

    @cached_generate(cache=MemoryStore())
    def generate(prompt: str, model: str = "llama3.2", temperature: float = 0.0) -> str:
        return "answer"

    generate(PROMPT)
    benchmark(generate, PROMPT)


def test_cached_ollama_client_hit(benchmark: Any, fast_server: OllamaServer) -> None:
    benchmark.group = "warm hit: CachedOllamaClient vs decorator"
    benchmark.extra_info.update(role="candidate", target=3.0)
    with CachedOllamaClient(OllamaClient(fast_server.url, timeout=10), MemoryStore()) as cached:
        cached.generate(PROMPT, temperature=0)
        calls = fast_server.calls["generate"]
        result = benchmark(cached.generate, PROMPT, temperature=0)
        assert result.cached and fast_server.calls["generate"] == calls
