"""`ResponseCache`: a prompt-level cache of model answers, in memory and optionally on disk.

``get(prompt, temperature, model, format)`` and ``set(...)`` over llmcache's stores: keys
are canonical and unambiguous (the whole request, hashed), eviction is true LRU, it is
thread-safe, a hit does not write to disk, expired entries are swept, and a read that lands
on another request's entry (by collision or tampering) is a miss. With ``persist_path``, its
hits and misses are saved with the disk tier's counters, so ``llmcache stats`` shows them.

>>> cache = ResponseCache(max_entries=100, ttl_seconds=60)
>>> cache.set("2+2?", 0.0, "llama3", "4", tokens_used=3)
>>> cache.get("2+2?", 0.0, "llama3").content
'4'
>>> cache.get("2+2?", 0.5, "llama3") is None
True
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from os import PathLike
from pathlib import Path
from typing import Any

import orjson

from llmcache._closing import Closing
from llmcache.entry import CachedResponse, non_json
from llmcache.keys import Request, canonical_bytes, key_and_fingerprint
from llmcache.stores.base import Store, check_ttl
from llmcache.stores.disk import DiskStore
from llmcache.stores.memory import MemoryStore
from llmcache.stores.tiered import TieredStore

__all__ = ["ResponseCache"]


class ResponseCache(Closing):
    """A memory LRU with TTL, optionally backed by a disk tier at `persist_path`.

    ``persist_path`` is a directory (created if missing) holding a diskcache database.
    Keyword-only extras: ``namespace`` (keeps tenants apart), ``max_bytes`` (memory bound),
    ``disk_size_limit`` (bytes on disk), ``store`` (any `Store`, instead of building one).
    """

    def __init__(
        self,
        max_entries: int = 1000,
        ttl_seconds: float | None = 3600,
        persist_path: str | PathLike[str] | None = None,
        *,
        namespace: str = "",
        max_bytes: int | None = None,
        disk_size_limit: int = 2**30,
        store: Store | None = None,
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries: expected a whole number >= 1, got {max_entries!r}")
        self.max_entries = max_entries
        self.ttl_seconds = check_ttl(ttl_seconds)
        if persist_path is not None and os.fspath(persist_path) == "":
            raise ValueError(
                "persist_path: expected a cache directory, got an empty path (it "
                "would put cache.db in the working directory); pass a directory "
                "such as '.llmcache', or None for memory only"
            )
        self.persist_path = Path(persist_path) if persist_path is not None else None
        self.namespace = namespace
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self.store: Store = store if store is not None else self._build(max_bytes, disk_size_limit)

    def _build(self, max_bytes: int | None, disk_size_limit: int) -> Store:
        memory = MemoryStore(
            max_entries=self.max_entries, max_bytes=max_bytes, default_ttl=self.ttl_seconds
        )
        if self.persist_path is None:
            return memory
        disk = DiskStore(
            self.persist_path, size_limit=disk_size_limit, default_ttl=self.ttl_seconds
        )
        # Every get is one call: the disk tier persists these counts (a hit answered by the
        # memory tier never reaches it, a miss reads it once), so `llmcache stats` is true.
        disk.count_calls_from(self._call_counts)
        return TieredStore(memory, disk)

    def _call_counts(self) -> dict[str, int]:
        return {"hits": self._hits, "misses": self._misses}

    def _request(
        self,
        prompt: str,
        temperature: float | None,
        model: str,
        format: str | Mapping[str, Any] | None,
        system: str | None,
        options: Mapping[str, Any] | None,
        messages: Sequence[Mapping[str, Any]] | None,
    ) -> Request:
        merged = dict(options or {})
        if temperature is not None:
            merged["temperature"] = temperature
        return Request(
            model=model,
            prompt=prompt,
            messages=messages,
            system=system,
            format=format,
            options=merged,
            namespace=self.namespace,
        )

    def get(
        self,
        prompt: str,
        temperature: float | None,
        model: str,
        format: str | Mapping[str, Any] | None = None,
        *,
        system: str | None = None,
        options: Mapping[str, Any] | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
    ) -> CachedResponse | None:
        """The cached answer for this request, or None."""
        request = self._request(prompt, temperature, model, format, system, options, messages)
        return self.get_request(request)

    def set(
        self,
        prompt: str,
        temperature: float | None,
        model: str,
        content: str,
        tokens_used: int = 0,
        format: str | Mapping[str, Any] | None = None,
        *,
        system: str | None = None,
        options: Mapping[str, Any] | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        ttl: float | None = None,
    ) -> None:
        """Store `content` as the answer to this request.

        `content` is the answer as str (or JSON-like data: dicts with str keys, lists,
        finite numbers, bools, None; stored as a copy); `tokens_used` a whole number >= 0.
        Anything else raises TypeError or ValueError naming the argument, and nothing is
        stored: a disk tier could not keep it, so memory and disk would answer differently.
        """
        _check_json(content, "content")
        _check_count(tokens_used, "tokens_used")
        request = self._request(prompt, temperature, model, format, system, options, messages)
        entry = CachedResponse(content=content, model=model, tokens_used=tokens_used)
        self.set_request(request, entry, ttl=ttl)

    def get_request(self, request: Request) -> CachedResponse | None:
        """The cached entry for a full `Request`, or None."""
        key, fp = key_and_fingerprint(canonical_bytes(request))
        entry = self.store.get(key)
        if entry is None or entry.fingerprint != fp:
            with self._lock:
                self._misses += 1
            return None
        with self._lock:
            self._hits += 1
        return entry

    def set_request(
        self, request: Request, entry: CachedResponse, *, ttl: float | None = None
    ) -> None:
        """Store `entry` as the answer to a full `Request` (checked as `set` checks its
        arguments: TypeError or ValueError naming the field, nothing stored)."""
        copied = _checked_copy(entry)
        key, fp = key_and_fingerprint(canonical_bytes(request))
        ttl = check_ttl(ttl) if ttl is not None else self.ttl_seconds
        now = time.time()
        stamped = copied.with_ttl(ttl, now)
        stamped.fingerprint = fp
        stamped.created_at = now
        self.store.set(key, stamped, ttl)

    def clear(self) -> None:
        """Remove every entry from every tier."""
        self.store.clear()

    def stats(self) -> dict[str, Any]:
        """Entries per tier (``memory_entries``, ``disk_entries``), ``total_hits``,
        ``misses``, ``hit_rate`` and the store's own figures (``store``)."""
        store_stats = self.store.stats()
        tiers = store_stats.get("tiers")
        memory_entries = disk_entries = 0
        if isinstance(self.store, TieredStore) and isinstance(tiers, list) and len(tiers) >= 2:
            memory_entries = int(tiers[0].get("entries", 0))
            disk_entries = int(tiers[-1].get("entries", 0))
        elif isinstance(self.store, DiskStore):
            disk_entries = len(self.store)
        else:
            memory_entries = len(self.store)
        with self._lock:
            hits, misses = self._hits, self._misses
        # Clients and decorators sharing this cache read its store directly; the store's own
        # counters see every lookup, so prefer them.
        hits = int(store_stats.get("hits", hits))
        misses = int(store_stats.get("misses", misses))
        lookups = hits + misses
        return {
            "memory_entries": memory_entries,
            "disk_entries": disk_entries,
            "total_hits": hits,
            "misses": misses,
            "hit_rate": hits / lookups if lookups else 0.0,
            "store": store_stats,
        }

    def close(self) -> None:
        """Flush and close the tiers."""
        self.store.close()


_JSON_LIKE = "str or JSON-like data (dicts with str keys, lists, finite numbers, bools, None)"


def _check_json(value: Any, name: str) -> None:
    """Raise TypeError or ValueError, naming `name`, unless `value` is what every tier can
    store and give back equal (a disk or Redis tier writes JSON)."""
    found = non_json(value, name, _subscripted)
    if found is None:
        return
    where, why, bad = found
    if why == "number":
        raise ValueError(
            f"{where}: {bad!r} cannot be stored (JSON has no NaN or infinity); "
            "store None or a string in its place"
        )
    if why == "key":
        raise TypeError(
            f"{where}: dict keys must be str, got {type(bad).__name__} {bad!r}; "
            "convert the keys with str()"
        )
    if isinstance(bad, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"{where}: expected {_JSON_LIKE}, got {type(bad).__name__}; decode it "
            f"first, e.g. {where}.decode('utf-8')"
        )
    raise TypeError(
        f"{where}: expected {_JSON_LIKE}, got {type(bad).__name__}; convert it "
        "first, e.g. with str()"
    )


def _subscripted(path: str, key: str) -> str:
    return f"{path}[{key!r}]"


def _check_count(value: Any, name: str) -> None:
    if type(value) is not int:
        raise TypeError(
            f"{name}: expected a whole number of tokens (int), got {type(value).__name__} {value!r}"
        )
    if value < 0:
        raise ValueError(f"{name}: expected a number of tokens >= 0, got {value}")


def _checked_copy(entry: CachedResponse) -> CachedResponse:
    """`entry` checked field by field, with private copies of its JSON data (the caller may
    mutate its own objects later; tuples become lists, as a disk tier gives them back)."""
    if not isinstance(entry, CachedResponse):
        raise TypeError(f"entry: expected a CachedResponse, got {type(entry).__name__}")
    _check_json(entry.content, "entry.content")
    for name in ("prompt_tokens", "completion_tokens", "tokens_used", "hits"):
        _check_count(getattr(entry, name), f"entry.{name}")
    if type(entry.model) is not str:
        raise TypeError(f"entry.model: expected str, got {type(entry.model).__name__}")
    if entry.chunks is not None:
        if type(entry.chunks) is not list:
            raise TypeError(
                f"entry.chunks: expected a list or None, got {type(entry.chunks).__name__}"
            )
        _check_json(entry.chunks, "entry.chunks")
    if type(entry.metadata) is not dict:
        raise TypeError(f"entry.metadata: expected a dict, got {type(entry.metadata).__name__}")
    _check_json(entry.metadata, "entry.metadata")
    data = orjson.loads(
        orjson.dumps({"content": entry.content, "chunks": entry.chunks, "metadata": entry.metadata})
    )
    return replace(entry, content=data["content"], chunks=data["chunks"], metadata=data["metadata"])
