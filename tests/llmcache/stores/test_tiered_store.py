"""TieredStore: read-through with promotion (remaining TTL), write-through, failing tiers."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from llmcache.entry import CachedResponse
from llmcache.errors import StoreError
from llmcache.stores import DiskStore, MemoryStore, Store, TieredStore


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class BrokenStore(Store):
    """A tier whose backend is down: every operation raises."""

    name = "broken"

    def __init__(self) -> None:
        self.closed = False

    def get(self, key: str) -> CachedResponse | None:
        raise ConnectionError("backend down")

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        raise ConnectionError("backend down")

    def set(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        raise ConnectionError("backend down")

    def delete(self, key: str) -> bool:
        raise ConnectionError("backend down")

    def clear(self) -> None:
        raise ConnectionError("backend down")

    def __len__(self) -> int:
        raise ConnectionError("backend down")

    def stats(self) -> dict[str, Any]:
        raise ConnectionError("backend down")

    def close(self) -> None:
        self.closed = True
        raise ConnectionError("backend down")


class StaleStore(MemoryStore):
    """Returns entries without checking expiry, as a tier with a skewed clock might."""

    name = "stale"

    def __init__(self, entry: CachedResponse) -> None:
        super().__init__()
        self.entry = entry

    def get(self, key: str) -> CachedResponse | None:
        return self.entry


def test_promotion_copies_a_lower_hit_up_with_the_ttl_left() -> None:
    clock = FakeClock()
    fast, slow = MemoryStore(clock=clock), MemoryStore(clock=clock)
    store = TieredStore(fast, slow, clock=clock)
    slow.set("k", CachedResponse(content="v"), ttl=100)
    clock.now += 40
    got = store.get("k")
    assert got is not None and got.content == "v"
    promoted = fast.get("k")
    assert promoted is not None and promoted.expires_at == 1100.0
    assert store.get("k") is not None
    assert store.stats()["tier_hits"] == {"memory[0]": 1, "memory[1]": 1}
    clock.now = 1100.0  # the promoted copy dies with the original
    assert fast.get("k") is None
    assert store.get("k") is None
    assert store.stats()["promotions"] == 1


def test_an_entry_without_expiry_is_promoted_without_one() -> None:
    fast, slow = MemoryStore(), MemoryStore()
    slow.set("k", CachedResponse(content="v"))
    TieredStore(fast, slow).get("k")
    promoted = fast.get("k")
    assert promoted is not None and promoted.expires_at is None


def test_an_expired_lower_hit_is_not_promoted() -> None:
    clock = FakeClock()
    fast = MemoryStore(clock=clock)
    stale = StaleStore(CachedResponse(content="old", expires_at=999.0))
    store = TieredStore(fast, stale, clock=clock)
    store.get("k")
    assert fast.get("k") is None
    assert store.stats()["promotions"] == 0


def test_promote_false_leaves_the_fast_tier_alone() -> None:
    fast, slow = MemoryStore(), MemoryStore()
    slow.set("k", CachedResponse(content="v"))
    assert TieredStore(fast, slow, promote=False).get("k") is not None
    assert fast.get("k") is None


def test_write_through_delete_and_clear_reach_every_tier() -> None:
    fast, slow = MemoryStore(), MemoryStore()
    store = TieredStore(fast, slow)
    store.set("a", CachedResponse(content="a"), ttl=60)
    store.set_many({"b": CachedResponse(content="b"), "c": CachedResponse(content="c")})
    assert (len(fast), len(slow), len(store)) == (3, 3, 3)
    assert store.delete("a") is True
    assert store.delete("a") is False
    assert fast.get("a") is None and slow.get("a") is None
    store.clear()
    assert (len(fast), len(slow)) == (0, 0)


def test_len_is_the_last_tier() -> None:
    fast, slow = MemoryStore(max_entries=2), MemoryStore()
    store = TieredStore(fast, slow)
    for key in "abcd":
        store.set(key, CachedResponse(content=key))
    assert (len(fast), len(store)) == (2, 4)


def test_get_many_asks_each_tier_for_what_is_still_missing() -> None:
    fast, slow = MemoryStore(), MemoryStore()
    fast.set("a", CachedResponse(content="a"))
    slow.set("b", CachedResponse(content="b"))
    store = TieredStore(fast, slow)
    found = store.get_many(["a", "b", "c", "a"])
    assert {k: v.content for k, v in found.items()} == {"a": "a", "b": "b"}
    assert fast.get("b") is not None  # promoted
    stats = store.stats()
    assert (stats["tier_hits"], stats["misses"]) == ({"memory[0]": 1, "memory[1]": 1}, 1)


def test_a_failing_tier_is_a_miss_counted_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    broken, memory = BrokenStore(), MemoryStore()
    store = TieredStore(broken, memory)
    with caplog.at_level(logging.WARNING, logger="llmcache.stores.tiered"):
        store.set("k", CachedResponse(content="v"))
        for _ in range(3):
            got = store.get("k")
            assert got is not None and got.content == "v"
        assert store.get_many(["k"]).keys() == {"k"}
        with pytest.raises(StoreError, match="broken"):
            store.delete("k")  # removed from memory, unknown in `broken`: not a plain True
        with pytest.raises(StoreError, match="broken"):
            store.clear()
        assert len(TieredStore(memory, broken)) == 0
    stats = store.stats()
    assert stats["tier_hits"] == {"broken": 0, "memory": 4}
    assert stats["errors"] >= 7
    assert stats["tiers"][0] == {"tier": "broken", "error": "ConnectionError: backend down"}
    assert stats["tiers"][1]["tier"] == "memory"
    get_logs = [r for r in caplog.records if "broken.get failed" in r.getMessage()]
    assert len(get_logs) == 1


def test_a_failing_promotion_still_returns_the_entry() -> None:
    slow = MemoryStore()
    slow.set("k", CachedResponse(content="v"))
    store = TieredStore(BrokenStore(), slow)
    got = store.get("k")
    assert got is not None and got.content == "v"
    assert store.stats()["errors"] == 2  # the failed get and the failed promotion


def test_close_closes_every_tier_even_when_one_fails() -> None:
    broken, memory = BrokenStore(), MemoryStore()
    TieredStore(broken, memory).close()
    assert broken.closed
    with pytest.raises(RuntimeError):
        memory.get("k")


def test_misuse_raises() -> None:
    with pytest.raises(ValueError):
        TieredStore()
    with pytest.raises(TypeError):
        TieredStore(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="generation_check"):
        TieredStore(MemoryStore(), generation_check=-1)
    store = TieredStore(MemoryStore())
    with pytest.raises(ValueError):
        store.set("k", CachedResponse(content="v"), ttl=-5)
    with pytest.raises(TypeError):
        store.get(1)  # type: ignore[arg-type]


def test_memory_in_front_of_disk(tmp_path: Path) -> None:
    clock = FakeClock()
    with DiskStore(tmp_path, clock=clock) as disk:
        disk.set("k", CachedResponse(content="from disk"), ttl=600)
    memory = MemoryStore(max_entries=10, clock=clock)
    with TieredStore(memory, DiskStore(tmp_path, clock=clock), clock=clock) as store:
        clock.now += 100
        got = store.get("k")
        assert got is not None and got.content == "from disk"
        promoted = memory.get("k")
        assert promoted is not None and promoted.expires_at == 1600.0
        store.set("new", CachedResponse(content="both"), ttl=60)
        stats = store.stats()
        assert stats["tier_hits"] == {"memory": 0, "disk": 1}
        assert [t["tier"] for t in stats["tiers"]] == ["memory", "disk"]
        assert stats["tiers"][1]["entries"] == 2 == len(store)


def test_a_delete_or_clear_that_failed_in_one_tier_raises_after_trying_every_tier() -> None:
    memory, broken, other = MemoryStore(), BrokenStore(), MemoryStore()
    store = TieredStore(memory, broken, other)
    for tier in (memory, other):
        tier.set("k", CachedResponse(content="v"))
    with pytest.raises(StoreError) as raised:
        store.delete("k")
    assert raised.value.operation == "delete" and raised.value.store == "tiered"
    assert "broken" in str(raised.value) and "memory" not in str(raised.value)
    assert memory.get("k") is None and other.get("k") is None  # every tier was tried
    memory.set("k", CachedResponse(content="v"))
    other.set("j", CachedResponse(content="w"))
    with pytest.raises(StoreError, match=r"clear.*broken") as raised:
        store.clear()
    assert raised.value.operation == "clear"
    assert len(memory) == 0 and len(other) == 0
    assert store.stats()["errors"] == 2


def test_delete_reports_true_false_and_clear_returns_when_every_tier_did_it() -> None:
    store = TieredStore(MemoryStore(), MemoryStore())
    store.set("k", CachedResponse(content="v"))
    assert store.delete("k") is True and store.delete("k") is False
    assert store.clear() is None


def test_a_doors_call_counts_reach_the_disk_tier_behind_memory(tmp_path: Path) -> None:
    # A decorator over memory -> disk must persist its call counts in the disk tier, where
    # `llmcache stats` reads them; the memory tier ignores them.
    counts = {"hits": 2, "misses": 1}
    with TieredStore(MemoryStore(), DiskStore(tmp_path)) as store:
        store.count_calls_from(lambda: counts)
    with DiskStore(tmp_path) as disk:
        assert disk.stats()["calls"]["hits"] == 2
        assert disk.stats()["calls"]["misses"] == 1
