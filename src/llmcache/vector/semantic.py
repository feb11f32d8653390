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

import asyncio
import heapq
import logging
import math
import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from llmcache._closing import Closing
from llmcache.backends.base import AsyncBackend
from llmcache.entry import CachedResponse, JSONValue
from llmcache.keys import Request, canonical_bytes, fingerprint, hash_bytes, make_key
from llmcache.stores.base import Store, check_ttl
from llmcache.stores.disk import DiskStore
from llmcache.stores.memory import MemoryStore
from llmcache.vector._arguments import check_int, check_real
from llmcache.vector._counters import new_counters
from llmcache.vector._persist import (
    EmbedderIdentity,
    Record,
    load_index,
    load_partition_index,
    partition_index,
    read_observation_rows,
    read_persisted,
    write_observation_rows,
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
from llmcache.vector.background import BackgroundWork
from llmcache.vector.bound import DEFAULT_CONFIDENCE
from llmcache.vector.compare import COMPARISONS, Comparison, text_of
from llmcache.vector.embedders import Embedder, EmbeddingError, Matrix, declared_dim
from llmcache.vector.guards import Guard, default_guards
from llmcache.vector.index import SearchHit, VectorSearch
from llmcache.vector.observations import (
    Decision,
    Observation,
    ObservationLog,
    observations_entry,
    observations_key,
    read_labeled_pairs,
    rows_from_entry,
)
from llmcache.vector.promotion import ALIAS_KEY, BoundedMemory, Pending, alias_entry, alias_target
from llmcache.vector.verifier import Verifier

__all__ = [
    "DEFAULT_THRESHOLD",
    "LEARNED_FLOOR",
    "Candidate",
    "SemanticCache",
    "SemanticHit",
    "split_request",
]

logger = logging.getLogger(__name__)

#: Chosen on the bundled labeled set with WordLlama and the default guards (see the
#: evaluation in ``llmcache eval``): below it unrelated short texts start to score close.
DEFAULT_THRESHOLD = 0.7
#: With ``max_error``, candidates below this similarity are not considered (neither served
#: nor sent to the judge) unless ``grey_zone`` sets another floor: on the bundled set with
#: WordLlama, 90% of the should-hit pairs score above it and unrelated texts below.
LEARNED_FLOOR = 0.5
_VERIFY_MODES = ("inline", "background")

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


class SemanticCache(Closing):
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

    **A stated error bound.** With ``max_error`` (say ``0.01``) the static ``threshold``
    no longer decides: a candidate that passes the hard guards is served only when the
    thresholds learned from labeled observations say that candidates like it are wrong at
    most ``max_error`` of the time, with probability ``confidence`` (an exact binomial
    upper bound, thresholds tested from high to low; see `llmcache.vector.bound` for why
    that keeps the bound). Thresholds are learned per partition, or cache-wide until a
    partition has enough observations of its own, and an entry never serves below the
    highest similarity at which it was found wrong (`llmcache.vector.observations`).
    Until about ``ln(1 - confidence) / ln(1 - max_error)`` observations (299 for 1% at
    95%) certify a threshold, only a judge's approvals are served. Labels come from

    - the ``verifier`` (a judge): candidates not (yet) servable, down to ``grey_zone[0]``
      (`LEARNED_FLOOR` by default), or vetoed only by the soft ``scope`` guard, are sent
      to it; its approvals are served (and promoted, below), its verdicts are labels;
    - the model itself: a candidate the model answers anyway (not servable yet, or an
      exploration: with a chance of up to ``explore`` a servable candidate calls the model,
      more often where the estimate is least sure) is labeled when its fresh answer is
      `set`, by ``compare``: ``"exact"``, ``"normalized"``, ``"json"`` (see
      `llmcache.vector.compare`), a callable, or a `Verifier` (asked in the background);
    - labeled pairs, for a warm start: `observe_pairs`.

    The bound holds for labels as good as their source: a judge's mistakes are learned as
    truths. Observations are saved beside the manifest (``persist_path``) and, when the
    ``store`` is yours (a shared Redis tier), in it, by `save` and `close`
    (`sync_observations` at any time), so processes learn from each other.

    **Verification off the request path.** ``verify="background"`` (the default with
    ``max_error``; ``"inline"`` otherwise, as before) lets the model answer a grey-zone
    candidate now while a worker asks the verifier (a queue of ``max_pending`` jobs, the
    ones that do not fit dropped and counted, ``verify_concurrency`` at a time; a thread
    for `get`, a task of the running loop for `aget`). An approved pair becomes an alias:
    the new request's exact key points at the cached answer, so the same request later is
    an exact hit (``metadata["semantic"]["basis"] == "alias"``); a rejected pair is
    remembered and not asked again. `wait_verified` waits for the queue; `close` stops the
    workers. Hits served under a bound say why in ``metadata["semantic"]["basis"]``:
    ``"learned"`` (with the threshold and bound used), ``"judge"`` or ``"alias"``.
    """

    def __init__(
        self,
        embedder: Embedder,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        max_entries: int = 10_000,
        ttl: float | None = None,
        guards: Sequence[Guard] | None = None,
        verifier: Verifier | None = None,
        grey_zone: tuple[float, float] | None = None,
        store: Store | None = None,
        persist_path: str | os.PathLike[str] | None = None,
        index_factory: Callable[[int], VectorSearch] | None = None,
        approximate_above: int | None = 50_000,
        candidates: int = 8,
        clock: Callable[[], float] = time.time,
        max_error: float | None = None,
        confidence: float = DEFAULT_CONFIDENCE,
        explore: float = 0.05,
        compare: str | Comparison | Verifier = "exact",
        verify: str | None = None,
        max_pending: int = 256,
        verify_concurrency: int = 1,
        max_observations: int = 10_000,
        seed: int | None = None,
    ) -> None:
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
            approximate_above = check_int(
                "approximate_above", approximate_above, minimum=0, none=True
            )
        self.approximate_above = approximate_above
        self._index_factory: Callable[[int], VectorSearch]
        self._index_loader: Callable[[Path], VectorSearch]
        if index_factory is None:
            self._index_factory = partial(partition_index, approximate_above=approximate_above)
            self._index_loader = partial(load_partition_index, approximate_above=approximate_above)
        else:  # the caller's own indexes: loaded as saved
            self._index_factory, self._index_loader = index_factory, load_index
        self._dir = Path(persist_path) if persist_path is not None else None
        self._owns_store = store is None
        if store is None:
            # Room for as many aliases as entries, when approved pairs are promoted.
            promoting = max_error is not None or verify == "background"
            store = (
                DiskStore(self._dir / "entries", clock=clock)
                if self._dir is not None
                else MemoryStore(max_entries=max_entries * (2 if promoting else 1), clock=clock)
            )
        self._store = store
        self._lock = threading.RLock()
        self._records: OrderedDict[str, Record] = OrderedDict()
        self._indexes: dict[str, VectorSearch] = {}
        self._dirty: set[str] = set()
        self._expiry: list[tuple[float, str]] = []
        self._vectors = QueryVectors(embedder)
        self._counts = new_counters("evictions", "stale_partitions")
        self._stale_logged = False
        self._vetoes = {guard.name: 0 for guard in self.guards}
        self._closed = False
        self._setup_learning(
            max_error,
            confidence=confidence,
            explore=explore,
            compare=compare,
            verify=verify,
            max_pending=max_pending,
            concurrency=verify_concurrency,
            max_observations=max_observations,
            seed=seed,
        )
        if self._dir is not None:
            self._restore(self._dir)
        self._load_observations()

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _check_threshold(threshold: float) -> float:
        return check_real("threshold", threshold, "a cosine in [-1, 1]", lambda x: -1.0 <= x <= 1.0)

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
            self._vectors.failed(
                EmbeddingError(
                    f"{self.embedder.name}: a {dim}-dim vector for an index of {index.dim}"
                )
            )
            return False
        del self._indexes[partition]
        self._dirty.add(partition)
        self._counts["stale_partitions"] += 1
        if not self._stale_logged:
            self._stale_logged = True
            logger.warning(
                "SemanticCache(%s): a partition's index holds %d-dim vectors, the "
                "embedder now gives %d; the partition starts anew (its entries "
                "stay for exact lookups; further ones are only counted)",
                self.embedder.name,
                index.dim,
                dim,
            )
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

    def _prepare(
        self, request: Request, value: CachedResponse | JSONValue, ttl: float | None
    ) -> tuple[Record, CachedResponse, float | None]:
        ttl = _check_ttl(ttl)
        ttl = self.ttl if ttl is None else ttl
        record, entry = make_record(
            request, value, self._partition, None if ttl is None else self._clock() + ttl
        )
        return record, entry, ttl

    def _commit(
        self, record: Record, entry: CachedResponse, ttl: float | None, vec: Matrix | None
    ) -> None:
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

    def set(
        self, request: Request, value: CachedResponse | JSONValue, *, ttl: float | None = None
    ) -> None:
        """Cache ``value`` (a `CachedResponse`, or the answer's content) for ``request``."""
        record, entry, ttl = self._prepare(request, value, ttl)
        vec = self._vectors.get(record.text) if record.text is not None else None
        self._commit(record, entry, ttl, vec)
        self._observe_fresh(record.key, entry, asynchronous=False)

    async def aset(
        self, request: Request, value: CachedResponse | JSONValue, *, ttl: float | None = None
    ) -> None:
        """`set` for async code (awaits the embedder's ``aembed`` when it has one)."""
        record, entry, ttl = self._prepare(request, value, ttl)
        vec = await self._vectors.aget(record.text) if record.text is not None else None
        self._commit(record, entry, ttl, vec)
        self._observe_fresh(record.key, entry, asynchronous=True)

    # ------------------------------------------------------------------ reading

    def _begin(
        self, request: Request, threshold: float | None
    ) -> SemanticHit | SemanticQuery | None:
        """The exact hit, or what the semantic lookup needs, or ``None`` for a miss."""
        self._check_open()
        limit = self.threshold if threshold is None else self._check_threshold(threshold)
        canonical = request.to_canonical()
        data = canonical_bytes(request)  # the exact key is `make_key`'s
        key = hash_bytes(data)
        split = split_request(canonical)
        entry = self._store.get(key)
        if entry is not None and entry.fingerprint == fingerprint(data):
            if ALIAS_KEY not in entry.metadata:
                text = split[1] if split else None
                with self._lock:
                    if key in self._records:
                        self._records.move_to_end(key)
                    self._counts["exact_hits"] += 1
                return SemanticHit(public_entry(entry, 1.0, text, True), 1.0, True, text, key)
            alias = self._alias_hit(key, entry)  # a judge's approval, promoted
            if alias is not None:
                return alias
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

    def _search(
        self, query: SemanticQuery, vec: Matrix, lower: float
    ) -> list[tuple[Record, float]]:
        """The records of ``query``'s partition scoring at least ``lower``, best first."""
        with self._lock:
            self._sweep(self._clock())
            if not self._fits(query.partition, vec):
                return []
            index = self._indexes.get(query.partition)
        # The search runs outside the cache's lock (the index has its own), so lookups in
        # other partitions and writes go on meanwhile: a search over 100k rows takes
        # milliseconds. An id removed or replaced in between is dropped here or refused by
        # `_serve`.
        hits = index.search(vec, k=self.candidates, threshold=lower) if index is not None else []
        with self._lock:
            return [
                (self._records[h.id], min(1.0, h.score)) for h in hits if h.id in self._records
            ]  # float rounding can give 1.0000001

    def _screen(
        self, query: SemanticQuery, vec: Matrix | None
    ) -> Iterator[tuple[Record, Candidate]]:
        """Candidates that may be served, best first, judged one at a time (a lookup
        usually stops at the first, so the guards run once)."""
        if vec is None:
            return
        zone = self.grey_zone if self.verifier is not None else None
        lower = min(query.threshold, zone[0]) if zone else query.threshold
        for record, score in self._search(query, vec, lower):
            assert record.text is not None
            candidate = judge(
                self.guards,
                record.key,
                record.text,
                query.text,
                score,
                query.threshold,
                self.verifier is not None,
                self.grey_zone,
            )
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
        vec = self._vectors.get(query.text)
        if self.verifier is None and self._learned is None:
            return self._looked_up(self._serve_first(query, vec))
        verifier = self.verifier
        # Under a bound an async judge runs in a loop of its own; without one, `verify`
        # refuses it (use `aget`), as it always did.
        ask = verifier.verify if verifier is not None and self._learned is None else self._ask
        steps = self._lookup(request, query, vec, False)
        try:
            cached, text = next(steps)
            while True:
                cached, text = steps.send(cached is not None and ask(cached, text))
        except StopIteration as stop:
            return self._looked_up(stop.value)

    async def aget(self, request: Request, *, threshold: float | None = None) -> SemanticHit | None:
        """`get` for async code (awaits ``aembed`` and the verifier's `averify`)."""
        query = self._begin(request, threshold)
        if not isinstance(query, SemanticQuery):
            return query
        vec = await self._vectors.aget(query.text)
        if self.verifier is None and self._learned is None:
            return self._looked_up(self._serve_first(query, vec))
        steps = self._lookup(request, query, vec, True)
        try:
            cached, text = next(steps)
            while True:
                assert self.verifier is not None
                ok = cached is not None and await self.verifier.averify(cached, text)
                cached, text = steps.send(ok)
        except StopIteration as stop:
            return self._looked_up(stop.value)

    def _lookup(
        self, request: Request, query: SemanticQuery, vec: Matrix | None, asynchronous: bool
    ) -> Generator[tuple[str | None, str], bool, SemanticHit | None]:
        """The semantic lookup, without I/O to the judge: it yields each question to ask
        inline (the cached request's text, ``None`` when its entry is gone: a no, and the
        looked up text) and takes the verdicts; `get` and `aget` only ask."""
        if self._learned is not None:
            return (yield from self._learned_steps(request, query, vec, asynchronous))
        for record, candidate in self._screen(query, vec):
            if candidate.verify and self.verify_mode == "background":
                # Served when the judge approved the pair before; never asked, it is now, in
                # the background (and the pair is not served this time).
                verdict = self._verdicts.get((record.key, query.key))
                if verdict is None:
                    self._submit_verification(record, candidate, request, query, asynchronous)
                if not verdict:
                    continue
            elif candidate.verify:
                assert record.text is not None
                ok = yield record.text, query.text
                self._verdict(ok)
                if not ok:
                    continue
            hit = self._serve(record, candidate)
            if hit is not None:
                return hit
        return None

    def _serve_first(self, query: SemanticQuery, vec: Matrix | None) -> SemanticHit | None:
        """`_lookup` with no judge and no bound: nothing to ask, so no steps to drive (the
        common hit path, kept free of a generator's cost)."""
        for record, candidate in self._screen(query, vec):
            hit = self._serve(record, candidate)
            if hit is not None:
                return hit
        return None

    def _looked_up(self, hit: SemanticHit | None) -> SemanticHit | None:
        """A lookup's outcome, its miss counted."""
        if hit is None:
            self._miss()
        return hit

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
            found = [
                (self._records[h.id], min(1.0, h.score)) for h in hits if h.id in self._records
            ]
        out = []
        for record, score in found:
            assert record.text is not None
            veto = next(
                (
                    (g.name, r)
                    for g in self.guards
                    if (r := g.veto(record.text, split[1])) is not None
                ),
                None,
            )
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
        self._forget_learning()

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
                "entries": len(self._records),
                "partitions": len(self._indexes),
                "hits": hits,
                **self._counts,
                "embedding_errors": self._vectors.errors,
                "vetoes": dict(self._vetoes),
                "threshold": self.threshold,
                "embedder": self.embedder.name,
            }
        result["verifier"] = self.verifier.stats() if self.verifier is not None else None
        result.update(self._learning_stats())
        return result

    def save(self) -> None:
        """Write the changed indexes and the manifest (no-op without ``persist_path``), and
        what a cache with ``max_error`` learned (also to a store you passed)."""
        self._save_observations()
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
            path,
            self._store,
            self.embedder,
            partition_of=self._partition,
            max_entries=self.max_entries,
            now=self._clock(),
            new_index=self._index_factory,
            load_index=self._index_loader,
            embed_failed=self._vectors.failed,
        )
        self._records = restored.records
        self._indexes = restored.indexes
        self._dirty = restored.dirty
        self._counts["stale_partitions"] += restored.stale_partitions
        self._expiry = [
            (r.expires_at, r.key) for r in restored.records.values() if r.expires_at is not None
        ]
        heapq.heapify(self._expiry)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("SemanticCache is closed")

    def close(self) -> None:
        """Save (when persisted) and close the store this cache opened. Idempotent."""
        if self._closed:
            return
        self._work.close()
        try:
            self.save()
        finally:
            self._closed = True
            if self._owns_store:
                self._store.close()

    async def aclose(self) -> None:
        """`close` for async code: also waits for the verification tasks of this loop."""
        if self._closed:
            return
        await self._work.aclose()
        await asyncio.to_thread(self.close)

    # ------------------------------------------------------------------ stated bound,
    # verification off the request path, promotion (issue 17)

    def _setup_learning(
        self,
        max_error: float | None,
        *,
        confidence: float,
        explore: float,
        compare: str | Comparison | Verifier,
        verify: str | None,
        max_pending: int,
        concurrency: int,
        max_observations: int,
        seed: int | None,
    ) -> None:
        self.max_error = max_error
        self._learned = (
            None
            if max_error is None
            else ObservationLog(
                max_error=max_error,
                confidence=confidence,
                explore=explore,
                max_observations=max_observations,
            )
        )
        self.verify_mode = (
            verify if verify is not None else ("inline" if max_error is None else "background")
        )
        if self.verify_mode not in _VERIFY_MODES:
            raise ValueError(f"verify: expected one of {_VERIFY_MODES} or None, got {verify!r}")
        if isinstance(compare, str):
            if compare not in COMPARISONS:
                raise ValueError(
                    f"compare: expected one of {sorted(COMPARISONS)}, a callable "
                    f"or a Verifier, got {compare!r}"
                )
            compare = COMPARISONS[compare]
        elif not callable(compare) and not isinstance(compare, Verifier):
            raise ValueError(f"compare: expected a name, a callable or a Verifier, got {compare!r}")
        self.compare: Comparison | Verifier = compare
        self._floor = self.grey_zone[0] if self.grey_zone is not None else LEARNED_FLOOR
        self._work = BackgroundWork(
            max_pending=max_pending, concurrency=concurrency, name="llmcache-semantic-verify"
        )
        memory = max(1024, self.max_entries)
        self._pending: BoundedMemory[str, Pending] = BoundedMemory(memory)
        self._verdicts: BoundedMemory[tuple[str, str], bool] = BoundedMemory(memory)
        self._asking: BoundedMemory[tuple[str, str], bool] = BoundedMemory(memory)
        self._aliases: OrderedDict[str, None] = OrderedDict()  # at most max_entries
        self._rng = random.Random(seed)
        for name in ("alias_hits", "learned_hits", "judged_hits", "explored", "promoted"):
            self._counts[name] = 0

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def _cached_text(self, record: Record) -> str | None:
        """The cached request's text as a judge reads it (a chat's transcript), or ``None``
        when its entry is gone or replaced meanwhile."""
        entry = self._store.get(record.key)
        return (
            record.text if entry is not None and entry.fingerprint == record.fingerprint else None
        )

    def _alias_hit(self, key: str, alias: CachedResponse) -> SemanticHit | None:
        """The cached answer an alias points at, or ``None`` (the alias dies with it)."""
        target = alias_target(alias)
        entry = self._store.get(target[0]) if target is not None else None
        if (
            target is None
            or entry is None
            or entry.fingerprint != target[1]
            or ALIAS_KEY in entry.metadata
        ):
            self._store.delete(key)
            return None
        target_key, _, similarity, text = target
        with self._lock:
            if target_key in self._records:
                self._records.move_to_end(target_key)
            self._counts["semantic_hits"] += 1
            self._counts["alias_hits"] += 1
        public = public_entry(entry, similarity, text, False)
        public.metadata["semantic"]["basis"] = "alias"
        return SemanticHit(public, similarity, False, text, target_key)

    def _serve_as(
        self, record: Record, candidate: Candidate, basis: str, decision: Decision | None = None
    ) -> SemanticHit | None:
        hit = self._serve(record, candidate)
        if hit is None:
            return None
        self._count("learned_hits" if basis == "learned" else "judged_hits")
        hit.entry.metadata["semantic"]["basis"] = basis
        if decision is not None:
            hit.entry.metadata["semantic"]["bound"] = decision.metadata()
        return hit

    def _learned_steps(
        self,
        request: Request,
        query: SemanticQuery,
        vec: Matrix | None,
        asynchronous: bool,
    ) -> Generator[tuple[str | None, str], bool, SemanticHit | None]:
        """`_lookup` under ``max_error``."""
        assert self._learned is not None
        if vec is None:
            return None
        submitted = pended = False
        for record, score in self._search(query, vec, self._floor):
            assert record.text is not None
            candidate = judge(
                self.guards, record.key, record.text, query.text, score, -1.0, True, None
            )
            if candidate.veto is not None and not candidate.verify:
                if candidate.veto[0] in self._vetoes:
                    with self._lock:
                        self._vetoes[candidate.veto[0]] += 1
                continue  # a hard veto: never served, never asked
            clear = candidate.veto is None
            if candidate.veto is not None and self.verifier is None:
                name = candidate.veto[0]
                with self._lock:  # a soft veto stands when there is no judge to overrule it
                    self._vetoes[name] = self._vetoes.get(name, 0) + 1
                continue
            verdict = self._verdicts.get((record.key, query.key))
            if verdict is not None:  # judged before: approved, or remembered as rejected
                hit = self._serve_as(record, candidate, "judge") if verdict else None
                if hit is not None:
                    return hit
                continue
            if clear:
                decision = self._learned.decide(record.partition, record.key, score)
                if decision.serve and self._rng.random() < decision.explore:
                    self._pend(query.key, record, score)
                    self._count("explored")
                    return None  # the model answers; `set` labels the candidate
                if decision.serve:
                    hit = self._serve_as(record, candidate, "learned", decision)
                    if hit is not None:
                        return hit
                    continue
                if not pended:
                    pended = True
                    self._pend(query.key, record, score)
            if self.verifier is None:
                continue
            if self.verify_mode == "inline":
                ok = yield self._cached_text(record), query.text
                self._judged(
                    record, query.key, fingerprint(canonical_bytes(request)), score, clear, ok
                )
                hit = self._serve_as(record, candidate, "judge") if ok else None
                if hit is not None:
                    return hit
            elif not submitted:
                submitted = self._submit_verification(
                    record, candidate, request, query, asynchronous
                )
        return None

    def _ask(self, cached: str, text: str) -> bool:
        """The verifier's verdict from sync code (an async backend runs in its own loop:
        this is a worker thread, or a sync caller that chose an async judge)."""
        assert self.verifier is not None
        if isinstance(self.verifier.backend, AsyncBackend):
            return asyncio.run(self.verifier.averify(cached, text))
        return self.verifier.verify(cached, text)

    def _pend(self, key: str, record: Record, similarity: float) -> None:
        self._pending.set(
            key, Pending(record.key, record.fingerprint, similarity, record.partition)
        )

    def _judged(
        self,
        record: Record,
        query_key: str,
        query_fp: str,
        similarity: float,
        clear: bool,
        ok: bool,
    ) -> None:
        """Take a judge's verdict on (``record``, the request keyed ``query_key``): remember
        it, learn from it (clear candidates only: a soft veto's pairs are another
        population), and promote an approved pair to an alias."""
        self._verdicts.set((record.key, query_key), ok)
        self._verdict(ok)
        if clear and self._learned is not None:
            self._learned.add(
                similarity,
                ok,
                "judge",
                partition=record.partition,
                entry=record.key,
                at=self._clock(),
            )
        if ok:
            self._promote(record, query_key, query_fp, similarity)

    def _promote(self, record: Record, query_key: str, query_fp: str, similarity: float) -> None:
        entry = self._store.get(record.key)
        if entry is None or entry.fingerprint != record.fingerprint:
            return  # the cached answer is gone or replaced meanwhile
        own = self._store.get(query_key)
        if own is not None and own.fingerprint == query_fp and ALIAS_KEY not in own.metadata:
            return  # the request has the model's own answer: keep it
        ttl = None if entry.expires_at is None else entry.expires_at - self._clock()
        if ttl is not None and ttl <= 0:
            return
        self._store.set(
            query_key, alias_entry(record.key, entry, query_fp, similarity, record.text), ttl
        )
        with self._lock:
            self._aliases[query_key] = None
            self._aliases.move_to_end(query_key)
            oldest = (
                self._aliases.popitem(last=False)[0]
                if len(self._aliases) > self.max_entries
                else None
            )
            self._counts["promoted"] += 1
        if oldest is not None:  # aliases are bounded like entries: the oldest goes
            stale = self._store.get(oldest)
            if stale is not None and ALIAS_KEY in stale.metadata:
                self._store.delete(oldest)

    def _submit_verification(
        self,
        record: Record,
        candidate: Candidate,
        request: Request,
        query: SemanticQuery,
        asynchronous: bool,
    ) -> bool:
        """Hand (``record``, ``request``) to the judge in the background (once per pair);
        whether it is (or already was) on its way."""
        if self.verifier is None or not self._asking.add((record.key, query.key), True):
            return self.verifier is not None
        clear = candidate.veto is None
        query_fp = fingerprint(canonical_bytes(request))
        text = query.text
        verifier = self.verifier

        def done(ok: bool) -> None:
            self._judged(record, query.key, query_fp, candidate.similarity, clear, ok)

        def job() -> None:
            try:
                cached = self._cached_text(record)
                done(cached is not None and self._ask(cached, text))
            finally:
                self._asking.pop((record.key, query.key))

        async def ajob() -> None:
            try:
                cached = self._cached_text(record)
                done(cached is not None and await verifier.averify(cached, text))
            finally:
                self._asking.pop((record.key, query.key))

        queued = self._work.asubmit(ajob) if asynchronous else self._work.submit(job)
        if not queued:
            self._asking.pop((record.key, query.key))
        return queued

    def _observe_fresh(self, key: str, entry: CachedResponse, *, asynchronous: bool) -> None:
        """Label the candidate the model answered instead (if any) by comparing its fresh
        answer ``entry`` with the cached one."""
        if self._learned is None:
            return
        pending = self._pending.pop(key)
        if pending is None:
            return
        cached = self._store.get(pending.entry)
        if cached is None or cached.fingerprint != pending.fingerprint:
            return
        learned = self._learned

        def label(same: bool) -> None:
            learned.add(
                pending.similarity,
                same,
                "compare",
                partition=pending.partition,
                entry=pending.entry,
                at=self._clock(),
            )

        compare = self.compare
        if not isinstance(compare, Verifier):
            label(bool(compare(cached.content, entry.content)))
            return
        a, b = text_of(cached.content), text_of(entry.content)

        async def ajob() -> None:
            label(await compare.averify(a, b))

        def job() -> None:
            label(
                asyncio.run(compare.averify(a, b))
                if isinstance(compare.backend, AsyncBackend)
                else compare.verify(a, b)
            )

        if asynchronous:
            self._work.asubmit(ajob)
        else:
            self._work.submit(job)

    def observe_pairs(
        self,
        pairs: str
        | os.PathLike[str]
        | Iterable[tuple[str | list[dict[str, Any]], str | list[dict[str, Any]], bool]],
    ) -> int:
        """Warm start a cache with ``max_error``: label the candidates of pairs known to
        have the same answer or not (a pairs file of ``llmcache eval``, or ``(a, b,
        same_answer)`` with questions or chats). Each pair is scored as a lookup would
        score it (embedder, guards); those the hard guards veto, the soft ones vetoes and
        those below the floor are not candidates a threshold decides, and are skipped.
        The observations belong to no partition: they count cache-wide. Returns how many
        were added."""
        if self._learned is None:
            raise ValueError("observe_pairs: this cache has no max_error")
        if isinstance(pairs, str | os.PathLike):
            pairs = read_labeled_pairs(pairs)
        pairs = list(pairs)
        scratch = SemanticCache(
            self.embedder,
            guards=self.guards,
            approximate_above=None,
            max_entries=max(1, len(pairs)),
        )
        added = 0
        try:
            for i, (a, b, same) in enumerate(pairs):
                scratch.set(_pair_request(a, i), "a")
                found = scratch.explain(_pair_request(b, i))
                if not found or found[0].veto is not None or found[0].similarity < self._floor:
                    continue
                self._learned.add(found[0].similarity, same, "pairs", at=self._clock())
                added += 1
        finally:
            scratch.close()
        return added

    def observations(self) -> list[Observation]:
        """What a cache with ``max_error`` has learned, oldest first (empty without)."""
        return self._learned.snapshot() if self._learned is not None else []

    def decide(self, request: Request, cached: Request) -> Decision | None:
        """Whether a lookup of ``request`` would be served ``cached``'s answer on what was
        learned (ignoring guards, judges and exploration); ``None`` without ``max_error`` or
        when they do not share a partition or cannot be embedded."""
        if self._learned is None:
            return None
        found = [c for c in self.explain(request) if c.key == make_key(cached)]
        if not found:
            return None
        with self._lock:
            record = self._records.get(found[0].key)
        partition = record.partition if record is not None else None
        return self._learned.decide(partition, found[0].key, found[0].similarity)

    def wait_verified(self, timeout: float | None = None) -> bool:
        """Wait until the background verifications queued from sync code have run;
        ``False`` if ``timeout`` passed first."""
        return self._work.join(timeout)

    async def await_verified(self) -> None:
        """Wait until the background verifications queued from this loop have run."""
        await self._work.ajoin()

    def _identity(self) -> str:
        return str(EmbedderIdentity.of(self.embedder))

    def _load_observations(self) -> None:
        """At open: what was learned before, from the manifest and from a store of yours."""
        if self._learned is None:
            return
        if self._dir is not None:
            rows = read_observation_rows(self._dir, EmbedderIdentity.of(self.embedder))
            self._learned.merge(o for o in map(Observation.from_row, rows) if o is not None)
        if not self._owns_store:
            identity = self._identity()
            self._learned.merge(
                rows_from_entry(identity, self._store.get(observations_key(identity)))
            )
        self._learned.take_changed()

    def sync_observations(self) -> int:
        """Merge the observations in the cache's store (when you passed it: a shared tier)
        with this cache's, and write the union back. Returns how many were new here.
        Two processes syncing at the same instant may each miss the other's latest; the
        next sync brings them."""
        if self._learned is None or self._owns_store:
            return 0
        identity = self._identity()
        key = observations_key(identity)
        added = self._learned.merge(rows_from_entry(identity, self._store.get(key)))
        self._store.set(key, observations_entry(identity, self._learned.snapshot()))
        return added

    def _save_observations(self) -> None:
        if self._learned is None or not self._learned.take_changed():
            return
        if not self._owns_store:
            self.sync_observations()
        if self._dir is not None:
            write_observation_rows(
                self._dir,
                EmbedderIdentity.of(self.embedder),
                [o.row() for o in self._learned.snapshot()],
            )

    def _forget_learning(self) -> None:
        """After `clear`: the verdicts and pending labels were about entries now gone (the
        observations stay: they are about similarities, not entries)."""
        self._pending.clear()
        self._verdicts.clear()
        with self._lock:
            self._aliases.clear()

    def _learning_stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self._learned is not None:
            out["learned"] = self._learned.stats()
        if self._learned is not None or self.verify_mode == "background":
            out["background"] = self._work.stats()
        return out

    def __repr__(self) -> str:
        return (
            f"SemanticCache({self.embedder.name!r}, threshold={self.threshold}, "
            f"entries={len(self._records)}, guards={[g.name for g in self.guards]})"
        )


def _pair_request(side: str | list[dict[str, Any]], i: int) -> Request:
    """A labeled pair's side as a request, in the pair's own namespace."""
    if isinstance(side, str):
        return Request(model="observe-pairs", prompt=side, namespace=f"pair-{i}")
    return Request(model="observe-pairs", messages=side, namespace=f"pair-{i}")
