"""What the sync and async halves of `PostgresStore` share: the table layout and its SQL,
settings, counters, encoding and decoding, and the lock keys.

Layout (schema version 1; ``{t}`` is the store's table)::

    {t}     namespace, key          the primary key
            value                   the codec's bytes (bytea; never a pickle)
            expires_at              wall-clock seconds, NULL for never (swept on a cadence)
            accessed_at             last use, refreshed at most every `touch_after` seconds;
                                    not indexed, and pages keep 10% free, so a refresh is
                                    a HOT update that writes no index (eviction, rare,
                                    sorts the namespace instead)
    {t}_ns  namespace, generation   one row per namespace: the lock that orders writes
                                    against `clear` (see `llmcache._postgres.PgBase`), and
                                    a count of clears
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from llmcache._postgres import PgBase, lock_id
from llmcache.entry import CachedResponse, Codec, JSONCodec
from llmcache.stores._server_args import positive
from llmcache.stores.base import check_ttl

__all__ = ["Held", "PostgresCore"]


class Held(NamedTuple):
    """A single-flight lock held by this process: the session that holds it (the lock
    lives as long as that session), its pool, and the advisory-lock key."""

    conn: Any
    pool: Any
    ident: int


class PostgresCore(PgBase):
    """Settings, SQL, counters and the codec of a `PostgresStore` (see its docstring for
    the constructor's arguments)."""

    kind = "exact"

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "default",
        table: str = "llmcache_entries",
        default_ttl: float | None = None,
        max_entries: int | None = None,
        codec: Codec | None = None,
        statement_timeout: float = 0.5,
        connect_timeout: float = 1.0,
        pool_size: int = 10,
        lock_connections: int = 10,
        retry_after: float = 1.0,
        lock_lease: float = 10.0,
        lock_wait: float = 30.0,
        touch_after: float = 10.0,
        sweep_interval: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            url,
            table=table,
            namespace=namespace,
            statement_timeout=statement_timeout,
            connect_timeout=connect_timeout,
            pool_size=pool_size,
            lock_connections=lock_connections,
            retry_after=retry_after,
            name="PostgresStore",
            max_entries=max_entries,
            sweep_interval=sweep_interval,
            touch_after=touch_after,
            clock=clock,
        )
        self._default_ttl = check_ttl(default_ttl)
        self._codec: Codec = JSONCodec() if codec is None else codec
        self._decode_bytes = self._codec.decode
        #: Seconds between checks that a held single-flight lock's session is alive (the
        #: renewal cadence is a third of it); 0 turns the cross-process single-flight off.
        self.lock_lease = 0.0 if lock_lease == 0 else positive("lock_lease", lock_lease)
        #: Seconds a caller waits for another process's answer before calling itself.
        self.lock_wait = positive("lock_wait", lock_wait)
        self._sync_held: dict[str, Held] = {}
        self._async_held: dict[str, Held] = {}
        t = self._table
        self._sql_get_many = (
            f"SELECT key, value, expires_at, accessed_at FROM {t} "
            f"WHERE namespace = %s AND key = ANY(%s)"
        )
        upsert = (
            "ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, "
            "expires_at = EXCLUDED.expires_at, accessed_at = EXCLUDED.accessed_at"
        )
        self._sql_set = (
            f"INSERT INTO {t} (namespace, key, value, expires_at, accessed_at) "
            f"SELECT namespace, %s, %s, %s, %s FROM {t}_ns "
            f"WHERE namespace = %s FOR SHARE {upsert}"
        )
        self._sql_set_many = (
            f"INSERT INTO {t} (namespace, key, value, expires_at, accessed_at) "
            f"SELECT n.namespace, u.key, u.value, %s, %s "
            f"FROM {t}_ns AS n, unnest(%s::text[], %s::bytea[]) AS u(key, value) "
            f"WHERE n.namespace = %s FOR SHARE OF n {upsert}"
        )

    def _tier_columns(self) -> str:
        return "value bytea NOT NULL"

    # -- encoding -------------------------------------------------------------------------

    @staticmethod
    def _check_key(key: str) -> str:
        if type(key) is not str:
            raise TypeError(f"key: expected str, got {type(key).__name__}")
        return key

    def _ttl(self, ttl: float | None) -> float | None:
        ttl = check_ttl(ttl)
        return self._default_ttl if ttl is None else ttl

    def _encode(self, key: str, entry: CachedResponse, ttl: float | None) -> tuple[Any, ...]:
        """The parameters of `_sql_set`."""
        self._check_key(key)
        ttl = self._ttl(ttl)
        now = self._clock()
        data = self._codec.encode(entry.with_ttl(ttl, now))
        return key, data, None if ttl is None else now + ttl, now, self._namespace

    def _encode_many(
        self, entries: Mapping[str, CachedResponse], ttl: float | None
    ) -> tuple[Any, ...] | None:
        """The parameters of `_sql_set_many`, or ``None`` when there is nothing to write."""
        keys = [self._check_key(key) for key in entries]
        ttl = self._ttl(ttl)
        if not keys:
            return None
        now = self._clock()
        encode = self._codec.encode
        values = [encode(entry.with_ttl(ttl, now)) for entry in entries.values()]
        return None if ttl is None else now + ttl, now, keys, values, self._namespace

    def _row_entry(
        self, data: Any, expires_at: float | None, operation: str
    ) -> CachedResponse | None:
        """The live entry in a row (bytes read from a shared table: untrusted), or ``None``.
        Counts decode errors and expirations, not hits and misses (the callers do, once)."""
        entry = self._decoded(data, operation)
        if entry is None:
            return None
        now = self._clock()
        if (expires_at is not None and now >= expires_at) or (
            entry.expires_at is not None and now >= entry.expires_at
        ):
            self._count("expirations")  # not swept yet
            return None
        return entry

    def _written(self, operation: str, written: int, expected: int) -> None:
        """Count a write statement's rows; fewer than expected means the namespace row is
        gone (deleted by hand): the writes were dropped, and the next call re-creates it."""
        if written > 0:
            self._count("sets", written)
        if written < expected:
            self._dropped(operation, expected - written)

    def _tally(self, hits: int, misses: int) -> None:
        with self._count_lock:
            self._stats.hits += hits
            self._stats.misses += misses

    # -- locks -----------------------------------------------------------------------------

    def _locks_held(self) -> int:
        """Single-flight locks this store holds now, from both faces."""
        return len(self._sync_held) + len(self._async_held)

    def _lock_id(self, key: str) -> int:
        return lock_id(self._table, self._namespace, self._check_key(key))
