"""Opening and saving a persisted `SemanticCache` (kept apart from the lookup code).

On open the manifest says which records existed, the store says which entries still do,
and each partition's index file gives the vectors. Whatever disagrees is repaired: records
whose entry is gone are dropped, entries without a record (a crash after a write, before
the next save) are read back from their ``metadata["_semantic"]``, and rows missing from
an index (or a whole index that is missing, corrupt, or made by another embedder: another
name, size or version) are embedded again. An embedder that fails or answers nonsense
while doing so leaves those entries to exact lookups (counted, logged once); the next open
tries again. Opening never fails for it.
"""

from __future__ import annotations

import heapq
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np

from llmcache.vector._persist import (
    EmbedderIdentity,
    Record,
    index_file,
    read_manifest,
    record_from_entry,
    try_load_index,
    write_manifest,
)
from llmcache.vector.embedders import EmbeddingError, Matrix, declared_dim, unit_embeddings
from llmcache.vector.index import VectorSearch

if TYPE_CHECKING:
    from llmcache.vector.semantic import SemanticCache

__all__ = ["restore", "save"]

logger = logging.getLogger("llmcache.vector.semantic")
_EMBED_BATCH = 512


def _store_keys(store: Any) -> set[str] | None:
    keys = getattr(store, "keys", None)
    return set(keys()) if callable(keys) else None


def _records(cache: SemanticCache) -> tuple[OrderedDict[str, Record], EmbedderIdentity | None]:
    records: OrderedDict[str, Record] = OrderedDict()
    assert cache._dir is not None
    manifest = read_manifest(cache._dir / "index")
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
    return records, manifest[0] if manifest is not None else None


def _embed(cache: SemanticCache, records: list[Record],
           dim: int | None) -> tuple[list[str], Matrix | None]:
    """Keys and unit rows of ``records``' texts, ``dim`` wide (``None``: as the embedder
    declares, or as its first answer is). Rows with NaN, or without meaning, are left out;
    an embedder that fails or answers the wrong shape raises `EmbeddingError`."""
    keys: list[str] = []
    rows: list[Matrix] = []
    for start in range(0, len(records), _EMBED_BATCH):
        chunk = records[start:start + _EMBED_BATCH]
        try:
            raw = cache.embedder.embed([r.text or "" for r in chunk])
        except Exception as exc:
            raise EmbeddingError(f"{cache.embedder.name}: embed failed ({exc!r})") from exc
        if dim is None:
            dim = declared_dim(cache.embedder)
        vecs, bad = unit_embeddings(raw, len(chunk), dim, cache.embedder.name)
        dim = int(vecs.shape[1])
        if bad.any():
            cache._vectors.failed(EmbeddingError(f"{cache.embedder.name}: embed returned "
                                                 f"NaN or inf for {int(bad.sum())} texts"))
        for record, vec in zip(chunk, vecs, strict=True):
            if np.any(vec):  # a zero vector has no direction: exact lookups only
                keys.append(record.key)
                rows.append(vec)
    return keys, np.stack(rows) if rows else None


def restore(cache: SemanticCache) -> None:
    """Load ``cache``'s records and indexes from its directory, repairing what is off."""
    assert cache._dir is not None
    directory = cache._dir / "index"
    directory.mkdir(parents=True, exist_ok=True)
    records, saved = _records(cache)
    current = EmbedderIdentity.of(cache.embedder)
    same_embedder = saved is not None and saved.same_as(current)
    groups: dict[str, list[Record]] = {}
    for record in records.values():
        if record.partition is not None and record.text is not None:
            groups.setdefault(record.partition, []).append(record)
    if saved is not None and not same_embedder and groups:
        logger.warning("semantic cache %s: its indexes were made by embedder %s, this one "
                       "is %s; embedding the stored texts again", cache._dir, saved, current)
        cache._counts["stale_partitions"] += len(groups)
    indexes: dict[str, VectorSearch] = {}
    rebuilt = 0
    embedding = True  # until the embedder fails: then one failure, not one per partition
    resized = 0
    for partition, members in groups.items():
        path = index_file(directory, partition)
        index = try_load_index(path, cache._index_loader) if same_embedder else None
        if index is not None and current.dim is not None and index.dim != current.dim:
            if not resized:  # once: every partition of the cache is likely in this state
                logger.warning("semantic index %s holds %d-dim vectors, embedder %s gives "
                               "%d; embedding the texts of such indexes again", path,
                               index.dim, current.name, current.dim)
            resized += 1
            index = None
        wanted = {r.key for r in members}
        if index is not None:
            stale = [id_ for id_ in index.ids() if id_ not in wanted]
            if stale:
                index.remove(stale)
                cache._dirty.add(partition)
        missing = [r for r in members if index is None or r.key not in index]
        if missing and embedding:
            try:
                keys, vectors = _embed(cache, missing,
                                       index.dim if index is not None else current.dim)
            except EmbeddingError as exc:  # exact lookups only for now; tried again at open
                cache._vectors.failed(exc)
                embedding, keys, vectors = False, [], None
            if vectors is not None:
                if index is None:
                    index = cache._index_factory(int(vectors.shape[1]))
                index.add(keys, vectors)
            rebuilt += len(keys)
        if missing:
            cache._dirty.add(partition)
        if index is not None and len(index):
            indexes[partition] = index
    cache._counts["stale_partitions"] += resized
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
        write_manifest(directory, EmbedderIdentity.of(cache.embedder), records)
    except BaseException:
        with cache._lock:  # try again at the next save
            cache._dirty.update(dirty)
        raise
