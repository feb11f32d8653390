"""Tiers in front of tiers: read-through with promotion, write-through to all.

A read asks the tiers fastest first; a hit in a slower tier is copied into every faster tier
with the TTL it has left, so the next read of that key is served by the fastest one. A write
goes to every tier. A tier that raises during a read or a write is a miss for that tier
(counted and logged once): one broken tier never fails the call.

Every method has a coroutine twin (``aget``, ``aset``, ``adelete``, ``aget_many``,
``aset_many``, ``aclear``, ``aclose``; ``async with``: the store is an `AsyncStore`) that
awaits the tiers whose I/O is awaitable (`RedisStore`, `PostgresStore`) and calls the others
inline on its read path (memory, disk: a hop to a thread would cost more than the read), so
async code over memory -> Redis does not block its event loop on a Redis round trip. The
coroutines are written by hand (`llmcache.stores._async_tiered`) and the sync methods
generated from them. ``awaitable_io`` is True when a tier's is: over memory and disk alone,
an async caller may as well call the sync methods.

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

from collections.abc import Callable, Mapping
from typing import Any

from llmcache.stores._async_tiered import AsyncTieredMethods
from llmcache.stores._sync_tiered import TieredMethods
from llmcache.stores._tiered_base import SharedTier
from llmcache.stores.base import Store

__all__ = ["SharedTier", "TieredStore"]


class TieredStore(TieredMethods, AsyncTieredMethods, Store):
    """Several stores used as one, fastest first (e.g. memory, then disk, then Redis).

    ``promote=False`` turns off copying lower-tier hits upwards. `clock` (wall-clock seconds)
    computes the TTL left on a promoted entry; give it the same clock as the tiers.
    `generation_check`: seconds a local hit may rely on the shared tiers' generation seen
    last (see the module docstring). `len()` is the size of the last (largest) tier.
    `awaitable_io` is True when a tier's is (see `AsyncStore`).

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

    From async code (over memory alone `awaitable_io` is False: the sync methods would do):

    >>> import asyncio
    >>> async def main():
    ...     async with TieredStore(MemoryStore(), MemoryStore()) as store:
    ...         await store.aset("k", CachedResponse(content="v"), ttl=60)
    ...         return (await store.aget("k")).content, store.awaitable_io
    >>> asyncio.run(main())
    ('v', False)
    """

    name = "tiered"

    @property
    def tiers(self) -> tuple[Store, ...]:
        """The tiers, fastest first."""
        return self._tiers

    def local_key(self, key: str) -> str:
        """The key under which the local (not shared) tiers hold `key` now: `key` itself
        until a shared tier is cleared, then prefixed with its generation."""
        return self._key_prefix() + key

    def count_calls_from(self, source: Callable[[], Mapping[str, Any]]) -> None:
        """Pass a door's call counts on to every tier (a `DiskStore` tier persists them)."""
        for tier in self._tiers:
            tier.count_calls_from(source)

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

    def __repr__(self) -> str:
        return f"TieredStore({', '.join(map(repr, self._tiers))})"
