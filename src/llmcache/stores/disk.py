"""Persistent tier on `diskcache`: shared by the threads and processes of one machine.

Values are the codec's bytes, never pickles, and whatever is read back is untrusted.
Counters survive the process: they are kept in memory and added to a small side cache
(``.llmcache-stats`` inside the directory) about once a second, so a hit never writes. There
are three kinds: the store's own (``hits`` and ``misses`` count *reads*: a door that reads
twice before it calls the model counts two), the calls the doors over the store answered
(each call once, as the door counted it: see `DiskStore.count_calls_from`), and each entry's
hits. `DiskReader` shows all of them, and the entries, without changing anything.

What happens on each fault (``tests/faults/test_disk_faults.py`` tries each one through a
cached client):

- **The directory cannot be opened** (a full disk, a read-only folder, missing
  permissions, a path that is a file): the constructor does not raise; the store is a
  miss-only tier (``available`` is False) that logs once, counts an error per call and tries
  to open again on a get or set at most every `retry_after` seconds. With ``strict=True``
  the constructor raises `StoreError` instead, the cause chained.
- **The disk fills up or turns read-only later**: a set is dropped and counted as an
  error; gets go on serving what is there.
- **The database is corrupt** (random bytes anywhere in it, truncated, a garbage header),
  met at open or by any later operation: its bytes are copied to a
  ``cache.db.corrupt-<time>-<pid>`` sibling and the file is reset in place to an empty
  database (renamed aside instead when sqlite cannot write it at all), once for all the
  threads and processes that met the damage; counted in ``recoveries``, logged once. A get
  that met it is a miss; a set, delete or clear is tried once more on the empty database.
  A recovery that fails (the disk is also full or read-only) is tried again after
  `retry_after`. Value files of the old entries (values above 32 KB) stay in the directory.
- **Another process renamed the database aside**: the store opens the new one at its next
  write or failing operation.
- **A planted entry** (a pickle written by another diskcache client, bytes that are not
  this codec's, a row pointing at a file outside the directory): a miss counted as an
  error, and the entry is deleted; nothing is unpickled, a file outside the directory is
  neither read nor deleted.
- **A value file swapped or truncated**: a miss (an entry of another request is refused by
  the caller's fingerprint check).
- **Another process holds the write lock for longer than `timeout`**: a set is dropped
  and counted; `delete` and `clear` raise `StoreError`.

``get``/``set`` never raise for any of these; `delete` and `clear` raise `StoreError` when
they did not happen (or, for delete, when it cannot tell).

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
from llmcache.errors import StoreError
from llmcache.stores._disk_reader import Damage, DiskReader, row_problem
from llmcache.stores._diskcache import (
    BACKEND_ERRORS,
    CALL_COUNTS,
    PERSISTED,
    STATS_DIR,
    CallSource,
    Counters,
    NotOpen,
    Opened,
    database_problem,
    db_inode,
    fork_generation,
    is_corruption,
    open_cache,
    recover_database,
)
from llmcache.stores.base import ErrorLog, Store, check_ttl

__all__ = ["Damage", "DiskReader", "DiskStore"]

logger = logging.getLogger(__name__)

_SELECT = (
    "SELECT mode, filename, value FROM Cache WHERE key = ? AND raw = 1"
    " AND (expire_time IS NULL OR expire_time > ?)"
)


class _Unavailable:
    """Stands in for the diskcache while the directory cannot be opened: every use raises
    `NotOpen`, which the store counts as a failure (a miss, for reads)."""

    def __init__(self, cause: BaseException) -> None:
        self.cause = cause

    def __getattr__(self, name: str) -> Any:
        raise NotOpen(
            f"the cache directory could not be opened ({type(self.cause).__name__}: {self.cause})"
        )

    def __len__(self) -> int:
        raise NotOpen(
            f"the cache directory could not be opened ({type(self.cause).__name__}: {self.cause})"
        )

    def close(self) -> None:
        return None


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
    process's lock before it gives up (a set counts it as an error; `delete` and `clear`
    raise `StoreError`).

    A directory that cannot be opened (full disk, read-only folder, permissions, a path that
    is a file) makes a miss-only tier that tries again at most every `retry_after` seconds;
    with ``strict=True`` the constructor raises `StoreError` instead. A corrupt database is
    copied aside and reset to an empty one; the module docstring lists every fault.

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

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        size_limit: int = 2**30,
        default_ttl: float | None = None,
        lru_by_access: bool = False,
        codec: Codec | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = 2.0,
        strict: bool = False,
        retry_after: float = 5.0,
    ) -> None:
        if os.fspath(path) == "":
            raise ValueError(
                "path: expected a cache directory, got an empty path (it would "
                "put cache.db in the working directory); pass a directory such "
                "as '.llmcache'"
            )
        if isinstance(size_limit, bool) or not isinstance(size_limit, int) or size_limit < 1:
            raise ValueError(f"size_limit: expected bytes as an int >= 1, got {size_limit!r}")
        if (
            isinstance(retry_after, bool)
            or not isinstance(retry_after, (int, float))
            or not retry_after > 0
        ):
            raise ValueError(f"retry_after: expected seconds > 0, got {retry_after!r}")
        self._path = Path(path)
        self._default_ttl = check_ttl(default_ttl)
        self._codec: Codec = JSONCodec() if codec is None else codec
        self._clock = clock
        self._size_limit = size_limit
        self._lru = lru_by_access
        self._timeout = timeout
        self._strict = strict
        self._retry_after = float(retry_after)
        self._errors = ErrorLog(logger, f"DiskStore({self._path})")
        policy = "least-recently-used" if lru_by_access else "least-recently-stored"
        self._settings: dict[str, Any] = {
            "size_limit": size_limit,
            "eviction_policy": policy,
            "statistics": 0,
        }
        self._counters = Counters(str(self._path / STATS_DIR), timeout, self._errors)
        self._stats = self._counters.stats
        self._decode = self._codec.decode
        # Single reads run diskcache's own SELECT on diskcache's own connection for this
        # thread, skipping the per-call setup of `Cache.get` (about a fifth of a disk hit).
        # Only when reads need no bookkeeping write, and probed at each open: a diskcache
        # whose internals differ falls back to the public `get`.
        self._tls = threading.local()
        self._in_transaction = threading.local()  # see `get_many`
        self._direct = False
        self._cache: Any = _Unavailable(NotOpen("not opened yet"))
        self._inode: int | None = None  # of the cache.db this store opened
        self._recovered: list[Path] = []
        # Serialises reopening and recovery between this store's threads; a thread that
        # finds it taken serves a miss instead of waiting.
        self._open_lock = threading.Lock()
        self._retry_at = 0.0  # monotonic: the next open attempt while unavailable
        self._recover_at = 0.0  # monotonic: the next recovery attempt after a failed one
        self._open_failure_logged = False
        self._open(first=True)
        _all_stores.add(self)
        # Flush this process's counts even if the store is never closed.
        self._finalizer = weakref.finalize(self, self._counters.close)

    # -- opening, reopening, recovering ------------------------------------------------

    def _open(self, *, first: bool = False) -> bool:
        """Open (or reopen) the directory; on failure become a miss-only tier (or, the first
        time with ``strict=True``, raise). True if the store is now open."""
        try:
            opened = open_cache(str(self._path), self._timeout, **self._settings)
        except BACKEND_ERRORS as exc:
            if first and self._strict:
                raise self._failed("open", "cannot open the cache directory", exc) from exc
            self._install_unavailable(exc)
            return False
        self._install(opened)
        return True

    def _install_unavailable(self, exc: BaseException) -> None:
        old, self._direct = self._cache, False
        self._cache, self._inode = _Unavailable(exc), None
        self._retry_at = time.monotonic() + self._retry_after
        self._close_quietly(old)
        self._counters.add("errors")
        if not self._open_failure_logged:  # once until the directory opens again
            self._open_failure_logged = True
            logger.warning(
                "%r: cannot open the cache directory (%s: %s); serving misses and "
                "trying again at most every %gs (strict=True raises instead)",
                self,
                type(exc).__name__,
                exc,
                self._retry_after,
            )

    def _install(self, opened: Opened) -> None:
        old = self._cache
        self._cache, self._disk, self._inode = opened.cache, opened.cache.disk, opened.inode
        self._tls = threading.local()  # every thread's next read connects to the new file
        self._direct = not self._lru and self._probe_direct()
        self._close_quietly(old)
        for aside in opened.recovered:
            self._note_recovery(aside)
        self._counters.open()
        if self._open_failure_logged:
            self._open_failure_logged = False
            logger.warning("%r: the cache directory opened; caching again", self)

    @staticmethod
    def _close_quietly(cache: Any) -> None:
        # Closes this thread's connection; other threads' close when the object is dropped.
        try:
            cache.close()
        except BACKEND_ERRORS:
            pass

    def _note_recovery(self, aside: str | None) -> None:
        if aside is not None:
            self._recovered.append(Path(aside))
        self._counters.add("recoveries")

    def _on_error(self, exc: BaseException) -> bool:
        """Repair what caused `exc` where that can be done: open a directory that could not be
        opened (once `retry_after` has passed), recover a corrupt database, follow a database
        another process renamed aside. True if the caller may try once more."""
        if isinstance(exc, NotOpen):
            return self._reopen_if_due()
        if not isinstance(exc, sqlite3.Error):
            return False  # the disk or a lock: nothing to repair
        if getattr(self._in_transaction, "on", False):
            # This thread holds the write lock (`get_many`): a recovery would wait for it.
            self._in_transaction.pending = exc
            return False
        if is_corruption(exc):
            return self._recover(exc)
        if db_inode(self._path) == self._inode:
            return False  # full, read-only, locked: the same file, still there
        return self._follow()

    def _reopen_if_due(self) -> bool:
        if time.monotonic() < self._retry_at or not self._open_lock.acquire(blocking=False):
            return False
        try:
            if not isinstance(self._cache, _Unavailable):
                return True  # another thread reopened it meanwhile
            if time.monotonic() < self._retry_at:
                return False
            return self._open()
        finally:
            self._open_lock.release()

    def _follow(self) -> bool:
        """Open the database now at ``cache.db``: another process renamed the old one."""
        if not self._open_lock.acquire(blocking=False):
            return False  # another thread is reopening or recovering
        try:
            return db_inode(self._path) == self._inode or self._open()
        finally:
            self._open_lock.release()

    def _recover(self, exc: BaseException) -> bool:
        failed_at = time.time()
        if time.monotonic() < self._recover_at or not self._open_lock.acquire(blocking=False):
            return False  # failed lately, or another thread is recovering: a miss
        try:
            if db_inode(self._path) != self._inode:
                return self._open()  # another process renamed it aside already
            try:
                done = recover_database(
                    str(self._path),
                    failed_at=failed_at,
                    reason=f"{type(exc).__name__}: {exc}",
                    timeout=self._timeout,
                )
            except BACKEND_ERRORS as recover_exc:  # neither reset nor renamed, or lock held
                self._errors.report("recover", recover_exc)
                self._recover_at = time.monotonic() + self._retry_after
                return False
            if done is None:
                return True  # recovered meanwhile by another thread or process
            self._note_recovery(done.aside)
            return self._open() if done.renamed else True
        finally:
            self._open_lock.release()

    def recover(self, reason: str = "asked to") -> Path | None:
        """Recover the database now, as the store does by itself when an operation meets a
        corrupt database: its bytes are copied to a ``cache.db.corrupt-<time>-<pid>``
        sibling (returned; None if no copy could be made) and the store goes on with an
        empty database. ``llmcache clear`` calls this when `check_database` finds damage.
        Raises `StoreError` if the database could not be recovered or opened again.
        """
        with self._open_lock:
            try:
                done = recover_database(
                    str(self._path),
                    failed_at=time.time(),
                    reason=reason,
                    timeout=self._timeout,
                    force=True,
                )
            except BACKEND_ERRORS as exc:
                raise self._failed("recover", "could not recover the database", exc) from exc
            if done is not None:
                self._note_recovery(done.aside)
            if (done is None or done.renamed or not self.available) and not self._open():
                raise StoreError(
                    f"{self!r}: cannot open the cache directory after the "
                    f"recovery ({self._cache.cause})",
                    store=self.name,
                    operation="recover",
                )
        return None if done is None or done.aside is None else Path(done.aside)

    @staticmethod
    def check_database(path: str | os.PathLike[str]) -> str | None:
        """What is wrong with the database of the cache directory `path` (or the database
        file `path`), None when it is sound.

        Read-only, and reads every page (sqlite's ``quick_check``): it finds damage that no
        single get or set meets, at the cost of reading the whole file. Raises
        ``sqlite3.Error`` or OSError when the file cannot be opened at all.
        """
        return database_problem(path)

    @property
    def available(self) -> bool:
        """False while the directory cannot be opened (the store serves misses)."""
        return not isinstance(self._cache, (_Unavailable, _Closed))

    @property
    def recovered(self) -> list[Path]:
        """Copies of the corrupt databases this store recovered (at open or later), oldest
        first; ``stats()["recoveries"]`` also counts recoveries that could keep no copy."""
        return list(self._recovered)

    def _probe_direct(self) -> bool:
        # EXPLAIN compiles the statement against the schema without reading the table, so
        # a damaged table does not turn the fast path off for good.
        try:
            self._connect().execute("EXPLAIN " + _SELECT, ("", 0.0)).fetchall()
        except Exception:  # any difference in diskcache's internals: use the public API
            return False
        return True

    def _connect(self) -> sqlite3.Connection:
        # diskcache's `_con` opens (or, after a fork, reopens) this thread's connection. A
        # reopen may swap the cache and the thread-local holder meanwhile: then connect again,
        # so no thread keeps a connection to a database the store has left.
        while True:
            cache, tls = self._cache, self._tls
            con: sqlite3.Connection = cache._con
            tls.con, tls.generation = con, fork_generation()
            if cache is self._cache and tls is self._tls:
                return con

    @property
    def path(self) -> Path:
        """The cache directory."""
        return self._path

    # -- the operations ----------------------------------------------------------------

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
        """The live entry under `key`, or ``None`` (missing, expired, unreadable, or the
        tier failed: counted, logged once, never raised)."""
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
            counted = counters.entry_hits.get(key)
            if counted is not None and counted[0] == entry.created_at:
                counted[1] += 1
            else:
                counters.entry_hits[key] = [entry.created_at, 1]
        if time.monotonic() >= counters.next_flush:
            counters.flush()
        return entry

    def _fail(
        self, operation: str, exc: BaseException, *, miss: bool = False, log: bool = True
    ) -> bool:
        """Count and log `exc` (once per kind), then repair what can be repaired (see
        `_on_error`); True if the caller may try once more on a recovered database."""
        # The open failure was logged when it happened, damage is logged by the recovery (or
        # its failure) that follows, and what raises needs no log line.
        if log and not isinstance(exc, NotOpen) and not is_corruption(exc):
            self._errors.report(operation, exc)
        self._counters.add("errors")
        if miss:
            self._counters.add("misses")
        return self._on_error(exc)

    def _failed(self, operation: str, what: str, exc: BaseException) -> StoreError:
        return StoreError(
            f"{self!r}: {what} ({type(exc).__name__}: {exc})", store=self.name, operation=operation
        )

    def _not_done(self, operation: str, exc: BaseException) -> StoreError:
        if isinstance(exc, diskcache.Timeout):
            why = f"another process held the write lock for more than timeout={self._timeout}s"
        else:
            why = f"{type(exc).__name__}: {exc}"
        return StoreError(
            f"{self!r}: {operation} did not happen ({why})", store=self.name, operation=operation
        )

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
            self._on_error(exc)

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        """The live entries among `keys`, read in one transaction."""
        unique = list(dict.fromkeys(keys))
        found: dict[str, CachedResponse] = {}

        def read_all() -> None:
            for key in unique:
                if key not in found and (entry := self.get(key)) is not None:
                    found[key] = entry

        state = self._in_transaction
        try:
            with self._cache.transact():
                state.on = True
                try:
                    read_all()
                finally:
                    state.on = False
        except diskcache.Timeout:
            read_all()  # another process holds the write lock; plain reads do not need it
        except BACKEND_ERRORS as exc:
            self._fail("get_many", exc)
        pending, state.pending = getattr(state, "pending", None), None
        if pending is not None:  # met inside the transaction, repaired now it is over
            self._on_error(pending)
        return found

    def set(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        """Store `entry` under `key` for `ttl` seconds (default: `default_ttl`).

        Raises ``TypeError`` if the codec cannot encode the entry; disk failures are counted
        and logged, never raised (a set that met a corrupt database is tried once more on
        the recovered one).
        """
        if type(key) is not str:
            raise TypeError(f"key: expected str, got {type(key).__name__}")
        ttl = check_ttl(ttl)
        if ttl is None:
            ttl = self._default_ttl
        data = self._codec.encode(entry.with_ttl(ttl, self._clock()))
        # A connection to a file another process renamed aside still writes to that file,
        # where no one else looks: one stat per write (a few percent of it) catches that.
        if self._inode is not None and db_inode(self._path) != self._inode:
            self._follow()
        for attempt in range(2):
            try:
                self._cache.set(key, data, expire=ttl)
                break
            except BACKEND_ERRORS as exc:
                if not self._fail("set", exc) or attempt:
                    return
        self._counters.add("sets")

    def delete(self, key: str) -> bool:
        """Remove `key`: True if an entry was removed, False if there was none.

        Raises `StoreError` when the delete did not happen or the store cannot tell (the
        directory cannot be opened, another process held the write lock for longer than
        `timeout`). A database found corrupt is recovered (emptied) and the delete tried
        once more: the key is then absent.
        """
        for attempt in range(2):
            try:
                removed = bool(self._cache.delete(key))
                break
            except BACKEND_ERRORS as exc:
                if not self._fail("delete", exc, log=False) or attempt:
                    raise self._not_done("delete", exc) from exc
        if removed:
            self._counters.add("deletes")
        return removed

    def clear(self) -> None:
        """Remove every entry; counters are kept (see `reset_stats`).

        Raises `StoreError` when the clear did not happen, or only in part (the directory
        cannot be opened, another process held the write lock for longer than `timeout`).
        A database found corrupt is recovered (emptied), which completes the clear.
        """
        for attempt in range(2):
            try:
                # No retry: diskcache would retry a failure that is not a lock for ever.
                self._cache.clear()
                return
            except BACKEND_ERRORS as exc:
                if not self._fail("clear", exc, log=False) or attempt:
                    raise self._not_done("clear", exc) from exc

    def reset_stats(self) -> None:
        """Zero the persisted counters and entry hit counts (for every process using this
        directory); raises `StoreError` if they could not be zeroed."""
        try:
            self._counters.reset()
        except BACKEND_ERRORS as exc:
            raise self._not_done("reset_stats", exc) from exc

    def count_calls_from(self, source: CallSource) -> None:
        """Persist the call counts of a door over this store (a decorated function, a
        client, a `ResponseCache`), so ``llmcache stats`` shows each call once.

        `source` returns the door's running totals, by name: ``hits`` (every call answered
        from the cache, semantic hits included), ``misses`` (calls that went to the model
        through the cache), ``coalesced`` (calls that shared a concurrent miss's answer),
        ``bypasses`` (calls told to skip the cache), ``uncacheable`` (calls the policy kept
        out of it, such as a high temperature), ``semantic_hits`` (the part of ``hits`` the
        semantic tier answered) and ``tokens_saved``; missing names count 0. It is called at
        each flush of the counters (about once a second while the store is used, and at
        close and exit), never on a hit, so it must be cheap and must not use this store.
        Totals that go down (the door's counters were reset) count anew from zero. A source
        given twice is followed once.

        >>> import tempfile
        >>> counts = {"hits": 0, "misses": 0}
        >>> with DiskStore(tempfile.mkdtemp()) as store:
        ...     store.count_calls_from(lambda: counts)
        ...     counts["misses"] += 1; counts["hits"] += 3
        ...     store.stats()["calls"]["hits"]
        3
        """
        if not callable(source):
            raise TypeError(
                f"source: expected a callable returning counts, got {type(source).__name__}"
            )
        self._counters.follow(source)

    def delete_damaged(self) -> list[Damage]:
        """Delete every entry that cannot be read (a planted pickle, foreign bytes, a value
        file missing or outside the directory, bytes of another codec than this store's) and
        return them; an entry another process rewrote meanwhile is kept. Raises `StoreError`
        when the entries could not be read or deleted."""
        deleted: list[Damage] = []
        try:
            with DiskReader(self._path, codec=self._codec) as reader:
                found = list(reader.damaged())
            for damage in found:
                if self._delete_if_damaged(damage.row):
                    deleted.append(damage)
        except BACKEND_ERRORS as exc:
            raise self._not_done("delete_damaged", exc) from exc
        return deleted

    def _delete_if_damaged(self, rowid: int) -> bool:
        with self._cache.transact():
            con = self._connect()
            row = con.execute(
                "SELECT key, raw, mode, filename, value FROM Cache WHERE rowid = ?", (rowid,)
            ).fetchone()
            if row is None or row_problem(self._disk, self._codec, *row) is None:
                return False
            con.execute("DELETE FROM Cache WHERE rowid = ?", (rowid,))
        if row[3] is not None:
            self._disk.remove(row[3])  # refuses a path outside the directory
        self._counters.add("deletes")
        return True

    def recover_statistics(self, reason: str = "asked to") -> Path | None:
        """Recover the statistics' side database (``llmcache doctor --repair`` calls this
        when `DiskReader.check_statistics` finds damage): its bytes are copied to a
        ``cache.db.corrupt-<time>-<pid>`` sibling (returned; None if no copy could be made)
        and counting starts again from zero. Raises `StoreError` if it could not be done."""
        try:
            aside = self._counters.recover(reason)
        except BACKEND_ERRORS as exc:
            what = "could not recover the statistics"
            raise self._failed("recover_statistics", what, exc) from exc
        return None if aside is None else Path(aside)

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
        that has used this directory: the store's reads (``hits``, ``misses``), writes and
        faults (``recoveries``: corrupt databases recovered), and under ``calls`` what the
        doors reported (see `count_calls_from`); ``this_process`` holds this process's own
        counts, ``available`` whether the directory is open."""
        try:
            volume: int | None = int(self._cache.volume())
        except BACKEND_ERRORS as exc:
            self._fail("volume", exc)
            volume = None
        result: dict[str, Any] = {
            "path": str(self._path),
            "entries": len(self),
            "volume": volume,
            "size_limit": self._size_limit,
            "default_ttl": self._default_ttl,
            "lru_by_access": self._lru,
            "available": self.available,
        }
        totals = self._counters.totals()
        result.update({k: v for k, v in totals.items() if not k.startswith("call_")})
        result["calls"] = {name: totals[f"call_{name}"] for name in CALL_COUNTS}
        with self._counters.lock:
            result["this_process"] = {name: getattr(self._stats, name) for name in PERSISTED}
        return result

    def close(self) -> None:
        """Flush the counters and close the database. Idempotent."""
        if isinstance(self._cache, _Closed):
            return
        self._finalizer()
        self._direct = False  # route reads through `_Closed`, which raises
        cache, self._cache = self._cache, _Closed()
        cache.close()

    def __repr__(self) -> str:
        return f"DiskStore({str(self._path)!r}, size_limit={self._size_limit})"


_all_stores: weakref.WeakSet[DiskStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # A lock another thread held at the fork would never be released in the child.
    for store in list(_all_stores):
        store._open_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
