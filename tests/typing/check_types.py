"""Checked by mypy --strict in `test_types.py`, never run: what users write must type-check.

Each ``reveal_type``-free line here is a call shape users rely on; a mistyped wrapper (a
decorated function typed as the bare function, ``cache=`` typed ``Any``) makes mypy fail.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from typing_extensions import assert_type

from llmcache import (
    AsyncCachedClient,
    CachedClient,
    CacheInfo,
    MemoryStore,
    ResponseCache,
    cached_generate,
)
from llmcache.backends.mock import AsyncMockBackend, MockBackend
from llmcache.stores.base import Store
from llmcache_ollama import AsyncOllamaClient, OllamaClient


@cached_generate
def bare(prompt: str, temperature: float = 0.0) -> str:
    return prompt


@cached_generate(cache=MemoryStore(), ttl=60)
def configured(prompt: str) -> dict[str, int]:
    return {"n": len(prompt)}


@cached_generate(cache=ResponseCache())
async def coroutine(prompt: str) -> str:
    return prompt


def uses_the_wrappers() -> None:
    info: CacheInfo = bare.cache_info()
    hits: int = info.hits + configured.cache_info().misses
    answer: str = bare("hi", temperature=0.0)
    data: dict[str, int] = configured("hi")
    pending: Coroutine[Any, Any, str] = coroutine("hi")
    pending.close()
    original: str = bare.uncached("hi")
    store: Store = configured.cache
    counters: dict[str, int | float] = coroutine.cache_counters()
    bare.cache_clear()
    name: str = bare.__name__
    del hits, answer, data, original, store, counters, name


def picks_the_client_twin() -> None:
    sync_client: CachedClient = CachedClient(MockBackend())
    async_client: AsyncCachedClient = CachedClient(AsyncMockBackend())
    ollama: AsyncCachedClient = CachedClient(AsyncOllamaClient("http://127.0.0.1:1"))
    plain: CachedClient = CachedClient(OllamaClient("http://127.0.0.1:1"), MemoryStore())
    del sync_client, async_client, ollama, plain
    # Exact types, not just assignable ones (the async twin is a CachedClient for mypy).
    assert_type(CachedClient(MockBackend()), CachedClient)
    assert_type(CachedClient(AsyncMockBackend(), MemoryStore()), AsyncCachedClient)


def refuses_what_is_not_a_store() -> None:
    CachedClient(MockBackend(), cache="not a store")  # type: ignore[call-overload]
    cached_generate(cache=42)  # type: ignore[call-overload]
    bare(1)  # type: ignore[arg-type]


def picks_the_chapters_client_twin() -> None:
    from llmcache_ollama import AsyncCachedOllamaClient, CachedOllamaClient

    twin: AsyncCachedOllamaClient = CachedOllamaClient(AsyncOllamaClient("http://127.0.0.1:1"))
    plain: CachedOllamaClient = CachedOllamaClient(OllamaClient("http://127.0.0.1:1"))
    del twin, plain
    assert_type(CachedOllamaClient(OllamaClient("http://127.0.0.1:1")), CachedOllamaClient)
    assert_type(
        CachedOllamaClient(AsyncOllamaClient("http://127.0.0.1:1"), policy=None, namespace="t"),
        AsyncCachedOllamaClient,
    )
    assert_type(CachedOllamaClient(client=OllamaClient("http://127.0.0.1:1")), CachedOllamaClient)
    CachedOllamaClient(OllamaClient("http://127.0.0.1:1"), nmespace="t")  # type: ignore[call-overload]


def measures_the_curve_with_the_options_of_the_splits() -> None:
    from llmcache.vector.embedders import HashingEmbedder
    from llmcache.vector.eval_learned import SplitOptions, curve, learned_splits

    options: SplitOptions = {"splits": 2, "seed": 1, "verify": "inline"}
    learned_splits([], HashingEmbedder(), max_error=0.01, judge=lambda k: None, **options)
    curve([], HashingEmbedder(), bounds=(0.01,), judge=lambda k: None, **options)
    curve([], HashingEmbedder(), judge=lambda k: None, splits="2")  # type: ignore[arg-type]
    curve([], HashingEmbedder(), judge=lambda k: None, split=2)  # type: ignore[call-arg]
    curve([], HashingEmbedder(), judge=lambda k: None, max_error=0.1)  # type: ignore[call-arg]
