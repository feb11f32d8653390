"""`AsyncStore`: the coroutine face every store has, and `awaitable_io`, which tells a caller
once whether awaiting a store frees the event loop or only adds a coroutine.

Real parts: memory, a DiskStore on tmp_path, a real redis-server (the `redis_url` fixture).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

import llmcache.stores
from llmcache.entry import CachedResponse
from llmcache.errors import StoreError
from llmcache.stores import AsyncStore, DiskStore, MemoryStore, Store, TieredStore
from llmcache.stores.base import inline_store
from llmcache.stores.redis import RedisStore

ROOT = Path(__file__).resolve().parents[3]


def _entry(content: Any = "v") -> CachedResponse:
    return CachedResponse(content=content)


class DictStore(AsyncStore):
    """A tier only async code uses: the four abstract coroutines, nothing else."""

    def __init__(self) -> None:
        self.data: dict[str, CachedResponse] = {}
        self.closed = 0

    async def aget(self, key: str) -> CachedResponse | None:
        return self.data.get(key)

    async def aset(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        self.data[key] = entry

    async def adelete(self, key: str) -> bool:
        return self.data.pop(key, None) is not None

    async def aclear(self) -> None:
        self.data.clear()

    async def aclose(self) -> None:
        self.closed += 1


class RecordingMemory(MemoryStore):
    """A memory tier that notes which face served each read."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def get(self, key: str) -> CachedResponse | None:
        self.calls.append("get")
        return super().get(key)

    async def aget(self, key: str) -> CachedResponse | None:
        self.calls.append("aget")
        return super().get(key)


class InlineRecordingMemory(RecordingMemory):
    """Its own `aget`, but it says awaiting it gains nothing."""

    awaitable_io = False


class UndeletableStore(MemoryStore):
    """A memory tier whose explicit operations fail as a dead backend's would."""

    name = "undeletable"

    def delete(self, key: str) -> bool:
        raise StoreError("backend down", store=self.name, operation="delete")

    def clear(self) -> None:
        raise StoreError("backend down", store=self.name, operation="clear")


def test_async_store_is_exported() -> None:
    assert "AsyncStore" in llmcache.stores.__all__
    assert llmcache.stores.__all__ == sorted(llmcache.stores.__all__)


def test_every_store_is_an_async_store_and_says_whether_awaiting_pays(
    tmp_path: Path, redis_url: str
) -> None:
    memory, disk = MemoryStore(), DiskStore(tmp_path / "disk")
    shared = RedisStore(redis_url, namespace="t")
    for store in (memory, disk, shared):
        assert isinstance(store, AsyncStore) and isinstance(store, Store)
    assert (memory.awaitable_io, disk.awaitable_io, shared.awaitable_io) == (False, False, True)
    assert (MemoryStore.awaitable_io, DiskStore.awaitable_io, RedisStore.awaitable_io) == (
        False,
        False,
        True,
    )
    # A tiered store pays for awaiting when one of its tiers waits on the network.
    assert TieredStore(memory, disk).awaitable_io is False
    assert TieredStore(memory, shared).awaitable_io is True
    assert TieredStore(TieredStore(memory, shared)).awaitable_io is True
    shared.close()
    disk.close()


def test_inline_store_names_the_stores_whose_sync_methods_async_code_should_call(
    tmp_path: Path, redis_url: str
) -> None:
    memory, disk = MemoryStore(), DiskStore(tmp_path / "disk")
    shared = RedisStore(redis_url, namespace="t")
    assert inline_store(memory) is memory and inline_store(disk) is disk
    assert inline_store(TieredStore(memory, disk)) is not None
    assert inline_store(shared) is None and inline_store(TieredStore(memory, shared)) is None
    assert inline_store(DictStore()) is None  # no sync face at all
    shared.close()
    disk.close()


def test_a_store_that_writes_its_own_coroutines_is_awaited_unless_it_says_otherwise() -> None:
    class Plain(MemoryStore):
        pass

    class WritesOnly(MemoryStore):
        async def aset(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
            self.set(key, entry, ttl)

    class StillInline(InlineRecordingMemory):
        pass

    class SubRedis(RedisStore):
        pass

    assert Plain.awaitable_io is False
    assert RecordingMemory.awaitable_io is True
    assert WritesOnly.awaitable_io is True
    assert InlineRecordingMemory.awaitable_io is False
    assert StillInline.awaitable_io is False  # inherits what its parent stated
    assert SubRedis.awaitable_io is True


async def _scenario(store: Store, face: str) -> list[Any]:
    """The same calls through one face of `store`, and what they answered."""
    out: list[Any] = []
    if face == "sync":
        store.set("k", _entry("k"), ttl=60)
        store.set_many({"a": _entry("A"), "b": _entry("B")}, ttl=60)
        out += [getattr(store.get(key), "content", None) for key in ("k", "x")]
        out.append(sorted(store.get_many(["a", "b", "y"])))
        out += [store.delete("a"), store.delete("a"), store.get("a")]
        store.clear()
        out.append(store.get("b"))
    else:
        await store.aset("k", _entry("k"), ttl=60)
        await store.aset_many({"a": _entry("A"), "b": _entry("B")}, ttl=60)
        out += [getattr(await store.aget(key), "content", None) for key in ("k", "x")]
        out.append(sorted(await store.aget_many(["a", "b", "y"])))
        out += [await store.adelete("a"), await store.adelete("a"), await store.aget("a")]
        await store.aclear()
        out.append(await store.aget("b"))
    return out


@pytest.mark.parametrize("kind", ["memory", "disk"])
async def test_the_inline_coroutines_answer_as_the_sync_methods(tmp_path: Path, kind: str) -> None:
    answers, counters = [], []
    for face in ("sync", "async"):
        store: Store = MemoryStore() if kind == "memory" else DiskStore(tmp_path / face)
        answers.append(await _scenario(store, face))
        stats = store.stats()
        counters.append({k: stats[k] for k in ("hits", "misses", "sets", "deletes")})
        await store.aclose()
    assert answers[0] == answers[1] == ["k", None, ["a", "b"], True, False, None, None]
    assert counters[0] == counters[1]


async def test_the_inline_coroutines_keep_the_contract_on_failure_and_misuse() -> None:
    store = UndeletableStore()
    with pytest.raises(StoreError, match="backend down"):
        await store.adelete("k")
    with pytest.raises(StoreError, match="backend down"):
        await store.aclear()
    memory = MemoryStore()
    with pytest.raises(ValueError):
        await memory.aset("k", _entry(), ttl=-1)
    async with memory as same:
        assert same is memory
    with pytest.raises(RuntimeError):  # closed by `async with`: misuse still raises
        await memory.aget("k")


async def test_an_async_only_store_gets_batches_and_async_with_for_free() -> None:
    store = DictStore()
    assert store.awaitable_io is True and not isinstance(store, Store)
    async with store:
        await store.aset_many({"a": _entry("A"), "b": _entry("B")})
        assert sorted(await store.aget_many(["a", "b", "c"])) == ["a", "b"]
        assert await store.adelete("a") is True
    assert store.closed == 1

    class Incomplete(AsyncStore):
        async def aget(self, key: str) -> CachedResponse | None:
            return None

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()  # type: ignore[abstract]


async def test_tiered_reads_follow_each_tiers_awaitable_io() -> None:
    awaited, inline = RecordingMemory(), InlineRecordingMemory()
    awaited.set("k", _entry())
    inline.set("k", _entry())
    assert (await TieredStore(awaited).aget("k")) is not None
    assert (await TieredStore(inline).aget("k")) is not None
    assert awaited.calls == ["aget"]  # its coroutine, awaited
    assert inline.calls == ["get"]  # its sync method, inline: no coroutine made


async def test_tiered_writes_reach_a_tier_through_its_coroutines() -> None:
    class RecordingWrites(MemoryStore):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[str] = []

        async def aset(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
            self.calls.append("aset")
            self.set(key, entry, ttl)

        async def aset_many(
            self, entries: Mapping[str, CachedResponse], ttl: float | None = None
        ) -> None:
            self.calls.append("aset_many")
            self.set_many(entries, ttl)

        async def aget_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
            self.calls.append("aget_many")
            return self.get_many(keys)

    tier = RecordingWrites()
    store = TieredStore(tier)
    await store.aset("k", _entry())
    await store.aset_many({"a": _entry()})
    assert sorted(await store.aget_many(["a", "k"])) == ["a", "k"]
    assert tier.calls == ["aset", "aset_many", "aget_many"]


def test_the_generated_sync_twins_are_up_to_date() -> None:
    """The stores' sync methods are generated from the hand-written coroutines: a stale
    twin (an edit of one side only) fails here as well as in `make lint`."""
    spec = importlib.util.spec_from_file_location("_unasync", ROOT / "scripts" / "unasync.py")
    assert spec is not None and spec.loader is not None
    unasync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(unasync)
    pairs = [
        (src, dst)
        for src, dst in unasync.PAIRS
        if src.startswith("src/llmcache/stores/") and "postgres" not in src
    ]
    assert {Path(dst).name for _, dst in pairs} >= {"_sync_redis.py", "_sync_tiered.py"}
    for source, target in pairs:
        text = (ROOT / target).read_text(encoding="utf-8")
        assert text.startswith(f"# Generated by scripts/unasync.py from {source}")
        assert text == unasync.generate(source, target), f"{target} is stale"
