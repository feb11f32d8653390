"""How a Postgres tier runs its statements: on a pooled connection, the schema ensured on
first use, through the circuit breaker, retried once after a server restart.

Both faces come from one source: the coroutine methods are written by hand, and their sync
twins are generated from them by ``scripts/unasync.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from llmcache._postgres import (
    REGISTRY_DDL,
    SCHEMA_LOCK,
    SWEEP_BATCH,
    SWEEP_ROUNDS,
    Fetch,
    PgBase,
    SchemaError,
    Unavailable,
)
from llmcache.errors import StoreError

if TYPE_CHECKING:
    from llmcache._postgres import AsyncWork

__all__ = ["AsyncPgIO"]

T = TypeVar("T")

_REGISTRY_ROW = "SELECT kind, version, embedder, dim FROM llmcache_schema WHERE name = %s"
_REGISTER = (
    "INSERT INTO llmcache_schema (name, kind, version, embedder, dim) VALUES (%s, %s, %s, %s, %s)"
)


class AsyncPgIO(PgBase):
    """`_async_run`, the one way a tier reaches Postgres, and the statements both tiers
    share (delete, clear, count, touch, maintenance)."""

    async def _async_run(self, work: AsyncWork[T]) -> T:
        """``await work(conn)`` on a pooled connection, the schema ensured first.

        Raises `Unavailable` while the circuit is open, `SchemaError` on a table this
        llmcache cannot use, and psycopg's errors (recorded in the breaker when they say
        the server is down or slow); the caller turns them into a counted miss. A pooled
        connection that the server closed (a restart) makes the pool drop its idle
        connections and the work runs once more on a fresh one.
        """
        if self._schema_error is not None:
            raise self._schema_error
        if self._breaker.down_until and not self._up():
            raise self._unavailable()
        pool = await self._pools.async_pool()
        for attempt in (1, 2):
            try:
                conn = await pool.getconn()
            except self._errors as exc:
                self._io_failed(exc)
                raise
            try:
                if not self._ready:
                    await self._async_ready(conn)
                if self._per_connection:
                    await self._async_prepare(conn)
                result = await work(conn)
            except self._errors as exc:
                stale = attempt == 1 and conn.broken
                await pool.putconn(conn)
                if stale:
                    await pool.drain()
                    continue
                self._io_failed(exc)
                raise
            except BaseException:
                await pool.putconn(conn)
                raise
            await pool.putconn(conn)
            if self._breaker.down_until:
                self._breaker.success()
            return result
        raise AssertionError("unreachable: the second attempt returns or raises")

    async def _async_prepare(self, conn: Any) -> None:
        """Per-connection setup, before each use when `_per_connection` is set (the
        semantic tier registers its vector type here)."""
        return None

    async def _async_ready(self, conn: Any) -> None:
        """Create this tier's tables if needed, or check the recorded ones, once per store.

        Serialized across processes by an advisory lock, in one transaction: a table is
        either fully there and registered, or not at all.
        """
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                await conn.execute(REGISTRY_DDL)
                cur = await conn.execute(_REGISTRY_ROW, (self._table,))
                row = await cur.fetchone()
                if row is None:
                    cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (self._table,))
                    found = await cur.fetchone()
                    if found is not None and found[0]:
                        raise self._refused(
                            "exists but was not created by llmcache (it is not in "
                            "llmcache_schema): give this tier another table"
                        )
                    await conn.execute(_REGISTER, (self._table, *self._registry_row()))
                else:
                    self._check_row(tuple(row))
                await self._async_before_schema(conn)
                for statement in self._schema_ddl():
                    await conn.execute(statement)
                await self._async_after_schema(conn)
        except SchemaError as exc:
            self._schema_error = exc
            raise
        self._ready = True

    async def _async_before_schema(self, conn: Any) -> None:
        """Setup the tables need, inside the schema transaction (the semantic tier's
        extension); nothing for the exact tier."""
        return None

    async def _async_after_schema(self, conn: Any) -> None:
        """More setup inside the schema transaction: this tier's namespace row."""
        await conn.execute(self._sql_namespace_row, (self._namespace,))

    async def _async_query(self, sql: str, params: Sequence[Any], fetch: Fetch) -> Any:
        """One statement through `_async_run`: its first row (``"one"``), every row
        (``"all"``) or the number of rows it touched (``"rowcount"``); binary results, so
        ``bytea`` arrives as bytes without a hex round trip. Statements are prepared on the
        server after a few runs (psycopg's ``prepare_threshold``)."""

        async def work(conn: Any) -> Any:
            # One cursor per connection, kept on it: creating a psycopg cursor costs about
            # as much as a quarter of a local primary-key lookup.
            cur = getattr(conn, "_llmcache_cursor", None)
            if cur is None:
                cur = conn._llmcache_cursor = conn.cursor(binary=True)
            await cur.execute(sql, params)
            if fetch == "one":
                return await cur.fetchone()
            if fetch == "all":
                return await cur.fetchall()
            return cur.rowcount

        return await self._async_run(work)

    # -- statements both tiers share -------------------------------------------------------

    async def _async_delete_key(self, key: str) -> bool:
        """Delete `key`'s row: True if a live entry was there. Raises `StoreError` when
        Postgres could not tell."""

        async def work(conn: Any) -> Any:
            async with conn.transaction():
                await conn.execute(self._sql_durable)
                cur = await conn.execute(self._sql_delete, (self._namespace, key))
                return await cur.fetchall()

        try:
            rows = await self._async_run(work)
        except self._errors as exc:
            self._failed("delete", exc)
            raise StoreError(
                f"{self._label}: delete did not happen ({exc})",
                store=self._label,
                operation="delete",
            ) from exc
        now = self._clock()
        return any(expires_at is None or expires_at > now for (expires_at,) in rows)

    async def _async_clear(self) -> None:
        """Delete this namespace's rows, ordered against writes (see `PgBase`). Raises
        `StoreError` when it did not happen."""

        async def work(conn: Any) -> None:
            async with conn.transaction():
                await conn.execute(self._sql_maintenance_timeout)
                await conn.execute(self._sql_durable)
                await conn.execute(self._sql_bump, (self._namespace,))
                await conn.execute(self._sql_clear, (self._namespace,))

        try:
            await self._async_run(work)
        except self._errors as exc:
            self._failed("clear", exc)
            raise StoreError(
                f"{self._label}: clear did not happen ({exc})", store=self._label, operation="clear"
            ) from exc

    async def _async_size(self) -> int | None:
        """Live entries in this namespace (a count: O(entries)); ``None`` when Postgres
        failed."""
        try:
            row = await self._async_query(self._sql_len, (self._namespace, self._clock()), "one")
        except self._errors as exc:
            if not isinstance(exc, Unavailable):
                self._failed("len", exc)
            return None
        return int(row[0]) if row is not None else 0

    async def _async_touch(self, keys: list[str]) -> None:
        """Refresh the recency of hits; a failure only costs eviction accuracy."""
        try:
            await self._async_query(
                self._sql_touch, (self._clock(), self._namespace, keys), "rowcount"
            )
        except self._errors as exc:
            if not isinstance(exc, Unavailable):
                self._failed("touch", exc)

    async def _async_maintain(self, written: int) -> None:
        """Sweep expired rows and evict the least recently used beyond `max_entries`, when
        due (see `PgBase._maintenance_due`)."""
        if not self._maintenance_due(written):
            return
        swept = evicted = 0

        async def work(conn: Any) -> None:
            nonlocal swept, evicted
            async with conn.transaction():
                await conn.execute(self._sql_maintenance_timeout)
                for _ in range(SWEEP_ROUNDS):
                    cur = await conn.execute(self._sql_sweep, (self._namespace, self._clock()))
                    swept += max(cur.rowcount, 0)
                    if cur.rowcount < SWEEP_BATCH:
                        break
                if self.max_entries is not None:
                    cur = await conn.execute(
                        self._sql_evict, (self._namespace, self._namespace, self.max_entries)
                    )
                    evicted = max(cur.rowcount, 0)

        try:
            await self._async_run(work)
        except self._errors as exc:
            if not isinstance(exc, Unavailable):
                self._failed("maintain", exc)
        finally:
            self._maintenance_done(swept, evicted)
