"""diskcache plumbing for `DiskStore`: a reader that never unpickles, recovery from a
corrupt database, read-only connections that leave the directory as it was, and counters
(the store's reads, the calls its doors answered, each entry's hits) that outlive the process
without a write on every hit.

A corrupt database is recovered in place: its bytes are copied to a
``cache.db.corrupt-<time>-<pid>`` sibling, then sqlite's backup API overwrites it with an
empty diskcache database. The file stays the same file, so the connections every thread and
process holds on it stay valid and see the empty database at their next statement (sqlite's
own locking orders this with their reads and writes). Only when sqlite cannot write to the
file at all (its header is destroyed) is it renamed aside instead, and stores that still hold
the old file reopen when they see that ``cache.db`` is another file. A lock file in the
directory, holding the time of the last recovery, makes one recovery serve every thread and
process that met the same damage.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import diskcache
from diskcache.core import DBNAME, DEFAULT_SETTINGS, MODE_PICKLE

from llmcache.entry import CodecError
from llmcache.errors import LLMCacheError
from llmcache.stores.base import ErrorLog, StoreStats

try:
    import fcntl
except ImportError:  # Windows: recoveries by several processes at once are not serialised
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "BACKEND_ERRORS",
    "CALL_COUNTS",
    "ENTRY_HITS",
    "PERSISTED",
    "SINCE",
    "STATS_DIR",
    "CallSource",
    "Counters",
    "DiskStats",
    "NotOpen",
    "Opened",
    "ReadOnlyDatabase",
    "Recovery",
    "SafeDisk",
    "database_problem",
    "db_inode",
    "fork_generation",
    "is_corruption",
    "open_cache",
    "parse_entry_hits",
    "recover_database",
]

logger = logging.getLogger("llmcache.stores.disk")

STATS_DIR = ".llmcache-stats"
_FLUSH_SECONDS = 1.0
# What a door reports about the calls it answered (see `Counters.follow`); ``hits`` includes
# ``semantic_hits``, the part of them the semantic tier answered.
CALL_COUNTS = (
    "hits",
    "misses",
    "coalesced",
    "bypasses",
    "uncacheable",
    "semantic_hits",
    "tokens_saved",
)
# The store's own counts (reads, writes, faults), then the doors' call counts.
PERSISTED = (
    "hits",
    "misses",
    "sets",
    "deletes",
    "expirations",
    "errors",
    "recoveries",
    *(f"call_{name}" for name in CALL_COUNTS),
)
# Side-cache rows besides the counters: when counting (re)started, and each entry's hits.
SINCE = "since"
ENTRY_HITS = "entry_hits:"
CallSource = Callable[[], Mapping[str, Any]]
_RECOVERY_LOCK = ".llmcache-recovery.lock"
# Primary sqlite result codes of a damaged file: SQLITE_CORRUPT and SQLITE_NOTADB; of a
# lock held by another connection: SQLITE_BUSY and SQLITE_LOCKED.
_CORRUPT_CODES = frozenset({11, 26})
_BUSY_OR_LOCKED = frozenset({5, 6})


class NotOpen(LLMCacheError):  # noqa: N818 - a state, raised where a store's tier is missing
    """The cache directory could not be opened (the store is a miss-only tier for now)."""


BACKEND_ERRORS = (sqlite3.Error, OSError, diskcache.Timeout, NotOpen)


@dataclass(slots=True)
class DiskStats(StoreStats):
    """`StoreStats` plus ``recoveries`` (corrupt databases moved aside) and the calls the
    doors over the store reported (``call_*``, see `CALL_COUNTS`)."""

    recoveries: int = 0
    call_hits: int = 0
    call_misses: int = 0
    call_coalesced: int = 0
    call_bypasses: int = 0
    call_uncacheable: int = 0
    call_semantic_hits: int = 0
    call_tokens_saved: int = 0


# diskcache names value files "ab/cd/<28 hex>.val"; anything else in a row was planted.
_VALUE_FILE = re.compile(r"[0-9a-f]{2}[/\\][0-9a-f]{2}[/\\][0-9a-f]{28}\.val\Z")
# Pragmas are read back from the database's Settings table, which anyone sharing the
# directory can write: always pass the defaults so planted values are overwritten at open.
_PRAGMAS = {k: v for k, v in DEFAULT_SETTINGS.items() if k.startswith("sqlite_")}

_fork_generation = 0  # bumped in a forked child; see `_after_fork_in_child`


def fork_generation() -> int:
    """Bumped in every forked child: connections opened under another value are the
    parent's and must not be used."""
    return _fork_generation


class _ForeignKey:
    """Stands for a pickled key written by another client; such keys are never unpickled."""


class SafeDisk(diskcache.Disk):  # type: ignore[misc]
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


def db_inode(directory: str | os.PathLike[str]) -> int | None:
    """The inode of the database file now at ``directory/cache.db`` (None: no such file)."""
    return _inode(os.path.join(directory, DBNAME))


def is_corruption(exc: BaseException) -> bool:
    """True for sqlite's "database disk image is malformed" and "file is not a database"."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
    if isinstance(code, int):
        return code & 0xFF in _CORRUPT_CODES
    text = str(exc)
    return "malformed" in text or "not a database" in text


@contextlib.contextmanager
def _recovery_lock(directory: str, timeout: float) -> Iterator[int | None]:
    """Hold the directory's recovery lock (shared by threads and processes: each holder
    opens the file anew), waiting up to `timeout` seconds: a process stopped while holding
    it must not stop the others for ever. Yields the lock file's descriptor."""
    try:
        fd = os.open(os.path.join(directory, _RECOVERY_LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield None  # no lock file (read-only directory?): the recovery will most likely fail
        return
    try:
        if fcntl is not None:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise diskcache.Timeout(
                            "another process holds the recovery lock for longer than the timeout"
                        ) from None
                    time.sleep(0.005)
        yield fd
    finally:
        os.close(fd)  # releases the lock


def _last_recovery(fd: int | None) -> float:
    if fd is None:
        return 0.0
    try:
        return float(os.pread(fd, 64, 0).decode("ascii").strip() or 0)
    except (OSError, ValueError, UnicodeDecodeError):
        return 0.0  # a damaged lock file only costs an extra recovery


def _note_recovery(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{time.time():.6f}\n".encode("ascii"), 0)


def _aside_name(db: str) -> str:
    stem = f"{db}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    name, n = stem, 1
    while os.path.lexists(name):
        n += 1
        name = f"{stem}-{n}"
    return name


def _copy_aside(db: str, aside: str) -> bool:
    """Copy the damaged file (and its write-ahead log) for a post-mortem; False if the copy
    could not be made (a full disk): the recovery goes on without it."""
    try:
        shutil.copyfile(db, aside)
        with contextlib.suppress(FileNotFoundError):
            shutil.copyfile(db + "-wal", aside + "-wal")
    except OSError:
        for name in (aside, aside + "-wal"):
            with contextlib.suppress(OSError):
                os.remove(name)
        return False
    return True


def _reset_in_place(directory: str, db: str, timeout: float) -> None:
    """Overwrite the database at `db` with an empty diskcache database through sqlite's
    backup API, which takes the write lock and tells every connection that the file
    changed."""
    with tempfile.TemporaryDirectory(
        prefix=".llmcache-fresh-", dir=directory, ignore_cleanup_errors=True
    ) as fresh:
        diskcache.Cache(fresh, disk=SafeDisk, **_PRAGMAS).close()
        source = sqlite3.connect(os.path.join(fresh, DBNAME))
        try:
            target = sqlite3.connect(db, timeout=min(timeout, 0.05), isolation_level=None)
            try:
                try:
                    _backup(source, target, timeout)
                except sqlite3.DatabaseError:
                    if not _extend_to_header_size(db):
                        raise
                    _backup(source, target, timeout)
            finally:
                target.close()
        finally:
            source.close()


def _backup(source: sqlite3.Connection, target: sqlite3.Connection, timeout: float) -> None:
    """`source.backup(target)`, giving up after `timeout` seconds of a held write lock:
    Python's own loop would wait for it for ever (for ever indeed when the holder is the
    calling thread, inside a transaction)."""
    deadline = time.monotonic() + timeout

    def progress(status: int, remaining: int, total: int) -> None:
        if status in _BUSY_OR_LOCKED and time.monotonic() >= deadline:
            raise diskcache.Timeout("the database stayed locked by another writer")

    source.backup(target, progress=progress, sleep=0.005)


def _extend_to_header_size(db: str) -> bool:
    """Zero-fill a truncated database up to the size its header declares (sqlite will not
    write to a file shorter than that); False if there is nothing to extend."""
    try:
        with open(db, "rb") as f:
            header = f.read(100)
        size = os.path.getsize(db)
    except OSError:
        return False
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        return False
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    declared = page_size * int.from_bytes(header[28:32], "big")
    if declared <= size:
        return False
    os.truncate(db, declared)
    return True


class Recovery(NamedTuple):
    """What `recover_database` did: where the damaged bytes went (None: no copy could be
    made), and whether the file was renamed (stores must open the new one) rather than
    reset in place."""

    aside: str | None
    renamed: bool


def recover_database(
    directory: str, *, failed_at: float, reason: str, timeout: float, force: bool = False
) -> Recovery | None:
    """Recover the corrupt ``cache.db`` of `directory`: copy it aside, then reset it in
    place to an empty database (rename it aside if it cannot be written at all); log a
    warning.

    Returns None, doing nothing, if a recovery (by any thread or process) happened at or
    after `failed_at` (wall-clock seconds, minus a second for the time between meeting the
    damage and getting here) unless `force`. Raises OSError or ``sqlite3.Error`` if the
    file can neither be reset nor renamed (a full or read-only disk), `diskcache.Timeout`
    if another process holds the recovery lock or the write lock for longer than `timeout`.
    """
    db = os.path.join(directory, DBNAME)
    with _recovery_lock(directory, timeout) as fd:
        if not force and _last_recovery(fd) >= failed_at - 1.0:
            return None
        if not os.path.exists(db):
            return None
        aside = _aside_name(db)
        copied = _copy_aside(db, aside)
        try:
            _reset_in_place(directory, db, timeout)
            result = Recovery(aside if copied else None, renamed=False)
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):  # a full or read-only disk: renaming would not help
                raise
            if copied:
                for name in (aside, aside + "-wal"):
                    with contextlib.suppress(OSError):
                        os.remove(name)
            os.replace(db, aside)
            for name in (db + "-wal", db + "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(name, aside + name[len(db) :])
            result = Recovery(aside, renamed=True)
        _note_recovery(fd)
    if result.renamed:
        done = f"moved it aside to {result.aside}"
    elif result.aside is not None:
        done = f"kept a copy at {result.aside}"
    else:
        done = "could keep no copy of it (no space?)"
    logger.warning(
        "disk cache %s: the database is corrupt (%s); %s and started an empty one "
        "(value files of the old entries stay in the directory)",
        directory,
        reason,
        done,
    )
    return result


class Opened(NamedTuple):
    """An open diskcache, the inode of the database it opened, and where the damaged bytes
    of corrupt databases met while opening went."""

    cache: Any
    inode: int | None
    recovered: list[str | None]


def open_cache(directory: str, timeout: float, **settings: Any) -> Opened:
    """Open a diskcache, recovering a corrupt database (with a warning) and starting empty.

    Other errors (permissions, a full disk, a path that is a file) raise; the store decides
    whether they stop it (``strict=True``) or make it a miss-only tier.
    """
    db = os.path.join(directory, DBNAME)
    recovered: list[str | None] = []
    for attempt in range(3):
        before = _inode(db)
        try:
            cache = diskcache.Cache(
                directory, timeout=timeout, disk=SafeDisk, **_PRAGMAS, **settings
            )
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc) or attempt == 2:
                raise
            done = recover_database(
                directory,
                failed_at=time.time(),
                timeout=timeout,
                reason=f"{type(exc).__name__}: {exc}",
            )
            if done is not None:
                recovered.append(done.aside)
            continue  # recovered here or by another process: open again
        after = _inode(db)
        if before is None or after == before or attempt == 2:
            return Opened(cache, after, recovered)
        cache.close()  # renamed while opening: this connection may be on the old file
    raise AssertionError("unreachable")


class ReadOnlyDatabase:
    """A read-only sqlite connection to a cache database that leaves the directory exactly as
    it was: no write, and no file created or left behind.

    sqlite's ``mode=ro`` still creates the ``-wal`` and ``-shm`` files of a database in WAL
    mode (diskcache's) and leaves them there. So while no write-ahead log exists (no
    application has the database open, or every one closed it) the file is opened
    ``immutable``: read as a plain file, with no lock and no side file. When a log exists an
    application is writing, or left writes in it: the connection reads through the log and
    sqlite's locks, as any reader does (its side files exist already). A read that fails on
    an immutable connection is tried once more on a new connection (through the log if one
    appeared): an application may have written and checkpointed meanwhile.
    """

    def __init__(self, file: str | os.PathLike[str]) -> None:
        self.file = Path(file)
        self._con: sqlite3.Connection | None = None
        self._immutable = False

    def _log_exists(self) -> bool:
        return os.path.exists(f"{self.file}-wal")

    def _connect(self) -> sqlite3.Connection:
        if not self.file.is_file():  # sqlite would create it (mode=ro refuses; be plain)
            raise FileNotFoundError(f"{self.file}: no such database file")
        self._immutable = not self._log_exists()
        params = "?mode=ro&immutable=1" if self._immutable else "?mode=ro"
        self._con = sqlite3.connect(
            self.file.resolve().as_uri() + params,
            uri=True,
            isolation_level=None,
            check_same_thread=False,
        )
        return self._con

    def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        """All rows of one query. Raises ``sqlite3.Error`` or OSError."""
        con = self._con if self._con is not None else self._connect()
        try:
            return con.execute(sql, args).fetchall()
        except sqlite3.DatabaseError:
            if not self._immutable:
                raise
        self.close()
        return self._connect().execute(sql, args).fetchall()

    def problem(self) -> str | None:
        """What sqlite's ``quick_check`` finds wrong (it reads every page), None when the
        database is sound. Errors other than damage (permissions) raise."""
        try:
            rows = self.rows("PRAGMA quick_check(1)")
        except sqlite3.DatabaseError as exc:
            if is_corruption(exc):
                return str(exc)
            raise
        found = [" ".join(str(row[0]).split()) for row in rows]
        return None if found == ["ok"] else "; ".join(found)

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


def database_problem(path: str | os.PathLike[str]) -> str | None:
    """What sqlite's ``quick_check`` finds wrong with the database (a cache directory's
    ``cache.db``, or a database file), None when it is sound.

    Reads every page, so it finds damage no single get or set would meet, and changes
    nothing in the directory (see `ReadOnlyDatabase`). Errors other than corruption (no
    such file, permissions) raise.
    """
    db = Path(path) / DBNAME if Path(path).is_dir() else Path(path)
    reader = ReadOnlyDatabase(db)
    try:
        return reader.problem()
    finally:
        reader.close()


def parse_entry_hits(row: Any) -> tuple[float, int] | None:
    """(created_at, hits) from a side-cache row written by `Counters` (None if it is not
    one: another writer's row is never trusted)."""
    if type(row) is not str:
        return None
    created, _, hits = row.partition(" ")
    try:
        return float(created), int(hits)
    except ValueError:
        return None


class Counters:
    """This process's counters plus their persisted totals in a side cache.

    Counting happens in memory; `flush` adds what changed since the last flush to the side
    cache, at most once per `_FLUSH_SECONDS` from the hot paths, so counting a hit costs a
    lock, not a write. Three kinds of counts go there: the store's own (`stats`: reads,
    writes, faults), the calls the doors over the store answered (pulled from the sources
    given to `follow` at each flush, so a door's hit costs nothing more here), and each
    entry's hits (`entry_hits`, by key, with the entry's ``created_at`` so a replaced entry
    starts from zero).
    """

    def __init__(self, directory: str, timeout: float, errors: ErrorLog) -> None:
        self.stats = DiskStats()
        self.lock = threading.Lock()
        self.next_flush = time.monotonic() + _FLUSH_SECONDS
        # key -> [created_at, hits since the last flush]; written under `lock` by the store.
        self.entry_hits: dict[str, list[Any]] = {}
        self._flushed = dict.fromkeys(PERSISTED, 0)
        self._flush_lock = threading.Lock()
        self._errors = errors
        self._directory = directory
        self._timeout = timeout
        self._cache: Any = None  # opened by `open`, once the store's own database opened
        self._inode: int | None = None
        # Each source with the totals it reported at the last pull.
        self._sources: list[tuple[CallSource, dict[str, int]]] = []
        # Where the damaged bytes of side caches recovered at open went (None: no copy).
        self.recovered: list[str | None] = []
        _all_counters.add(self)

    def open(self) -> None:
        """Open the side cache if it is not open (counts stay per-process until it is)."""
        with self._flush_lock:
            if self._cache is None:
                self._open()

    def _open(self) -> None:
        try:
            opened = open_cache(self._directory, self._timeout, eviction_policy="none")
        except (*BACKEND_ERRORS, ValueError) as exc:
            self._errors.report("open stats", exc)
            return
        self._cache, self._inode = opened.cache, opened.inode
        self.recovered.extend(opened.recovered)
        try:
            if len(self._cache) == 0:  # a new side cache: counting starts now
                self._cache.add(SINCE, time.time())
        except BACKEND_ERRORS as exc:
            self._errors.report("open stats", exc)

    def follow(self, source: CallSource) -> None:
        """Add the counts `source` reports (running totals by `CALL_COUNTS` name) to the
        persisted call counts at each flush; a source given twice is followed once."""
        with self.lock:
            if all(known != source for known, _ in self._sources):
                self._sources.append((source, {}))

    def _pull(self) -> None:
        """Add what each followed source counted since the last pull (the caller holds
        ``_flush_lock``). Sources are called outside `lock`: a door may take its own lock."""
        with self.lock:
            sources = list(self._sources)
        for source, seen in sources:
            try:
                current = source()
            except Exception as exc:  # a door's failure must not stop the store's counting
                self._errors.report("read call counts", exc)
                continue
            delta: dict[str, int] = {}
            for name in CALL_COUNTS:
                value = current.get(name, 0)
                if type(value) is not int:
                    continue
                change = value - seen.get(name, 0)
                seen[name] = value
                if change:
                    # Fewer than last time: the door's counters were reset, it counted anew.
                    delta[name] = change if change > 0 else value
            if delta:
                with self.lock:
                    for name, n in delta.items():
                        field = f"call_{name}"
                        setattr(self.stats, field, getattr(self.stats, field) + n)

    def _failed(self, operation: str, exc: BaseException) -> None:
        """Report `exc`; recover a corrupt side cache, reopen one another process renamed
        (the caller holds ``_flush_lock``)."""
        self._errors.report(operation, exc)
        corrupt = is_corruption(exc)
        if corrupt:
            try:
                done = recover_database(
                    self._directory,
                    failed_at=time.time(),
                    reason=f"{type(exc).__name__}: {exc}",
                    timeout=self._timeout,
                )
            except BACKEND_ERRORS as recover_exc:
                self._errors.report("recover stats", recover_exc)
                return
            if done is not None and not done.renamed:
                return  # reset in place: the connections stay valid
        self._reopen_if_moved()

    def _reopen_if_moved(self) -> None:
        if db_inode(self._directory) == self._inode:
            return
        with contextlib.suppress(*BACKEND_ERRORS):
            self._cache.close()
        self._cache = None
        self._open()

    def recover(self, reason: str) -> str | None:
        """Recover the side cache now (it is corrupt): its bytes are copied aside (the copy's
        path is returned, None if none could be kept) and it starts empty. A side cache sound
        again by now (recovered when it was opened, or by another process) is left as it is.
        Raises what the recovery raised when it could not be done."""
        with self._flush_lock:
            if database_problem(self._directory) is None:  # recovered meanwhile
                return self.recovered[-1] if self.recovered else None
            done = recover_database(
                self._directory,
                failed_at=time.time(),
                reason=reason,
                timeout=self._timeout,
                force=True,
            )
            if self._cache is None:
                self._open()
            else:
                self._reopen_if_moved()
            if self._cache is not None:
                self._cache.add(SINCE, time.time())
        return None if done is None else done.aside

    def forget(self) -> None:
        """In a forked child: start from zero with fresh locks (the parent flushes its own
        counts, and a lock held by another thread at the fork would never be released)."""
        self.lock, self._flush_lock = threading.Lock(), threading.Lock()
        for name in PERSISTED:
            setattr(self.stats, name, 0)
        self._flushed = dict.fromkeys(PERSISTED, 0)
        self.entry_hits = {}
        # The sources' last totals were pulled just before the fork (`before_fork`): what
        # they report beyond them is this child's own calls.

    def before_fork(self) -> None:
        """Pull the doors' counts into this process's, so a forked child counts only the
        calls it makes itself."""
        with self._flush_lock:
            self._pull()

    def add(self, name: str) -> None:
        with self.lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)
        if time.monotonic() >= self.next_flush:
            self.flush()

    def _unflushed(self) -> dict[str, int]:
        current = self.stats.as_dict()
        return {name: current[name] - self._flushed[name] for name in PERSISTED}

    def flush(self) -> None:
        if not self._flush_lock.acquire(blocking=False):
            return  # another thread is flushing: its numbers include ours
        try:
            self.next_flush = time.monotonic() + _FLUSH_SECONDS
            self._pull()
            if self._cache is None:
                return
            with self.lock:
                delta = self._unflushed()
                entries, self.entry_hits = self.entry_hits, {}
            if not any(delta.values()) and not entries:
                return
            try:
                with self._cache.transact():
                    for name, n in delta.items():
                        if n:
                            self._cache.incr(name, n)
                    for key, (created, n) in entries.items():
                        self._add_entry_hits(key, created, n)
            except BACKEND_ERRORS as exc:
                with self.lock:  # kept for the next flush, as the counts are
                    for key, (created, n) in entries.items():
                        kept = self.entry_hits.setdefault(key, [created, 0])
                        if kept[0] == created:
                            kept[1] += n
                self._failed("flush stats", exc)
                return
            with self.lock:
                for name, n in delta.items():
                    self._flushed[name] += n
        finally:
            self._flush_lock.release()

    def _add_entry_hits(self, key: str, created: float, n: int) -> None:
        # One row per key: a replaced entry (another created_at) overwrites the old count.
        row = ENTRY_HITS + key
        before = parse_entry_hits(self._cache.get(row))
        if before is not None and before[0] == created:
            n += before[1]
        self._cache.set(row, f"{created!r} {n}")

    def totals(self) -> dict[str, int]:
        """Counts over every process that used the directory (this one included)."""
        self.flush()
        stored = dict.fromkeys(PERSISTED, 0)
        with self._flush_lock:  # no flush may move counts between the two reads below
            self._pull()
            if self._cache is not None:
                try:
                    stored = {name: int(self._cache.get(name, 0)) for name in PERSISTED}
                except (*BACKEND_ERRORS, CodecError, TypeError, ValueError) as exc:
                    self._failed("read stats", exc)
            with self.lock:
                delta = self._unflushed()
        return {name: stored[name] + delta[name] for name in PERSISTED}

    def reset(self) -> None:
        """Zero the persisted totals and hit counts; raises what the side cache raised if it
        could not."""
        with self._flush_lock:
            self._pull()  # the doors' counts so far belong to the time before the reset
            with self.lock:
                self._flushed = {name: getattr(self.stats, name) for name in PERSISTED}
                self.entry_hits = {}
            if self._cache is not None:
                self._cache.clear()  # no retry: diskcache would retry a full disk for ever
                self._cache.set(SINCE, time.time())

    def close(self) -> None:
        self.flush()
        if self._cache is not None:
            self._cache.close()


_all_counters: weakref.WeakSet[Counters] = weakref.WeakSet()


def _before_fork() -> None:
    for counters in list(_all_counters):
        counters.before_fork()


def _after_fork_in_child() -> None:
    # Nothing of the parent's may be used across a fork: not its sqlite connections (stores
    # see the new generation and ask diskcache, which checks the pid, for this process's
    # connection), nor its unflushed counts or locks.
    global _fork_generation
    _fork_generation += 1
    for counters in list(_all_counters):
        counters.forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
