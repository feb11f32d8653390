"""What a judge's verdict leaves behind: aliases for approved pairs, memories of verdicts.

When a judge approves a grey-zone pair (the cached request A, the new request B), B's exact
key gets an *alias* entry pointing at A's entry: the next time B is asked it is an exact
hit on A's answer, with no embedding, search or judge. An alias records A's key and
fingerprint, so it dies with A (evicted, expired, replaced: then it is a miss); it never
points at another alias, and it is never indexed for similarity (a chain of hits would
drift away from A's question). A rejected pair is remembered so it is not asked again.

>>> from llmcache.entry import CachedResponse
>>> cached = CachedResponse(content="xs[::-1]", fingerprint="fa")
>>> alias_target(alias_entry("key-a", cached, "fb", 0.83, "How do I reverse a list?"))
('key-a', 'fa', 0.83, 'How do I reverse a list?')
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

from llmcache.entry import CachedResponse

__all__ = ["ALIAS_KEY", "BoundedMemory", "Pending", "alias_entry", "alias_target"]

ALIAS_KEY = "_semantic_alias"  # in an alias entry's metadata: what it points at

K = TypeVar("K")
V = TypeVar("V")


def alias_entry(
    target_key: str, target: CachedResponse, fingerprint: str, similarity: float, text: str | None
) -> CachedResponse:
    """The entry stored under an approved request's key, pointing at ``target``."""
    return CachedResponse(
        content=None,
        model=target.model,
        fingerprint=fingerprint,
        expires_at=target.expires_at,
        metadata={
            ALIAS_KEY: {
                "key": target_key,
                "fingerprint": target.fingerprint,
                "similarity": similarity,
                "text": text,
            }
        },
    )


def alias_target(entry: CachedResponse) -> tuple[str, str, float, str | None] | None:
    """``(key, fingerprint, similarity, text)`` an alias entry points at; ``None`` if the
    entry is no alias (or a malformed one)."""
    meta = entry.metadata.get(ALIAS_KEY) if isinstance(entry.metadata, dict) else None
    if not isinstance(meta, dict):
        return None
    key, fp, sim, text = (
        meta.get("key"),
        meta.get("fingerprint"),
        meta.get("similarity"),
        meta.get("text"),
    )
    if (
        not isinstance(key, str)
        or not isinstance(fp, str)
        or not isinstance(sim, int | float)
        or isinstance(sim, bool)
        or not (text is None or isinstance(text, str))
    ):
        return None
    return key, fp, float(sim), text


@dataclass(frozen=True, slots=True)
class Pending:
    """A candidate the model answers anyway: its cached entry, that entry's fingerprint,
    the similarity, and the partition; labeled when the fresh answer is `set`."""

    entry: str
    fingerprint: str
    similarity: float
    partition: str | None


class BoundedMemory(Generic[K, V]):
    """A thread-safe mapping keeping the ``size`` most recently set keys."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            return self._items.get(key)

    def set(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def add(self, key: K, value: V) -> bool:
        """Set ``key`` unless present; whether it was set."""
        with self._lock:
            if key in self._items:
                return False
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            return True

    def pop(self, key: K) -> V | None:
        with self._lock:
            return self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
