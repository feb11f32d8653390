"""Cache tiers: `MemoryStore` (in-process), `DiskStore` (shared by the processes of one
machine), `RedisStore` (shared by hosts) and `TieredStore` (several of them in front of each
other), behind `Store` (the sync interface) and `AsyncStore` (the coroutine one, which every
`Store` has).

>>> from llmcache.entry import CachedResponse
>>> store = MemoryStore(max_entries=10)
>>> store.set("k", CachedResponse(content="v"))
>>> store.get("k").content
'v'
"""

from __future__ import annotations

from llmcache.stores.base import AsyncStore, Store, StoreStats
from llmcache.stores.disk import DiskStore
from llmcache.stores.memory import MemoryStore
from llmcache.stores.redis import RedisStore
from llmcache.stores.tiered import TieredStore

__all__ = [
    "AsyncStore",
    "DiskStore",
    "MemoryStore",
    "RedisStore",
    "Store",
    "StoreStats",
    "TieredStore",
]
