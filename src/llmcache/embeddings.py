"""A cache of embedding vectors, scoped by model, in memory and optionally in SQLite.

`EmbeddingCache` keeps each text's vector once per model: model-scoped unambiguous keys
(xxh3_128 of the canonical bytes of model and text), a bounded LRU front, optional TTL, one
SQL query for a whole `get_batch`, one transaction for a `set_batch`, a lock for threads,
recovery from a corrupt file, and vectors stored as raw little-endian float32 bytes (never
pickled).

Returned arrays are read-only and cannot be made writable, so no caller can change what
the cache holds (copy with ``np.array(v)`` when you need to modify one).

>>> cache = EmbeddingCache(max_entries=1000)
>>> cache.set("hello", "nomic-embed-text", [0.5, 0.25, 1.0])
>>> vec = cache.get("hello", "nomic-embed-text")
>>> vec.tolist(), vec.dtype.name, vec.flags.writeable
([0.5, 0.25, 1.0], 'float32', False)
>>> cache.get("hello", "other-model") is None
True
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from cachetools import LRUCache

from llmcache._closing import Closing
from llmcache.keys import canonical_bytes, hash_bytes

__all__ = ["EmbeddingCache", "Vector", "as_vector"]

logger = logging.getLogger(__name__)

Vector = npt.NDArray[np.float32]
_DISK_DTYPE = np.dtype("<f4")  # fixed byte order: a file moves between machines
_TABLE = "llmcache_embeddings"
_CHUNK = 500  # keys per IN (...) query; far below SQLite's variable limit
_SWEEP_EVERY = 1024  # rows written between sweeps of expired rows and the size trim


def as_vector(value: Any, field: str = "vector") -> Vector:
    """A private read-only 1-D float32 copy of ``value``; ``ValueError`` naming ``field``.

    >>> as_vector([1, 2]).flags.writeable
    False
    >>> as_vector([[1.0]])
    Traceback (most recent call last):
    ...
    ValueError: vector: expected a 1-D vector, got shape (1, 1)
    """
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{field}: not a vector of numbers ({exc})") from None
    if raw.dtype.kind not in "iuf":  # strings, objects, bools: never silently converted
        raise ValueError(f"{field}: expected numbers, got dtype {raw.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported just below
        arr: Vector = raw.astype(np.float32, copy=True)  # a copy: never alias the caller's
    if arr.ndim != 1 or arr.size == 0:
        what = "an empty vector" if arr.ndim == 1 else f"shape {arr.shape}"
        raise ValueError(f"{field}: expected a 1-D vector, got {what}")
    if not np.isfinite(arr).all():  # also catches float64 values that overflow float32
        raise ValueError(f"{field}: contains NaN or infinite values")
    arr.setflags(write=False)
    frozen: Vector = arr.view()  # a view of a read-only base cannot be made writable again
    return frozen


def _from_blob(blob: bytes, dim: int) -> Vector | None:
    if dim <= 0 or len(blob) != dim * 4:
        return None
    # Read-only and not re-writable: it views an immutable bytes object.
    arr: Vector = np.frombuffer(blob, dtype=_DISK_DTYPE)
    if sys.byteorder != "little":
        arr = arr.astype(np.float32)
        arr.setflags(write=False)
        arr = arr.view()  # as in as_vector: the view cannot be made writable
    return arr


class EmbeddingCache(Closing):
    """Embedding vectors by (model, text): an LRU in memory, optionally persisted to SQLite.

    ``max_entries`` bounds the memory front exactly and the SQLite file approximately (the
    oldest-written rows beyond it are trimmed every ~1000 writes). ``ttl_seconds`` makes
    entries expire; expired entries are never returned.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "emb.db")
    >>> with EmbeddingCache(path) as c:
    ...     c.set_batch({"a": [1.0, 0.0], "b": [0.0, 1.0]}, "m")
    >>> with EmbeddingCache(path) as c:
    ...     found = c.get_batch(["a", "b", "z"], "m")
    >>> found["a"].tolist(), found["z"]
    ([1.0, 0.0], None)
    """

    def __init__(
        self,
        persist_path: str | os.PathLike[str] | None = None,
        *,
        max_entries: int = 100_000,
        ttl_seconds: float | None = None,
    ) -> None:
        if type(max_entries) is not int or max_entries < 1:
            raise ValueError(f"max_entries: expected a positive int, got {max_entries!r}")
        if ttl_seconds is not None and not (0 < float(ttl_seconds) < math.inf):
            raise ValueError(
                f"ttl_seconds: expected a positive number or None, got {ttl_seconds!r}"
            )
        self.persist_path = Path(persist_path) if persist_path is not None else None
        self.max_entries = max_entries
        self.ttl_seconds = None if ttl_seconds is None else float(ttl_seconds)
        # Two locks: memory hits never wait behind disk I/O of another thread.
        self._mem_lock = threading.Lock()
        self._db_lock = threading.Lock()
        self._memory: LRUCache[str, tuple[Vector, float | None]] = LRUCache(max_entries)
        self._generation = 0  # bumped by clear(): a disk read racing it is not promoted
        self._writes_since_sweep = 0
        self._closed = False
        self._db_failed = False
        self._counters = {
            "hits": 0,
            "misses": 0,
            "memory_hits": 0,
            "disk_hits": 0,
            "writes": 0,
            "errors": 0,
        }
        self._db: sqlite3.Connection | None = None
        if self.persist_path is not None:
            self._db = self._open(self.persist_path)

    # -- SQLite ------------------------------------------------------------------------------

    def _open(self, path: Path) -> sqlite3.Connection:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._connect(path)
        except sqlite3.OperationalError:
            raise  # locked, unreachable, read-only ...: not corruption, keep the file
        except sqlite3.DatabaseError as exc:
            aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
            logger.warning(
                "embedding cache %s is unreadable (%s); moved it to %s and started an empty one",
                path,
                exc,
                aside,
            )
            os.replace(path, aside)
            for suffix in ("-wal", "-shm"):
                side = path.with_name(path.name + suffix)
                if side.exists():
                    os.replace(side, aside.with_name(aside.name + suffix))
            return self._connect(path)

    def _connect(self, path: Path) -> sqlite3.Connection:
        # Autocommit mode: transactions are explicit (one per set_batch), reads take none.
        db = sqlite3.connect(path, timeout=10.0, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # A cache may lose its last writes on power loss; WAL keeps the file consistent.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"""CREATE TABLE IF NOT EXISTS {_TABLE} (
                key TEXT PRIMARY KEY, model TEXT NOT NULL, dim INTEGER NOT NULL,
                vector BLOB NOT NULL, created_at REAL NOT NULL, expires_at REAL)""")
            db.execute(f"CREATE INDEX IF NOT EXISTS {_TABLE}_created ON {_TABLE} (created_at)")
            db.execute(
                f"CREATE INDEX IF NOT EXISTS {_TABLE}_expires "
                f"ON {_TABLE} (expires_at) WHERE expires_at IS NOT NULL"
            )
            db.execute(
                f"SELECT key, model, dim, vector, created_at, expires_at FROM {_TABLE} LIMIT 1"
            ).fetchall()
        except BaseException:
            db.close()
            raise
        return db

    def _db_error(self, what: str, exc: Exception) -> None:
        # A failing disk tier degrades to memory-only behaviour; logged once, always counted.
        with self._mem_lock:
            self._counters["errors"] += 1
        if not self._db_failed:
            self._db_failed = True
            logger.warning(
                "embedding cache %s: %s failed (%s); continuing from memory",
                self.persist_path,
                what,
                exc,
            )

    def _sweep(self, db: sqlite3.Connection, now: float) -> None:
        # Caller holds _db_lock and has an open transaction.
        db.execute(f"DELETE FROM {_TABLE} WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))
        (count,) = db.execute(f"SELECT COUNT(*) FROM {_TABLE}").fetchone()
        if count > self.max_entries:
            db.execute(
                f"DELETE FROM {_TABLE} WHERE key IN (SELECT key FROM {_TABLE} "
                f"ORDER BY created_at LIMIT ?)",
                (count - self.max_entries,),
            )
        self._writes_since_sweep = 0

    # -- keys and memory ---------------------------------------------------------------------

    @staticmethod
    def make_key(text: str, model: str) -> str:
        """The cache key of ``text`` under ``model`` (model-scoped, unambiguous)."""
        if type(text) is not str:
            raise TypeError(f"text: expected str, got {type(text).__name__}")
        if type(model) is not str or not model:
            raise ValueError("model: a model name is required")
        return hash_bytes(canonical_bytes({"kind": "embedding", "model": model, "text": text}))

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("EmbeddingCache is closed")

    def _mem_get(self, key: str, now: float) -> Vector | None:
        # Caller holds _mem_lock.
        found = self._memory.get(key)
        if found is None:
            return None
        vec, expires = found
        if expires is not None and expires <= now:
            del self._memory[key]
            return None
        return vec

    # -- public API --------------------------------------------------------------------------

    def get(self, text: str, model: str) -> Vector | None:
        """The cached vector (read-only float32) or None."""
        return self.get_batch([text], model)[text]

    def get_batch(self, texts: Iterable[str], model: str) -> dict[str, Vector | None]:
        """Vectors for many texts: memory first, then ONE query (per 500 keys) for the rest.

        >>> c = EmbeddingCache(); c.set("x", "m", [1.0])
        >>> {t: v is not None for t, v in c.get_batch(["x", "y"], "m").items()}
        {'x': True, 'y': False}
        """
        self._check_open()
        keys = {text: self.make_key(text, model) for text in texts}
        now = time.time()
        out: dict[str, Vector | None] = {}
        missing: dict[str, str] = {}  # key -> text
        with self._mem_lock:
            generation = self._generation
            for text, key in keys.items():
                vec = self._mem_get(key, now)
                out[text] = vec
                if vec is None:
                    missing[key] = text
            self._counters["memory_hits"] += len(keys) - len(missing)
        found = self._disk_get(list(missing), now) if missing and self._db else {}
        with self._mem_lock:
            if found and generation == self._generation:
                for key, entry in found.items():
                    self._memory[key] = entry
            for key, (vec, _) in found.items():
                out[missing[key]] = vec
            self._counters["disk_hits"] += len(found)
            self._counters["hits"] += len(keys) - len(missing) + len(found)
            self._counters["misses"] += len(missing) - len(found)
        return out

    def _disk_get(self, keys: list[str], now: float) -> dict[str, tuple[Vector, float | None]]:
        found: dict[str, tuple[Vector, float | None]] = {}
        with self._db_lock:
            db = self._db
            if db is None:
                return found
            try:
                for i in range(0, len(keys), _CHUNK):
                    chunk = keys[i : i + _CHUNK]
                    marks = ",".join("?" * len(chunk))
                    rows = db.execute(
                        f"SELECT key, dim, vector, expires_at FROM {_TABLE} "
                        f"WHERE key IN ({marks}) AND (expires_at IS NULL OR expires_at > ?)",
                        (*chunk, now),
                    ).fetchall()
                    for key, dim, blob, expires in rows:
                        vec = _from_blob(blob, dim)
                        if vec is not None:  # a malformed row is a miss, not a wrong vector
                            found[key] = (vec, expires)
            except sqlite3.Error as exc:
                self._db_error("read", exc)
        return found

    def set(self, text: str, model: str, vector: Any) -> None:
        """Cache ``vector`` (list or array; 1-D, finite) for ``text`` under ``model``."""
        self._check_open()
        self._store([(self.make_key(text, model), as_vector(vector, "vector"))], model)

    def set_batch(self, embeddings: Mapping[str, Any], model: str) -> None:
        """Cache many vectors in one transaction; all are validated before any is stored.

        >>> c = EmbeddingCache(); c.set_batch({"a": [1.0], "b": [2.0]}, "m"); len(c)
        2
        """
        self._check_open()
        self._store(
            [
                (self.make_key(text, model), as_vector(vec, f"embeddings[{text!r}]"))
                for text, vec in embeddings.items()
            ],
            model,
        )

    def _store(self, entries: list[tuple[str, Vector]], model: str) -> None:
        now = time.time()
        expires = None if self.ttl_seconds is None else now + self.ttl_seconds
        if not entries:
            return
        with self._mem_lock:
            for key, vec in entries:
                self._memory[key] = (vec, expires)
            self._counters["writes"] += len(entries)
        if self._db is None:
            return
        rows = [
            (key, model, int(vec.size), vec.astype(_DISK_DTYPE, copy=False).tobytes(), now, expires)
            for key, vec in entries
        ]
        with self._db_lock:
            db = self._db
            if db is None:
                return
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.executemany(
                        f"INSERT OR REPLACE INTO {_TABLE} (key, model, dim, "
                        f"vector, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                        rows,
                    )
                    self._writes_since_sweep += len(rows)
                    if self._writes_since_sweep >= _SWEEP_EVERY:
                        self._sweep(db, now)
                    db.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                self._db_error("write", exc)

    def sweep(self) -> None:
        """Delete expired rows and trim the file to ``max_entries`` now (also done on writes)."""
        self._check_open()
        with self._db_lock:
            if self._db is None:
                return
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._sweep(self._db, time.time())
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                self._db_error("sweep", exc)

    def clear(self) -> None:
        """Remove every entry, in memory and on disk."""
        self._check_open()
        with self._mem_lock:
            self._memory.clear()
            self._generation += 1
        with self._db_lock:
            if self._db is not None:
                try:
                    self._db.execute(f"DELETE FROM {_TABLE}")
                except sqlite3.Error as exc:
                    self._db_error("clear", exc)

    def __len__(self) -> int:
        """Entries in memory."""
        return len(self._memory)

    def counters(self) -> dict[str, int | float]:
        """Cheap numeric counters (no I/O): a `MetricsCollector.register_source` provider."""
        with self._mem_lock:
            out: dict[str, int | float] = dict(self._counters)
            out["memory_entries"] = len(self._memory)
        return out

    def stats(self) -> dict[str, Any]:
        """Counters plus sizes and settings (counts the SQLite rows: not for hot paths)."""
        out: dict[str, Any] = self.counters()
        total = out["hits"] + out["misses"]
        out["hit_rate"] = round(100.0 * out["hits"] / total, 1) if total else 0.0
        out["persisted_entries"] = 0
        with self._db_lock:
            if self._db is not None:
                try:
                    out["persisted_entries"] = self._db.execute(
                        f"SELECT COUNT(*) FROM {_TABLE}"
                    ).fetchone()[0]
                except sqlite3.Error as exc:
                    self._db_error("count", exc)
        out.update(
            max_entries=self.max_entries,
            ttl_seconds=self.ttl_seconds,
            persist_path=str(self.persist_path) if self.persist_path else None,
        )
        return out

    def close(self) -> None:
        """Close the SQLite file. Idempotent; the cache cannot be used afterwards."""
        with self._db_lock:
            self._closed = True
            if self._db is not None:
                self._db.close()
                self._db = None
