"""diskcache plumbing for `DiskStore`: a reader that never unpickles, crash-safe opening,
and hit/miss counters that outlive the process without a write on every hit."""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
import time
import weakref
from typing import Any

import diskcache
from diskcache.core import DBNAME, DEFAULT_SETTINGS, MODE_PICKLE

from llmcache.entry import CodecError
from llmcache.stores.base import ErrorLog, StoreStats

__all__ = ["BACKEND_ERRORS", "PERSISTED", "STATS_DIR", "Counters", "fork_generation", "open_cache"]

logger = logging.getLogger("llmcache.stores.disk")

STATS_DIR = ".llmcache-stats"
_FLUSH_SECONDS = 1.0
PERSISTED = ("hits", "misses", "sets", "deletes", "expirations", "errors")
BACKEND_ERRORS = (sqlite3.Error, OSError, diskcache.Timeout)
# diskcache names value files "ab/cd/<28 hex>.val"; anything else in a row was planted.
_VALUE_FILE = re.compile(r"[0-9a-f]{2}[/\\][0-9a-f]{2}[/\\][0-9a-f]{28}\.val\Z")
# Pragmas are read back from the database's Settings table, which anyone sharing the
# directory can write: always pass the defaults so planted values are overwritten at open.
_PRAGMAS = {k: v for k, v in DEFAULT_SETTINGS.items() if k.startswith("sqlite_")}
# The statement diskcache's own `Cache.get` runs when reads do not update the row.

_fork_generation = 0  # bumped in a forked child; see `_after_fork_in_child`


def fork_generation() -> int:
    """Bumped in every forked child: connections opened under another value are the
    parent's and must not be used."""
    return _fork_generation


class _ForeignKey:
    """Stands for a pickled key written by another client; such keys are never unpickled."""


class _SafeDisk(diskcache.Disk):  # type: ignore[misc]
    """diskcache serialisation that never unpickles and never touches files outside the
    cache directory (rows are untrusted when other programs share the directory)."""

    def get(self, key: Any, raw: bool) -> Any:
        return super().get(key, raw) if raw else _ForeignKey()

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode == MODE_PICKLE:
            raise CodecError("refusing to unpickle a value written by another diskcache client")
        if filename is not None and not _VALUE_FILE.match(filename):
            raise CodecError(f"value file {filename!r} is not a diskcache value file")
        return super().fetch(mode, filename, value, read)

    def remove(self, file_path: str) -> None:
        if _VALUE_FILE.match(file_path):
            super().remove(file_path)


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def open_cache(directory: str, timeout: float, **settings: Any) -> Any:
    """Open a diskcache, moving a corrupt database aside (with a warning) and starting empty.

    Other errors (permissions, a path that is a file) raise: they are configuration
    mistakes that should be seen at startup, not hidden as misses.
    """
    db = os.path.join(directory, DBNAME)
    for attempt in range(3):
        before = _inode(db)
        try:
            return diskcache.Cache(directory, timeout=timeout, disk=_SafeDisk,
                                   **_PRAGMAS, **settings)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) or attempt == 2:
                raise
            if _inode(db) != before:
                continue  # another process already replaced the file: just reopen
            suffix = f".corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
            for name in (db, db + "-wal", db + "-shm"):
                try:
                    os.replace(name, name + suffix)
                except FileNotFoundError:
                    pass
            logger.warning("disk cache %s: database is corrupt (%s); moved it aside to %s "
                           "and starting empty", directory, exc, db + suffix)
    raise AssertionError("unreachable")


class Counters:
    """This process's counters plus their persisted totals in a side cache.

    Counting happens in memory; `flush` adds what changed since the last flush to the side
    cache, at most once per `_FLUSH_SECONDS` from the hot paths, so counting a hit costs a
    lock, not a write.
    """

    def __init__(self, directory: str, timeout: float, errors: ErrorLog) -> None:
        self.stats = StoreStats()
        self.lock = threading.Lock()
        self.next_flush = time.monotonic() + _FLUSH_SECONDS
        self._flushed = dict.fromkeys(PERSISTED, 0)
        self._flush_lock = threading.Lock()
        self._errors = errors
        self._cache: Any = None
        try:
            self._cache = open_cache(directory, timeout, eviction_policy="none")
        except (*BACKEND_ERRORS, ValueError) as exc:
            errors.report("open stats", exc)  # counters then stay per-process
        _all_counters.add(self)

    def forget(self) -> None:
        """In a forked child: start from zero with fresh locks (the parent flushes its own
        counts, and a lock held by another thread at the fork would never be released)."""
        self.lock, self._flush_lock = threading.Lock(), threading.Lock()
        for name in PERSISTED:
            setattr(self.stats, name, 0)
        self._flushed = dict.fromkeys(PERSISTED, 0)

    def add(self, name: str) -> None:
        with self.lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)
        if time.monotonic() >= self.next_flush:
            self.flush()

    def _unflushed(self) -> dict[str, int]:
        current = self.stats.as_dict()
        return {name: current[name] - self._flushed[name] for name in PERSISTED}

    def flush(self) -> None:
        if self._cache is None or not self._flush_lock.acquire(blocking=False):
            return  # another thread is flushing: its numbers include ours
        try:
            self.next_flush = time.monotonic() + _FLUSH_SECONDS
            with self.lock:
                delta = self._unflushed()
            if not any(delta.values()):
                return
            try:
                with self._cache.transact():
                    for name, n in delta.items():
                        if n:
                            self._cache.incr(name, n)
            except BACKEND_ERRORS as exc:
                self._errors.report("flush stats", exc)  # kept for the next flush
                return
            with self.lock:
                for name, n in delta.items():
                    self._flushed[name] += n
        finally:
            self._flush_lock.release()

    def totals(self) -> dict[str, int]:
        """Counts over every process that used the directory (this one included)."""
        self.flush()
        stored = dict.fromkeys(PERSISTED, 0)
        with self._flush_lock:  # no flush may move counts between the two reads below
            if self._cache is not None:
                try:
                    stored = {name: int(self._cache.get(name, 0)) for name in PERSISTED}
                except (*BACKEND_ERRORS, CodecError, TypeError, ValueError) as exc:
                    self._errors.report("read stats", exc)
            with self.lock:
                delta = self._unflushed()
        return {name: stored[name] + delta[name] for name in PERSISTED}

    def reset(self) -> None:
        with self._flush_lock, self.lock:
            self._flushed = {name: getattr(self.stats, name) for name in PERSISTED}
        if self._cache is not None:
            self._cache.clear(retry=True)

    def close(self) -> None:
        self.flush()
        if self._cache is not None:
            self._cache.close()


_all_counters: weakref.WeakSet[Counters] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # Nothing of the parent's may be used across a fork: not its sqlite connections (stores
    # see the new generation and ask diskcache, which checks the pid, for this process's
    # connection), nor its unflushed counts or locks.
    global _fork_generation
    _fork_generation += 1
    for counters in list(_all_counters):
        counters.forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
