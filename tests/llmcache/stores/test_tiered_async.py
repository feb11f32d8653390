"""TieredStore's coroutine twins over real tiers: memory, a DiskStore on tmp_path and a real
redis-server. Promotion with the TTL left, write-through, failing tiers as counted misses,
parity with the sync methods, and the decorator and the async client going through the
async path (checked by which face of the Redis tier was called, never by timing)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis

from llmcache import (
    AsyncMockBackend,
    CachedClient,
    CachedResponse,
    CachePolicy,
    DiskStore,
    MemoryStore,
    StreamChunk,
    TieredStore,
    cached_generate,
)
from llmcache.errors import StoreError
from llmcache.stores.redis import RedisStore
from llmcache.testing import StoreConformance

if TYPE_CHECKING:
    from conftest import RedisServer

_SYNC = {"get", "set", "delete", "get_many", "set_many", "clear"}


def _entry(content: Any = "v") -> CachedResponse:
    return CachedResponse(content=content)


class RecordingRedis(RedisStore):
    """A real RedisStore that notes which face served each call: ``get`` (sync, blocks the
    event loop) or ``aget`` (awaited)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []

    def get(self, key: str) -> CachedResponse | None:
        self.calls.append("get")
        return super().get(key)

    def set(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        self.calls.append("set")
        super().set(key, entry, ttl)

    def delete(self, key: str) -> bool:
        self.calls.append("delete")
        return super().delete(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        self.calls.append("get_many")
        return super().get_many(keys)

    def set_many(self, entries: Mapping[str, CachedResponse], ttl: float | None = None) -> None:
        self.calls.append("set_many")
        super().set_many(entries, ttl)

    def clear(self) -> None:
        self.calls.append("clear")
        super().clear()

    async def aget(self, key: str) -> CachedResponse | None:
        self.calls.append("aget")
        return await super().aget(key)

    async def aset(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        self.calls.append("aset")
        await super().aset(key, entry, ttl)

    async def adelete(self, key: str) -> bool:
        self.calls.append("adelete")
        return await super().adelete(key)

    async def aget_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        self.calls.append("aget_many")
        return await super().aget_many(keys)

    async def aset_many(
        self, entries: Mapping[str, CachedResponse], ttl: float | None = None
    ) -> None:
        self.calls.append("aset_many")
        await super().aset_many(entries, ttl)

    async def aclear(self) -> None:
        self.calls.append("aclear")
        await super().aclear()


class AsyncBrokenStore(MemoryStore):
    """A tier with coroutine twins whose backend is down: every twin raises."""

    name = "broken"

    async def aget(self, key: str) -> CachedResponse | None:
        raise ConnectionError("backend down")

    async def aset(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        raise ConnectionError("backend down")

    async def adelete(self, key: str) -> bool:
        raise ConnectionError("backend down")

    async def aget_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        raise ConnectionError("backend down")

    async def aset_many(
        self, entries: Mapping[str, CachedResponse], ttl: float | None = None
    ) -> None:
        raise ConnectionError("backend down")

    async def aclear(self) -> None:
        raise ConnectionError("backend down")

    async def aclose(self) -> None:
        raise ConnectionError("backend down")


class HangingStore(MemoryStore):
    """A tier whose ``aget`` never answers (until cancelled)."""

    async def aget(self, key: str) -> CachedResponse | None:
        await asyncio.Event().wait()
        return None


# -- the store ----------------------------------------------------------------------------


async def test_aget_promotes_a_redis_hit_into_memory_with_the_ttl_left(redis_url: str) -> None:
    # The writer's clock runs 40 s behind: its entry has 20 s of its 60 left on ours.
    async with RedisStore(redis_url, namespace="t", clock=lambda: time.time() - 40) as writer:
        await writer.aset("k", _entry(), ttl=60)
    async with RecordingRedis(redis_url, namespace="t") as shared:
        memory = MemoryStore()
        tiered = TieredStore(memory, shared)
        got = await tiered.aget("k")
        assert got is not None and got.content == "v" and got.expires_at is not None
        assert got.expires_at - time.time() == pytest.approx(20, abs=5)
        promoted = memory.get("k")
        assert promoted is not None and promoted.expires_at is not None
        assert promoted.expires_at == pytest.approx(got.expires_at, abs=0.5)  # not 60 s again
        again = await tiered.aget("k")
        assert again is not None and again.content == "v"
        stats = tiered.stats()
        assert stats["tier_hits"] == {"memory": 1, "redis": 1}
        assert (stats["promotions"], stats["misses"], stats["errors"]) == (1, 0, 0)
        assert shared.calls == ["aget"]  # the second read never left memory


async def test_async_writes_go_through_every_tier(redis_url: str, tmp_path: Path) -> None:
    raw = redis.Redis.from_url(redis_url)
    shared = RecordingRedis(redis_url, namespace="t")
    plain = RedisStore(redis_url, namespace="t")  # the test's own reads, not recorded
    memory, disk = MemoryStore(), DiskStore(tmp_path / "disk")
    async with TieredStore(memory, disk, shared) as tiered:
        await tiered.aset("k", _entry("all"), ttl=60)
        for tier in (memory, disk, plain):
            got = tier.get("k")
            assert got is not None and got.content == "all"
        assert 0 < raw.pttl("t:0:k") <= 60_000
        await tiered.aset_many({"a": _entry("A"), "b": _entry("B")}, ttl=60)
        assert all(tier.get_many(["a", "b"]).keys() == {"a", "b"} for tier in (memory, disk, plain))
        # Another process: its own memory and disk, the same Redis. One batch per tier.
        memory2, disk2 = MemoryStore(), DiskStore(tmp_path / "disk2")
        async with TieredStore(memory2, disk2, shared) as other:
            found = await other.aget_many(["a", "b", "k", "nope", "a"])
            assert {key: e.content for key, e in found.items()} == {"a": "A", "b": "B", "k": "all"}
            assert memory2.get_many(["a", "b", "k"]).keys() == {"a", "b", "k"}
            assert disk2.get_many(["a", "b", "k"]).keys() == {"a", "b", "k"}
            stats = other.stats()
            assert stats["tier_hits"] == {"memory": 0, "disk": 0, "redis": 3}
            assert (stats["misses"], stats["promotions"]) == (1, 3)
        assert await tiered.adelete("k") is True
        assert all(tier.get("k") is None for tier in (memory, disk, plain))
        assert await tiered.adelete("k") is False
        await tiered.aclear()
        assert (len(memory), len(disk), len(plain)) == (0, 0, 0)
        assert shared.calls == ["aset", "aset_many", "aget_many", "adelete", "adelete", "aclear"]
    plain.close()
    raw.close()


async def test_a_killed_redis_tier_is_a_counted_miss_in_async_code(
    fault_server: RedisServer,
) -> None:
    memory = MemoryStore()
    shared = RedisStore(fault_server.url, namespace="t", retry_after=30)
    async with TieredStore(memory, shared) as tiered:
        await tiered.aset("k", _entry(), ttl=60)
        fault_server.kill()
        memory.clear()  # the next read has to go down to Redis
        assert await tiered.aget("k") is None
        assert await tiered.aget_many(["k", "j"]) == {}
        await tiered.aset("k2", _entry("kept"), ttl=60)  # Redis drops it, memory keeps it
        kept = await tiered.aget("k2")
        assert kept is not None and kept.content == "kept"
        with pytest.raises(StoreError, match="redis"):
            await tiered.adelete("k2")  # gone from memory; Redis cannot tell: reported
        assert memory.get("k2") is None
        with pytest.raises(StoreError, match="redis"):
            await tiered.aclear()
        stats = tiered.stats()
        assert (stats["misses"], stats["tier_hits"]) == (3, {"memory": 1, "redis": 0})
        redis_stats = stats["tiers"][1]
        assert redis_stats["errors"] >= 1 and redis_stats["connected"] is False


async def test_an_unreachable_redis_tier_is_a_counted_miss_in_async_code() -> None:
    memory = MemoryStore()
    async with TieredStore(memory, RedisStore("redis://127.0.0.1:1/0", namespace="t")) as store:
        assert await store.aget("k") is None
        await store.aset("k", _entry(), ttl=60)
        got = await store.aget("k")
        assert got is not None and got.content == "v"
        stats = store.stats()
        assert (stats["misses"], stats["tiers"][1]["connected"]) == (1, False)
        assert stats["tiers"][1]["errors"] >= 1


async def test_a_paused_redis_tier_leaves_the_event_loop_free_then_misses(
    fault_server: RedisServer,
) -> None:
    memory = MemoryStore()
    shared = RedisStore(fault_server.url, namespace="t", retry_after=30)
    async with TieredStore(memory, shared) as tiered:
        await tiered.aset("k", _entry(), ttl=60)
        memory.clear()
        reading, ticks = False, 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += reading  # counts only while the read below is in flight
                await asyncio.sleep(0)

        async def read() -> CachedResponse | None:
            nonlocal reading
            reading = True
            try:
                return await tiered.aget("k")
            finally:
                reading = False

        task = asyncio.create_task(ticker())
        fault_server.pause()  # answers nothing: the read waits for its socket timeout
        try:
            got = await read()
        finally:
            fault_server.resume()
            task.cancel()
        # A blocking read would have held the loop: the ticker could not have run during it.
        assert got is None and ticks > 0
        stats = tiered.stats()
        assert stats["misses"] == 1 and stats["tiers"][1]["errors"] >= 1


async def test_a_tier_whose_coroutines_raise_is_a_counted_miss(
    caplog: pytest.LogCaptureFixture,
) -> None:
    memory = MemoryStore()
    store = TieredStore(AsyncBrokenStore(), memory)
    with caplog.at_level(logging.WARNING, logger="llmcache.stores.tiered"):
        await store.aset("k", _entry())
        for _ in range(3):
            got = await store.aget("k")
            assert got is not None and got.content == "v"
        assert (await store.aget_many(["k"])).keys() == {"k"}
        await store.aset_many({"a": _entry()})
        with pytest.raises(StoreError, match="broken"):
            await store.adelete("k")
        assert memory.get("k") is None  # every tier was tried
        with pytest.raises(StoreError, match="broken"):
            await store.aclear()
    stats = store.stats()
    assert stats["tier_hits"] == {"broken": 0, "memory": 4}
    # set, 3 gets and their 3 promotions, get_many and its promotion, set_many, delete, clear
    assert stats["errors"] == 1 + 3 + 3 + 2 + 1 + 1 + 1
    assert len([r for r in caplog.records if "broken.get failed" in r.getMessage()]) == 1
    await store.aclose()  # the broken tier's aclose raises; memory is closed all the same
    with pytest.raises(RuntimeError):
        memory.get("k")


async def test_a_cancelled_read_is_not_a_failing_tier() -> None:
    store = TieredStore(MemoryStore(), HangingStore())
    task = asyncio.create_task(store.aget("k"))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert store.stats()["errors"] == 0


async def test_misuse_raises_as_in_sync_code() -> None:
    store = TieredStore(MemoryStore())
    with pytest.raises(TypeError):
        await store.aget(1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await store.aset("k", _entry(), ttl=-5)
    with pytest.raises(ValueError):
        await store.aset_many({"k": _entry()}, ttl=0)


# -- parity: every twin does what its sync method does --------------------------------------


def _scenario_sync(store: TieredStore, slow: MemoryStore) -> list[Any]:
    slow.set("low", _entry("low"), ttl=60)
    slow.set("many", _entry("many"))
    store.set("k", _entry("k"), ttl=30)
    store.set_many({"a": _entry("A"), "b": _entry("B")}, ttl=30)
    out: list[Any] = [getattr(store.get(key), "content", None) for key in ("k", "low", "x")]
    out.append(sorted(store.get_many(["a", "many", "low", "y"])))
    out += [store.delete("a"), store.delete("a"), store.get("a")]
    store.clear()
    out.append(store.get("b"))
    return out


async def _scenario_async(store: TieredStore, slow: MemoryStore) -> list[Any]:
    slow.set("low", _entry("low"), ttl=60)
    slow.set("many", _entry("many"))
    await store.aset("k", _entry("k"), ttl=30)
    await store.aset_many({"a": _entry("A"), "b": _entry("B")}, ttl=30)
    out: list[Any] = [getattr(await store.aget(key), "content", None) for key in ("k", "low", "x")]
    out.append(sorted(await store.aget_many(["a", "many", "low", "y"])))
    out += [await store.adelete("a"), await store.adelete("a"), await store.aget("a")]
    await store.aclear()
    out.append(await store.aget("b"))
    return out


def _counters(store: TieredStore) -> dict[str, Any]:
    stats = store.stats()
    return {k: stats[k] for k in ("hits", "misses", "errors", "promotions", "tier_hits")}


@pytest.mark.parametrize("with_redis", [False, True], ids=["memory-disk", "memory-disk-redis"])
async def test_the_twins_match_the_sync_methods(
    request: pytest.FixtureRequest, tmp_path: Path, with_redis: bool
) -> None:
    results = []
    for face in ("sync", "async"):
        fast, slow = MemoryStore(), MemoryStore()
        tiers: list[Any] = [fast, DiskStore(tmp_path / face), slow]
        if with_redis:
            url = request.getfixturevalue("redis_url")
            tiers.insert(2, RecordingRedis(url, namespace=face))
        store = TieredStore(*tiers)
        if face == "sync":
            out = _scenario_sync(store, slow)
        else:
            out = await _scenario_async(store, slow)
        results.append((out, _counters(store), len(fast)))
        await store.aclose()
        if with_redis:
            calls = set(tiers[2].calls)
            assert calls <= (_SYNC if face == "sync" else {f"a{c}" for c in _SYNC}), calls
    assert results[0] == results[1]


class TestMemoryDiskRedisConformance(StoreConformance):
    """The sync contract, with Redis as the last tier (the suite has no async part; the
    parity test above holds the twins to the sync methods)."""

    uses_clock = True

    @pytest.fixture(autouse=True)
    def _parts(self, redis_url: str, tmp_path: Path) -> None:
        self.redis_url, self.directory, self.made = redis_url, tmp_path, 0

    def make_store(self) -> TieredStore:
        self.made += 1  # a test that makes two stores gets two of everything
        return TieredStore(
            MemoryStore(max_entries=1000, clock=self.clock),
            DiskStore(self.directory / f"disk{self.made}", clock=self.clock),
            RedisStore(self.redis_url, namespace=f"c{self.made}", clock=self.clock),
            clock=self.clock,
        )


# -- the callers: the decorator and the async client take the async path ------------------


async def test_async_cached_generate_over_memory_and_redis_reads_redis_asynchronously(
    redis_url: str,
) -> None:
    calls: list[str] = []
    async with RecordingRedis(redis_url, namespace="t") as shared:

        def make() -> Any:
            @cached_generate(cache=TieredStore(MemoryStore(), shared), namespace="t")
            async def generate(prompt: str) -> str:
                calls.append(prompt)
                return prompt.upper()

            return generate

        first = make()
        assert await first("hi") == "HI"
        second = make()  # another process: its own memory tier, the same Redis
        assert await second("hi") == "HI"  # from Redis, promoted to its memory
        assert await second("hi") == "HI"  # from its memory
        assert calls == ["hi"]
        assert second.cache_info().hits == 2
        assert "aget" in shared.calls and "aset" in shared.calls
        assert not _SYNC & set(shared.calls), shared.calls
        assert shared.calls[-1] == "aget"  # the memory hit never reached Redis


async def test_async_client_streams_through_redis_asynchronously(redis_url: str) -> None:
    backend = AsyncMockBackend()
    async with RecordingRedis(redis_url, namespace="t") as shared:
        writer = CachedClient(backend, TieredStore(MemoryStore(), shared))
        live = [c async for c in writer.generate_stream("a b c", temperature=0)]
        reader = CachedClient(backend, TieredStore(MemoryStore(), shared))
        replay = [c async for c in reader.generate_stream("a b c", temperature=0)]
        assert [c.content for c in replay] == [c.content for c in live] and replay[-1].done
        assert backend.call_count == 1 and reader.hits == 1
        # The writer's lookup, its second look holding the cross-process lock (another
        # process may have stored the answer meanwhile), its store, the reader's lookup: all
        # awaited.
        assert shared.calls == ["aget", "aget", "aset", "aget"]


async def test_async_client_stream_checks_fingerprint_and_expiry_on_the_async_path(
    redis_url: str,
) -> None:
    backend = AsyncMockBackend()
    raw = redis.Redis.from_url(redis_url)
    async with RecordingRedis(redis_url, namespace="t") as shared:

        def reader() -> Any:
            return CachedClient(backend, TieredStore(MemoryStore(), shared), CachePolicy(ttl=60))

        [c async for c in reader().generate_stream("q", temperature=0)]
        (name,) = raw.keys("t:0:*")  # the entry (not the stream's lock, let go meanwhile)
        key = name.decode().removeprefix("t:0:")
        # Another request's entry under this key (a collision, a poisoned shared tier).
        planted = shared.get(key)
        assert planted is not None
        shared.set(key, replace(planted, fingerprint="another request"), ttl=60)
        [c async for c in reader().generate_stream("q", temperature=0)]
        assert backend.call_count == 2
        # An entry past its expiry by this host's clock, which Redis still holds: written
        # by a host whose clock runs 1000 s behind.
        raw.delete(name)
        async with RedisStore(redis_url, namespace="t", clock=lambda: time.time() - 1000) as skewed:
            late = CachedClient(backend, TieredStore(MemoryStore(), skewed), CachePolicy(ttl=60))
            [c async for c in late.generate_stream("q", temperature=0)]
            assert backend.call_count == 3 and raw.pttl(name) > 0
        [c async for c in reader().generate_stream("q", temperature=0)]
        assert backend.call_count == 4
        client = reader()  # the entry the last stream stored is good: a hit
        [c async for c in client.generate_stream("q", temperature=0)]
        assert backend.call_count == 4 and client.hits == 1
    raw.close()


async def test_async_client_never_stores_an_incomplete_stream_in_redis(redis_url: str) -> None:
    class NoDone(AsyncMockBackend):
        def generate_stream(self, prompt: str, **kwargs: Any) -> Any:
            async def pieces() -> Any:
                yield StreamChunk(content="cut ")
                yield StreamChunk(content="off")

            return pieces()

    raw = redis.Redis.from_url(redis_url)
    async with RecordingRedis(redis_url, namespace="t") as shared:
        client = CachedClient(NoDone(), TieredStore(MemoryStore(), shared))
        assert [c.content async for c in client.generate_stream("q", temperature=0)] == [
            "cut ",
            "off",
        ]
        abandoned = CachedClient(AsyncMockBackend(), TieredStore(MemoryStore(), shared))
        stream = abandoned.generate_stream("a b c d", temperature=0)
        await stream.__anext__()
        await stream.aclose()  # type: ignore[attr-defined]
        assert raw.keys("t:0:*") == [] and "aset" not in shared.calls
    raw.close()
