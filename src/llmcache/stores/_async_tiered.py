"""`TieredStore`'s methods that call its tiers: read-through with promotion, write-through.

Both faces come from one source: the coroutine methods are written by hand and the sync
methods are generated from them by ``scripts/unasync.py``, so the two walk the tiers alike
(same order, promotion with the TTL left, write-through slowest first, local keys under the
shared generation, the same counters; a tier that raises is a counted miss, and
`StoreError` from delete and clear when a tier failed).

Every tier's coroutine is awaited, except on the read path, the one that runs on every
hit: there only a tier whose `awaitable_io` is True (Redis, Postgres) is awaited, and the
others' sync method is called inline (a memory read is well under a microsecond and a disk
read tens of microseconds, less than a coroutine or a hop to a thread would add).

Only ``Exception`` is caught: a cancelled task (``asyncio.CancelledError``, a
``BaseException``) leaves at once instead of being counted as a failing tier.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from llmcache.entry import CachedResponse
from llmcache.stores._tiered_base import TieredCore
from llmcache.stores.base import check_ttl

__all__ = ["AsyncTieredMethods"]


class AsyncTieredMethods(TieredCore):
    """``aget``, ``aget_many``, ``aset``, ``aset_many``, ``adelete``, ``aclear`` and
    ``aclose``."""

    async def _akey_prefix(self) -> str:
        """The local tiers' key prefix: the shared tiers' generation, asked again once it
        is older than `generation_check` seconds."""
        until, prefix = self._prefix_state
        if time.monotonic() < until:  # the hit path: a clock read and a compare
            return prefix
        now = time.monotonic()
        gens, stale, until = self._seen(now)
        for pos in stale:
            index, tier = self._shared[pos]
            try:
                gens[pos] = await tier.ageneration()
            except Exception as exc:
                self._failed(index, "generation", exc)
        return self._adopt(gens, min(until, now + self._generation_check) if stale else until)

    async def aget(self, key: str) -> CachedResponse | None:
        """The first live entry found, fastest tier first; promoted to the faster tiers."""
        if type(key) is not str:
            raise TypeError(f"key: expected str, got {type(key).__name__}")
        local = await self._akey_prefix() + key if self._shared else key
        # unasync: sync for index, (tier, shared) in enumerate(self._kinds):
        for index, (tier, shared, awaits) in enumerate(self._path):  # unasync: async-only
            name = key if shared else local
            try:
                # unasync: sync entry = tier.get(name)
                entry = await tier.aget(name) if awaits else tier.get(name)  # unasync: async-only
            except Exception as exc:
                self._failed(index, "get", exc)
                continue
            if entry is not None:
                with self._lock:
                    self._tier_hits[index] += 1
                if index and self._promote:
                    await self._apromote_entry(index, key, local, entry)
                return entry
        with self._lock:
            self._misses += 1
        return None

    async def _apromote_entry(
        self, index: int, key: str, local: str, entry: CachedResponse
    ) -> None:
        promote, ttl = self._promotion_ttl(entry)
        if not promote:
            return
        for upper in range(index):
            tier, shared = self._kinds[upper]
            try:
                await tier.aset(key if shared else local, entry, ttl)
            except Exception as exc:
                self._failed(upper, "promote", exc)
        self._promoted()

    async def aget_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        """The live entries among `keys`: each tier is asked once, for the keys still
        missing."""
        remaining = list(dict.fromkeys(keys))
        local = self._local_keys(remaining, await self._akey_prefix() if self._shared else "")
        found: dict[str, CachedResponse] = {}
        for index, (tier, shared) in enumerate(self._kinds):
            if not remaining:
                break
            names = self._tier_keys(shared, remaining, local)
            try:
                got = self._by_key(await tier.aget_many(names), shared, local)
            except Exception as exc:
                self._failed(index, "get_many", exc)
                continue
            if not got:
                continue
            with self._lock:
                self._tier_hits[index] += len(got)
            if index and self._promote:
                for key, entry in got.items():
                    await self._apromote_entry(index, key, local.get(key, key), entry)
            found.update(got)
            remaining = [key for key in remaining if key not in got]
        with self._lock:
            self._misses += len(remaining)
        return found

    async def aset(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        """Write `entry` to every tier (slowest first, so a faster tier never holds an entry
        that the shared tiers below it lack)."""
        if type(key) is not str:
            raise TypeError(f"key: expected str, got {type(key).__name__}")
        ttl = check_ttl(ttl)
        local = await self._akey_prefix() + key if self._shared else key
        for index in reversed(range(len(self._tiers))):
            tier, shared = self._kinds[index]
            try:
                await tier.aset(key if shared else local, entry, ttl)
            except Exception as exc:
                self._failed(index, "set", exc)

    async def aset_many(
        self, entries: Mapping[str, CachedResponse], ttl: float | None = None
    ) -> None:
        """Write several entries to every tier, one batch per tier, slowest first."""
        ttl = check_ttl(ttl)
        prefix = await self._akey_prefix() if self._shared else ""
        local = {prefix + key: entry for key, entry in entries.items()} if prefix else entries
        for index in reversed(range(len(self._tiers))):
            tier, shared = self._kinds[index]
            try:
                await tier.aset_many(entries if shared else local, ttl)
            except Exception as exc:
                self._failed(index, "set_many", exc)

    async def adelete(self, key: str) -> bool:
        """Remove `key` from every tier: True if a tier had it, False if none did.

        Raises `StoreError` naming the tiers that failed (after trying every tier). Other
        processes' local tiers are not reached: they may serve their copy until it expires
        or is evicted; clear the store to take everything back everywhere."""
        if type(key) is not str:
            raise TypeError(f"key: expected str, got {type(key).__name__}")
        local = await self._akey_prefix() + key if self._shared else key
        removed = False
        failed: list[tuple[int, Exception]] = []
        # Slowest first: a concurrent read that misses the fast tier then finds nothing
        # below to promote back up.
        for index in reversed(range(len(self._tiers))):
            tier, shared = self._kinds[index]
            try:
                removed = await tier.adelete(key if shared else local) or removed
            except Exception as exc:
                self._failed(index, "delete", exc)
                failed.append((index, exc))
        self._raise_if_failed("delete", failed)
        return removed

    async def aclear(self) -> None:
        """Remove every entry from every tier (slowest first).

        Once a shared tier has raised its generation, no process serves an entry from before
        it out of its local tiers (see `llmcache.stores.tiered`), even where a local clear
        failed or a read copied an old entry up meanwhile. Raises `StoreError` naming the
        tiers that failed (after trying every tier): the clear did not fully happen."""
        failed: list[tuple[int, Exception]] = []
        for index in reversed(range(len(self._tiers))):
            try:
                await self._tiers[index].aclear()
            except Exception as exc:
                self._failed(index, "clear", exc)
                failed.append((index, exc))
        self._ask_again()
        self._raise_if_failed("clear", failed)

    async def aclose(self) -> None:
        """Close every tier, connections included; a tier failing to close does not keep
        the others open."""
        for index, tier in enumerate(self._tiers):
            try:
                await tier.aclose()
            except Exception as exc:
                self._failed(index, "close", exc)
