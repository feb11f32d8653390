"""Shared tier on Postgres (psycopg 3, the ``postgres`` extra): one cache for many processes
and hosts, for users who run Postgres and not Redis.

`PostgresStore` is a `Store` (sync methods, usable alone or as a tier of `TieredStore`) with
coroutine twins (``aget``, ``aset``, ``adelete``, ``aclear``, ``aget_many``, ``aset_many``,
``aclose``) on psycopg's async connections, so async code never blocks its event loop.

- Values are the package codec's bytes (`JSONCodec` by default) in a ``bytea`` column, never
  pickles; bytes read back are untrusted, and anything that does not decode is a miss
  (counted in ``errors``). A hit is one primary-key lookup on a pooled connection.
- Rows are keyed by ``(namespace, key)``; `clear` and `len` touch only the namespace. No
  entry written before a successful `clear` is served after it (see
  `llmcache.stores._postgres_base` for how writes and clears are ordered).
- Each entry has its own TTL, enforced on read (the store's clock) and swept on a cadence:
  every `sweep_interval` seconds one write of this process deletes expired rows.
- `max_entries` bounds the namespace: rows least recently used (``accessed_at``, refreshed
  by a hit at most every `touch_after` seconds, so hits seldom write) are deleted in SQL,
  checked every ``max_entries // 10`` writes of each process (so the table may exceed the
  bound by that much per writing process between checks).
- Faults never reach the caller of ``get``/``set``: Postgres down, slower than
  `statement_timeout` (cancelled by the server), or restarted turns a ``get`` into a miss
  and drops a ``set``, counted in `stats` and logged once per kind. After a connection
  failure or timeout the store skips Postgres for `retry_after` seconds (a circuit
  breaker), then one call probes it. The pool replaces lost connections by itself; a
  connection the server closed (a restart) makes the pool drop its idle ones, and the call
  is retried once on a fresh connection. ``delete`` and ``clear`` raise `StoreError` when
  they did not happen. A table of a schema this llmcache does not know raises `SchemaError`.
- The store implements `llmcache.distributed.LockProvider` with advisory locks held by a
  session from a small separate pool (`lock_connections`): `cached_generate` and
  `CachedClient` use it so that N processes (on any number of hosts) missing one key make
  one model call, and a holder that dies releases its lock at once.

A frozen server (not down, not answering) is bounded by the server-side timeout only when
it still runs its timers; over TCP, libpq's ``keepalives`` / ``tcp_user_timeout`` settings
in the URL bound the rest.

>>> store = PostgresStore("postgresql://localhost/app", namespace="docs")  # doctest: +SKIP
>>> store.set("k", CachedResponse(content="v"), ttl=60)                   # doctest: +SKIP
>>> store.get("k").content                                                # doctest: +SKIP
'v'
"""

from __future__ import annotations

from typing import Any

from llmcache._postgres import MISSING_EXTRA, SchemaError
from llmcache.stores._async_postgres import AsyncPostgresMethods
from llmcache.stores._sync_postgres import PostgresMethods
from llmcache.stores.base import Store

__all__ = ["MISSING_EXTRA", "PostgresStore", "SchemaError"]


class PostgresStore(PostgresMethods, AsyncPostgresMethods, Store):
    """A Postgres tier shared by processes and hosts (see the module docstring).

    `url`: a ``postgresql://`` URL or a libpq ``key=value`` string (its password is never
    logged; `repr` and `stats` show ``***``). `namespace`: the rows this store sees (any
    non-empty string). `table`: the entries table (created on first use with
    ``{table}_ns``, and listed in ``llmcache_schema``). `default_ttl`: seconds for `set`
    without a TTL (``None``: no expiry). `max_entries`: the bound of the namespace
    (``None``: unbounded). `codec`: the bytes format (default `JSONCodec`).
    `statement_timeout`: the most one statement may take on the server;
    `connect_timeout`: the most a call waits for a connection. `pool_size`: connections for
    entries per pool (one sync pool, one per event loop); `lock_connections`: sessions that
    may hold single-flight locks at once (a caller finding none free calls the model
    without waiting). `retry_after`: seconds Postgres is skipped after a failure.
    `lock_lease`: seconds between liveness checks of a held lock's session (0 turns the
    cross-process single-flight off); `lock_wait`: how long a caller waits for another
    process's answer before calling the model itself. `touch_after`: how stale a hit's
    ``accessed_at`` may get before the hit refreshes it. `sweep_interval`: seconds between
    sweeps of expired rows. `clock`: wall-clock seconds for expiry and recency.

    Nothing connects before the first call. Raises ImportError naming the ``postgres``
    extra when psycopg or psycopg-pool is missing.
    """

    name = "postgres"

    # -- the Store interface beyond the generated methods ----------------------------------

    def __len__(self) -> int:
        """Live entries in this namespace (a count over its rows: not for hot paths); 0
        when Postgres is unreachable."""
        return self._sync_size() or 0

    def stats(self) -> dict[str, Any]:
        """Counters (``hits``, ``misses``, ``sets``, ``deletes``, ``evictions``,
        ``expirations``: expired rows read before a sweep, ``swept``: expired rows deleted,
        ``errors``; ``skipped``: calls not sent while the circuit was open), connectivity
        (``connected``, ``circuit_open``, ``circuit_opened``, ``last_error``),
        ``entries`` (a count, see `__len__`), ``max_entries``, ``namespace``, ``table``
        and ``url`` (password hidden)."""
        size = self._sync_size()
        with self._count_lock:
            counters = self._stats.as_dict()
            counters["evictions"] = self._evicted
            swept = self._swept
        info = self._connectivity()
        return {
            "entries": size or 0,
            **counters,
            "swept": swept,
            "connected": size is not None and not info["circuit_open"],
            "max_entries": self.max_entries,
            **info,
        }

    def close(self) -> None:
        """Close the pools (connections of other event loops that still run are closed on
        their loop; prefer `aclose` inside a loop). The store stays usable: a later call
        opens new pools."""
        # Held locks stay with their holders: unlocking returns each session to its (now
        # closed) pool, which closes it.
        self._pools.close()
        self._lock_pools.close()

    async def aclose(self) -> None:
        """Close this event loop's pools, then the rest of the store (see `close`)."""
        await self._pools.aclose()
        await self._lock_pools.aclose()
        self.close()

    def __repr__(self) -> str:
        return (
            f"PostgresStore({self._settings.safe!r}, table={self._table!r}, "
            f"namespace={self._namespace!r})"
        )
