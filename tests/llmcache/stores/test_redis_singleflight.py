"""Single-flight across processes through Redis locks (`llmcache.distributed`).

Processes are started with 'spawn' (fresh interpreters, as on another host); the "model"
counts its calls in Redis so every process adds to one count.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

from llmcache import (
    AsyncCachedClient,
    CachedClient,
    CachedResponse,
    MemoryStore,
    TieredStore,
    cached_generate,
)
from llmcache.backends.mock import AsyncMockBackend, MockBackend
from llmcache.distributed import DistributedFlight, find_lock_provider, flight_for
from llmcache.stores.redis import RedisStore


class _Model:
    """A slow model whose calls are counted in Redis (shared by every process)."""

    def __init__(self, url: str, name: str, seconds: float) -> None:
        self.redis = redis.Redis.from_url(url)
        self.key = f"test-calls:{name}"
        self.seconds = seconds

    def answer(self, prompt: str) -> str:
        self.redis.incr(self.key)
        time.sleep(self.seconds)
        return f"answer:{prompt}"

    async def aanswer(self, prompt: str) -> str:
        self.redis.incr(self.key)
        await asyncio.sleep(self.seconds)
        return f"answer:{prompt}"

    def calls(self) -> int:
        return int(self.redis.get(self.key) or 0)

    def close(self) -> None:
        self.redis.close()


def _decorate(store: Any, model: _Model, is_async: bool) -> Any:
    # Each variant has one identity in every process (its name and code; `model`, an
    # object, is left out under the namespace), so the processes of one variant compute one
    # cache key for one prompt. The sync and async variants are two functions (their code
    # differs), with two keys.
    if is_async:

        async def generate(prompt: str) -> str:
            return await model.aanswer(prompt)
    else:

        def generate(prompt: str) -> str:
            return model.answer(prompt)

    return cached_generate(cache=store, namespace="fleet")(generate)


def _fleet_worker(url: str, name: str, mode: str, n: int, barrier: Any) -> None:
    # Generous timeouts: this test is about single-flight, and on a loaded 2-core machine a
    # freshly spawned process can miss the default 0.25 s connect timeout, which (by design)
    # degrades to a miss and an extra model call.
    store = RedisStore(
        url, namespace=name, lock_lease=2.0, lock_wait=20.0, socket_timeout=5.0, connect_timeout=5.0
    )
    # A memory tier in front, as an application would have: the lock is found in the tier.
    tiered = TieredStore(MemoryStore(), store)
    model = _Model(url, name, 0.3)
    results: list[str] = []
    try:
        generate = _decorate(tiered, model, mode == "asyncio")
        barrier.wait(60)
        if mode == "threads":
            start = threading.Barrier(n)

            def call(_: int) -> str:
                start.wait(30)
                return str(generate("the question"))

            with ThreadPoolExecutor(n) as pool:
                results = list(pool.map(call, range(n)))
        else:

            async def main() -> list[str]:
                try:
                    return list(await asyncio.gather(*(generate("the question") for _ in range(n))))
                finally:
                    await store.aclose()

            results = asyncio.run(main())
        model.redis.rpush(f"test-results:{name}", *results)
    finally:
        model.close()
        store.close()


def test_four_processes_of_25_callers_make_one_call_per_function(redis_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    modes = ["threads", "asyncio", "threads", "asyncio"]
    procs = [
        ctx.Process(target=_fleet_worker, args=(redis_url, "fleet", mode, 25, barrier))
        for mode in modes
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(90)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    model = _Model(redis_url, "fleet", 0)
    try:
        assert model.calls() == 2  # one for the two thread processes, one for the asyncio two
        results = model.redis.lrange("test-results:fleet", 0, -1)
        assert results == [b"answer:the question"] * 100
        assert model.redis.keys("fleet:lock:*") == []  # released by its holder
    finally:
        model.close()


def _holder_worker(url: str, name: str) -> None:
    store = RedisStore(url, namespace=name, lock_lease=1.0, lock_wait=60.0)
    model = _Model(url, name, 60.0)  # killed long before it answers
    _decorate(store, model, False)("q")


def test_a_killed_holder_loses_its_lock_after_the_lease(redis_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    holder = ctx.Process(target=_holder_worker, args=(redis_url, "kill"))
    holder.start()
    model = _Model(redis_url, "kill", 0.05)
    store = RedisStore(redis_url, namespace="kill", lock_lease=1.0, lock_wait=60.0)
    try:
        deadline = time.monotonic() + 60
        while model.calls() < 1:  # the holder is inside the model call
            assert time.monotonic() < deadline and holder.is_alive()
            time.sleep(0.02)
        generate = _decorate(store, model, False)
        result: list[str] = []
        waiter = threading.Thread(target=lambda: result.append(generate("q")))
        waiter.start()
        time.sleep(2.5)  # 2.5 leases: only the holder's renewals keep its lock alive
        assert waiter.is_alive() and model.calls() == 1
        killed = time.monotonic()
        holder.kill()
        holder.join(10)
        waiter.join(20)
        took_over_after = time.monotonic() - killed
        assert result == ["answer:q"]
        assert model.calls() == 2
        assert took_over_after < 1.0 + 1.0  # one lease, plus polling and slack
    finally:
        holder.kill()
        holder.join(10)
        store.close()
        model.close()


# --- the algorithm, in one process --------------------------------------------------------


def test_lock_primitives(redis_url: str) -> None:
    with RedisStore(redis_url, namespace="lk") as store:
        token = store.try_lock("k", 0.3)
        assert token is not None and store.try_lock("k", 0.3) is None
        assert not store.renew("k", "not-the-token", 5) and not store.unlock("k", "nope")
        assert store.renew("k", token, 0.6)
        time.sleep(0.4)
        assert store.try_lock("k", 0.3) is None  # renewed past its first lease
        time.sleep(0.3)
        again = store.try_lock("k", 5)  # expired: anyone may take it
        assert again is not None and not store.unlock("k", token)
        assert store.unlock("k", again)
        assert find_lock_provider(TieredStore(MemoryStore(), store)) is store
        assert find_lock_provider(MemoryStore()) is None
    with RedisStore(redis_url, lock_lease=0) as off:
        assert flight_for(off) is None


def _key_flight(store: RedisStore, key: str, compute: Any, flight: DistributedFlight) -> Any:
    def lookup() -> Any:
        entry = store.get(key)
        return None if entry is None else entry.content

    def run() -> Any:
        value = compute()
        store.set(key, CachedResponse(content=value))
        return value

    return flight.do(key, lookup, run)


def test_the_lease_is_renewed_during_a_long_call(redis_url: str) -> None:
    with RedisStore(redis_url, namespace="lk") as store:
        flight = DistributedFlight(store, lease=0.3, wait=10)
        seen: list[str | None] = []

        def slow() -> str:
            for _ in range(5):  # 1 s: more than three leases
                time.sleep(0.2)
                seen.append(store.try_lock("k", 0.3))
            return "done"

        assert _key_flight(store, "k", slow, flight) == "done"
        assert seen == [None] * 5  # nobody else could take it
        assert store.try_lock("k", 1) is not None  # released at the end
        assert flight.stats()["led"] == 1


def test_a_wait_is_bounded_then_the_waiter_calls_itself(redis_url: str) -> None:
    with RedisStore(redis_url, namespace="lk") as store:
        assert store.try_lock("stuck", 30) is not None  # a holder that never answers
        flight = DistributedFlight(store, lease=1, wait=0.3)
        start = time.monotonic()
        assert _key_flight(store, "stuck", lambda: "mine", flight) == "mine"
        assert 0.3 <= time.monotonic() - start < 2.0
        assert flight.stats()["wait_timeouts"] == 1


def test_a_failed_holder_hands_over_at_once(redis_url: str) -> None:
    with RedisStore(redis_url, namespace="lk") as store:
        holder, waiter = (DistributedFlight(store, lease=10, wait=10) for _ in range(2))
        started = threading.Event()
        result: list[Any] = []

        def failing() -> str:
            started.set()
            time.sleep(0.3)
            raise RuntimeError("model failed")

        def hold() -> None:
            with pytest.raises(RuntimeError):
                _key_flight(store, "k", failing, holder)

        t = threading.Thread(target=hold)
        t.start()
        started.wait(5)
        start = time.monotonic()
        result.append(_key_flight(store, "k", lambda: "second", waiter))
        t.join(5)
        assert result == ["second"]
        assert time.monotonic() - start < 2.0  # not the 10 s lease: the lock was released
        assert waiter.stats() == {
            "led": 1,
            "waited": 1,
            "found": 0,
            "wait_timeouts": 0,
            "unavailable": 0,
            "reentered": 0,
        }


def test_no_lock_service_means_every_caller_calls() -> None:
    with RedisStore("redis://127.0.0.1:1/0", namespace="lk") as store:
        flight = DistributedFlight(store, lease=1, wait=5)
        assert _key_flight(store, "k", lambda: "alone", flight) == "alone"
        assert flight.stats()["unavailable"] == 1


async def test_async_flights_in_one_loop_make_one_call(redis_url: str) -> None:
    async with RedisStore(redis_url, namespace="lk") as store:
        calls: list[int] = []

        async def lookup() -> Any:
            entry = await store.aget("k")
            return None if entry is None else entry.content

        async def compute() -> str:
            calls.append(1)
            await asyncio.sleep(0.3)
            await store.aset("k", CachedResponse(content="v"))
            return "v"

        flights = [DistributedFlight(store, lease=0.2, wait=10) for _ in range(5)]
        results = await asyncio.gather(*(f.ado("k", lookup, compute) for f in flights))
        assert results == ["v"] * 5 and calls == [1]
        assert await store.atry_lock("k", 1) is not None  # released


class _SyncLocks:
    """A lock provider with sync methods only: its coroutine callers use worker threads."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.lock_lease, self.lock_wait = store.lock_lease, store.lock_wait
        self.threads: set[str] = set()

    def try_lock(self, key: str, lease: float) -> str | None:
        self.threads.add(threading.current_thread().name)
        return self.store.try_lock(key, lease)

    def renew(self, key: str, token: str, lease: float) -> bool:
        return self.store.renew(key, token, lease)

    def unlock(self, key: str, token: str) -> bool:
        self.threads.add(threading.current_thread().name)
        return self.store.unlock(key, token)


async def test_async_flights_over_a_sync_only_provider_use_threads(redis_url: str) -> None:
    async with RedisStore(redis_url, namespace="lks") as store:
        locks = _SyncLocks(store)
        calls: list[int] = []

        async def lookup() -> Any:
            entry = await store.aget("k")
            return None if entry is None else entry.content

        async def compute() -> str:
            calls.append(1)
            await asyncio.sleep(0.3)
            await store.aset("k", CachedResponse(content="v"))
            return "v"

        flights = [DistributedFlight(locks, lease=0.2, wait=10) for _ in range(3)]
        results = await asyncio.gather(*(f.ado("k", lookup, compute) for f in flights))
        assert results == ["v"] * 3 and calls == [1]
        assert threading.current_thread().name not in locks.threads  # never on the loop
        assert store.try_lock("k", 1) is not None  # released


# --- CachedClient ---------------------------------------------------------------------------


def test_cached_clients_sharing_redis_make_one_backend_call(redis_url: str) -> None:
    with RedisStore(redis_url, namespace="cl", lock_lease=2) as shared:
        backends = [MockBackend(latency=0.3) for _ in range(3)]
        clients = [CachedClient(b, TieredStore(MemoryStore(), shared)) for b in backends]

        def ask(i: int) -> str:
            return clients[i % 3].generate("same", temperature=0).content

        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(ask, range(12)))
        assert answers == ["echo: same"] * 12
        assert sum(b.call_count for b in backends) == 1
        assert clients[1].generate("same", temperature=0).cached


async def test_async_cached_clients_sharing_redis_make_one_backend_call(redis_url: str) -> None:
    async with RedisStore(redis_url, namespace="cl", lock_lease=2) as shared:
        backends = [AsyncMockBackend(latency=0.3) for _ in range(3)]
        clients = [CachedClient(b, shared) for b in backends]
        assert all(isinstance(c, AsyncCachedClient) for c in clients)
        answers = await asyncio.gather(
            *(clients[i % 3].generate("same", temperature=0) for i in range(12))
        )
        assert [a.content for a in answers] == ["echo: same"] * 12
        assert sum(b.call_count for b in backends) == 1
        again = await clients[2].generate("same", temperature=0)
        assert again.cached
