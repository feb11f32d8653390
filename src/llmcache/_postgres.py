"""Postgres plumbing shared by the exact tier (`llmcache.stores.postgres`) and the semantic
tier (`llmcache.vector.pgvector`): the lazy import of psycopg, connection settings, the
pools, the circuit breaker, the error classes and the schema registry.

Nothing here imports psycopg at module level: ``import llmcache`` works without the
``postgres`` extra, and using a Postgres tier without it raises an ImportError naming it.

Errors, as the tiers see them::

    psycopg.Error
    ├── OperationalError        "down": connection refused or lost, pool timeout,
    │                           statement timeout; opens the circuit (see `Breaker`)
    └── any other               a bad row or statement: counted, the circuit stays closed
    SchemaError (StoreError)    the table holds a schema this llmcache does not know:
                                raised to the caller, never turned into a miss

Every table an llmcache tier creates is listed in ``llmcache_schema`` (name, kind, version,
and for semantic tables the embedder and its dimension), so a table created by another
version, or for the other tier, or by another program, is refused with a clear error.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import xxhash

from llmcache.errors import LLMCacheError, StoreError
from llmcache.stores._server_args import matching, positive, require_extra
from llmcache.stores._server_tier import ServerTier

T = TypeVar("T")

if TYPE_CHECKING:
    from psycopg import AsyncConnection, Connection
    from psycopg_pool import AsyncConnectionPool, ConnectionPool

    #: What `_async_run` / `_sync_run` run on a pooled connection.
    AsyncWork = Callable[[AsyncConnection[Any]], Awaitable[T]]
    Work = Callable[[Connection[Any]], T]

__all__ = [
    "MISSING_EXTRA",
    "REGISTRY_DDL",
    "SCHEMA_LOCK",
    "SCHEMA_VERSION",
    "SWEEP_BATCH",
    "SWEEP_ROUNDS",
    "Fetch",
    "PgBase",
    "PgSettings",
    "SchemaError",
    "Unavailable",
    "import_psycopg",
    "lock_id",
    "redact_conninfo",
]

logger = logging.getLogger("llmcache.postgres")

#: What a one-statement query returns: its first row, every row, or its row count.
Fetch = Literal["one", "all", "rowcount"]


MISSING_EXTRA = (
    "the Postgres tiers need the postgres extra: install llmcache[postgres] "
    "(pip install 'llmcache[postgres]')"
)

#: The layout of the tables this llmcache creates; a table recorded with another version
#: is refused (`SchemaError`) rather than read with the wrong assumptions.
SCHEMA_VERSION = 1

# Serializes schema creation across processes (CREATE TABLE IF NOT EXISTS is not safe
# against a concurrent twin); a constant key in the bigint advisory-lock space.
SCHEMA_LOCK = 0x6C6D_6361_6368_6501

SWEEP_BATCH = 2000  # rows per sweep statement: keeps one statement short
SWEEP_ROUNDS = 10  # sweep statements per maintenance run at most; the rest waits
EVICT_BATCH = 10_000
MAINTENANCE_TIMEOUT_MS = 10_000  # sweeps and evictions may take longer than one lookup

# Table names become identifiers with suffixes (``_ns``, ``_lru`` ...): a plain lower-case
# word short enough that every derived name stays within Postgres's 63 bytes.
_TABLE = re.compile(r"[a-z_][a-z0-9_]{0,47}\Z")

REGISTRY_DDL = """
CREATE TABLE IF NOT EXISTS llmcache_schema (
    name text PRIMARY KEY,
    kind text NOT NULL,
    version integer NOT NULL,
    embedder text,
    dim integer
)"""


class SchemaError(StoreError):
    """A table holds a schema this llmcache cannot use (another version, another kind of
    tier, another embedder, or a table llmcache did not create)."""


def import_psycopg() -> ModuleType:
    """psycopg, after checking that psycopg-pool is there too, or an ImportError naming the
    extra to install."""
    return require_extra(MISSING_EXTRA, "psycopg", "psycopg_pool")


def check_table(table: str) -> str:
    expected = "a lower-case identifier of at most 48 characters (letters, digits, '_')"
    return matching("table", table, _TABLE, expected)


def check_namespace(namespace: str) -> str:
    if not isinstance(namespace, str) or not 0 < len(namespace) <= 200:
        raise ValueError(
            f"namespace: expected a non-empty str of at most 200 characters, got {namespace!r}"
        )
    return namespace


def redact_conninfo(conninfo: str) -> str:
    """`conninfo` (a URL or ``key=value`` string) with its password shown as ``***``, safe
    to log and to show in a repr."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        params = conninfo_to_dict(conninfo)
    except Exception:  # unparsable: show nothing of it rather than risk the secret
        return "<postgres conninfo>"
    if "password" in params:
        params["password"] = "***"
    return make_conninfo("", **{k: v for k, v in params.items() if v is not None})


def lock_id(*parts: str) -> int:
    """A signed 64-bit advisory-lock key for `parts` (xxh3_64; a collision only makes two
    keys wait for each other, never share an answer)."""
    value = xxhash.xxh3_64_intdigest("\0".join(parts).encode())
    return value - (1 << 64) if value >= 1 << 63 else value


class Unavailable(LLMCacheError, ConnectionError):
    """The circuit is open: the call was not sent."""


class PgSettings:
    """How to reach the server: the conninfo and the limits every call runs within.

    `statement_timeout` goes to the server (``-c statement_timeout``), so a slow statement
    is cancelled there and the call becomes a miss; `connect_timeout` bounds the wait for a
    pooled connection (a dead server, or every connection busy). Sessions also run with
    ``synchronous_commit=off``: a cache write or a hit's recency update need not wait for
    the WAL flush (a crash may lose the last few hundred milliseconds of writes, never
    corrupt a row, as Redis's default persistence would); deletes and clears still wait
    for it, so none is undone by a crash.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        statement_timeout: float,
        connect_timeout: float,
        pool_size: int,
        lock_connections: int,
        application_name: str,
    ) -> None:
        from psycopg.conninfo import conninfo_to_dict

        if not isinstance(conninfo, str):
            raise TypeError(f"url: expected str, got {type(conninfo).__name__}")
        for name, value in (("pool_size", pool_size), ("lock_connections", lock_connections)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
        self.conninfo = conninfo
        self.safe = redact_conninfo(conninfo)
        self.statement_timeout = positive("statement_timeout", statement_timeout)
        self.connect_timeout = positive("connect_timeout", connect_timeout)
        self.pool_size = pool_size
        self.lock_connections = lock_connections
        own = conninfo_to_dict(conninfo).get("options") or ""
        options = (
            f"{own} -c statement_timeout={max(1, int(self.statement_timeout * 1000))} "
            f"-c synchronous_commit=off"
        ).strip()
        self.kwargs: dict[str, Any] = {
            "autocommit": True,
            # libpq counts whole seconds and at least 2; the pool's wait is the real bound.
            "connect_timeout": max(2, math.ceil(self.connect_timeout)),
            "application_name": application_name,
            "options": options,
        }


class _Pools:
    """One psycopg pool for sync calls and one per event loop for coroutines (asyncio
    connections belong to the loop that opened them), created on first use.

    A closed pool cannot be reopened, so `close` forgets the pools and the next call
    creates new ones: a closed store may be used again.
    """

    def __init__(
        self,
        settings: PgSettings,
        *,
        max_size: int,
        name: str,
        reset: Callable[[Any], None] | None = None,
        areset: Callable[[Any], Awaitable[None]] | None = None,
    ) -> None:
        #: What every pool of this kind opens with, sync or async (only the reset hook
        #: differs). A pool with a reset hook (the lock sessions) keeps no idle session.
        self._args: dict[str, Any] = {
            "conninfo": settings.conninfo,
            "kwargs": settings.kwargs,
            "min_size": 1 if reset is None and areset is None else 0,
            "max_size": max_size,
            "open": False,
            "name": name,
            "timeout": settings.connect_timeout,
            "num_workers": 2,
        }
        self._reset = reset
        self._areset = areset
        self._sync: ConnectionPool[Any] | None = None
        self._async: dict[asyncio.AbstractEventLoop, AsyncConnectionPool[Any]] = {}
        self._lock = threading.Lock()

    def sync_pool(self) -> ConnectionPool[Any]:
        pool = self._sync
        if pool is not None:
            return pool
        from psycopg_pool import ConnectionPool

        with self._lock:
            if self._sync is None:
                pool = ConnectionPool(**self._args, reset=self._reset)
                pool.open(wait=False)
                self._sync = pool
            return self._sync

    async def async_pool(self) -> AsyncConnectionPool[Any]:
        loop = asyncio.get_running_loop()
        pool = self._async.get(loop)
        if pool is not None:
            return pool
        from psycopg_pool import AsyncConnectionPool

        for old in [lp for lp in self._async if lp.is_closed()]:
            del self._async[old]  # its loop is gone; nothing left to close it with
        pool = AsyncConnectionPool(**self._args, reset=self._areset)
        await pool.open(wait=False)
        # Published only once open; a coroutine of this loop that got here first wins.
        first = self._async.setdefault(loop, pool)
        if first is not pool:
            await pool.close()
        return first

    def close(self) -> None:
        """Close the sync pool; pools of other loops that still run are closed on their
        loop (prefer `aclose` inside a loop)."""
        with self._lock:
            pool, self._sync = self._sync, None
        pools, self._async = self._async, {}
        for loop, apool in pools.items():
            if loop.is_running() and not loop.is_closed():
                asyncio.run_coroutine_threadsafe(apool.close(), loop)
        if pool is not None:
            pool.close()

    async def aclose(self) -> None:
        """Close this loop's pool, then the rest (see `close`)."""
        apool = self._async.pop(asyncio.get_running_loop(), None)
        if apool is not None:
            await apool.close()
        self.close()


def _unlock_all(conn: Connection[Any]) -> None:
    # A lock connection goes back to its pool holding no lock, whatever happened to its
    # holder (an unlock that raised, a holder that forgot).
    conn.execute("SELECT pg_advisory_unlock_all()")


async def _aunlock_all(conn: AsyncConnection[Any]) -> None:
    await conn.execute("SELECT pg_advisory_unlock_all()")


class PgBase(ServerTier):
    """Settings, pools, breaker, counters and schema bookkeeping of a Postgres tier.

    Subclasses set `kind`, implement `_tier_columns` (their entries' own columns) and,
    when they have more, `_indexes` and (when they keep more in the registry)
    `_check_row`. Both tiers' tables have the columns ``namespace``, ``key``,
    ``expires_at`` and ``accessed_at`` and a ``{table}_ns`` table of namespaces, so the
    schema, the statements on those (get by key, count, delete, touch, clear, sweep,
    evict) and the maintenance cadence are here; the I/O around them is in
    ``_async_postgres_io`` (and its generated sync twin).

    The namespace row orders writes against `clear`: a write takes a share lock on it
    (``FOR SHARE`` in its INSERT), and `clear` an exclusive one before it deletes, in one
    transaction. A write either commits before the clear (and is deleted by it) or waits
    for it and lands after it: no entry written before a successful clear is read after
    it, and a read is one primary-key lookup with no generation to compare.
    """

    kind = "exact"
    #: Whether every connection needs `_async_prepare` / `_sync_prepare` before use.
    _per_connection = False

    def __init__(
        self,
        url: str,
        *,
        table: str,
        namespace: str,
        statement_timeout: float,
        connect_timeout: float,
        pool_size: int,
        lock_connections: int,
        retry_after: float,
        name: str,
        max_entries: int | None,
        sweep_interval: float,
        touch_after: float,
        clock: Callable[[], float],
    ) -> None:
        import_psycopg()
        import psycopg
        from psycopg_pool import PoolTimeout

        self._table = check_table(table)
        self._namespace = check_namespace(namespace)
        self._settings = PgSettings(
            url,
            statement_timeout=statement_timeout,
            connect_timeout=connect_timeout,
            pool_size=pool_size,
            lock_connections=lock_connections,
            application_name="llmcache",
        )
        label = f"{name}({self._settings.safe}, table={table!r}, namespace={namespace!r})"
        self._label = label
        self._pools = _Pools(self._settings, max_size=pool_size, name=f"llmcache:{table}")
        self._lock_pools = _Pools(
            self._settings,
            max_size=lock_connections,
            name=f"llmcache-locks:{table}",
            reset=_unlock_all,
            areset=_aunlock_all,
        )
        self._down_errors: tuple[type[BaseException], ...] = (
            psycopg.OperationalError,
            psycopg.InterfaceError,
            PoolTimeout,
            OSError,
            asyncio.TimeoutError,
            Unavailable,
        )
        self._errors: tuple[type[BaseException], ...] = (psycopg.Error, *self._down_errors)
        self._ready = False
        self._schema_error: SchemaError | None = None
        self._guard(label, positive("retry_after", retry_after), server="Postgres", log=logger)
        if max_entries is not None and (
            isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1
        ):
            raise ValueError(f"max_entries: expected an int >= 1 or None, got {max_entries!r}")
        #: Entries kept in this namespace before the least recently used are evicted
        #: (checked every ``max_entries // 10`` writes of this process, and every sweep).
        self.max_entries = max_entries
        self._evict_every = 1 if max_entries is None else max(1, max_entries // 10)
        self._sweep_interval = positive("sweep_interval", sweep_interval)
        self._touch_after = positive("touch_after", touch_after)
        self._clock = clock
        self._writes = 0
        self._next_sweep = 0.0  # time.monotonic() of the next sweep; the first write sweeps
        self._maintaining = False
        self._maintenance_lock = threading.Lock()
        self._swept = 0
        self._evicted = 0
        t = self._table
        self._sql_namespace_row = (
            f"INSERT INTO {t}_ns (namespace, generation) "
            f"VALUES (%s, 0) ON CONFLICT (namespace) DO NOTHING"
        )
        self._sql_len = (
            f"SELECT count(*) FROM {t} WHERE namespace = %s "
            f"AND (expires_at IS NULL OR expires_at > %s)"
        )
        self._sql_delete = f"DELETE FROM {t} WHERE namespace = %s AND key = %s RETURNING expires_at"
        self._sql_touch = f"UPDATE {t} SET accessed_at = %s WHERE namespace = %s AND key = ANY(%s)"
        self._sql_bump = (
            f"UPDATE {t}_ns SET generation = generation + 1 "
            f"WHERE namespace = %s RETURNING generation"
        )
        self._sql_clear = f"DELETE FROM {t} WHERE namespace = %s"
        self._sql_maintenance_timeout = f"SET LOCAL statement_timeout = {MAINTENANCE_TIMEOUT_MS}"
        # Sessions commit asynchronously (see `PgSettings`); a delete or a clear that
        # returned must survive a crash, so theirs wait for the WAL flush.
        self._sql_durable = "SET LOCAL synchronous_commit = on"
        self._sql_sweep = self._delete_rows(
            f"WHERE namespace = %s AND expires_at <= %s LIMIT {SWEEP_BATCH}"
        )
        self._sql_evict = self._delete_rows(
            f"WHERE namespace = %s ORDER BY accessed_at LIMIT "
            f"LEAST({EVICT_BATCH}, GREATEST(0, (SELECT count(*) FROM {t} "
            f"WHERE namespace = %s) - %s))"
        )
        self._sql_get = (
            f"SELECT value, expires_at, accessed_at FROM {t} WHERE namespace = %s AND key = %s"
        )

    def _delete_rows(self, select: str) -> str:
        """A DELETE of the rows that ``SELECT ctid FROM {table} <select>`` picks: a bounded
        batch (a LIMIT in `select`), so one maintenance statement stays short."""
        t = self._table
        return f"DELETE FROM {t} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {t} {select}))"

    # -- what subclasses describe ------------------------------------------------------------

    def _tier_columns(self) -> str:
        """The entries table's columns besides ``namespace``, ``key``, ``expires_at`` and
        ``accessed_at`` (SQL column definitions, comma-separated)."""
        raise NotImplementedError

    def _indexes(self) -> Sequence[str]:
        """CREATE INDEX statements of the entries table beyond the expiry index."""
        return ()

    def _schema_ddl(self) -> Sequence[str]:
        """The CREATE statements of this tier's tables (``IF NOT EXISTS``): the entries
        table (its pages keep 10% free, so a refresh of ``accessed_at`` is a HOT update),
        its indexes, and the table of namespaces."""
        t = self._table
        return [
            f"CREATE TABLE IF NOT EXISTS {t} (namespace text NOT NULL, key text NOT NULL, "
            f"{self._tier_columns()}, expires_at double precision, "
            f"accessed_at double precision NOT NULL, PRIMARY KEY (namespace, key)) "
            f"WITH (fillfactor = 90)",
            f"CREATE INDEX IF NOT EXISTS {t}_expiry ON {t} (namespace, expires_at) "
            f"WHERE expires_at IS NOT NULL",
            *self._indexes(),
            f"CREATE TABLE IF NOT EXISTS {t}_ns (namespace text PRIMARY KEY, "
            f"generation bigint NOT NULL)",
        ]

    def _registry_row(self) -> tuple[Any, ...]:
        """(kind, version, embedder, dim) recorded for this tier's table."""
        return (self.kind, SCHEMA_VERSION, None, None)

    def _check_row(self, row: tuple[Any, ...]) -> None:
        """Raise `SchemaError` unless the recorded ``(kind, version, embedder, dim)`` of
        this table is one this tier can use."""
        kind, version = row[0], row[1]
        if kind != self.kind:
            raise self._refused(
                f"holds llmcache {kind} entries, not {self.kind} ones: give this tier another table"
            )
        if version != SCHEMA_VERSION:
            raise self._refused(
                f"has llmcache schema version {version}; this llmcache knows version "
                f"{SCHEMA_VERSION} only (upgrade llmcache, or use another table)"
            )

    def _refused(self, why: str) -> SchemaError:
        """The error that refuses to open this tier's table: ``table '<name>' <why>``."""
        return SchemaError(f"table {self._table!r} {why}", store=self._label, operation="open")

    # -- counting and faults -----------------------------------------------------------------

    def _io_failed(self, exc: BaseException) -> None:
        if isinstance(exc, self._down_errors) and not isinstance(exc, Unavailable):
            self._breaker.failure(exc)

    def _unavailable(self) -> Unavailable:
        return Unavailable(
            f"Postgres skipped for {self._breaker.retry_after}s after a "
            f"failure ({self._breaker.last_error})"
        )

    def _dropped(self, operation: str, dropped: int) -> None:
        """Count `dropped` writes of `operation` that found no namespace row (deleted by
        hand) to lock; the next call re-creates the row."""
        self._ready = False
        self._failed(
            operation,
            StoreError(
                f"{dropped} write(s) dropped: the row of namespace "
                f"{self._namespace!r} in {self._table}_ns is missing",
                store=self._label,
                operation=operation,
            ),
        )

    # -- recency and maintenance ---------------------------------------------------------

    def _stale(self, accessed_at: Any) -> bool:
        """Is a hit's ``accessed_at`` old enough to be refreshed? (Hits seldom write.)"""
        return (
            not isinstance(accessed_at, float) or self._clock() - accessed_at >= self._touch_after
        )

    def _maintenance_due(self, written: int) -> bool:
        """Claim the next sweep (and eviction check) when it is due: every
        `sweep_interval` seconds, or every ``max_entries // 10`` writes. One caller per
        process at a time; it calls `_maintenance_done` after."""
        with self._maintenance_lock:
            self._writes += written
            now = time.monotonic()
            due = now >= self._next_sweep or (
                self.max_entries is not None and self._writes >= self._evict_every
            )
            if not due or self._maintaining:
                return False
            self._maintaining = True
            self._writes = 0
            if now >= self._next_sweep:
                self._next_sweep = now + self._sweep_interval
            return True

    def _maintenance_done(self, swept: int, evicted: int) -> None:
        with self._maintenance_lock:
            self._maintaining = False
        with self._count_lock:
            self._swept += swept
            self._evicted += evicted

    @property
    def table(self) -> str:
        """The table holding this tier's entries."""
        return self._table

    @property
    def namespace(self) -> str:
        """The namespace of this tier's rows (``clear`` and ``len`` touch only these)."""
        return self._namespace

    def _connectivity(self) -> dict[str, Any]:
        return {
            **self._circuit(),
            "namespace": self._namespace,
            "table": self._table,
            "url": self._settings.safe,
        }
