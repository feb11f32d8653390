"""`PostgresSemanticCache`'s methods that talk to Postgres: the exact lookup, the search of
a partition, the screened candidates, writes, deletes and clears.

Both faces come from one source: the coroutine methods are written by hand, and their sync
twins are generated from them by ``scripts/unasync.py`` (the coroutines also await the
embedder's ``aembed`` and the verifier's ``averify`` when there are ones).
"""

from __future__ import annotations

from typing import Any

from llmcache._async_postgres_io import AsyncPgIO
from llmcache._postgres import Unavailable
from llmcache.entry import CachedResponse, JSONValue
from llmcache.keys import Request, make_key
from llmcache.vector._pgvector_base import PgVectorCore, Plan
from llmcache.vector._scope import Candidate, SemanticHit, make_record

__all__ = ["AsyncPgVectorMethods"]


class AsyncPgVectorMethods(PgVectorCore, AsyncPgIO):
    """``aget``, ``aset``, ``adelete``, ``aclear`` and ``aexplain``."""

    async def _async_before_schema(self, conn: Any) -> None:
        """The pgvector extension, created when missing (a clear error when it cannot be)."""
        cur = await conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
        if await cur.fetchone() is not None:
            return
        try:
            async with conn.transaction():  # a savepoint: the schema transaction survives
                await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except self._errors as exc:
            if conn.broken:
                raise
            raise self._no_pgvector(exc) from exc

    async def _async_prepare(self, conn: Any) -> None:
        """Teach a connection the vector type and set its ``hnsw.ef_search``, once."""
        if conn in self._prepared:
            return
        from pgvector.psycopg.vector import register_vector_info
        from psycopg.types import TypeInfo

        info = self._vector_info
        if info is None:
            info = await TypeInfo.fetch(conn, "vector")
            if info is None:
                raise self._no_pgvector(LookupError("no type named vector"))
            self._vector_info = info
        register_vector_info(conn, info)
        await conn.execute(self._sql_ef_search, (str(self.ef_search),))
        self._prepared.add(conn)

    async def aget(self, request: Request, *, threshold: float | None = None) -> SemanticHit | None:
        """The cached answer for `request` or for a request close enough, else ``None``
        (also when Postgres or the embedder failed: counted)."""
        limit = self.threshold if threshold is None else self._check_threshold(threshold)
        plan = self._plan(request)
        try:
            row = await self._async_query(self._sql_get, (self._namespace, plan.key), "one")
        except self._errors as exc:
            if not isinstance(exc, Unavailable):
                self._failed("get", exc)
            return self._miss()
        hit = self._exact_hit(row, plan)
        if hit is not None:
            if self._stale(row[2]):
                await self._async_touch([plan.key])
            return hit
        if plan.text is None:
            return self._miss()
        rows = await self._async_candidates(plan, limit, self.candidates)
        for found, candidate in self._screen(rows, plan, limit):
            if candidate.verify:
                assert self.verifier is not None
                ok = await self.verifier.averify(candidate.text, plan.text)
                self._verdict(ok)
                if not ok:
                    continue
            hit = self._serve(found, candidate, plan)
            if hit is not None:
                if self._stale(found[5]):
                    await self._async_touch([hit.key])
                return hit
        return self._miss()

    async def _async_candidates(self, plan: Plan, threshold: float, limit: int) -> list[Any]:
        """The rows of `plan`'s partition closest to its text, best first (none when the
        text has no vector or Postgres failed)."""
        assert plan.text is not None and plan.partition is not None
        vec = await self._vectors.aget(plan.text)
        if vec is None or int(vec.shape[0]) != self._dim:
            return []
        try:
            large = self._known_size(plan.partition)
            if large is None:
                row = await self._async_query(
                    self._sql_size, (self._namespace, plan.partition, self.exact_below + 1), "one"
                )
                large = self._remember_size(plan.partition, 0 if row is None else int(row[0]))
            sql, params = self._search_sql(large, vec, plan, self._lower(threshold), limit)
            rows: list[Any] = await self._async_query(sql, params, "all")
        except self._errors as exc:
            if not isinstance(exc, Unavailable):
                self._failed("search", exc)
            return []
        return rows

    async def aset(
        self, request: Request, value: CachedResponse | JSONValue, *, ttl: float | None = None
    ) -> None:
        """Cache `value` (a `CachedResponse`, or the answer's content) for `request`, for
        every process that shares the table; dropped (and counted) when Postgres fails."""
        ttl = self._resolve_ttl(ttl)
        record, entry = make_record(request, value, self._partition, None)
        plan = Plan(record.key, record.fingerprint, record.scope, record.partition, record.text)
        vec = await self._vectors.aget(plan.text) if plan.text is not None else None
        params = self._row_params(plan, entry, ttl, vec)
        try:
            written = await self._async_query(self._sql_set, params, "rowcount")
        except self._errors as exc:
            if not isinstance(exc, Unavailable):
                self._failed("set", exc)
            return
        self._written(written)
        await self._async_maintain(written)

    async def adelete(self, request: Request) -> bool:
        """Remove the entry cached for exactly `request`; True if there was one. Raises
        `StoreError` when Postgres could not tell."""
        return await self._async_delete_key(make_key(request))

    async def aclear(self) -> None:
        """Remove every entry of this namespace, for every process. Raises `StoreError`
        when it did not happen."""
        await self._async_clear()

    async def aexplain(self, request: Request, *, k: int = 8) -> list[Candidate]:
        """The `k` closest entries of `request`'s partition with their similarity and the
        first guard veto, without thresholds, verifier calls, counters or recency."""
        plan = self._plan(request)
        if plan.text is None:
            return []
        rows = await self._async_candidates(plan, -1.0, k)
        return [self._explain(row, plan) for row in rows]
