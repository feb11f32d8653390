"""RedisStore when Redis fails, tried as a user would: a real ``redis-server`` down, slower
than its timeout (SIGSTOP), killed mid-run, restarted, restarted from a snapshot taken before
a clear, full, and holding values planted by someone else.

Each test checks one row of the fault table in `llmcache.stores.redis`: every call still
gets the model's answer and never a wrong one, reads and writes never raise, a ``delete`` or
``clear`` that did not happen raises `StoreError`, a clear is never undone, the errors are
counted, nothing waits past the configured timeouts (checked with generous bounds), and hits
resume once Redis is back. The model is the public `MockBackend`, numbering its answers so
that an old answer served again would show.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
import redis

from llmcache import CachedClient, CachedResponse, MemoryStore, TieredStore, cached_generate
from llmcache.backends.mock import AsyncMockBackend, MockBackend, MockCall
from llmcache.entry import JSONCodec
from llmcache.errors import StoreError
from llmcache.stores.redis import RedisStore

if TYPE_CHECKING:
    from conftest import RedisServer

# Far above the 0.25 s timeouts, far below a hang: these bounds catch a wait that adds
# up (retries, a stuck pool), not a slow machine.
BOUND = 2.0


def _entry(content: Any = "v") -> CachedResponse:
    return CachedResponse(content=content)


def test_redis_down_from_the_start_is_a_miss_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    with RedisStore("redis://127.0.0.1:1/0", retry_after=0.2) as store:
        start = time.monotonic()
        assert store.get("k") is None
        store.set("k", _entry())
        assert store.get_many(["a", "b"]) == {}
        store.set_many({"a": _entry()})
        with pytest.raises(StoreError) as raised:
            store.delete("k")  # not "False": it cannot tell whether the key is there
        assert (raised.value.store, raised.value.operation) == ("redis", "delete")
        with pytest.raises(StoreError) as raised:
            store.clear()
        assert raised.value.operation == "clear"
        assert len(store) == 0
        assert time.monotonic() - start < BOUND
        stats = store.stats()
        assert stats["errors"] >= 3 and stats["skipped"] >= 1  # the circuit opened
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
    fault_server: RedisServer,
) -> None:
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


def test_killing_redis_mid_run_fails_no_call_and_hits_resume(fault_server: RedisServer) -> None:
    calls: list[str] = []
    with RedisStore(fault_server.url, namespace="run", retry_after=0.2, lock_lease=1.0) as shared:

        @cached_generate(cache=shared, namespace="run")
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
    async with RedisStore(
        fault_server.url, namespace="run", retry_after=0.2, lock_lease=1.0
    ) as shared:

        @cached_generate(cache=shared, namespace="run")
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
    fault_server: RedisServer,
) -> None:
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


# -- a clear or delete that did not happen is reported; a clear is never undone -------------


def _numbered(call: MockCall) -> str:
    # Every model call answers differently: an answer from before a clear would show.
    return f"answer {call.index} to {call.text}"


def test_a_clear_while_redis_is_paused_raises_and_the_next_one_happens_at_once(
    fault_server: RedisServer,
) -> None:
    backend = MockBackend(_numbered)
    with RedisStore(fault_server.url, namespace="f", retry_after=30) as shared:
        client = CachedClient(backend, shared)
        first = client.generate("q", temperature=0).content
        assert client.generate("q", temperature=0).content == first  # a hit
        fault_server.pause()
        try:
            start = time.monotonic()
            with pytest.raises(StoreError) as raised:
                shared.clear()
            assert (raised.value.store, raised.value.operation) == ("redis", "clear")
            with pytest.raises(StoreError):
                shared.delete("anything")
            # The request path never raises: the model answers while Redis is paused.
            assert client.generate("other", temperature=0).content == "answer 1 to other"
            assert time.monotonic() - start < BOUND * 2
        finally:
            fault_server.resume()
        assert shared.stats()["circuit_open"]  # for 30 s, reads and writes skip Redis...
        shared.clear()  # ...but an explicit clear is still tried, and happens
        assert not shared.stats()["circuit_open"]
        assert client.generate("q", temperature=0).content == "answer 2 to q"
        assert backend.call_count == 3


def test_delete_says_whether_it_removed_and_raises_when_redis_is_gone(
    fault_server: RedisServer,
) -> None:
    with RedisStore(fault_server.url, namespace="f", retry_after=30) as store:
        store.set("k", _entry())
        assert store.delete("k") is True and store.delete("k") is False
        fault_server.kill()
        with pytest.raises(StoreError):
            store.delete("k")
        assert store.get("k") is None  # reads still degrade to a miss
        fault_server.start()
        assert store.delete("k") is False  # tried at once, although the circuit is open


def test_a_restart_from_a_snapshot_taken_before_a_clear_serves_nothing_from_before(
    fault_server: RedisServer,
) -> None:
    backend = MockBackend(_numbered)
    raw = redis.Redis.from_url(fault_server.url)
    with RedisStore(fault_server.url, namespace="f", retry_after=0.1) as shared:
        client = CachedClient(backend, shared)
        assert client.generate("q", temperature=0).content == "answer 0 to q"
        fault_server.save()  # a backup with the entry in it
        shared.clear()
        assert client.generate("q", temperature=0).content == "answer 1 to q"
        fault_server.restart()  # SIGKILL, then a start that loads the backup
        assert len(raw.keys("f:0:*")) == 1 and raw.get("f:gen") is None  # the old world
        time.sleep(0.15)  # past retry_after: the next read reaches Redis again
        # This process saw the clear: it moves the generation forward, never serves answer 0.
        assert client.generate("q", temperature=0).content == "answer 2 to q"
        with RedisStore(fault_server.url, namespace="f") as fresh:  # started afterwards
            again = CachedClient(backend, fresh).generate("q", temperature=0).content
        assert again == "answer 2 to q"
    raw.close()


def test_clear_happens_on_a_full_redis(fault_server: RedisServer) -> None:
    raw = redis.Redis.from_url(fault_server.url)
    backend = MockBackend(_numbered)
    with RedisStore(fault_server.url, namespace="f") as shared:
        client = CachedClient(backend, shared)
        for i in range(200):
            client.generate(f"q{i} " + "x" * 1000, temperature=0)
        raw.config_set("maxmemory-policy", "noeviction")
        raw.config_set("maxmemory", raw.info("memory")["used_memory"] - 100_000)
        errors = shared.stats()["errors"]
        assert client.generate("new", temperature=0).content == "answer 200 to new"
        assert shared.stats()["errors"] > errors  # the write was refused, and counted
        shared.clear()  # its own write is refused at first: it frees the namespace, then bumps
        assert raw.keys("f:*") == [b"f:gen"]
        assert client.generate("q0 " + "x" * 1000, temperature=0).content.startswith("answer 201 ")
    raw.close()


def test_a_sweep_that_fails_after_the_bump_still_leaves_the_clear_done(
    fault_server: RedisServer,
) -> None:
    raw = redis.Redis.from_url(fault_server.url)
    # A user that may do everything but UNLINK: the generation is raised, the sweep fails.
    raw.acl_setuser(
        "nounlink",
        enabled=True,
        passwords=["+pw"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", "-unlink"],
    )
    url = fault_server.url.replace("redis://", "redis://nounlink:pw@")
    backend = MockBackend(_numbered)
    with RedisStore(url, namespace="f") as shared:
        client = CachedClient(backend, shared)
        assert client.generate("q", temperature=0).content == "answer 0 to q"
        errors = shared.stats()["errors"]
        shared.clear()  # returns: the clear happened
        assert shared.stats()["errors"] == errors + 1  # the failed sweep, counted
        assert len(raw.keys("f:0:*")) == 1  # the old entry is still there, unreachable
        assert client.generate("q", temperature=0).content == "answer 1 to q"
    with RedisStore(fault_server.url, namespace="f") as admin:
        admin.clear()  # the next clear sweeps what the failed one left
    assert raw.keys("f:0:*") == []
    raw.close()


# -- planted values: never a wrong answer, the model answers ----------------------------------


def _names(raw: redis.Redis, namespace: str) -> dict[str, bytes]:
    """Each entry's Redis name, by the prompt whose answer it holds."""
    names = {}
    for name in raw.keys(f"{namespace}:0:*"):
        entry = JSONCodec().decode(raw.get(name))  # type: ignore[arg-type]
        names[str(entry.content).split(" to ")[-1]] = name
    return names


def test_planted_values_are_never_served_and_the_model_answers(
    redis_url: str, tmp_path: Any
) -> None:
    backend = MockBackend(_numbered)
    raw = redis.Redis.from_url(redis_url)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> Any:
            return (marker.touch, ())

    codec = JSONCodec()
    with RedisStore(redis_url, namespace="f") as shared:

        @cached_generate(cache=shared, namespace="faults")
        def ask(prompt: str) -> str:
            return backend.generate(prompt).content

        assert ask("a") == "answer 0 to a" and ask("b") == "answer 1 to b"
        names = _names(raw, "f")
        a_entry = codec.decode(raw.get(names["a"]))  # type: ignore[arg-type]
        plants = {
            "another key's entry": raw.get(names["a"]),
            "a forged fingerprint": codec.encode(
                CachedResponse(content="answer 0 to a", fingerprint="f" * 32)
            ),
            "the right fingerprint, unreadable fields": JSONCodec.MAGIC
            + (
                b'{"content": "planted", "fingerprint": "%s", "hits": "many"}'
                % a_entry.fingerprint.encode()
            ),
            "a pickle": pickle.dumps(Exploit()),
            "malformed JSON": JSONCodec.MAGIC + b'{"content": "planted"',
            "garbage": b"\x00\xff" * 50,
        }
        for n, (what, data) in enumerate(plants.items()):
            raw.set(names["b"], data)  # type: ignore[arg-type]
            assert ask("b") == f"answer {2 + n} to b", what
            assert ask("b") == f"answer {2 + n} to b", what  # its own answer is stored again
        raw.delete(names["b"])
        raw.hset(names["b"], "f", "v")  # a value of another type
        assert ask("b") == f"answer {2 + len(plants)} to b"
        assert not marker.exists()
        assert shared.stats()["errors"] >= 4  # the undecodable ones, counted


async def test_planted_values_are_never_served_through_the_async_client(redis_url: str) -> None:
    backend = AsyncMockBackend(_numbered)
    raw = redis.Redis.from_url(redis_url)
    async with RedisStore(redis_url, namespace="f") as shared:
        client = CachedClient(backend, shared)
        assert (await client.generate("a", temperature=0)).content == "answer 0 to a"
        assert (await client.generate("b", temperature=0)).content == "answer 1 to b"
        names = _names(raw, "f")
        raw.set(names["b"], raw.get(names["a"]))  # type: ignore[arg-type]
        assert (await client.generate("b", temperature=0)).content == "answer 2 to b"
        raw.set(names["b"], JSONCodec.MAGIC + b"[1, 2")
        streamed = [c.content async for c in client.generate_stream("b", temperature=0)]
        assert "".join(streamed) == "answer 3 to b"
    raw.close()
