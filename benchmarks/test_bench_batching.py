"""EmbeddingBatcher against the Ollama-compatible server at 20 ms per request + 1 ms per text.

1000 concurrent ``embed()`` calls, three ways, in one run:
- unbatched: one ``/api/embed`` request per text (the client's connection limit applies);
- ideal: the 1000 texts cut by hand into batches of the same size, sent with the same
  concurrency (what a perfect batcher would do, knowing every item up front);
- ``EmbeddingBatcher``: each caller awaits its own ``embed(text)``.

Targets: the batcher's throughput is at least 5x the unbatched one (time ratio <= 0.2) and at
least 0.8x the ideal one (time ratio <= 1.25).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from llmcache_testserver import EchoEngine, OllamaServer

from llmcache import BatchConfig, EmbeddingBatcher
from llmcache_ollama import AsyncOllamaClient

N = 1000
CONFIG = BatchConfig(max_batch_size=50, max_wait_ms=5, max_concurrent=8)
MODEL = "nomic-embed-text"
_round = 0


@pytest.fixture(scope="module")
def server() -> Iterator[OllamaServer]:
    with OllamaServer(EchoEngine(latency_ms=20, per_item_ms=1)) as srv:
        yield srv


def _texts() -> list[str]:
    # Fresh texts every round, so nothing is shared between rounds.
    global _round
    _round += 1
    return [f"task {_round}-{i}: water the plants on the balcony" for i in range(N)]


def _client(server: OllamaServer) -> AsyncOllamaClient:
    return AsyncOllamaClient(
        server.url, model=MODEL, timeout=60, max_connections=CONFIG.max_concurrent * 2
    )


def test_unbatched(benchmark: Any, server: OllamaServer) -> None:
    benchmark.group = "1000 embed() calls vs unbatched"
    benchmark.extra_info["role"] = "baseline"

    async def run() -> None:
        async with _client(server) as client:
            out = await asyncio.gather(*(client.embed([t]) for t in _texts()))
        assert len(out) == N

    benchmark.pedantic(lambda: asyncio.run(run()), rounds=3, iterations=1)


def _batcher_round(server: OllamaServer) -> None:
    async def run() -> None:
        async with _client(server) as client:
            async with EmbeddingBatcher(client, CONFIG, model=MODEL) as batcher:
                out = await asyncio.gather(*(batcher.embed(t) for t in _texts()))
        assert len(out) == N

    asyncio.run(run())


def test_batcher_vs_unbatched(benchmark: Any, server: OllamaServer) -> None:
    benchmark.group = "1000 embed() calls vs unbatched"
    benchmark.extra_info.update(role="candidate", target=0.2)
    before = server.calls["embed"]
    benchmark.pedantic(lambda: _batcher_round(server), rounds=3, iterations=1)
    benchmark.extra_info["requests_per_round"] = (server.calls["embed"] - before) / 3


def test_ideal_batching(benchmark: Any, server: OllamaServer) -> None:
    benchmark.group = "1000 embed() calls vs ideal batching"
    benchmark.extra_info["role"] = "baseline"

    async def run() -> None:
        texts = _texts()
        size, sem = CONFIG.max_batch_size, asyncio.Semaphore(CONFIG.max_concurrent)
        async with _client(server) as client:

            async def send(chunk: list[str]) -> list[list[float]]:
                async with sem:
                    return (await client.embed(chunk)).embeddings

            parts = await asyncio.gather(*(send(texts[i : i + size]) for i in range(0, N, size)))
        assert sum(len(p) for p in parts) == N

    benchmark.pedantic(lambda: asyncio.run(run()), rounds=3, iterations=1)


def test_batcher_vs_ideal(benchmark: Any, server: OllamaServer) -> None:
    benchmark.group = "1000 embed() calls vs ideal batching"
    benchmark.extra_info.update(role="candidate", target=1.25)
    benchmark.pedantic(lambda: _batcher_round(server), rounds=3, iterations=1)
