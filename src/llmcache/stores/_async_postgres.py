"""`PostgresStore`'s methods that talk to Postgres, and how each turns a fault into a miss.

Both faces come from one source: the coroutine methods are written by hand, and their sync
twins are generated from them by ``scripts/unasync.py`` (same counters, circuit breaker,
codec and faults; the coroutines await each round trip, so an event loop never blocks).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from llmcache._async_postgres_io import AsyncPgIO
from llmcache._postgres import Unavailable
from llmcache.entry import CachedResponse
from llmcache.stores._postgres_base import Held, PostgresCore

__all__ = ["AsyncPostgresMethods"]

_TRY_LOCK = "SELECT pg_try_advisory_lock(%s)"
_UNLOCK = "SELECT pg_advisory_unlock(%s)"


class AsyncPostgresMethods(PostgresCore, AsyncPgIO):
    """``aget``, ``aset``, ``adelete``, ``aget_many``, ``aset_many``, ``aclear`` and the
    lock-provider methods ``atry_lock``, ``arenew``, ``aunlock``."""

    async def aget(self, key: str) -> CachedResponse | None:
        """The live entry under `key`; ``None`` when missing, undecodable or Postgres
        failed (counted)."""
        self._check_key(key)
        try:
            row = await self._async_query(self._sql_get, (self._namespace, key), "one")
        except Unavailable:
            self._count("misses")
            return None
        except self._errors as exc:
            self._failed("get", exc)
            self._count("misses")
            return None
        entry = None if row is None else self._row_entry(row[0], row[1], "get")
        if entry is None:
            self._tally(0, 1)
            return None
        self._tally(1, 0)
        if self._stale(row[2]):
            await self._async_touch([key])
        return entry

    async def aget_many(self, keys: Iterable[str]) -> dict[str, CachedResponse]:
        """The live entries among `keys`, in one round trip."""
        wanted = [self._check_key(key) for key in dict.fromkeys(keys)]
        if not wanted:
            return {}
        try:
            rows = await self._async_query(self._sql_get_many, (self._namespace, wanted), "all")
        except Unavailable:
            self._count("misses", len(wanted))
            return {}
        except self._errors as exc:
            self._failed("get_many", exc)
            self._count("misses", len(wanted))
            return {}
        found: dict[str, CachedResponse] = {}
        stale: list[str] = []
        for key, data, expires_at, accessed_at in rows:
            entry = self._row_entry(data, expires_at, "get_many")
            if entry is not None:
                found[key] = entry
                if self._stale(accessed_at):
                    stale.append(key)
        self._tally(len(found), len(wanted) - len(found))
        if stale:
            await self._async_touch(stale)
        return found

    async def aset(self, key: str, entry: CachedResponse, ttl: float | None = None) -> None:
        """Store `entry` for `ttl` seconds (default: `default_ttl`); dropped (and counted)
        when Postgres fails."""
        await self._async_write("set", self._sql_set, self._encode(key, entry, ttl), 1)

    async def aset_many(
        self, entries: Mapping[str, CachedResponse], ttl: float | None = None
    ) -> None:
        """Store several entries with one TTL, in one statement."""
        params = self._encode_many(entries, ttl)
        if params is not None:
            await self._async_write("set_many", self._sql_set_many, params, len(params[2]))

    async def _async_write(
        self, operation: str, sql: str, params: tuple[Any, ...], expected: int
    ) -> None:
        """Run a write statement meant to write `expected` rows; dropped (and counted) when
        Postgres fails."""
        try:
            written = await self._async_query(sql, params, "rowcount")
        except Unavailable:
            return
        except self._errors as exc:
            self._failed(operation, exc)
            return
        self._written(operation, written, expected)
        await self._async_maintain(written)

    async def adelete(self, key: str) -> bool:
        """Remove `key`: True if a live entry was there, False if not. Raises `StoreError`
        when Postgres could not tell."""
        removed = await self._async_delete_key(self._check_key(key))
        if removed:
            self._count("deletes")
        return removed

    async def aclear(self) -> None:
        """Delete this namespace's entries; no entry written before it is read after it.
        Raises `StoreError` when it did not happen."""
        await self._async_clear()

    # -- single-flight locks (llmcache.distributed.AsyncLockProvider) ----------------------

    async def atry_lock(self, key: str, lease: float) -> str | None:
        """Take the advisory lock of `key`: a token, or ``None`` when another session
        holds it. Raises when Postgres cannot tell (down, timeout, circuit open).

        The lock lives as long as the session holding it: a holder that dies loses it at
        once, whatever `lease` says (`lease` only paces `arenew`'s liveness checks).
        """
        ident = self._lock_id(key)
        if not self._up():
            raise self._unavailable()
        if self._locks_held() >= self._settings.lock_connections:
            # Every lock session holds a lock: waiting for one would only delay this call,
            # and a pool timeout here says nothing about the server (no circuit to open).
            raise Unavailable(
                f"all {self._settings.lock_connections} lock sessions hold a "
                f"lock (lock_connections)"
            )
        pool = await self._lock_pools.async_pool()
        try:
            conn = await pool.getconn()
        except self._errors as exc:
            self._io_failed(exc)
            self._failed("lock", exc)
            raise
        try:
            cur = await conn.execute(_TRY_LOCK, (ident,))
            row = await cur.fetchone()
        except BaseException as exc:
            broken = conn.broken
            await pool.putconn(conn)
            if isinstance(exc, self._errors):
                if broken:  # a restart: the other pooled sessions are stale too
                    await pool.drain()
                self._io_failed(exc)
                self._failed("lock", exc)
            raise
        self._ok()
        if row is None or not row[0]:
            await pool.putconn(conn)
            return None
        token = secrets.token_hex(16)
        self._async_held[token] = Held(conn, pool, ident)
        return token

    async def arenew(self, key: str, token: str, lease: float) -> bool:
        """True while `token` still holds the lock of `key` (its session is alive)."""
        held = self._async_held.get(token)
        if held is None or held.ident != self._lock_id(key):
            return False
        try:
            await held.conn.execute("SELECT 1")
        except self._errors:
            return False  # the session is gone, and its lock with it
        return True

    async def aunlock(self, key: str, token: str) -> bool:
        """Release the lock if `token` holds it (never another caller's)."""
        held = self._async_held.get(token)
        if held is None or held.ident != self._lock_id(key):
            return False
        del self._async_held[token]
        try:
            cur = await held.conn.execute(_UNLOCK, (held.ident,))
            row = await cur.fetchone()
            return bool(row is not None and row[0])
        except self._errors:
            return False  # a broken session released its locks when it ended
        finally:
            await held.pool.putconn(held.conn)
