"""The interface every cache tier implements.

A store maps string keys to `CachedResponse` entries with an optional per-entry TTL. Stores
never raise on a failing backend during `get`/`set`: a broken tier degrades to a miss, counts
the error in `stats()` and logs it once (see `ErrorLog`). `delete` and `clear` are explicit
operations whose caller must know the outcome: they raise `llmcache.errors.StoreError` when
they did not happen. Misuse (a negative TTL, a closed store) still raises.

Async code uses the same contract through `AsyncStore`, the coroutine face (``aget``,
``aset``, ``adelete``, ``aclear``, ``aget_many``, ``aset_many``, ``aclose``, ``async with``).
Every `Store` is an `AsyncStore`: a memory or disk store runs its sync methods inline (a hop
to a worker thread would cost more than the read), a network store (`RedisStore`,
`PostgresStore`) awaits its round trips. `AsyncStore.awaitable_io` tells them apart, once,
so a caller on a hot path can call the sync method and skip a coroutine where awaiting
gains nothing.

>>> from llmcache import MemoryStore, CachedResponse
>>> with MemoryStore(max_entries=10) as store:
...     store.set("k", CachedResponse(content="v"), ttl=60)
...     store.get("k").content
'v'
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from llmcache._closing import AsyncClosing, Closing
from llmcache._numbers import is_number
from llmcache.entry import CachedResponse

__all__ = ["AsyncStore", "ErrorLog", "Store", "StoreStats", "check_ttl", "inline_store"]


# The coroutine methods a `Store` subclass may write itself (see `Store.__init_subclass__`).
_TWINS = ("aget", "aset", "adelete", "aclear", "aget_many", "aset_many")


@dataclass(slots=True)
class StoreStats:
    """Counters kept by a store. ``errors`` counts backend failures turned into misses."""

    hits: int = 0
    misses: int = 0
    sets: int = 0
    deletes: int = 0
    evictions: int = 0
    expirations: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def check_ttl(ttl: float | None) -> float | None:
    """Validate a TTL in seconds: ``None`` (never expires) or a positive number."""
    if ttl is None:
        return None
    if not is_number(ttl):
        raise TypeError(f"ttl: expected seconds as a number or None, got {type(ttl).__name__}")
    if not ttl > 0:
        raise ValueError(f"ttl: must be > 0 seconds (or None for no expiry), got {ttl!r}")
    return float(ttl)


class ErrorLog:
    """Logs the first failure of each kind once, then only counts, so a dead tier
    does not flood the log on every request."""

    def __init__(self, logger: logging.Logger, name: str) -> None:
        self._logger = logger
        self._name = name
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def report(self, operation: str, exc: BaseException) -> None:
        kind = f"{operation}:{type(exc).__name__}"
        with self._lock:
            if kind in self._seen:
                return
            self._seen.add(kind)
        self._logger.warning(
            "%s: %s failed (%s: %s); serving a miss, further errors of this kind are only counted",
            self._name,
            operation,
            type(exc).__name__,
            exc,
        )


class AsyncStore(AsyncClosing, ABC):
    """The coroutine face of a cache tier: what async code awaits.

    The contract is `Store`'s, method for method: ``aget`` and ``aset`` (and the batches)
    never raise on a failing backend (a miss, a dropped write; counted and logged once),
    ``adelete`` and ``aclear`` raise `llmcache.errors.StoreError` when they did not happen,
    misuse raises. Subclasses implement the four abstract coroutines; the batches, ``aclose``
    and ``async with`` come for free. Every `Store` is one (see `Store`); subclass
    `AsyncStore` alone for a tier that only async code uses.

    `awaitable_io` is decided once per class (or per instance, for `TieredStore`): True
    when the coroutines wait on I/O without blocking the event loop, False when they run
    the sync methods inline. A caller holding a `Store` decides once which face to call:

    >>> import asyncio
    >>> from llmcache import CachedResponse, MemoryStore
    >>> store = MemoryStore()
    >>> store.awaitable_io  # a memory read: no I/O to wait for
    False
    >>> async def read(key):
    ...     return await store.aget(key) if store.awaitable_io else store.get(key)
    >>> store.set("k", CachedResponse(content="v"))
    >>> asyncio.run(read("k")).content
    'v'
    """

    name: str = "store"
    #: Whether awaiting this store's coroutines frees the event loop while it waits on I/O
    #: (a network tier). False: they run the sync methods inline, so calling those directly
    #: does the same work without a coroutine.
    awaitable_io: bool = True

    @abstractmethod
    async def aget(self, key: str) -> CachedResponse | None:
        """The live entry under `key`, or ``None`` (missing, expired, or the tier failed)."""

    @abstractmethod
    async def aset(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        """Store `entry` under `key` for `ttl` seconds (``None``: until evicted)."""

    @abstractmethod
    async def adelete(self, key: str) -> bool:
        """Remove `key`: True if an entry was removed, False if there was none; raises
        `llmcache.errors.StoreError` when it did not happen or cannot tell (see
        `Store.delete`)."""

    @abstractmethod
    async def aclear(self) -> None:
        """Remove every entry; raises `llmcache.errors.StoreError` when the clear did not
        happen or happened only in part (see `Store.clear`)."""

    async def aget_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        """The live entries among `keys` (missing ones are left out)."""
        found: dict[str, CachedResponse] = {}
        for key in keys:
            entry = await self.aget(key)
            if entry is not None:
                found[key] = entry
        return found

    async def aset_many(
        self, entries: Mapping[str, CachedResponse], ttl: float | None = None
    ) -> None:
        """Store several entries with one TTL."""
        for key, entry in entries.items():
            await self.aset(key, entry, ttl)

    async def aclose(self) -> None:
        """Release files and connections (those of the running event loop first). Idempotent."""
        return None


class Store(Closing, AsyncStore):
    """A cache tier. Subclasses implement the five abstract methods; batch methods, the
    context managers and the coroutine face come for free.

    The inherited coroutine methods (``aget`` ...) call the sync ones inline and
    `awaitable_io` is False. A subclass that writes its own coroutine methods (a network
    tier) is awaited: `awaitable_io` becomes True for it unless it sets the attribute.
    """

    awaitable_io = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Decided here, once per class, so that no caller probes a store per call: a class
        # that brings coroutines of its own (itself or through a mixin) is awaited, any
        # other inherits the answer of the store class it extends.
        super().__init_subclass__(**kwargs)
        if "awaitable_io" in vars(cls):
            return
        parent = next(base for base in cls.__mro__[1:] if issubclass(base, Store))
        own = any(getattr(cls, name) is not getattr(parent, name) for name in _TWINS)
        cls.awaitable_io = own or parent.awaitable_io

    @abstractmethod
    def get(self, key: str) -> CachedResponse | None:
        """The live entry under `key`, or ``None`` (missing, expired, or the tier failed)."""

    @abstractmethod
    def set(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        """Store `entry` under `key` for `ttl` seconds (``None``: until evicted)."""

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Remove `key`: True if an entry was removed, False if there was none.

        Unlike `get` and `set`, a delete that did not happen is never silent: raises
        `llmcache.errors.StoreError` when the tier failed, so that it could not delete or
        cannot tell whether it did (down, timed out, locked by another process).
        """

    @abstractmethod
    def clear(self) -> None:
        """Remove every entry.

        Returns only once the entries are gone; raises `llmcache.errors.StoreError` when the
        clear did not happen or happened only in part (the tier failed midway).
        """

    @abstractmethod
    def __len__(self) -> int:
        """Number of entries held (expired ones not yet swept may be counted)."""

    def stats(self) -> dict[str, Any]:
        """Counters and sizes; subclasses add their own fields."""
        return {"entries": len(self)}

    def count_calls_from(self, source: Callable[[], Mapping[str, Any]]) -> None:
        """Let a door (a decorated function, a client) report its call counts to this store.

        A store that persists statistics (`DiskStore`) keeps them, so ``llmcache stats``
        in another process shows each call once; a `TieredStore` passes `source` on to its
        tiers. Others ignore it. Doors call it once, when they are built, never on a hit.
        """
        return None

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        """The live entries among `keys` (missing ones are left out)."""
        found: dict[str, CachedResponse] = {}
        for key in keys:
            entry = self.get(key)
            if entry is not None:
                found[key] = entry
        return found

    def set_many(self, entries: Mapping[str, CachedResponse], ttl: float | None = None) -> None:
        """Store several entries with one TTL."""
        for key, entry in entries.items():
            self.set(key, entry, ttl)

    def close(self) -> None:
        """Release files and connections. Idempotent."""
        return None

    # -- the coroutine face, inline: memory and disk answer faster than a thread hop -------

    async def aget(self, key: str) -> CachedResponse | None:
        """`get`, run inline."""
        return self.get(key)

    async def aset(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        """`set`, run inline."""
        self.set(key, entry, ttl)

    async def adelete(self, key: str) -> bool:
        """`delete`, run inline (raises `StoreError` as it does)."""
        return self.delete(key)

    async def aclear(self) -> None:
        """`clear`, run inline (raises `StoreError` as it does)."""
        self.clear()

    async def aget_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        """`get_many`, run inline."""
        return self.get_many(keys)

    async def aset_many(
        self, entries: Mapping[str, CachedResponse], ttl: float | None = None
    ) -> None:
        """`set_many`, run inline."""
        self.set_many(entries, ttl)

    async def aclose(self) -> None:
        """`close`, run inline."""
        self.close()


def inline_store(store: AsyncStore) -> Store | None:
    """The store whose sync methods async code should call instead of awaiting it, or
    ``None`` when awaiting it frees the event loop (or it has no sync face).

    Ask once, where a caller takes its store, never per call:

    >>> import asyncio
    >>> from llmcache import CachedResponse, MemoryStore
    >>> store = MemoryStore()
    >>> store.set("k", CachedResponse(content="v"))
    >>> inline = inline_store(store)
    >>> async def read(key):
    ...     return inline.get(key) if inline is not None else await store.aget(key)
    >>> asyncio.run(read("k")).content
    'v'
    """
    return store if isinstance(store, Store) and not store.awaitable_io else None
