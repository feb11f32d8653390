"""In-process tier: an LRU cache with a TTL per entry, on `cachetools.TLRUCache`.

Entries are kept as `CachedResponse` objects (no encoding), so a hit is one lock, one dict
lookup and one expiry compare. Treat returned entries as read-only: they are the stored
objects, not copies.

>>> from llmcache.entry import CachedResponse
>>> store = MemoryStore(max_entries=2)
>>> store.set("a", CachedResponse(content="A"))
>>> store.set("b", CachedResponse(content="B"))
>>> store.get("a").content          # "a" is now the most recently used
'A'
>>> store.set("c", CachedResponse(content="C"))   # evicts "b", the least recently used
>>> store.get("b") is None, len(store)
(True, 2)
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from operator import itemgetter
from typing import Any, cast

import orjson
from cachetools import TLRUCache

from llmcache.entry import CachedResponse
from llmcache.stores.base import Store, StoreStats, check_ttl

__all__ = ["MemoryStore"]

# What the cache holds per key: the entry and its approximate size in bytes, computed once
# at `set` so neither `get` nor eviction ever re-measures an entry.
_Slot = tuple[CachedResponse, int]

_size_of_slot: Callable[[_Slot], float] = itemgetter(1)


def _expires(_key: str, slot: _Slot, _now: float) -> float:
    # The entry carries its own expiry (set from the store's clock in `set`), so the cache
    # and anyone reading `entry.expires_at` agree on when it dies.
    expires_at = slot[0].expires_at
    return math.inf if expires_at is None else expires_at


def approx_size(entry: CachedResponse) -> int:
    """Approximate bytes of `entry`: the size of its JSON encoding (what a disk tier would
    hold). Content that is not JSON data falls back to ``sys.getsizeof``."""
    try:
        return len(orjson.dumps(entry.to_dict()))
    except TypeError:
        return sys.getsizeof(entry.content) + 200


class _LRUCache(TLRUCache[str, _Slot, float]):
    """`TLRUCache` that counts expirations and evictions into a `StoreStats`."""

    def __init__(self, maxsize: float, timer: Callable[[], float], stats: StoreStats) -> None:
        super().__init__(maxsize, _expires, timer, _size_of_slot)
        self._stats = stats

    def expire(self, time: float | None = None) -> list[tuple[str, _Slot]]:
        expired = super().expire(time)
        if expired:
            self._stats.expirations += len(expired)
        return expired

    def popitem(self) -> tuple[str, _Slot]:
        # cachetools calls popitem only to make room, so every call is an eviction.
        item = super().popitem()
        self._stats.evictions += 1
        return item


class _Closed:
    """Stands in for the cache after `close()`, so use-after-close raises without the hot
    path paying for an ``if closed`` check."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("MemoryStore is closed")

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("MemoryStore is closed")


class MemoryStore(Store):
    """A thread-safe in-memory tier: true LRU by access, a TTL per entry, bounded by entry
    count and optionally by approximate bytes.

    `clock` (wall-clock seconds, `time.time` by default) decides expiry and can be a fake
    clock in tests. `default_ttl` applies when `set` gets no TTL; ``None`` never expires.

    >>> from llmcache.entry import CachedResponse
    >>> now = [1000.0]
    >>> store = MemoryStore(max_entries=10, clock=lambda: now[0])
    >>> store.set("k", CachedResponse(content="v"), ttl=5)
    >>> store.get("k").expires_at
    1005.0
    >>> now[0] += 5
    >>> store.get("k") is None
    True
    >>> store.stats()["expirations"]
    1
    """

    name = "memory"

    def __init__(
        self,
        *,
        max_entries: int = 1000,
        max_bytes: int | None = None,
        clock: Callable[[], float] = time.time,
        default_ttl: float | None = None,
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries: expected an int >= 1, got {max_entries!r}")
        if max_bytes is not None and (
            isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1
        ):
            raise ValueError(f"max_bytes: expected an int >= 1 or None, got {max_bytes!r}")
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._clock = clock
        self._default_ttl = check_ttl(default_ttl)
        self._stats = StoreStats()
        self._too_large = 0
        self._lock = threading.Lock()
        self._cache = self._new_cache()

    def _new_cache(self) -> _LRUCache:
        # cachetools bounds one quantity; bytes go to it (exact accounting via getsizeof) and
        # the entry count is enforced in `_put`, so both bounds hold together.
        maxsize = self._max_bytes if self._max_bytes is not None else sys.maxsize
        return _LRUCache(maxsize, self._clock, self._stats)

    @property
    def max_entries(self) -> int:
        """The entry-count bound."""
        return self._max_entries

    @property
    def max_bytes(self) -> int | None:
        """The approximate byte bound, or ``None``."""
        return self._max_bytes

    def get(self, key: str) -> CachedResponse | None:
        """The live entry under `key` (which becomes the most recently used), or ``None``."""
        with self._lock:
            try:
                slot = self._cache[key]
            except KeyError:
                self._stats.misses += 1
                # Misses are followed by a slow upstream call anyway, so this is the cheap
                # moment to sweep expired entries (and count them) instead of on the hit path.
                self._cache.expire()
                return None
            self._stats.hits += 1
        return slot[0]

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        """The live entries among `keys`, looked up under one lock acquisition."""
        found: dict[str, CachedResponse] = {}
        with self._lock:
            cache, stats = self._cache, self._stats
            for key in dict.fromkeys(keys):  # each distinct key is looked up (and counted) once
                try:
                    found[key] = cache[key][0]
                    stats.hits += 1
                except KeyError:
                    stats.misses += 1
            cache.expire()
        return found

    def set(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        """Store `entry` under `key` for `ttl` seconds (default: `default_ttl`).

        The stored entry's ``expires_at`` reflects this TTL (a copy is stored when the
        caller's entry says otherwise). An entry larger than `max_bytes` is not stored, and
        the older value under `key` is removed.
        """
        if type(key) is not str:
            raise TypeError(f"key: expected str, got {type(key).__name__}")
        ttl = check_ttl(ttl)
        slot = self._slot(entry, self._default_ttl if ttl is None else ttl)
        with self._lock:
            self._put(key, slot)

    def set_many(self, entries: Mapping[str, CachedResponse], ttl: float | None = None) -> None:
        """Store several entries with one TTL, under one lock acquisition."""
        ttl = check_ttl(ttl)
        ttl = self._default_ttl if ttl is None else ttl
        slots = {}
        for key, entry in entries.items():
            if type(key) is not str:
                raise TypeError(f"key: expected str, got {type(key).__name__}")
            slots[key] = self._slot(entry, ttl)
        with self._lock:
            for key, slot in slots.items():
                self._put(key, slot)

    def _slot(self, entry: CachedResponse, ttl: float | None) -> _Slot:
        # Outside the lock: copying and measuring the entry is the costly part of a set.
        now = self._clock()
        if entry.expires_at != (None if ttl is None else now + ttl):
            entry = entry.with_ttl(ttl, now)
        return entry, approx_size(entry)

    def _put(self, key: str, slot: _Slot) -> None:
        cache = self._cache
        try:
            cache[key] = slot
        except ValueError:  # "value too large": bigger than max_bytes on its own
            self._too_large += 1
            cache.pop(key, None)
            return
        self._stats.sets += 1
        while len(cache) > self._max_entries:
            cache.popitem()

    def delete(self, key: str) -> bool:
        """Remove `key`: True if a live entry was there, False if not. Nothing here can
        fail, so it never raises `llmcache.errors.StoreError` (a closed store raises
        ``RuntimeError``, as every method does)."""
        with self._lock:
            self._cache.expire()  # an expired entry counts as an expiration, not a delete
            try:
                del self._cache[key]
            except KeyError:
                return False
            self._stats.deletes += 1
            return True

    def clear(self) -> None:
        """Remove every entry (counters are kept). It always happens: never raises
        `llmcache.errors.StoreError`. In front of a shared tier, `TieredStore` also keys
        this tier by the shared generation, so a clear elsewhere reaches it too."""
        with self._lock:
            if not isinstance(self._cache, _Closed):
                self._cache = self._new_cache()

    def __len__(self) -> int:
        """Number of live entries."""
        with self._lock:
            self._cache.expire()
            return len(self._cache)

    def stats(self) -> dict[str, Any]:
        """Sizes, bounds and counters (hits, misses, sets, deletes, evictions, expirations)."""
        with self._lock:
            self._cache.expire()
            result: dict[str, Any] = {
                "entries": len(self._cache),
                "bytes": int(self._cache.currsize),
                "max_entries": self._max_entries,
                "max_bytes": self._max_bytes,
                "default_ttl": self._default_ttl,
                "too_large": self._too_large,
            }
            result.update(self._stats.as_dict())
        return result

    def close(self) -> None:
        """Drop every entry; later use raises ``RuntimeError``. Idempotent."""
        with self._lock:
            self._cache = cast(_LRUCache, _Closed())

    def __repr__(self) -> str:
        return f"MemoryStore(max_entries={self._max_entries}, max_bytes={self._max_bytes})"
