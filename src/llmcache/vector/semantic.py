"""`SemanticCache`: exact lookup first, then a guarded, partitioned similarity lookup.

A request is split in two: its *scope* (everything but the text to match: model, options,
system prompt, tools, format, images, namespace, and for chats every message except the
last user message) and its *text* (the prompt, or the last user message). Only requests
with the same scope, under the same embedder, share a partition, and each partition has
its own vector index, so a hit can never cross a model, an option, a tool set, a tenant or
the earlier turns of a conversation. Only the text is embedded.

Candidates above the threshold go through the guards (numbers, negation, antonyms,
entities, roles, scope; see `llmcache.vector.guards`) and, when a `Verifier` is set, a
model's yes/no for candidates in the grey zone or vetoed only by the soft ``scope`` guard.

>>> from llmcache.keys import Request
>>> from llmcache.vector.embedders import HashingEmbedder
>>> cache = SemanticCache(HashingEmbedder(), threshold=0.6)
>>> cache.set(Request(model="m", prompt="How do I reverse a list in Python?"), "xs[::-1]")
>>> hit = cache.get(Request(model="m", prompt="how do i reverse a list in python"))
>>> hit.content, hit.exact, hit.entry.metadata["semantic"]["matched_prompt"]
('xs[::-1]', False, 'How do I reverse a list in Python?')
>>> cache.get(Request(model="m", prompt="How do I reverse a list in Java?")) is None
True
>>> cache.get(Request(model="other", prompt="How do I reverse a list in Python?")) is None
True
>>> cache.stats()["vetoes"]["entities"], cache.stats()["semantic_hits"]
(1, 1)
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from llmcache.entry import CachedResponse, JSONValue
from llmcache.keys import Request, canonical_bytes, fingerprint, hash_bytes, make_key
from llmcache.stores.base import Store, check_ttl
from llmcache.stores.disk import DiskStore
from llmcache.stores.memory import MemoryStore
from llmcache.vector._arguments import check_int, check_real
from llmcache.vector._persist import (
    EmbedderIdentity,
    Record,
    load_index,
    load_partition_index,
    partition_index,
    read_persisted,
    write_persisted,
)
from llmcache.vector._scope import (
    Candidate,
    QueryVectors,
    SemanticHit,
    SemanticQuery,
    judge,
    make_record,
    public_entry,
    split_request,
)
from llmcache.vector.embedders import Embedder, EmbeddingError, Matrix, declared_dim
from llmcache.vector.guards import Guard, default_guards
from llmcache.vector.index import SearchHit, VectorSearch
from llmcache.vector.verifier import Verifier

__all__ = ["DEFAULT_THRESHOLD", "Candidate", "SemanticCache", "SemanticHit", "split_request"]

logger = logging.getLogger(__name__)

#: Chosen on the bundled labeled set with WordLlama and the default guards (see the
#: evaluation in ``llmcache eval``): below it unrelated short texts start to score close.
DEFAULT_THRESHOLD = 0.7

_OPT = orjson.OPT_SORT_KEYS


def _check_ttl(ttl: float | None) -> float | None:
    # A store's check, plus finiteness: an infinite expiry does not survive the manifest's
    # JSON, and None already says "never".
    ttl = check_ttl(ttl)
    if ttl is not None and not math.isfinite(ttl):
        raise ValueError(f"ttl: expected seconds > 0 and finite (None: no expiry), got {ttl!r}")
    return ttl


def _check_grey_zone(grey_zone: object) -> tuple[float, float]:
    valid = "(lo, hi) with -1 <= lo <= hi <= 1"
    if not isinstance(grey_zone, tuple | list) or len(grey_zone) != 2:
        raise ValueError(f"grey_zone: expected {valid}, got {grey_zone!r}")
    try:
        lo = check_real("grey_zone", grey_zone[0], valid, lambda x: -1.0 <= x <= 1.0)
        hi = check_real("grey_zone", grey_zone[1], valid, lambda x: lo <= x <= 1.0)
    except ValueError:
        raise ValueError(f"grey_zone: expected {valid}, got {grey_zone!r}") from None
    return lo, hi


class SemanticCache:
    """Exact, then semantic, caching of model answers; thread-safe.

    ``embedder`` turns texts into unit vectors (`WordLlamaEmbedder` for the bundled local
    model). ``threshold`` is the minimum cosine similarity (per call too). ``guards``
    defaults to `default_guards()`; pass ``()`` to turn them off. ``verifier`` (optional)
    is asked about candidates with a similarity in ``grey_zone`` (``(lo, hi)``; ``None``:
    every candidate) and about candidates vetoed only by the ``scope`` guard;
    ``grey_zone`` may reach below the threshold. ``max_entries`` bounds the entries (least
    recently used go first, from the index too); ``ttl`` is the default time to live.

    Entries go to ``store`` (default: a `MemoryStore`, or a `DiskStore` in
    ``persist_path/entries`` when ``persist_path`` is given); with ``persist_path`` the
    indexes are saved in ``persist_path/index`` by `save` and `close`, and rebuilt from
    the stored entries when missing or corrupt, or made by an embedder of another identity
    (name, ``dim``, ``version``). An embedder that fails or answers vectors that are not
    of the size it declares (or NaN) is a miss, counted in ``stats()["embedding_errors"]``
    and logged once, never an exception; one that changes size while the cache runs starts
    each partition it meets anew (its entries stay for exact lookups), counted in
    ``stats()["stale_partitions"]``. A partition's index is exact until it holds
    more than ``approximate_above`` entries (raise ``max_entries`` to get there), then, with
    the ``ann`` extra installed, an HNSW graph is built in the background and takes over
    (`AutoIndex`); ``None`` keeps every index exact. ``index_factory(dim)`` replaces that
    choice with your own index per partition.

    Call `set` only with answers the model produced for that request, never with the
    answer of a semantic hit: a chain of hits would drift away from the original question.
    """

    def __init__(self, embedder: Embedder, *, threshold: float = DEFAULT_THRESHOLD,
                 max_entries: int = 10_000, ttl: float | None = None,
                 guards: Sequence[Guard] | None = None, verifier: Verifier | None = None,
                 grey_zone: tuple[float, float] | None = None, store: Store | None = None,
                 persist_path: str | os.PathLike[str] | None = None,
                 index_factory: Callable[[int], VectorSearch] | None = None,
                 approximate_above: int | None = 50_000, candidates: int = 8,
                 clock: Callable[[], float] = time.time) -> None:
        self.embedder = embedder
        self.threshold = self._check_threshold(threshold)
        self.max_entries = check_int("max_entries", max_entries, minimum=1)
        self.ttl = _check_ttl(ttl)
        self.guards: tuple[Guard, ...] = tuple(default_guards() if guards is None else guards)
        self.verifier = verifier
        self.grey_zone = None if grey_zone is None else _check_grey_zone(grey_zone)
        self.candidates = check_int("candidates", candidates, minimum=1)
        self._clock = clock
        if approximate_above is not None:
            approximate_above = check_int("approximate_above", approximate_above, minimum=0,
                                          none=True)
        self.approximate_above = approximate_above
        self._index_factory: Callable[[int], VectorSearch]
        self._index_loader: Callable[[Path], VectorSearch]
        if index_factory is None:
            self._index_factory = partial(partition_index, approximate_above=approximate_above)
            self._index_loader = partial(load_partition_index,
                                         approximate_above=approximate_above)
        else:  # the caller's own indexes: loaded as saved
            self._index_factory, self._index_loader = index_factory, load_index
        self._dir = Path(persist_path) if persist_path is not None else None
        self._owns_store = store is None
        if store is None:
            store = (DiskStore(self._dir / "entries", clock=clock) if self._dir is not None
                     else MemoryStore(max_entries=max_entries, clock=clock))
        self._store = store
        self._lock = threading.RLock()
        self._records: OrderedDict[str, Record] = OrderedDict()
        self._indexes: dict[str, VectorSearch] = {}
        self._dirty: set[str] = set()
        self._expiry: list[tuple[float, str]] = []
        self._vectors = QueryVectors(embedder)
        self._counts = dict.fromkeys(("exact_hits", "semantic_hits", "misses", "sets",
                                      "evictions", "expirations", "verified", "refused",
                                      "stale_partitions"), 0)
        self._stale_logged = False
        self._vetoes = {guard.name: 0 for guard in self.guards}
        self._closed = False
        if self._dir is not None:
            self._restore(self._dir)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _check_threshold(threshold: float) -> float:
        return check_real("threshold", threshold, "a cosine in [-1, 1]",
                          lambda x: -1.0 <= x <= 1.0)

    def _partition(self, scope_key: str) -> str:
        return hash_bytes(f"{self.embedder.name}\0{scope_key}".encode())

    def _forget(self, record: Record, *, delete: bool = True) -> None:
        """Drop ``record`` from the records and its index (caller holds the lock)."""
        self._records.pop(record.key, None)
        index = self._indexes.get(record.partition) if record.partition else None
        if index is not None and record.partition is not None:
            index.remove(record.key)
            self._dirty.add(record.partition)
            if not len(index):
                del self._indexes[record.partition]
        if delete:
            self._store.delete(record.key)

    def _sweep(self, now: float) -> None:
        heap = self._expiry
        while heap and heap[0][0] <= now:
            expires, key = heapq.heappop(heap)
            record = self._records.get(key)
            if record is not None and record.expires_at == expires:
                self._forget(record)
                self._counts["expirations"] += 1

    def _fits(self, partition: str, vec: Matrix) -> bool:
        """Whether ``vec`` can be compared with ``partition``'s index (caller holds the lock).

        An index of another size holds vectors of an earlier embedder under the same name:
        when ``vec`` has the size the embedder declares now, the index is dropped (its
        entries stay for exact lookups; a reopened cache embeds their texts again) and the
        partition starts anew. Otherwise the vector is the odd one out and is refused."""
        index = self._indexes.get(partition)
        dim = int(vec.shape[0])
        if index is None or index.dim == dim:
            return True
        if declared_dim(self.embedder) != dim:
            self._vectors.failed(EmbeddingError(
                f"{self.embedder.name}: a {dim}-dim vector for an index of {index.dim}"))
            return False
        del self._indexes[partition]
        self._dirty.add(partition)
        self._counts["stale_partitions"] += 1
        if not self._stale_logged:
            self._stale_logged = True
            logger.warning("SemanticCache(%s): a partition's index holds %d-dim vectors, the "
                           "embedder now gives %d; the partition starts anew (its entries "
                           "stay for exact lookups; further ones are only counted)",
                           self.embedder.name, index.dim, dim)
        return True

    def _index_vector(self, record: Record, vec: Matrix) -> None:
        assert record.partition is not None
        if not self._fits(record.partition, vec):
            return
        index = self._indexes.get(record.partition)
        if index is None:
            index = self._indexes[record.partition] = self._index_factory(int(vec.shape[0]))
        index.add_one(record.key, vec)
        self._dirty.add(record.partition)

    # ------------------------------------------------------------------ writing

    def _prepare(self, request: Request, value: CachedResponse | JSONValue,
                 ttl: float | None) -> tuple[Record, CachedResponse, float | None]:
        ttl = _check_ttl(ttl)
        ttl = self.ttl if ttl is None else ttl
        record, entry = make_record(request, value, self._partition,
                                    None if ttl is None else self._clock() + ttl)
        return record, entry, ttl

    def _commit(self, record: Record, entry: CachedResponse, ttl: float | None,
                vec: Matrix | None) -> None:
        with self._lock:
            self._check_open()
            self._sweep(self._clock())
            old = self._records.get(record.key)
            if old is not None:
                self._forget(old, delete=False)
            while len(self._records) >= self.max_entries:
                _, oldest = next(iter(self._records.items()))
                self._forget(oldest)
                self._counts["evictions"] += 1
            self._store.set(record.key, entry, ttl)
            self._records[record.key] = record
            if vec is not None and record.partition is not None:
                self._index_vector(record, vec)
            if record.expires_at is not None:
                heapq.heappush(self._expiry, (record.expires_at, record.key))
            self._counts["sets"] += 1

    def set(self, request: Request, value: CachedResponse | JSONValue, *,
            ttl: float | None = None) -> None:
        """Cache ``value`` (a `CachedResponse`, or the answer's content) for ``request``."""
        record, entry, ttl = self._prepare(request, value, ttl)
        vec = self._vectors.get(record.text) if record.text is not None else None
        self._commit(record, entry, ttl, vec)

    async def aset(self, request: Request, value: CachedResponse | JSONValue, *,
                   ttl: float | None = None) -> None:
        """`set` for async code (awaits the embedder's ``aembed`` when it has one)."""
        record, entry, ttl = self._prepare(request, value, ttl)
        vec = await self._vectors.aget(record.text) if record.text is not None else None
        self._commit(record, entry, ttl, vec)

    # ------------------------------------------------------------------ reading

    def _begin(self, request: Request,
               threshold: float | None) -> SemanticHit | SemanticQuery | None:
        """The exact hit, or what the semantic lookup needs, or ``None`` for a miss."""
        self._check_open()
        limit = self.threshold if threshold is None else self._check_threshold(threshold)
        canonical = request.to_canonical()
        data = canonical_bytes(request)  # the exact key is `make_key`'s
        key = hash_bytes(data)
        split = split_request(canonical)
        entry = self._store.get(key)
        if entry is not None and entry.fingerprint == fingerprint(data):
            text = split[1] if split else None
            with self._lock:
                if key in self._records:
                    self._records.move_to_end(key)
                self._counts["exact_hits"] += 1
            return SemanticHit(public_entry(entry, 1.0, text, True), 1.0, True, text, key)
        if split is not None:
            partition = self._partition(hash_bytes(orjson.dumps(split[0], option=_OPT)))
            with self._lock:
                if partition in self._indexes:  # nothing to compare with: no embedding
                    return SemanticQuery(key, partition, split[1], limit)
        self._miss()
        return None

    def _miss(self) -> None:
        with self._lock:
            self._counts["misses"] += 1

    def _screen(self, query: SemanticQuery,
                vec: Matrix | None) -> Iterator[tuple[Record, Candidate]]:
        """Candidates that may be served, best first, judged one at a time (a lookup
        usually stops at the first, so the guards run once)."""
        if vec is None:
            return
        zone = self.grey_zone if self.verifier is not None else None
        lower = min(query.threshold, zone[0]) if zone else query.threshold
        with self._lock:
            self._sweep(self._clock())
            if not self._fits(query.partition, vec):
                return
            index = self._indexes.get(query.partition)
        # The search runs outside the cache's lock (the index has its own), so lookups in
        # other partitions and writes go on meanwhile: a search over 100k rows takes
        # milliseconds. An id removed or replaced in between is dropped here or refused by
        # `_serve`.
        hits = index.search(vec, k=self.candidates, threshold=lower) if index is not None else []
        with self._lock:
            found = [(self._records[h.id], min(1.0, h.score)) for h in hits
                     if h.id in self._records]  # float rounding can give 1.0000001
        for record, score in found:
            assert record.text is not None
            candidate = judge(self.guards, record.key, record.text, query.text, score,
                              query.threshold, self.verifier is not None, self.grey_zone)
            if candidate.veto is None or candidate.verify:
                yield record, candidate
            elif candidate.veto[0] in self._vetoes:
                with self._lock:
                    self._vetoes[candidate.veto[0]] += 1

    def _serve(self, record: Record, candidate: Candidate) -> SemanticHit | None:
        """The hit for a screened ``candidate``, or ``None`` if its entry is gone or
        replaced."""
        entry = self._store.get(record.key)
        with self._lock:
            if entry is None or entry.fingerprint != record.fingerprint:
                if self._records.get(record.key) is record:
                    self._forget(record, delete=entry is not None)  # gone or replaced
                return None
            if record.key in self._records:
                self._records.move_to_end(record.key)
            self._counts["semantic_hits"] += 1
        public = public_entry(entry, candidate.similarity, record.text, False)
        return SemanticHit(public, candidate.similarity, False, record.text, record.key)

    def _verdict(self, ok: bool) -> None:
        with self._lock:
            self._counts["verified" if ok else "refused"] += 1

    def get(self, request: Request, *, threshold: float | None = None) -> SemanticHit | None:
        """The cached answer for ``request`` or for a request close enough, else ``None``."""
        query = self._begin(request, threshold)
        if not isinstance(query, SemanticQuery):
            return query
        for record, candidate in self._screen(query, self._vectors.get(query.text)):
            if candidate.verify:
                assert self.verifier is not None and record.text is not None
                ok = self.verifier.verify(record.text, query.text)
                self._verdict(ok)
                if not ok:
                    continue
            hit = self._serve(record, candidate)
            if hit is not None:
                return hit
        self._miss()
        return None

    async def aget(self, request: Request, *,
                   threshold: float | None = None) -> SemanticHit | None:
        """`get` for async code (awaits ``aembed`` and the verifier's `averify`)."""
        query = self._begin(request, threshold)
        if not isinstance(query, SemanticQuery):
            return query
        for record, candidate in self._screen(query, await self._vectors.aget(query.text)):
            if candidate.verify:
                assert self.verifier is not None and record.text is not None
                ok = await self.verifier.averify(record.text, query.text)
                self._verdict(ok)
                if not ok:
                    continue
            hit = self._serve(record, candidate)
            if hit is not None:
                return hit
        self._miss()
        return None

    def explain(self, request: Request, *, k: int | None = None) -> list[Candidate]:
        """Every candidate of ``request``'s partition (up to ``k``) with its similarity and
        the first guard veto, without thresholds, verifier calls, counters or LRU effects.

        >>> from llmcache.vector.embedders import HashingEmbedder
        >>> cache = SemanticCache(HashingEmbedder())
        >>> cache.set(Request(model="m", prompt="Where is order 48213?"), "shipped")
        >>> [(c.text, c.veto[0]) for c in cache.explain(Request(model="m",
        ...                                                     prompt="Where is order 48231?"))]
        [('Where is order 48213?', 'numbers')]
        """
        split = split_request(request.to_canonical())
        if split is None:
            return []
        partition = self._partition(hash_bytes(orjson.dumps(split[0], option=_OPT)))
        vec = self._vectors.get(split[1])
        with self._lock:
            index = self._indexes.get(partition)
            hits: list[SearchHit] = []
            if index and vec is not None and index.dim == vec.shape[0]:  # else: not comparable
                hits = index.search(vec, k=k or len(index))
            found = [(self._records[h.id], min(1.0, h.score)) for h in hits
                     if h.id in self._records]
        out = []
        for record, score in found:
            assert record.text is not None
            veto = next(((g.name, r) for g in self.guards
                         if (r := g.veto(record.text, split[1])) is not None), None)
            out.append(Candidate(record.key, record.text, score, veto))
        return out

    # ------------------------------------------------------------------ management

    def delete(self, request: Request) -> bool:
        """Remove the entry cached for exactly ``request``; True if there was one."""
        key = make_key(request)
        with self._lock:
            record = self._records.get(key)
            if record is not None:
                self._forget(record, delete=False)
        return self._store.delete(key) or record is not None

    def clear(self) -> None:
        """Remove every entry (and clear the store, which should not be shared)."""
        with self._lock:
            self._dirty.update(self._indexes)
            self._records.clear()
            self._indexes.clear()
            self._expiry.clear()
            self._store.clear()

    def __len__(self) -> int:
        with self._lock:
            self._sweep(self._clock())
            return len(self._records)

    def stats(self) -> dict[str, Any]:
        """Entries, partitions, hits (exact and semantic), misses, evictions, vetoes per
        guard, embeddings that could not be used, partitions whose vectors came from an
        embedder of another identity, and the verifier's calls and verdicts."""
        with self._lock:
            self._sweep(self._clock())
            hits = self._counts["exact_hits"] + self._counts["semantic_hits"]
            result: dict[str, Any] = {
                "entries": len(self._records), "partitions": len(self._indexes),
                "hits": hits, **self._counts, "embedding_errors": self._vectors.errors,
                "vetoes": dict(self._vetoes),
                "threshold": self.threshold, "embedder": self.embedder.name}
        result["verifier"] = self.verifier.stats() if self.verifier is not None else None
        return result

    def save(self) -> None:
        """Write the changed indexes and the manifest (no-op without ``persist_path``)."""
        if self._dir is None:
            return
        with self._lock:
            records = list(self._records.values())
            changed = {p: self._indexes.get(p) for p in self._dirty}
            self._dirty.clear()
        try:
            write_persisted(self._dir, EmbedderIdentity.of(self.embedder), records, changed)
        except BaseException:
            with self._lock:  # try again at the next save
                self._dirty.update(changed)
            raise

    def _restore(self, path: Path) -> None:
        """Take the records and indexes of the cache persisted at ``path`` (at open)."""
        restored = read_persisted(
            path, self._store, self.embedder, partition_of=self._partition,
            max_entries=self.max_entries, now=self._clock(), new_index=self._index_factory,
            load_index=self._index_loader, embed_failed=self._vectors.failed)
        self._records = restored.records
        self._indexes = restored.indexes
        self._dirty = restored.dirty
        self._counts["stale_partitions"] += restored.stale_partitions
        self._expiry = [(r.expires_at, r.key) for r in restored.records.values()
                        if r.expires_at is not None]
        heapq.heapify(self._expiry)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("SemanticCache is closed")

    def close(self) -> None:
        """Save (when persisted) and close the store this cache opened. Idempotent."""
        if self._closed:
            return
        try:
            self.save()
        finally:
            self._closed = True
            if self._owns_store:
                self._store.close()

    def __enter__(self) -> SemanticCache:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"SemanticCache({self.embedder.name!r}, threshold={self.threshold}, "
                f"entries={len(self._records)}, guards={[g.name for g in self.guards]})")
