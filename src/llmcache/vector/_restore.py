"""Opening and saving a persisted `SemanticCache` (kept apart from the lookup code).

On open the manifest says which records existed, the store says which entries still do,
and each partition's index file gives the vectors. Whatever disagrees is repaired: records
whose entry is gone are dropped, entries without a record (a crash after a write, before
the next save) are read back from their ``metadata["_semantic"]``, and rows missing from
an index (or a whole index that is missing, corrupt, or from another embedder) are
embedded again.
"""

from __future__ import annotations

import heapq
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np

from llmcache.vector._persist import (
    Record,
    index_file,
    read_manifest,
    record_from_entry,
    try_load_index,
    write_manifest,
)
from llmcache.vector.index import VectorSearch

if TYPE_CHECKING:
    from llmcache.vector.semantic import SemanticCache

__all__ = ["restore", "save"]

logger = logging.getLogger("llmcache.vector.semantic")
_EMBED_BATCH = 512


def _store_keys(store: Any) -> set[str] | None:
    keys = getattr(store, "keys", None)
    return set(keys()) if callable(keys) else None


def _records(cache: SemanticCache) -> tuple[OrderedDict[str, Record], bool]:
    records: OrderedDict[str, Record] = OrderedDict()
    assert cache._dir is not None
    manifest = read_manifest(cache._dir / "index")
    same_embedder = manifest is not None and manifest[0] == cache.embedder.name
    for record in manifest[1] if manifest is not None else []:
        record.partition = cache._partition(record.scope) if record.scope else None
        records[record.key] = record
    keys = _store_keys(cache._store)
    if keys is not None:
        for key in [k for k in records if k not in keys]:
            del records[key]
        for key in sorted(keys - records.keys()):
            entry = cache._store.get(key)
            parsed = record_from_entry(key, entry) if entry is not None else None
            if entry is None or parsed is None:
                continue  # expired meanwhile, or not written by a semantic cache
            scope, text = parsed
            records[key] = Record(key, scope, cache._partition(scope) if scope else None,
                                  text, entry.fingerprint, entry.expires_at)
    now = cache._clock()
    for record in [r for r in records.values()
                   if r.expires_at is not None and r.expires_at <= now]:
        del records[record.key]
        cache._store.delete(record.key)
    while len(records) > cache.max_entries:
        _, oldest = records.popitem(last=False)
        cache._store.delete(oldest.key)
    return records, same_embedder


def _embed(cache: SemanticCache, records: list[Record]) -> tuple[list[str], np.ndarray]:
    keys: list[str] = []
    rows: list[np.ndarray] = []
    for start in range(0, len(records), _EMBED_BATCH):
        chunk = records[start:start + _EMBED_BATCH]
        vecs = cache.embedder.embed([r.text or "" for r in chunk])
        for record, vec in zip(chunk, vecs, strict=True):
            if np.any(vec):  # a zero vector has no direction: exact lookups only
                keys.append(record.key)
                rows.append(vec)
    return keys, np.asarray(rows, dtype=np.float32)


def restore(cache: SemanticCache) -> None:
    """Load ``cache``'s records and indexes from its directory, repairing what is off."""
    assert cache._dir is not None
    directory = cache._dir / "index"
    directory.mkdir(parents=True, exist_ok=True)
    records, same_embedder = _records(cache)
    groups: dict[str, list[Record]] = {}
    for record in records.values():
        if record.partition is not None and record.text is not None:
            groups.setdefault(record.partition, []).append(record)
    indexes: dict[str, VectorSearch] = {}
    rebuilt = 0
    for partition, members in groups.items():
        path = index_file(directory, partition)
        index = try_load_index(path, cache._index_loader) if same_embedder else None
        wanted = {r.key for r in members}
        if index is not None:
            stale = [id_ for id_ in index.ids() if id_ not in wanted]
            if stale:
                index.remove(stale)
                cache._dirty.add(partition)
        missing = [r for r in members if index is None or r.key not in index]
        if missing:
            keys, vectors = _embed(cache, missing)
            if keys:
                if index is None:
                    index = cache._index_factory(int(vectors.shape[1]))
                index.add(keys, vectors)
            rebuilt += len(missing)
            cache._dirty.add(partition)
        if index is not None and len(index):
            indexes[partition] = index
    known = {index_file(directory, p).name for p in indexes}
    for path in directory.glob("*.index"):
        if path.name not in known:
            path.unlink(missing_ok=True)
    if rebuilt:
        logger.info("semantic cache %s: embedded %d entries again to rebuild its index",
                    cache._dir, rebuilt)
    cache._records = records
    cache._indexes = indexes
    cache._expiry = [(r.expires_at, r.key) for r in records.values()
                     if r.expires_at is not None]
    heapq.heapify(cache._expiry)


def save(cache: SemanticCache) -> None:
    """Write the indexes changed since the last save, then the manifest."""
    assert cache._dir is not None
    directory = cache._dir / "index"
    with cache._lock:
        records = list(cache._records.values())
        dirty = {p: cache._indexes.get(p) for p in cache._dirty}
        cache._dirty.clear()
    try:
        for partition, index in dirty.items():
            path = index_file(directory, partition)
            if index is None or not len(index):
                path.unlink(missing_ok=True)
            else:
                index.save(path)
        write_manifest(directory, cache.embedder.name, records)
    except BaseException:
        with cache._lock:  # try again at the next save
            cache._dirty.update(dirty)
        raise
