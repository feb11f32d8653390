"""Persistent tier on `diskcache`: shared by the threads and processes of one machine.

Values are the codec's bytes, never pickles, and whatever is read back is untrusted: a
pickled value planted by another diskcache client is refused unread, and a value file path
that points outside the cache directory is neither read nor deleted. A failing disk (corrupt
file, full disk, read-only directory, lock timeout) turns into a miss that is counted in
`stats()` and logged once. Hit/miss counters survive the process: they are kept in memory and
added to a small side cache (``.llmcache-stats`` inside the directory) about once a second,
so a hit never writes.

>>> import tempfile
>>> from llmcache.entry import CachedResponse
>>> with DiskStore(tempfile.mkdtemp()) as store:
...     store.set("k", CachedResponse(content="v"), ttl=60)
...     store.get("k").content, store.get("nope"), len(store)
('v', None, 1)
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import diskcache
from diskcache.core import MODE_RAW

from llmcache.entry import CachedResponse, Codec, CodecError, JSONCodec
from llmcache.stores._diskcache import (
    BACKEND_ERRORS,
    PERSISTED,
    STATS_DIR,
    Counters,
    fork_generation,
    open_cache,
)
from llmcache.stores.base import ErrorLog, Store, check_ttl

__all__ = ["DiskStore"]

logger = logging.getLogger(__name__)

_SELECT = ("SELECT mode, filename, value FROM Cache WHERE key = ? AND raw = 1"
           " AND (expire_time IS NULL OR expire_time > ?)")




class _Closed:
    """Stands in for the diskcache after `close()`: use-after-close raises."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("DiskStore is closed")

    def __len__(self) -> int:
        raise RuntimeError("DiskStore is closed")


class DiskStore(Store):
    """A persistent tier in directory `path`, safe across threads and processes.

    `size_limit` bounds the bytes on disk (diskcache culls the least recently stored
    entries; with ``lru_by_access=True`` the least recently read, at the price of a write per
    hit). Each entry expires after its own TTL (`default_ttl` when `set` gets none), judged
    by `clock` so tests can use a fake one. `timeout` is how long a write waits for another
    process's lock before it gives up (counted as an error, never raised).

    >>> import tempfile
    >>> from llmcache.entry import CachedResponse
    >>> now = [1000.0]
    >>> store = DiskStore(tempfile.mkdtemp(), clock=lambda: now[0])
    >>> store.set("k", CachedResponse(content="v"), ttl=30)
    >>> now[0] += 30
    >>> store.get("k") is None, store.stats()["expirations"]
    (True, 1)
    >>> store.close()
    """

    name = "disk"

    def __init__(self, path: str | os.PathLike[str], *, size_limit: int = 2**30,
                 default_ttl: float | None = None, lru_by_access: bool = False,
                 codec: Codec | None = None, clock: Callable[[], float] = time.time,
                 timeout: float = 2.0) -> None:
        if isinstance(size_limit, bool) or not isinstance(size_limit, int) or size_limit < 1:
            raise ValueError(f"size_limit: expected bytes as an int >= 1, got {size_limit!r}")
        self._path = Path(path)
        self._default_ttl = check_ttl(default_ttl)
        self._codec: Codec = JSONCodec() if codec is None else codec
        self._clock = clock
        self._size_limit = size_limit
        self._lru = lru_by_access
        self._errors = ErrorLog(logger, f"DiskStore({self._path})")
        policy = "least-recently-used" if lru_by_access else "least-recently-stored"
        self._cache: Any = open_cache(str(self._path), timeout, size_limit=size_limit,
                                       eviction_policy=policy, statistics=0)
        self._disk = self._cache.disk
        self._counters = Counters(str(self._path / STATS_DIR), timeout, self._errors)
        self._stats = self._counters.stats
        # Flush this process's counts even if the store is never closed.
        self._finalizer = weakref.finalize(self, self._counters.close)
        self._decode = self._codec.decode
        # Single reads run diskcache's own SELECT on diskcache's own connection for this
        # thread, skipping the per-call setup of `Cache.get` (about a fifth of a disk hit).
        # Only when reads need no bookkeeping write, and probed once: a diskcache whose
        # internals differ falls back to the public `get`.
        self._tls = threading.local()
        self._direct = not lru_by_access and self._probe_direct()

    def _probe_direct(self) -> bool:
        try:
            self._connect().execute(_SELECT, ("", time.time())).fetchall()
        except Exception:  # any difference in diskcache's internals: use the public API
            return False
        return True

    def _connect(self) -> sqlite3.Connection:
        # diskcache's `_con` opens (or, after a fork, reopens) this thread's connection.
        con: sqlite3.Connection = self._cache._con
        self._tls.con, self._tls.generation = con, fork_generation()
        return con

    @property
    def path(self) -> Path:
        """The cache directory."""
        return self._path

    def _read(self, key: str) -> Any:
        """The raw value under `key` (bytes unless planted), ``None`` if absent or expired."""
        if not self._direct:
            return self._cache.get(key)
        tls = self._tls
        try:
            con = tls.con if tls.generation == fork_generation() else self._connect()
        except AttributeError:  # first read in this thread
            con = self._connect()
        row = con.execute(_SELECT, (key, time.time())).fetchone()
        if row is None:
            return None
        if row[0] == MODE_RAW:
            return row[2]
        try:
            return self._disk.fetch(row[0], row[1], row[2], False)
        except FileNotFoundError:  # deleted by another process between SELECT and read
            return None

    def get(self, key: str) -> CachedResponse | None:
        """The live entry under `key`, or ``None`` (missing, expired, unreadable)."""
        if type(key) is not str:
            raise TypeError(f"key: expected str, got {type(key).__name__}")
        data = None
        try:
            data = self._read(key)
            if data is None:
                self._counters.add("misses")
                return None
            entry = self._decode(data)
        except (CodecError, UnicodeDecodeError) as exc:
            self._fail("get", exc, miss=True)
            self._discard(key, data)  # a bad entry would fail the same way on every read
            return None
        except BACKEND_ERRORS as exc:
            self._fail("get", exc, miss=True)
            return None
        expires_at = entry.expires_at
        if expires_at is not None and self._clock() >= expires_at:
            self._counters.add("misses")
            self._counters.add("expirations")
            self._discard(key, data)
            return None
        counters = self._counters
        with counters.lock:
            counters.stats.hits += 1
        if time.monotonic() >= counters.next_flush:
            counters.flush()
        return entry

    def _fail(self, operation: str, exc: BaseException, *, miss: bool = False) -> None:
        self._errors.report(operation, exc)
        self._counters.add("errors")
        if miss:
            self._counters.add("misses")

    def _discard(self, key: str, data: Any) -> None:
        """Delete `key` if it still holds `data` (``None``: whatever it holds), so a fresh
        value written meanwhile by another process survives."""
        try:
            with self._cache.transact():
                if data is not None:
                    try:
                        if self._read(key) != data:
                            return
                    except (CodecError, UnicodeDecodeError):
                        pass
                self._cache.delete(key)
        except BACKEND_ERRORS as exc:
            self._errors.report("delete", exc)

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        """The live entries among `keys`, read in one transaction."""
        unique = list(dict.fromkeys(keys))
        found: dict[str, CachedResponse] = {}

        def read_all() -> None:
            for key in unique:
                if key not in found and (entry := self.get(key)) is not None:
                    found[key] = entry

        try:
            with self._cache.transact():
                read_all()
        except diskcache.Timeout:
            read_all()  # another process holds the write lock; plain reads do not need it
        except BACKEND_ERRORS as exc:
            self._fail("get_many", exc)
        return found

    def set(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        """Store `entry` under `key` for `ttl` seconds (default: `default_ttl`).

        Raises ``TypeError`` if the codec cannot encode the entry; disk failures are counted
        and logged, never raised.
        """
        if type(key) is not str:
            raise TypeError(f"key: expected str, got {type(key).__name__}")
        ttl = check_ttl(ttl)
        if ttl is None:
            ttl = self._default_ttl
        data = self._codec.encode(entry.with_ttl(ttl, self._clock()))
        try:
            self._cache.set(key, data, expire=ttl)
        except BACKEND_ERRORS as exc:
            self._fail("set", exc)
            return
        self._counters.add("sets")

    def delete(self, key: str) -> bool:
        """Remove `key`; True if an entry was there."""
        try:
            removed = bool(self._cache.delete(key))
        except BACKEND_ERRORS as exc:
            self._fail("delete", exc)
            return False
        if removed:
            self._counters.add("deletes")
        return removed

    def clear(self) -> None:
        """Remove every entry. Counters are kept (see `reset_stats`)."""
        try:
            self._cache.clear(retry=True)
        except BACKEND_ERRORS as exc:
            self._fail("clear", exc)

    def reset_stats(self) -> None:
        """Zero the persisted counters (for every process using this directory)."""
        self._counters.reset()

    def __len__(self) -> int:
        """Number of entries (expired ones not yet swept included); 0 if the disk fails."""
        try:
            return int(len(self._cache))
        except BACKEND_ERRORS as exc:
            self._fail("len", exc)
            return 0

    def iterkeys(self) -> Iterator[str]:
        """Every key in the store (expired ones not yet swept included)."""
        try:
            for key in self._cache.iterkeys():
                if type(key) is str:  # skip keys planted by other clients
                    yield key
        except BACKEND_ERRORS as exc:
            self._fail("iterkeys", exc)

    def keys(self) -> list[str]:
        """A list of every key in the store."""
        return list(self.iterkeys())

    def stats(self) -> dict[str, Any]:
        """Entries, bytes on disk (``volume``) and the counters summed over every process
        that has used this directory; ``this_process`` holds this process's own counts."""
        try:
            volume: int | None = int(self._cache.volume())
        except BACKEND_ERRORS as exc:
            self._fail("volume", exc)
            volume = None
        result: dict[str, Any] = {
            "path": str(self._path), "entries": len(self), "volume": volume,
            "size_limit": self._size_limit, "default_ttl": self._default_ttl,
            "lru_by_access": self._lru}
        result.update(self._counters.totals())
        with self._counters.lock:
            result["this_process"] = {name: getattr(self._stats, name) for name in PERSISTED}
        return result

    def close(self) -> None:
        """Flush the counters and close the database. Idempotent."""
        if isinstance(self._cache, _Closed):
            return
        self._finalizer()
        self._direct = False  # route reads through `_Closed`, which raises
        self._cache.close()
        self._cache = _Closed()

    def __repr__(self) -> str:
        return f"DiskStore({str(self._path)!r}, size_limit={self._size_limit})"
