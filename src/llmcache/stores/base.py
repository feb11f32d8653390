"""The interface every cache tier implements.

A store maps string keys to `CachedResponse` entries with an optional per-entry TTL. Stores
never raise on a failing backend during `get`/`set`: a broken tier degrades to a miss, counts
the error in `stats()` and logs it once (see `ErrorLog`). `delete` and `clear` are explicit
operations whose caller must know the outcome: they raise `llmcache.errors.StoreError` when
they did not happen. Misuse (a negative TTL, a closed store) still raises.

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
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, TypeVar

from llmcache.entry import CachedResponse

__all__ = ["ErrorLog", "Store", "StoreStats", "check_ttl"]

_S = TypeVar("_S", bound="Store")


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
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
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
        self._logger.warning("%s: %s failed (%s: %s); serving a miss, further errors of this "
                             "kind are only counted", self._name, operation,
                             type(exc).__name__, exc)


class Store(ABC):
    """A cache tier. Subclasses implement the five abstract methods; batch methods and the
    context manager come for free."""

    name: str = "store"

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

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
