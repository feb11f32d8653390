"""Tiers in front of tiers: read-through with promotion, write-through to all.

A read asks the tiers fastest first; a hit in a slower tier is copied into every faster tier
with the TTL it has left, so the next read of that key is served by the fastest one. A write
goes to every tier. A tier that raises during a read or a write is a miss for that tier
(counted and logged once): one broken tier never fails the call.

Every method has a coroutine twin (``aget``, ``aset``, ``adelete``, ``aget_many``,
``aset_many``, ``aclear``, ``aclose``; ``async with``) that awaits the tiers that have their
own (`RedisStore`) and calls the others inline (memory, disk: a hop to a thread would cost
more than the read), so async code over memory -> Redis does not block its event loop on a
Redis round trip (see `_tiered_async`). `CachedClient` and ``@cached_generate`` use the twins
from async code.

**Shared tiers and their generation.** A tier several processes share (a `SharedTier`, such
as `RedisStore`) has a generation that its ``clear`` raises. The other tiers (memory, disk:
this process's or this host's copies) hold their entries under the shared generation they
were read or written at (``g{generation}:{key}``; no prefix at generation 0, never cleared),
so an entry copied before a clear, here or in any other process, is never served after this
store has seen the new generation. It sees it:

- at once after its own ``clear``, and on any read that reaches the shared tier;
- otherwise at most `generation_check` seconds (default 1) after the clear: a local hit
  relies on a generation the shared tier confirmed less than `generation_check` seconds ago,
  else it asks the shared tier first (one round trip, once per window). ``0`` asks on every
  read (exact, at a round trip per hit).
- While the shared tier is unreachable the local tiers keep serving under the last
  generation seen (a cache outage must not take the cached answers with it); a process that
  never reached it holds its local entries apart (``g?:``) until it does.

**Faults and outcomes** (what the tests in ``tests/faults/`` check):

==========================================  =============================================
fault                                       outcome
==========================================  =============================================
a tier raises in ``get``/``set``/``*_many``  a miss for that tier / the write is dropped
                                            there; the other tiers serve; counted, logged
                                            once
a tier fails in ``delete`` or ``clear``     every other tier is still done, then
                                            `StoreError` naming the tiers that failed
                                            (even when another tier removed the key: not
                                            a plain True)
the shared tier is cleared by another       local copies from before it are not served
process                                     after `generation_check` seconds (above)
the shared tier restarts from a snapshot    its generation is moved forward again by the
taken before a clear                        first process that saw the clear; nothing from
                                            before the clear is served by such a process
==========================================  =============================================

>>> import tempfile
>>> from llmcache.entry import CachedResponse
>>> from llmcache.stores import DiskStore, MemoryStore
>>> memory, disk = MemoryStore(max_entries=100), DiskStore(tempfile.mkdtemp())
>>> disk.set("k", CachedResponse(content="v"), ttl=60)
>>> with TieredStore(memory, disk) as store:
...     store.get("k").content, "k" in memory.get_many(["k"]), store.stats()["tier_hits"]
('v', True, {'memory': 0, 'disk': 1})
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from llmcache.entry import CachedResponse
from llmcache.stores._tiered_async import AsyncTieredMethods, SharedTier
from llmcache.stores.base import ErrorLog, Store, check_ttl

__all__ = ["SharedTier", "TieredStore"]

logger = logging.getLogger(__name__)


class TieredStore(AsyncTieredMethods, Store):
    """Several stores used as one, fastest first (e.g. memory, then disk, then Redis).

    ``promote=False`` turns off copying lower-tier hits upwards. `clock` (wall-clock seconds)
    computes the TTL left on a promoted entry; give it the same clock as the tiers.
    `generation_check`: seconds a local hit may rely on the shared tiers' generation seen
    last (see the module docstring). `len()` is the size of the last (largest) tier.

    ``get`` and ``set`` never raise for a failing tier. ``delete`` returns True (removed
    from a tier that had it) or False (no tier had it), and ``clear`` returns None, only when
    every tier did it; otherwise they raise `llmcache.errors.StoreError` naming the tiers that
    failed, after doing every other tier.

    >>> from llmcache.entry import CachedResponse
    >>> from llmcache.stores import MemoryStore
    >>> store = TieredStore(MemoryStore(max_entries=10), MemoryStore(max_entries=1000))
    >>> store.set("k", CachedResponse(content="v"))
    >>> store.get("k").content, store.stats()["tier_hits"]
    ('v', {'memory[0]': 1, 'memory[1]': 0})
    """

    name = "tiered"

    def __init__(self, *tiers: Store, promote: bool = True,
                 clock: Callable[[], float] = time.time,
                 generation_check: float = 1.0) -> None:
        if not tiers:
            raise ValueError("TieredStore needs at least one tier")
        for tier in tiers:
            if not isinstance(tier, Store):
                raise TypeError(f"tiers: expected Store instances, got {type(tier).__name__}")
        if (isinstance(generation_check, bool) or not isinstance(generation_check, (int, float))
                or not generation_check >= 0):
            raise ValueError(f"generation_check: expected seconds >= 0, got "
                             f"{generation_check!r}")
        self._tiers = tiers
        self._generation_check = float(generation_check)
        self._init_twins()
        names = [tier.name for tier in tiers]
        # Tier names key the stats; two tiers of one kind get their position appended.
        self._names = [name if names.count(name) == 1 else f"{name}[{i}]"
                       for i, name in enumerate(names)]
        self._promote = promote
        self._clock = clock
        self._lock = threading.Lock()
        self._tier_hits = [0] * len(tiers)
        self._misses = 0
        self._errors = 0
        self._promotions = 0
        self._errlog = ErrorLog(logger, "TieredStore")

    @property
    def tiers(self) -> tuple[Store, ...]:
        """The tiers, fastest first."""
        return self._tiers

    def local_key(self, key: str) -> str:
        """The key under which the local (not shared) tiers hold `key` now: `key` itself
        until a shared tier is cleared, then prefixed with its generation."""
        return self._key_prefix() + key

    def get(self, key: str) -> CachedResponse | None:
        """The first live entry found, fastest tier first; promoted to the faster tiers."""
        if type(key) is not str:
            raise TypeError(f"key: expected str, got {type(key).__name__}")
        local = self._key_prefix() + key if self._shared else key
        for index, (tier, shared) in enumerate(self._kinds):
            try:
                entry = tier.get(key if shared else local)
            except Exception as exc:
                self._failed(index, "get", exc)
                continue
            if entry is not None:
                with self._lock:
                    self._tier_hits[index] += 1
                if index and self._promote:
                    self._promote_entry(index, key, local, entry)
                return entry
        with self._lock:
            self._misses += 1
        return None

    def _promote_entry(self, index: int, key: str, local: str, entry: CachedResponse) -> None:
        promote, ttl = self._promotion_ttl(entry)
        if not promote:
            return
        for upper in range(index):
            tier, shared = self._kinds[upper]
            try:
                tier.set(key if shared else local, entry, ttl)
            except Exception as exc:
                self._failed(upper, "promote", exc)
        self._promoted()

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        """The live entries among `keys`: each tier is asked once, for the keys still missing."""
        remaining = list(dict.fromkeys(keys))
        local = self._local_keys(remaining, self._key_prefix())
        found: dict[str, CachedResponse] = {}
        for index, (tier, shared) in enumerate(self._kinds):
            if not remaining:
                break
            try:
                got = self._by_key(tier.get_many(self._tier_keys(shared, remaining, local)),
                                   shared, local)
            except Exception as exc:
                self._failed(index, "get_many", exc)
                continue
            if not got:
                continue
            with self._lock:
                self._tier_hits[index] += len(got)
            if index and self._promote:
                for key, entry in got.items():
                    self._promote_entry(index, key, local.get(key, key), entry)
            found.update(got)
            remaining = [key for key in remaining if key not in got]
        with self._lock:
            self._misses += len(remaining)
        return found

    def set(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        """Write `entry` to every tier (slowest first, so a faster tier never holds an entry
        that the shared tiers below it lack)."""
        if type(key) is not str:
            raise TypeError(f"key: expected str, got {type(key).__name__}")
        ttl = check_ttl(ttl)
        local = self._key_prefix() + key if self._shared else key
        for index in reversed(range(len(self._tiers))):
            tier, shared = self._kinds[index]
            try:
                tier.set(key if shared else local, entry, ttl)
            except Exception as exc:
                self._failed(index, "set", exc)

    def set_many(self, entries: Mapping[str, CachedResponse], ttl: float | None = None) -> None:
        """Write several entries to every tier, one batch per tier."""
        ttl = check_ttl(ttl)
        prefix = self._key_prefix()
        local = {prefix + key: entry for key, entry in entries.items()} if prefix else entries
        for index in reversed(range(len(self._tiers))):
            tier, shared = self._kinds[index]
            try:
                tier.set_many(entries if shared else local, ttl)
            except Exception as exc:
                self._failed(index, "set_many", exc)

    def delete(self, key: str) -> bool:
        """Remove `key` from every tier: True if a tier had it, False if none did.

        Raises `StoreError` naming the tiers that failed (after trying every tier). Other
        processes' local tiers are not reached: they may serve their copy until it expires
        or is evicted; use `clear` to take everything back everywhere."""
        if type(key) is not str:
            raise TypeError(f"key: expected str, got {type(key).__name__}")
        local = self._key_prefix() + key if self._shared else key
        removed = False
        failed: list[tuple[int, Exception]] = []
        # Slowest first: a concurrent read that misses the fast tier then finds nothing
        # below to promote back up.
        for index in reversed(range(len(self._tiers))):
            tier, shared = self._kinds[index]
            try:
                removed = tier.delete(key if shared else local) or removed
            except Exception as exc:
                self._failed(index, "delete", exc)
                failed.append((index, exc))
        self._raise_if_failed("delete", failed)
        return removed

    def clear(self) -> None:
        """Remove every entry from every tier (slowest first).

        Once a shared tier has raised its generation, no process serves an entry from before
        it out of its local tiers (see the module docstring), even where a local clear
        failed or a read copied an old entry up meanwhile. Raises `StoreError` naming the
        tiers that failed (after trying every tier): the clear did not fully happen."""
        failed: list[tuple[int, Exception]] = []
        for index in reversed(range(len(self._tiers))):
            try:
                self._tiers[index].clear()
            except Exception as exc:
                self._failed(index, "clear", exc)
                failed.append((index, exc))
        self._ask_again()
        self._raise_if_failed("clear", failed)

    def __len__(self) -> int:
        """Entries in the last (largest) tier."""
        last = len(self._tiers) - 1
        try:
            return len(self._tiers[last])
        except Exception as exc:
            self._failed(last, "len", exc)
            return 0

    def stats(self) -> dict[str, Any]:
        """Overall hits and misses, ``tier_hits`` per tier name, promotions, errors caught
        here, and under ``tiers`` a list (fastest first) of each tier's own ``stats()`` with
        its name added as ``tier``."""
        tiers: list[dict[str, Any]] = []
        for name, tier in zip(self._names, self._tiers, strict=True):
            try:
                tiers.append({"tier": name, **tier.stats()})
            except Exception as exc:  # shown in the result, not counted: it served no request
                self._errlog.report(f"{name}.stats", exc)
                tiers.append({"tier": name, "error": f"{type(exc).__name__}: {exc}"})
        entries = len(self)
        with self._lock:
            return {
                "entries": entries,
                "hits": sum(self._tier_hits),
                "misses": self._misses,
                "errors": self._errors,
                "promotions": self._promotions,
                "tier_hits": dict(zip(self._names, self._tier_hits, strict=True)),
                "tiers": tiers,
            }

    def close(self) -> None:
        """Close every tier (a tier failing to close does not keep the others open)."""
        for index, tier in enumerate(self._tiers):
            try:
                tier.close()
            except Exception as exc:
                self._failed(index, "close", exc)

    def __repr__(self) -> str:
        return f"TieredStore({', '.join(map(repr, self._tiers))})"
