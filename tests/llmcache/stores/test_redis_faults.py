"""RedisStore when Redis fails: down, slower than its timeout, killed mid-run, restarted.

Every call still gets the model's answer, the errors are counted, nothing waits past the
configured timeouts (checked with generous bounds), and hits resume once Redis is back.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from llmcache import CachedResponse, MemoryStore, TieredStore, cached_generate
from llmcache.stores.redis import RedisStore

if TYPE_CHECKING:
    from conftest import RedisServer

# Far above the 0.25 s timeouts, far below a hang: these bounds catch a wait that adds
# up (retries, a stuck pool), not a slow machine.
BOUND = 2.0


def _entry(content: Any = "v") -> CachedResponse:
    return CachedResponse(content=content)


def test_redis_down_from_the_start_is_a_miss_and_never_raises(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with RedisStore("redis://127.0.0.1:1/0", retry_after=0.2) as store:
        start = time.monotonic()
        assert store.get("k") is None
        store.set("k", _entry())
        assert store.get_many(["a", "b"]) == {}
        store.set_many({"a": _entry()})
        assert store.delete("k") is False
        store.clear()
        assert len(store) == 0
        assert time.monotonic() - start < BOUND
        stats = store.stats()
        assert stats["errors"] >= 1 and stats["skipped"] >= 1  # the circuit opened
        assert stats["connected"] is False and stats["circuit_open"] is True
        assert stats["misses"] == 3 and stats["sets"] == 0
        with pytest.raises(ConnectionError):
            store.try_lock("k", 1.0)  # cannot tell: the caller decides (it calls the model)
        time.sleep(0.25)  # the window passes: the next call probes (and fails) again
        assert store.get("k") is None
        assert store.stats()["errors"] >= 2
    # Logged once per kind of failure, not once per call.
    messages = [r.getMessage() for r in caplog.records if "get failed" in r.getMessage()]
    assert len(messages) == 1


def test_a_server_slower_than_the_timeout_costs_one_timeout_then_nothing(
        fault_server: RedisServer) -> None:
    with RedisStore(fault_server.url, socket_timeout=0.25, retry_after=0.5) as store:
        store.set("k", _entry())
        assert store.get("k") is not None
        fault_server.pause()  # the process stops answering: reads time out
        try:
            start = time.monotonic()
            assert store.get("k") is None
            first = time.monotonic() - start
            start = time.monotonic()
            for _ in range(20):
                assert store.get("k") is None  # skipped: the circuit is open
            store.set("k2", _entry())
            rest = time.monotonic() - start
        finally:
            fault_server.resume()
        assert 0.2 <= first < BOUND
        assert rest < 0.2
        stats = store.stats()
        assert stats["skipped"] >= 21
        time.sleep(0.6)  # past retry_after: the next call probes and finds Redis back
        assert store.get("k") is not None
        assert store.stats()["connected"] is True


def _run_through_an_outage(server: RedisServer, call: Any, check: Any) -> dict[str, Any]:
    """Call `call(i)` from 4 threads for ~2.4 s while the server is killed at 0.6 s and
    restarted at 1.4 s; return what failed and the slowest call."""
    failures: list[BaseException] = []
    slowest = [0.0]
    stop = threading.Event()

    def loop(worker: int) -> None:
        i = 0
        while not stop.is_set():
            start = time.monotonic()
            try:
                check(i, call(f"p{(worker * 7 + i) % 20}"))
            except BaseException as exc:  # every failure is a test failure
                failures.append(exc)
            slowest[0] = max(slowest[0], time.monotonic() - start)
            i += 1
            time.sleep(0.002)

    threads = [threading.Thread(target=loop, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.6)
        server.kill()
        time.sleep(0.8)
        server.start()
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    return {"failures": failures, "slowest": slowest[0]}


def test_killing_redis_mid_run_fails_no_call_and_hits_resume(
        fault_server: RedisServer) -> None:
    calls: list[str] = []
    with RedisStore(fault_server.url, namespace="run", retry_after=0.2,
                    lock_lease=1.0) as shared:

        @cached_generate(cache=shared)
        def generate(prompt: str) -> str:
            calls.append(prompt)
            time.sleep(0.005)
            return f"answer:{prompt}"

        def check(_i: int, value: str) -> None:
            assert value.startswith("answer:p")

        outcome = _run_through_an_outage(fault_server, generate, check)
        assert outcome["failures"] == []
        assert len(calls) > 40  # the model answered while Redis was gone
        assert outcome["slowest"] < BOUND
        stats = shared.stats()
        assert stats["errors"] > 0
        # Back: entries written after the restart are read again.
        time.sleep(0.3)
        hits = stats["hits"]
        assert generate("after") == "answer:after"
        assert generate("after") == "answer:after"
        assert calls.count("after") == 1
        assert shared.stats()["hits"] > hits
        assert shared.stats()["connected"] is True


def test_a_memory_tier_keeps_serving_while_redis_is_down(fault_server: RedisServer) -> None:
    with RedisStore(fault_server.url, namespace="run", retry_after=0.2) as shared:
        tiered = TieredStore(MemoryStore(), shared)
        tiered.set("k", _entry("hot"), ttl=60)
        fault_server.kill()
        start = time.monotonic()
        assert tiered.get("k").content == "hot"  # type: ignore[union-attr]
        assert tiered.get("cold") is None
        tiered.set("new", _entry("n"))
        assert tiered.get("new").content == "n"  # type: ignore[union-attr]
        assert time.monotonic() - start < BOUND
        fault_server.start()
        time.sleep(0.3)
        tiered.set("later", _entry("l"))
        assert shared.get("later") is not None


async def test_async_calls_survive_a_kill_and_resume(fault_server: RedisServer) -> None:
    calls: list[str] = []
    async with RedisStore(fault_server.url, namespace="run", retry_after=0.2,
                          lock_lease=1.0) as shared:

        @cached_generate(cache=shared)
        async def generate(prompt: str) -> str:
            calls.append(prompt)
            await asyncio.sleep(0.005)
            return f"answer:{prompt}"

        async def burst(tag: str) -> None:
            results = await asyncio.gather(*(generate(f"{tag}{i % 5}") for i in range(20)))
            assert results == [f"answer:{tag}{i % 5}" for i in range(20)]

        await burst("a")
        assert calls.count("a0") == 1
        fault_server.kill()
        start = time.monotonic()
        await burst("b")  # Redis gone: every answer still arrives
        await burst("b")
        assert time.monotonic() - start < BOUND
        assert shared.stats()["errors"] > 0
        fault_server.start()
        await asyncio.sleep(0.3)
        # The first call after the breaker's window probes Redis; calls made while that probe
        # is in flight still skip Redis, so let it land before counting hits.
        assert await shared.aget("probe") is None
        assert not shared.stats()["circuit_open"]
        await burst("c")
        hits = shared.stats()["hits"]
        await burst("c")
        assert shared.stats()["hits"] >= hits + 5
        assert calls.count("c0") == 1


def test_a_restart_with_pooled_connections_costs_at_most_one_miss(
        fault_server: RedisServer) -> None:
    with RedisStore(fault_server.url, retry_after=0.2) as store:
        barrier = threading.Barrier(8)

        def use() -> None:  # fill the pool with 8 live connections
            barrier.wait()
            store.set("k", _entry())

        threads = [threading.Thread(target=use) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        fault_server.restart()  # every pooled connection is now dead
        store.set("k", _entry())
        time.sleep(0.3)
        store.set("k", _entry())
        assert store.get("k") is not None
        assert store.stats()["errors"] <= 1
