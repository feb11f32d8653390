"""The read side of `SemanticCache`: the exact lookup, then the candidates of the request's
partition, screened by the guards one at a time, and the hit served from the store.

`llmcache.vector.semantic` keeps the methods (`SemanticCache.get`, ``aget``, `explain`)
and calls these with the cache; they take its lock as the methods did.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import orjson

from llmcache.keys import Request, canonical_bytes, fingerprint, hash_bytes
from llmcache.vector._persist import Record
from llmcache.vector._scope import (
    Candidate,
    SemanticHit,
    _Query,
    judge,
    public_entry,
    split_request,
)
from llmcache.vector.embedders import Matrix
from llmcache.vector.index import SearchHit

if TYPE_CHECKING:
    from llmcache.vector.semantic import SemanticCache

__all__ = ["begin", "explain", "screen", "serve"]

_OPT = orjson.OPT_SORT_KEYS


def begin(cache: SemanticCache, request: Request,
          threshold: float | None) -> SemanticHit | _Query | None:
    """The exact hit, or what the semantic lookup needs, or ``None`` for a miss."""
    cache._check_open()
    limit = cache.threshold if threshold is None else cache._check_threshold(threshold)
    canonical = request.to_canonical()
    data = canonical_bytes(request)  # the exact key is `make_key`'s
    key = hash_bytes(data)
    split = split_request(canonical)
    entry = cache._store.get(key)
    if entry is not None and entry.fingerprint == fingerprint(data):
        text = split[1] if split else None
        with cache._lock:
            if key in cache._records:
                cache._records.move_to_end(key)
            cache._counts["exact_hits"] += 1
        return SemanticHit(public_entry(entry, 1.0, text, True), 1.0, True, text, key)
    if split is not None:
        partition = cache._partition(hash_bytes(orjson.dumps(split[0], option=_OPT)))
        with cache._lock:
            if partition in cache._indexes:  # nothing to compare with: no embedding
                return _Query(key, partition, split[1], limit)
    cache._miss()
    return None


def screen(cache: SemanticCache, query: _Query,
           vec: Matrix | None) -> Iterator[tuple[Record, Candidate]]:
    """Candidates that may be served, best first, judged one at a time."""
    if vec is None:
        return
    zone = cache.grey_zone if cache.verifier is not None else None
    lower = min(query.threshold, zone[0]) if zone else query.threshold
    with cache._lock:
        cache._sweep(cache._clock())
        if not cache._fits(query.partition, vec):
            return
        index = cache._indexes.get(query.partition)
    # The search runs outside the cache's lock (the index has its own), so lookups in other
    # partitions and writes go on meanwhile: a search over 100k rows takes milliseconds. An
    # id removed or replaced in between is dropped here or refused by `serve`.
    hits = index.search(vec, k=cache.candidates, threshold=lower) if index is not None else []
    with cache._lock:
        found = [(cache._records[h.id], min(1.0, h.score)) for h in hits
                 if h.id in cache._records]  # float rounding can give 1.0000001
    for record, score in found:
        assert record.text is not None
        candidate = judge(cache.guards, record.key, record.text, query.text, score,
                          query.threshold, cache.verifier is not None, cache.grey_zone)
        if candidate.veto is None or candidate.verify:
            yield record, candidate
        elif candidate.veto[0] in cache._vetoes:
            with cache._lock:
                cache._vetoes[candidate.veto[0]] += 1


def serve(cache: SemanticCache, record: Record, candidate: Candidate) -> SemanticHit | None:
    """The hit for a screened ``candidate``, or ``None`` if its entry is gone or replaced."""
    entry = cache._store.get(record.key)
    with cache._lock:
        if entry is None or entry.fingerprint != record.fingerprint:
            if cache._records.get(record.key) is record:
                cache._forget(record, delete=entry is not None)  # gone or replaced
            return None
        if record.key in cache._records:
            cache._records.move_to_end(record.key)
        cache._counts["semantic_hits"] += 1
    public = public_entry(entry, candidate.similarity, record.text, False)
    return SemanticHit(public, candidate.similarity, False, record.text, record.key)


def explain(cache: SemanticCache, request: Request, k: int | None) -> list[Candidate]:
    """`SemanticCache.explain`: no thresholds, verifier calls, counters or LRU effects."""
    split = split_request(request.to_canonical())
    if split is None:
        return []
    partition = cache._partition(hash_bytes(orjson.dumps(split[0], option=_OPT)))
    vec = cache._vectors.get(split[1])
    with cache._lock:
        index = cache._indexes.get(partition)
        hits: list[SearchHit] = []
        if index and vec is not None and index.dim == vec.shape[0]:  # else: not comparable
            hits = index.search(vec, k=k or len(index))
        found = [(cache._records[h.id], min(1.0, h.score)) for h in hits
                 if h.id in cache._records]
    out = []
    for record, score in found:
        assert record.text is not None
        veto = next(((g.name, r) for g in cache.guards
                     if (r := g.veto(record.text, split[1])) is not None), None)
        out.append(Candidate(record.key, record.text, score, veto))
    return out
