"""`DiskReader`: a look into a `DiskStore` directory that changes nothing in it.

The ``llmcache`` command's ``stats``, ``keys`` and ``inspect`` read through it: no counter
moves, no expired or damaged entry is deleted, a corrupt database is reported and left as it
is, and no file is created (see `ReadOnlyDatabase`). Repairs are `DiskStore`'s
(``llmcache doctor --repair``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from diskcache.core import DBNAME

from llmcache._closing import Closing
from llmcache.entry import CachedResponse, Codec, CodecError, JSONCodec
from llmcache.stores._diskcache import (
    ENTRY_HITS,
    PERSISTED,
    SINCE,
    STATS_DIR,
    ReadOnlyDatabase,
    SafeDisk,
    parse_entry_hits,
)

__all__ = ["Damage", "DiskReader", "decode_row", "row_problem"]

_PAGE = 512  # rows read per query while walking the table


class Damage(NamedTuple):
    """An entry that cannot be read: its key (or what stands for a key that is not text),
    why, and its row in the database."""

    key: str
    reason: str
    row: int


def decode_row(
    disk: SafeDisk, codec: Codec, mode: int, filename: str | None, value: Any
) -> CachedResponse:
    """The entry a Cache row holds; raises `CodecError` saying why it cannot be read."""
    try:
        return codec.decode(disk.fetch(mode, filename, value, False))
    except CodecError:
        raise
    except UnicodeDecodeError as exc:
        raise CodecError(f"its value is not text ({exc})") from exc
    except OSError as exc:
        raise CodecError(
            f"its value file cannot be read ({type(exc).__name__}: {exc.strerror or exc})"
        ) from exc


def row_problem(
    disk: SafeDisk, codec: Codec, key: Any, raw: int, mode: int, filename: str | None, value: Any
) -> str | None:
    """Why the Cache row cannot be served as an entry, None when it can."""
    if not raw:
        return "its key was pickled by another program (never unpickled)"
    if type(key) is not str:
        return f"its key is {type(key).__name__}, not text (written by another program)"
    try:
        decode_row(disk, codec, mode, filename, value)
    except CodecError as exc:
        return str(exc)
    return None


def _label(rowid: int, key: Any, raw: int) -> str:
    if raw and type(key) is str:
        return key
    what = "a pickled key" if not raw else f"a {type(key).__name__} key"
    return f"<row {rowid}: {what}>"


class DiskReader(Closing):
    """A read-only view of the `DiskStore` directory `path`.

    Shows what the directory holds as it is: entries (expired ones not yet swept included),
    the counters every process persisted, each entry's hits. Never writes, never deletes,
    never repairs: damage raises (``sqlite3.DatabaseError`` from a corrupt database,
    `CodecError` from `peek` of an entry that cannot be read) and `check`, `damaged` and
    `check_statistics` report it. `codec` must be the one the store writes with.

    >>> import tempfile
    >>> from llmcache.stores.disk import DiskStore
    >>> path = tempfile.mkdtemp()
    >>> with DiskStore(path) as store:
    ...     store.set("k", CachedResponse(content="v"))
    ...     _ = store.get("k")
    >>> with DiskReader(path) as reader:
    ...     entry = reader.peek("k")
    ...     len(reader), entry.content, reader.hits_of("k", entry), reader.counters()["hits"]
    (1, 'v', 1, 1)
    """

    def __init__(self, path: str | os.PathLike[str], *, codec: Codec | None = None) -> None:
        self._path = Path(path)
        if not (self._path / DBNAME).is_file():
            raise FileNotFoundError(f"{self._path}: not a cache directory (no {DBNAME})")
        self._db = ReadOnlyDatabase(self._path / DBNAME)
        self._side = ReadOnlyDatabase(self._path / STATS_DIR / DBNAME)
        self._disk = SafeDisk(str(self._path))
        self._codec: Codec = JSONCodec() if codec is None else codec

    @property
    def path(self) -> Path:
        """The cache directory."""
        return self._path

    def _setting(self, name: str) -> int:
        rows = self._db.rows("SELECT value FROM Settings WHERE key = ?", (name,))
        return int(rows[0][0]) if rows and isinstance(rows[0][0], int) else 0

    def __len__(self) -> int:
        """Number of entries (expired ones not yet swept included), as `DiskStore` counts."""
        return self._setting("count")

    def volume(self) -> int:
        """Bytes on disk: the database's pages plus the value files, as diskcache counts."""
        [(page_size,)] = self._db.rows("PRAGMA page_size")
        [(page_count,)] = self._db.rows("PRAGMA page_count")
        return int(page_size) * int(page_count) + self._setting("size")

    def _rows(self, columns: str) -> Iterator[tuple[Any, ...]]:
        """Every Cache row (rowid first), a page of rows per query, in rowid order."""
        last = -1
        while True:
            rows = self._db.rows(
                f"SELECT rowid, {columns} FROM Cache WHERE rowid > ? ORDER BY rowid LIMIT {_PAGE}",
                (last,),
            )
            yield from rows
            if len(rows) < _PAGE:
                return
            last = rows[-1][0]

    def iterkeys(self) -> Iterator[str]:
        """Every text key, in the order the entries were stored."""
        for _, key, raw in self._rows("key, raw"):
            if raw and type(key) is str:
                yield key

    def peek(self, key: str) -> CachedResponse | None:
        """The entry under `key`, expired or not, or None; raises `CodecError` when it
        cannot be read (`row_problem` says why)."""
        rows = self._db.rows(
            "SELECT mode, filename, value FROM Cache WHERE key = ? AND raw = 1", (key,)
        )
        return decode_row(self._disk, self._codec, *rows[0]) if rows else None

    def damaged(self) -> Iterator[Damage]:
        """Every entry that cannot be read, and why."""
        for rowid, key, raw, mode, filename, value in self._rows("key, raw, mode, filename, value"):
            problem = row_problem(self._disk, self._codec, key, raw, mode, filename, value)
            if problem is not None:
                yield Damage(_label(rowid, key, raw), problem, rowid)

    def _side_rows(self, names: list[str]) -> dict[str, Any]:
        if not self._side.file.is_file():
            return {}  # no process counted anything yet
        marks = ", ".join("?" * len(names))
        return dict(
            self._side.rows(
                f"SELECT key, value FROM Cache WHERE raw = 1 AND key IN ({marks})", tuple(names)
            )
        )

    def counters(self) -> dict[str, Any]:
        """The counts every process persisted (`DiskStore.stats` names, the doors' call
        counts as ``call_<name>``) and ``since``: when counting (re)started (None: unknown).
        Counts not flushed yet by a running process (about a second's worth) are missing.
        Raises ``sqlite3.Error`` when the statistics cannot be read."""
        stored = self._side_rows([*PERSISTED, SINCE])
        counts: dict[str, Any] = {name: _count(stored.get(name)) for name in PERSISTED}
        since = stored.get(SINCE)
        counts["since"] = float(since) if isinstance(since, (int, float)) else None
        return counts

    def hits_of(self, key: str, entry: CachedResponse) -> int:
        """How many times `entry`, found under `key`, was served (flushed counts)."""
        row = parse_entry_hits(self._side_rows([ENTRY_HITS + key]).get(ENTRY_HITS + key))
        counted = row[1] if row is not None and row[0] == entry.created_at else 0
        return entry.hits + counted

    def check(self) -> str | None:
        """What is wrong with the database (sqlite's ``quick_check``, which reads every
        page), None when it is sound."""
        return self._db.problem()

    def check_statistics(self) -> str | None:
        """What is wrong with the statistics' database, None when it is sound or absent."""
        return self._side.problem() if self._side.file.is_file() else None

    def close(self) -> None:
        """Close the connections. Idempotent."""
        self._db.close()
        self._side.close()


def _count(value: Any) -> int:
    return value if type(value) is int else 0
