"""MemoryStore: LRU by access, TTL per entry on an injectable clock, both bounds, threads."""

from __future__ import annotations

import math
import random
import threading
from collections import Counter, OrderedDict

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from llmcache.entry import CachedResponse
from llmcache.stores import MemoryStore
from llmcache.stores.memory import approx_size


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_get_returns_the_stored_entry_with_its_expiry() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    store.set("k", CachedResponse(content="v", model="m"), ttl=10)
    entry = store.get("k")
    assert entry is not None
    assert (entry.content, entry.model, entry.expires_at) == ("v", "m", 1010.0)


def test_ttl_expires_on_the_injected_clock() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    store.set("k", CachedResponse(content="v"), ttl=10)
    clock.now = 1009.999
    assert store.get("k") is not None
    clock.now = 1010.0
    assert store.get("k") is None
    assert len(store) == 0
    assert store.stats()["expirations"] == 1


def test_default_ttl_applies_and_explicit_ttl_wins() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock, default_ttl=5)
    store.set("default", CachedResponse(content="a"))
    store.set("explicit", CachedResponse(content="b"), ttl=50)
    clock.now += 6
    assert store.get("default") is None
    assert store.get("explicit") is not None


def test_set_does_not_keep_the_callers_expiry() -> None:
    store = MemoryStore(clock=FakeClock())
    store.set("k", CachedResponse(content="v", expires_at=1.0))
    entry = store.get("k")
    assert entry is not None and entry.expires_at is None


def test_lru_evicts_the_least_recently_read() -> None:
    store = MemoryStore(max_entries=3)
    for key in "abc":
        store.set(key, CachedResponse(content=key))
    store.get("a")
    store.set("d", CachedResponse(content="d"))
    assert store.get("b") is None
    assert {k for k in "acd" if store.get(k) is not None} == {"a", "c", "d"}
    assert store.stats()["evictions"] == 1


def test_max_bytes_bounds_the_total_size() -> None:
    entry = CachedResponse(content="x" * 1000)
    size = approx_size(entry)
    store = MemoryStore(max_entries=100, max_bytes=size * 3 + 10)
    for i in range(10):
        store.set(str(i), CachedResponse(content="x" * 1000))
    stats = store.stats()
    assert stats["entries"] == 3
    assert stats["bytes"] <= size * 3 + 10
    assert [store.get(str(i)) is not None for i in (7, 8, 9)] == [True] * 3


def test_an_entry_larger_than_max_bytes_is_not_stored_and_drops_the_old_value() -> None:
    store = MemoryStore(max_bytes=500)
    store.set("k", CachedResponse(content="small"))
    store.set("k", CachedResponse(content="x" * 1000))
    assert store.get("k") is None
    assert store.stats()["too_large"] == 1


def test_delete_clear_and_counters() -> None:
    store = MemoryStore()
    store.set("a", CachedResponse(content="a"))
    store.set("b", CachedResponse(content="b"))
    assert store.delete("a") is True
    assert store.delete("a") is False
    store.clear()
    assert len(store) == 0
    stats = store.stats()
    assert (stats["sets"], stats["deletes"], stats["entries"], stats["bytes"]) == (2, 1, 0, 0)


def test_get_many_and_set_many() -> None:
    store = MemoryStore(clock=FakeClock())
    store.set_many({"a": CachedResponse(content="a"), "b": CachedResponse(content="b")}, ttl=5)
    found = store.get_many(["a", "b", "c"])
    assert sorted(found) == ["a", "b"]
    assert found["a"].expires_at == 1005.0
    assert (store.stats()["hits"], store.stats()["misses"]) == (2, 1)


def test_stats_report_bounds() -> None:
    stats = MemoryStore(max_entries=7, max_bytes=1 << 20, default_ttl=3).stats()
    assert (stats["max_entries"], stats["max_bytes"], stats["default_ttl"]) == (7, 1 << 20, 3.0)


@pytest.mark.parametrize(
    "kwargs", [{"max_entries": 0}, {"max_entries": True}, {"max_bytes": 0}, {"default_ttl": -1}]
)
def test_bad_arguments_raise(kwargs: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError)):
        MemoryStore(**kwargs)  # type: ignore[arg-type]


def test_misuse_raises() -> None:
    store = MemoryStore()
    with pytest.raises(ValueError):
        store.set("k", CachedResponse(content="v"), ttl=0)
    with pytest.raises(TypeError):
        store.set(1, CachedResponse(content="v"))  # type: ignore[arg-type]
    store.close()
    store.close()
    with pytest.raises(RuntimeError):
        store.get("k")


def test_threads_keep_the_bound_and_the_counts() -> None:
    store = MemoryStore(max_entries=8)
    errors: list[BaseException] = []
    gets = Counter[int]()
    over_bound: list[int] = []

    def hammer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(3000):
                key = str(rng.randrange(32))
                op = rng.random()
                if op < 0.5:
                    store.get(key)
                    gets[seed] += 1
                elif op < 0.9:
                    store.set(key, CachedResponse(content=key), ttl=rng.choice([None, 60]))
                else:
                    store.delete(key)
                if len(store) > 8:
                    over_bound.append(len(store))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert over_bound == []
    stats = store.stats()
    assert stats["hits"] + stats["misses"] == sum(gets.values())
    assert stats["entries"] <= 8


MAX_ENTRIES = 3


class MemoryStoreMachine(RuleBasedStateMachine):
    """The store against an OrderedDict model that implements LRU and TTL by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.store = MemoryStore(max_entries=MAX_ENTRIES, clock=self.clock)
        # key -> (content, expires_at); order is least recently used first
        self.model: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self.counts: Counter[str] = Counter()
        self.serial = 0

    def sweep(self) -> None:
        for key in [k for k, (_, exp) in self.model.items() if self.clock.now >= exp]:
            del self.model[key]
            self.counts["expirations"] += 1

    @rule(key=st.sampled_from("abcd"), ttl=st.none() | st.integers(1, 100))
    def set(self, key: str, ttl: int | None) -> None:
        self.serial += 1
        content = f"v{self.serial}"
        self.store.set(key, CachedResponse(content=content), ttl=ttl)
        self.sweep()
        self.model[key] = (content, math.inf if ttl is None else self.clock.now + ttl)
        self.model.move_to_end(key)
        if len(self.model) > MAX_ENTRIES:
            self.model.popitem(last=False)
            self.counts["evictions"] += 1
        self.counts["sets"] += 1

    @rule(key=st.sampled_from("abcd"))
    def get(self, key: str) -> None:
        got = self.store.get(key)
        if key in self.model and self.clock.now < self.model[key][1]:
            assert got is not None and got.content == self.model[key][0]
            self.model.move_to_end(key)
            self.counts["hits"] += 1
        else:
            assert got is None
            self.counts["misses"] += 1
            self.sweep()

    @rule(key=st.sampled_from("abcd"))
    def delete(self, key: str) -> None:
        self.sweep()
        expected = self.model.pop(key, None) is not None
        assert self.store.delete(key) is expected
        self.counts["deletes"] += expected

    @rule(seconds=st.integers(0, 30))
    def advance(self, seconds: int) -> None:
        self.clock.now += seconds

    @rule()
    def clear(self) -> None:
        self.store.clear()
        self.model.clear()

    @invariant()
    def agrees_with_the_model(self) -> None:
        stats = self.store.stats()  # sweeps expired entries, as `sweep` does
        self.sweep()
        assert stats["entries"] == len(self.model) <= MAX_ENTRIES
        for name in ("hits", "misses", "sets", "deletes", "evictions", "expirations"):
            assert stats[name] == self.counts[name], name


TestMemoryStoreMachine = MemoryStoreMachine.TestCase
# The store is fast, so afford more and longer runs: LRU bugs need several sets in a row.
TestMemoryStoreMachine.settings = settings(max_examples=200, stateful_step_count=60)
