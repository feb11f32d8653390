"""Re-entry through the cross-process single-flight on a real Redis (issue 13, finding 3).

A call whose own chain holds the Redis lock of its key (a decorated function calling
itself) must not wait for that lock until `lock_wait` runs out: it computes at once. The
waits here are 30 s, so only the re-entry rule can make these tests pass within their
timeout.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import pytest

from llmcache import CachedResponse, MemoryStore, TieredStore, cached_generate
from llmcache.distributed import DistributedFlight
from llmcache.stores.redis import RedisStore

_WRAPPED: dict[str, Any] = {}
_CALLS: Counter[str] = Counter()
_BOTH: dict[str, threading.Barrier] = {}

_LONG_WAIT = 30.0  # longer than the tests' timeout: waiting on a lock means failing


@pytest.fixture(autouse=True)
def _fresh_state() -> None:
    _WRAPPED.clear()
    _CALLS.clear()
    _BOTH.clear()


def _store(url: str, namespace: str) -> RedisStore:
    return RedisStore(url, namespace=namespace, lock_lease=5.0, lock_wait=_LONG_WAIT)


def retry_once(prompt: str) -> str:
    _CALLS[prompt] += 1
    if _CALLS[prompt] == 1:
        return str(_WRAPPED["retry_once"](prompt))
    return f"answer:{prompt}"


async def aretry_once(prompt: str) -> str:
    _CALLS[prompt] += 1
    if _CALLS[prompt] == 1:
        return str(await _WRAPPED["aretry_once"](prompt))
    return f"answer:{prompt}"


def crossed(prompt: str) -> str:
    _CALLS[prompt] += 1
    if _CALLS[prompt] == 1:
        _BOTH["both"].wait(2)
        other = "b" if prompt == "a" else "a"
        return f"{prompt}>" + str(_WRAPPED["crossed"](other))
    return f"{prompt}!"


@pytest.mark.timeout(5)
def test_sync_recursion_does_not_wait_for_its_own_redis_lock(redis_url: str) -> None:
    with _store(redis_url, "re-sync") as store:
        generate = _WRAPPED["retry_once"] = cached_generate(
            cache=TieredStore(MemoryStore(), store)
        )(retry_once)
        assert generate("q") == "answer:q"
        assert _CALLS["q"] == 2
        assert generate("q") == "answer:q" and _CALLS["q"] == 2
        assert store._client.keys("re-sync:lock:*") == []  # released


@pytest.mark.timeout(5)
async def test_async_recursion_does_not_wait_for_its_own_redis_lock(redis_url: str) -> None:
    async with _store(redis_url, "re-async") as store:
        generate = _WRAPPED["aretry_once"] = cached_generate(cache=store)(aretry_once)
        assert await generate("q") == "answer:q"
        assert _CALLS["q"] == 2
        assert await generate("q") == "answer:q" and _CALLS["q"] == 2


@pytest.mark.timeout(5)
def test_thread_cycle_through_redis_locks_is_broken(redis_url: str) -> None:
    with _store(redis_url, "re-cycle") as store:
        _WRAPPED["crossed"] = cached_generate(cache=store)(crossed)
        _BOTH["both"] = threading.Barrier(2)
        results: dict[str, str] = {}

        def call(prompt: str) -> None:
            results[prompt] = str(_WRAPPED["crossed"](prompt))

        threads = [threading.Thread(target=call, args=(p,), daemon=True) for p in "ab"]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results in ({"a": "a>b>a!", "b": "b>a!"}, {"a": "a>b!", "b": "b>a>b!"})
        assert _CALLS["a"] + _CALLS["b"] == 3


def _lookup(store: RedisStore, key: str) -> Any:
    entry = store.get(key)
    return None if entry is None else entry.content


@pytest.mark.timeout(5)
def test_distributed_flight_counts_a_reentered_call(redis_url: str) -> None:
    with _store(redis_url, "re-flight") as store:
        flight = DistributedFlight(store, lease=5.0, wait=_LONG_WAIT)

        def inner() -> str:
            store.set("k", CachedResponse(content="inner"))
            return "inner"

        def outer() -> str:
            return "outer>" + flight.do("k", lambda: _lookup(store, "k"), inner)

        assert flight.do("k", lambda: _lookup(store, "k"), outer) == "outer>inner"
        assert flight.stats()["reentered"] == 1
        assert flight.stats()["led"] == 1


@pytest.mark.timeout(5)
async def test_async_distributed_flight_counts_a_reentered_call(redis_url: str) -> None:
    async with _store(redis_url, "re-aflight") as store:
        flight = DistributedFlight(store, lease=5.0, wait=_LONG_WAIT)

        async def lookup() -> Any:
            entry = await store.aget("k")
            return None if entry is None else entry.content

        async def inner() -> str:
            return "inner"

        async def outer() -> str:
            # In a child task: it inherits the chain that holds the lock.
            return "outer>" + await asyncio.create_task(flight.ado("k", lookup, inner))

        assert await flight.ado("k", lookup, outer) == "outer>inner"
        assert flight.stats()["reentered"] == 1
