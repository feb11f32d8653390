"""`PostgresSemanticCache`: the semantic tier shared by every process and host, on Postgres
with pgvector (the ``postgres`` extra, and the ``vector`` extension in the database).

An in-process `SemanticCache` keeps its own vector index, so N workers keep N caches and
each sees a fraction of the hits. This one keeps entries, vectors and partitions in one
table: a write in one process is found by a lookup in any other at once. Requests are split
and scoped exactly as `SemanticCache` does (a partition per scope under the embedder), and
the candidates go through the same guards and verifier; only the storage and the search
move to Postgres:

- the exact lookup is one primary-key read;
- the search filters by namespace and partition in SQL and takes the `candidates` closest
  rows (exactly for partitions of at most `exact_below` rows, through the HNSW index above);
- TTL and `max_entries` apply per namespace (expired rows are misses, then swept; the least
  recently used are evicted in SQL);
- the embedder's name (and version) and dimension are recorded with the table: another
  embedder is refused with `SchemaError`, never compared;
- Postgres down, slow or restarted: a lookup is a counted miss, a write is dropped and
  counted; rows that do not hold together (planted, corrupt) are misses.

>>> from llmcache.keys import Request
>>> from llmcache.vector.embedders import HashingEmbedder
>>> url = "postgresql://localhost/app"
>>> cache = PostgresSemanticCache(HashingEmbedder(), url)  # doctest: +SKIP
>>> python = Request(model="m", prompt="How do I reverse a list in Python?")
>>> cache.set(python, "xs[::-1]")  # doctest: +SKIP
>>> similar = Request(model="m", prompt="how do i reverse a list in python")
>>> cache.get(similar).content  # doctest: +SKIP
'xs[::-1]'
"""

from __future__ import annotations

from typing import Any

from llmcache._closing import AsyncClosing, Closing
from llmcache._postgres import MISSING_EXTRA, SchemaError
from llmcache.vector._async_pgvector import AsyncPgVectorMethods
from llmcache.vector._pgvector_base import DEFAULT_THRESHOLD
from llmcache.vector._sync_pgvector import PgVectorMethods

__all__ = ["DEFAULT_THRESHOLD", "MISSING_EXTRA", "PostgresSemanticCache", "SchemaError"]


class PostgresSemanticCache(PgVectorMethods, AsyncPgVectorMethods, Closing, AsyncClosing):
    """Exact, then semantic, caching of model answers in Postgres; thread-safe, and shared
    by every process that uses the same table and namespace.

    `embedder` turns texts into unit vectors; its ``dim`` (or `dim`) sizes the vector
    column. `url`: a ``postgresql://`` URL or libpq string (its password is never shown).
    `namespace`: the rows this cache sees; `table`: the table (created on first use with
    ``{table}_ns``, listed in ``llmcache_schema`` with the embedder and dimension).
    `threshold`, `guards`, `verifier`, `grey_zone`, `candidates`: as for `SemanticCache`.
    `max_entries` (``None``: unbounded) and `ttl` apply per namespace. `exact_below`:
    partitions of at most this many rows are searched exactly, larger ones through the
    HNSW index with `ef_search` (recall@1 0.985 at 100k rows and the default 200, but 0.5
    at a million rows of our hardest synthetic vectors, 0.84 at 1000: see
    docs/benchmarks.md; a missed neighbour is a miss, never a wrong answer).
    `statement_timeout` / `connect_timeout`: the most one
    statement / the wait for a connection may take; `retry_after`: seconds Postgres is
    skipped after a failure. `touch_after`, `sweep_interval`, `clock`: as for
    `PostgresStore`.

    Call `set` only with answers the model produced for that request, never with the
    answer of a semantic hit. Nothing connects before the first call.
    """

    def __len__(self) -> int:
        """Live entries in this namespace (a count: not for hot paths); 0 when Postgres is
        unreachable."""
        return self._sync_size() or 0

    def stats(self) -> dict[str, Any]:
        """Entries, hits (exact and semantic), misses, sets, evictions, expirations, rows
        swept, vetoes per guard, ``planted`` (rows refused as not holding together),
        embedding and Postgres errors, connectivity, and the verifier's calls and
        verdicts."""
        size = self._sync_size()
        with self._count_lock:
            counts = dict(self._counts)
            vetoes = dict(self._vetoes)
            counts["evictions"] = self._evicted
            counts["swept"] = self._swept
            errors = self._stats.errors
        info = self._connectivity()
        return {
            "entries": size or 0,
            "hits": counts["exact_hits"] + counts["semantic_hits"],
            **counts,
            "errors": errors,
            "embedding_errors": self._vectors.errors,
            "vetoes": vetoes,
            "threshold": self.threshold,
            "embedder": self.embedder_id,
            "dim": self._dim,
            "connected": size is not None and not info["circuit_open"],
            **info,
            "verifier": self.verifier.stats() if self.verifier is not None else None,
        }

    def close(self) -> None:
        """Close the pools (see `PostgresStore.close`). The cache stays usable: a later call
        opens new pools."""
        self._pools.close()

    async def aclose(self) -> None:
        """Close this event loop's pool, then the rest (see `close`)."""
        await self._pools.aclose()

    def __repr__(self) -> str:
        return (
            f"PostgresSemanticCache({self.embedder_id!r}, {self._settings.safe!r}, "
            f"table={self._table!r}, namespace={self._namespace!r})"
        )
