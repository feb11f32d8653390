"""DiskStore against a dict model: get/set/delete/clear/len and TTL on a fake clock."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections import Counter

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from llmcache.entry import CachedResponse
from llmcache.stores import DiskStore

# Hundreds of small databases are opened and removed: on tmpfs when there is one, so the
# run is bound by the code under test rather than by the disk.
_FAST_TMP = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
KEYS = st.sampled_from(["a", "b", "c", "v1:" + "f" * 32])


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class DiskStoreMachine(RuleBasedStateMachine):
    """Every entry the model holds is on disk until read after expiry, deleted or cleared.

    TTLs are long in real seconds (diskcache also expires rows on the real clock) and the
    fake clock jumps past them, so expiry here is decided by `DiskStore` alone.
    """

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.directory = tempfile.mkdtemp(prefix="llmcache-disk-machine-", dir=_FAST_TMP)
        self.store: DiskStore | None = None
        self.model: dict[str, tuple[str, float]] = {}  # key -> (content, expires_at)
        self.counts: Counter[str] = Counter()
        self.serial = 0

    @initialize(lru_by_access=st.booleans())
    def open_store(self, lru_by_access: bool) -> None:
        # Both read paths: the direct SELECT, and diskcache's `get` (used for LRU updates).
        self.store = DiskStore(self.directory, clock=self.clock, lru_by_access=lru_by_access)

    def _store(self) -> DiskStore:
        assert self.store is not None
        return self.store

    @rule(key=KEYS, ttl=st.sampled_from([None, 300, 450]))
    def set(self, key: str, ttl: int | None) -> None:
        self.serial += 1
        content = f"v{self.serial}"
        self._store().set(key, CachedResponse(content=content, model="m"), ttl=ttl)
        self.model[key] = (content, math.inf if ttl is None else self.clock.now + ttl)
        self.counts["sets"] += 1

    @rule(key=KEYS)
    def get(self, key: str) -> None:
        got = self._store().get(key)
        if key not in self.model:
            assert got is None
            self.counts["misses"] += 1
        elif self.clock.now >= self.model[key][1]:
            assert got is None
            del self.model[key]  # an expired entry is deleted when read
            self.counts["misses"] += 1
            self.counts["expirations"] += 1
        else:
            assert got is not None
            assert (got.content, got.model, got.expires_at) == (
                self.model[key][0],
                "m",
                None if self.model[key][1] == math.inf else self.model[key][1],
            )
            self.counts["hits"] += 1

    @rule(keys=st.lists(KEYS, max_size=4))
    def get_many(self, keys: list[str]) -> None:
        for key in keys:  # the same bookkeeping as one get per distinct key
            if key in self.model and self.clock.now >= self.model[key][1]:
                del self.model[key]
                self.counts["expirations"] += 1
        found = self._store().get_many(keys)
        expected = {k: self.model[k][0] for k in keys if k in self.model}
        assert {k: v.content for k, v in found.items()} == expected
        distinct = set(keys)
        self.counts["hits"] += len(expected)
        self.counts["misses"] += len(distinct) - len(expected)

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        expected = self.model.pop(key, None) is not None
        assert self._store().delete(key) is expected
        self.counts["deletes"] += expected

    @rule(seconds=st.sampled_from([0, 150, 300]))
    def advance(self, seconds: int) -> None:
        self.clock.now += seconds

    @rule()
    def clear(self) -> None:
        self._store().clear()
        self.model.clear()

    @precondition(lambda self: self.store is not None)
    @invariant()
    def same_keys(self) -> None:
        store = self._store()
        assert len(store) == len(self.model)
        assert sorted(store.keys()) == sorted(self.model)

    def teardown(self) -> None:
        if self.store is not None:
            stats = self.store.stats()
            for name in ("hits", "misses", "sets", "deletes", "expirations"):
                assert stats[name] == self.counts[name], name
            assert stats["errors"] == 0
            self.store.close()
        shutil.rmtree(self.directory, ignore_errors=True)


TestDiskStoreMachine = DiskStoreMachine.TestCase
# Each example opens two sqlite databases: fewer, longer runs keep this at a few seconds.
TestDiskStoreMachine.settings = settings(max_examples=100, stateful_step_count=30)
