"""What the sync and async halves of `PostgresSemanticCache` share: the table layout and its
SQL, settings, counters, how a request is planned, and how rows become candidates and hits.

Layout (schema version 1; ``{t}`` is the cache's table, ``{dim}`` the embedder's)::

    {t}     namespace, key          the primary key (``make_key`` of the request)
            partition               the scope hash under the embedder, as `SemanticCache`
                                    partitions: NULL for requests cached for exact lookups
            text, fingerprint       the matched text, the request's fingerprint
            value                   the codec's bytes (the entry carries its scope and text)
            expires_at, accessed_at as in the exact tier (``accessed_at`` is not indexed:
                                    refreshing it is a HOT update, which never touches
                                    the HNSW graph)
            embedding               vector({dim}), NULL when the text has no vector;
                                    an HNSW index (cosine) over it
    {t}_ns  namespace, generation   as in the exact tier: orders writes against `clear`

``llmcache_schema`` records the embedder (its name, and version when it has one) and the
dimension the table was created for: a cache with another embedder is refused with a clear
error (`SchemaError`) rather than comparing vectors of two models.

A lookup filters by namespace and partition in SQL. A partition of at most `exact_below`
rows is searched exactly (every row compared: recall 1); a larger one through the HNSW
index (``hnsw.ef_search`` = `ef_search`), which pgvector filters after the graph search, so
it suits partitions that are a large part of the table. Every row read back is untrusted:
its entry must decode, carry the row's fingerprint and text, and come from a scope of the
queried partition, or it is a miss.
"""

from __future__ import annotations

import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from llmcache._postgres import SCHEMA_VERSION, PgBase, SchemaError
from llmcache.entry import CachedResponse, Codec, JSONCodec
from llmcache.keys import Request, canonical_bytes, fingerprint, hash_bytes
from llmcache.stores.base import check_ttl
from llmcache.vector._counters import new_counters
from llmcache.vector._persist import META_KEY
from llmcache.vector._scope import (
    Candidate,
    QueryVectors,
    SemanticHit,
    judge,
    public_entry,
    split_request,
)
from llmcache.vector.embedders import Embedder
from llmcache.vector.guards import Guard, default_guards
from llmcache.vector.verifier import Verifier

__all__ = ["DEFAULT_THRESHOLD", "Plan", "PgVectorCore"]

#: As `SemanticCache`'s (chosen on the bundled labeled set with WordLlamaEmbedder).
DEFAULT_THRESHOLD = 0.7

_SIZE_TTL = 30.0  # seconds a partition's size class (exact or HNSW search) is trusted
_SIZES_KEPT = 4096  # partitions whose size class is remembered


@dataclass(slots=True)
class Plan:
    """What a lookup or a write needs of a request: its key, fingerprint, matched text and
    partition (``None`` for both when it has no text to match)."""

    key: str
    fingerprint: str
    scope: str | None
    partition: str | None
    text: str | None


class PgVectorCore(PgBase):
    """Settings, SQL, counters and row handling of a `PostgresSemanticCache` (see its
    docstring for the constructor's arguments)."""

    kind = "semantic"
    _per_connection = True

    def __init__(
        self,
        embedder: Embedder,
        url: str,
        *,
        namespace: str = "default",
        table: str = "llmcache_semantic",
        threshold: float = DEFAULT_THRESHOLD,
        max_entries: int | None = 10_000,
        ttl: float | None = None,
        guards: Sequence[Guard] | None = None,
        verifier: Verifier | None = None,
        grey_zone: tuple[float, float] | None = None,
        candidates: int = 8,
        dim: int | None = None,
        exact_below: int = 5_000,
        ef_search: int = 200,
        codec: Codec | None = None,
        statement_timeout: float = 1.0,
        connect_timeout: float = 1.0,
        pool_size: int = 10,
        retry_after: float = 1.0,
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
            lock_connections=1,
            retry_after=retry_after,
            name="PostgresSemanticCache",
            max_entries=max_entries,
            sweep_interval=sweep_interval,
            touch_after=touch_after,
            clock=clock,
        )
        self.embedder = embedder
        self._dim = self._embedder_dim(embedder, dim)
        version = getattr(embedder, "version", None)
        #: The embedder as recorded with the table: its name, and version when it has one.
        self.embedder_id = str(embedder.name) if version is None else f"{embedder.name}@{version}"
        self.threshold = self._check_threshold(threshold)
        for name, value, low in (
            ("candidates", candidates, 1),
            ("exact_below", exact_below, 0),
            ("ef_search", ef_search, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
        if grey_zone is not None and not (
            isinstance(grey_zone, tuple)
            and len(grey_zone) == 2
            and -1.0 <= grey_zone[0] <= grey_zone[1] <= 1.0
        ):
            raise ValueError(
                f"grey_zone: expected (lo, hi) with -1 <= lo <= hi <= 1, got {grey_zone!r}"
            )
        self.candidates = candidates
        self.exact_below = exact_below
        self.ef_search = min(ef_search, 1000)  # pgvector's bound
        self.ttl = check_ttl(ttl)
        self.guards: tuple[Guard, ...] = tuple(default_guards() if guards is None else guards)
        self.verifier = verifier
        self.grey_zone = grey_zone
        self._codec: Codec = JSONCodec() if codec is None else codec
        self._vectors = QueryVectors(embedder)
        self._counts = new_counters("planted")
        self._vetoes = {guard.name: 0 for guard in self.guards}
        self._sizes: OrderedDict[str, tuple[bool, float]] = OrderedDict()
        self._vector_info: Any = None
        self._prepared: weakref.WeakSet[Any] = weakref.WeakSet()
        self._build_sql()

    @staticmethod
    def _embedder_dim(embedder: Embedder, dim: int | None) -> int:
        declared = getattr(embedder, "dim", None)
        if dim is None:
            dim = declared
        elif isinstance(declared, int) and declared != dim:
            raise ValueError(f"dim: {embedder.name} gives {declared}-dim vectors, not {dim}")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(
                f"dim: {embedder.name} does not say how long its vectors are "
                f"(got {dim!r}); pass dim= (pgvector needs it for the column)"
            )
        if dim > 2000:  # pgvector's HNSW index takes vectors of at most 2000 dimensions
            raise ValueError(
                f"dim: pgvector indexes at most 2000 dimensions, {embedder.name} gives {dim}"
            )
        return dim

    @staticmethod
    def _check_threshold(threshold: float) -> float:
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, (int, float))
            or not -1.0 <= threshold <= 1.0
        ):
            raise ValueError(f"threshold: expected a cosine in [-1, 1], got {threshold!r}")
        return float(threshold)

    def _build_sql(self) -> None:
        t = self._table
        row = "key, text, fingerprint, value, expires_at, accessed_at"
        live = "(expires_at IS NULL OR expires_at > %s)"
        self._sql_size = (
            f"SELECT count(*) FROM (SELECT 1 FROM {t} WHERE namespace = %s "
            f"AND partition = %s AND embedding IS NOT NULL LIMIT %s) AS p"
        )
        # The OFFSET 0 fence keeps the planner from ordering by the HNSW index: every row
        # of the partition is compared (exact).
        self._sql_search_exact = (
            f"SELECT {row}, score FROM (SELECT {row}, 1 - (embedding <=> %s) AS score "
            f"FROM {t} WHERE namespace = %s AND partition = %s AND embedding IS NOT NULL "
            f"AND {live} OFFSET 0) AS c WHERE score >= %s ORDER BY score DESC LIMIT %s"
        )
        self._sql_search_hnsw = (
            f"SELECT {row}, 1 - (embedding <=> %s) AS score FROM {t} "
            f"WHERE namespace = %s AND partition = %s AND embedding IS NOT NULL AND {live} "
            f"ORDER BY embedding <=> %s LIMIT %s"
        )
        self._sql_set = (
            f"INSERT INTO {t} (namespace, key, partition, text, fingerprint, value, "
            f"expires_at, accessed_at, embedding) "
            f"SELECT namespace, %s, %s, %s, %s, %s, %s, %s, %s FROM {t}_ns "
            f"WHERE namespace = %s FOR SHARE ON CONFLICT (namespace, key) DO UPDATE SET "
            f"partition = EXCLUDED.partition, text = EXCLUDED.text, "
            f"fingerprint = EXCLUDED.fingerprint, value = EXCLUDED.value, "
            f"expires_at = EXCLUDED.expires_at, accessed_at = EXCLUDED.accessed_at, "
            f"embedding = EXCLUDED.embedding"
        )
        self._sql_ef_search = "SELECT set_config('hnsw.ef_search', %s, false)"

    # -- the schema -------------------------------------------------------------------------

    def _tier_columns(self) -> str:
        return (
            f"partition text, text text, fingerprint text NOT NULL, value bytea NOT NULL, "
            f"embedding vector({self._dim})"
        )

    def _indexes(self) -> Sequence[str]:
        t = self._table
        return [
            f"CREATE INDEX IF NOT EXISTS {t}_partition ON {t} (namespace, partition)",
            f"CREATE INDEX IF NOT EXISTS {t}_hnsw ON {t} USING hnsw (embedding vector_cosine_ops)",
        ]

    def _registry_row(self) -> tuple[Any, ...]:
        return (self.kind, SCHEMA_VERSION, self.embedder_id, self._dim)

    def _check_row(self, row: tuple[Any, ...]) -> None:
        super()._check_row(row)
        embedder, dim = row[2], row[3]
        if embedder != self.embedder_id or dim != self._dim:
            raise self._refused(
                f"holds vectors of embedder {embedder!r} ({dim} dims); this cache's "
                f"embedder is {self.embedder_id!r} ({self._dim} dims): vectors of two "
                f"embedders cannot be compared, give this cache another table"
            )

    def _no_pgvector(self, exc: BaseException) -> SchemaError:
        return SchemaError(
            f"the pgvector extension is not available in this database "
            f"({type(exc).__name__}: {exc}); install pgvector on the server "
            f"and run CREATE EXTENSION vector as a superuser",
            store=self._label,
            operation="open",
        )

    # -- planning ---------------------------------------------------------------------------

    def _partition(self, scope: str) -> str:
        # As `SemanticCache._partition`: the embedder's name scopes every partition.
        return hash_bytes(f"{self.embedder.name}\0{scope}".encode())

    def _plan(self, request: Request) -> Plan:
        data = canonical_bytes(request)
        split = split_request(request.to_canonical())
        if split is None:
            return Plan(hash_bytes(data), fingerprint(data), None, None, None)
        scope = hash_bytes(orjson.dumps(split[0], option=orjson.OPT_SORT_KEYS))
        return Plan(hash_bytes(data), fingerprint(data), scope, self._partition(scope), split[1])

    def _search_sql(
        self, large: bool, vec: Any, plan: Plan, lower: float, limit: int
    ) -> tuple[str, tuple[Any, ...]]:
        now = self._clock()
        if large:
            return self._sql_search_hnsw, (vec, self._namespace, plan.partition, now, vec, limit)
        return self._sql_search_exact, (vec, self._namespace, plan.partition, now, lower, limit)

    def _known_size(self, partition: str) -> bool | None:
        """Whether `partition` was lately seen larger than `exact_below`; ``None`` when it
        must be counted again."""
        with self._count_lock:
            seen = self._sizes.get(partition)
            if seen is None or time.monotonic() - seen[1] > _SIZE_TTL:
                return None
            return seen[0]

    def _remember_size(self, partition: str, count: int) -> bool:
        large = count > self.exact_below
        with self._count_lock:
            self._sizes[partition] = (large, time.monotonic())
            self._sizes.move_to_end(partition)
            while len(self._sizes) > _SIZES_KEPT:
                self._sizes.popitem(last=False)
        return large

    # -- rows -------------------------------------------------------------------------------

    def _decode(self, data: Any, expires_at: float | None) -> CachedResponse | None:
        try:
            entry = self._codec.decode(data)
        except (ValueError, TypeError) as exc:  # CodecError is a ValueError
            self._failed("get (decode)", exc)
            return None
        now = self._clock()
        if (expires_at is not None and now >= expires_at) or entry.is_expired(now):
            self._bump("expirations")
            return None
        return entry

    def _exact_hit(self, row: Any, plan: Plan) -> SemanticHit | None:
        entry = None if row is None else self._decode(row[0], row[1])
        if entry is None or entry.fingerprint != plan.fingerprint:
            return None
        self._bump("exact_hits")
        return SemanticHit(
            public_entry(entry, 1.0, plan.text, True), 1.0, True, plan.text, plan.key
        )

    def _screen(
        self, rows: Sequence[Any], plan: Plan, threshold: float
    ) -> Iterator[tuple[Any, Candidate]]:
        """Rows that may be served, best first, each judged by the guards (as
        `SemanticCache` judges its candidates)."""
        assert plan.text is not None
        has_verifier = self.verifier is not None
        lower = self._lower(threshold)
        for row in rows:
            key, text, score = row[0], row[1], min(1.0, float(row[6]))
            if not isinstance(text, str) or score < lower:
                continue
            candidate = judge(
                self.guards, key, text, plan.text, score, threshold, has_verifier, self.grey_zone
            )
            if candidate.veto is None or candidate.verify:
                yield row, candidate
            elif candidate.veto[0] in self._vetoes:
                with self._count_lock:
                    self._vetoes[candidate.veto[0]] += 1

    def _lower(self, threshold: float) -> float:
        zone = self.grey_zone if self.verifier is not None else None
        return min(threshold, zone[0]) if zone else threshold

    def _serve(self, row: Any, candidate: Candidate, plan: Plan) -> SemanticHit | None:
        """The hit for a screened row, or ``None`` when the row does not hold together (a
        planted or corrupt row: counted)."""
        key, text, fp, data, expires_at = row[0], row[1], row[2], row[3], row[4]
        entry = self._decode(data, expires_at)
        if entry is None:
            return None
        meta = entry.metadata.get(META_KEY)
        scope = meta.get("scope") if isinstance(meta, dict) else None
        if (
            entry.fingerprint != fp
            or not isinstance(meta, dict)
            or meta.get("text") != text
            or not isinstance(scope, str)
            or self._partition(scope) != plan.partition
        ):
            self._bump("planted")
            return None
        self._bump("semantic_hits")
        return SemanticHit(
            public_entry(entry, candidate.similarity, text, False),
            candidate.similarity,
            False,
            text,
            key,
        )

    def _bump(self, name: str, n: int = 1) -> None:
        with self._count_lock:
            self._counts[name] += n

    def _verdict(self, ok: bool) -> None:
        self._bump("verified" if ok else "refused")

    def _miss(self) -> SemanticHit | None:
        """Count a lookup that found nothing to serve; its result (``None``)."""
        self._bump("misses")
        return None

    def _explain(self, row: Any, plan: Plan) -> Candidate:
        assert plan.text is not None
        key, text, score = row[0], row[1] or "", min(1.0, float(row[6]))
        veto = next(
            ((g.name, r) for g in self.guards if (r := g.veto(text, plan.text)) is not None), None
        )
        return Candidate(key, text, score, veto)

    # -- writing ------------------------------------------------------------------------------

    def _row_params(
        self, plan: Plan, entry: CachedResponse, ttl: float | None, vec: Any
    ) -> tuple[Any, ...]:
        now = self._clock()
        if vec is not None and int(vec.shape[0]) != self._dim:
            # The embedder changed size under its name: stored for exact lookups only.
            self._failed(
                "embed",
                ValueError(
                    f"{self.embedder.name} gave a "
                    f"{vec.shape[0]}-dim vector for a "
                    f"{self._dim}-dim table"
                ),
            )
            vec = None
        data = self._codec.encode(entry.with_ttl(ttl, now))
        return (
            plan.key,
            plan.partition if vec is not None else None,
            plan.text,
            plan.fingerprint,
            data,
            None if ttl is None else now + ttl,
            now,
            vec,
            self._namespace,
        )

    def _resolve_ttl(self, ttl: float | None) -> float | None:
        ttl = check_ttl(ttl)
        return self.ttl if ttl is None else ttl

    def _written(self, written: int) -> None:
        if written > 0:
            self._bump("sets", written)
            return
        self._dropped("set", 1)
