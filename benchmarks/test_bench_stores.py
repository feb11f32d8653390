"""Store hit paths against their baselines, measured side by side in one run.

    .venv/bin/pytest benchmarks/test_bench_stores.py --benchmark-enable -q

Targets (DESIGN.md): a DiskStore hit (bytes read *and* decoded into an entry) within 1.3x of
a raw diskcache ``Cache.get`` of the same encoded bytes; a MemoryStore hit no slower than a
cachetools ``TTLCache`` get under a ``threading.Lock``. No target, a watch: what a
`TieredStore` (memory -> disk) adds to a hit in its memory tier, sync and through its
coroutine, against a MemoryStore hit. ``conftest.py`` prints the ratios.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import cachetools
import diskcache

from llmcache.entry import CachedResponse, JSONCodec
from llmcache.stores import DiskStore, MemoryStore, TieredStore

KEY = "v1:0f3a9c2e7d114b8a9e6c5d4b3a291807"


def _entry() -> CachedResponse:
    # About 1 KB encoded: a short answer with its bookkeeping fields.
    return CachedResponse(
        content="The answer is " + "x" * 880,
        model="llama3.2",
        prompt_tokens=12,
        completion_tokens=220,
        tokens_used=232,
        fingerprint="9f2c4e1a7b3d5f60",
    )


def test_disk_hit_baseline_raw_diskcache_get(benchmark: Any, tmp_path: Path) -> None:
    benchmark.group = "disk hit, 1 KB value"
    benchmark.extra_info["role"] = "baseline"
    data = JSONCodec().encode(_entry().with_ttl(3600, time.time()))
    assert 900 <= len(data) <= 1200
    with diskcache.Cache(str(tmp_path)) as cache:
        cache.set(KEY, data, expire=3600)
        assert benchmark(cache.get, KEY) == data


def test_disk_hit_disk_store_get(benchmark: Any, tmp_path: Path) -> None:
    benchmark.group = "disk hit, 1 KB value"
    benchmark.extra_info.update(role="candidate", target=1.3)
    with DiskStore(tmp_path) as store:
        store.set(KEY, _entry(), ttl=3600)
        got = benchmark(store.get, KEY)
        assert got is not None and got.content == _entry().content


def test_memory_hit_baseline_ttlcache_under_lock(benchmark: Any) -> None:
    benchmark.group = "memory hit"
    benchmark.extra_info["role"] = "baseline"
    cache: cachetools.TTLCache[str, CachedResponse] = cachetools.TTLCache(1000, ttl=3600)
    lock = threading.Lock()
    cache[KEY] = _entry()

    def get(key: str) -> CachedResponse | None:
        with lock:
            return cache.get(key)

    assert benchmark(get, KEY) is not None


def test_memory_hit_memory_store_get(benchmark: Any) -> None:
    benchmark.group = "memory hit"
    benchmark.extra_info.update(role="candidate", target=1.0)
    store = MemoryStore(max_entries=1000)
    store.set(KEY, _entry(), ttl=3600)
    assert benchmark(store.get, KEY) is not None


# -- TieredStore: what walking the tiers adds to a hit in the fastest one -------------------

_AWAITS = 100  # hits per event-loop turn in the async cases: amortizes run_until_complete


def test_tiered_hit_baseline_memory_store_get(benchmark: Any) -> None:
    benchmark.group = "tiered hit in memory"
    benchmark.extra_info["role"] = "baseline"
    store = MemoryStore(max_entries=1000)
    store.set(KEY, _entry(), ttl=3600)
    assert benchmark(store.get, KEY) is not None


def test_tiered_hit_tiered_store_get(benchmark: Any, tmp_path: Path) -> None:
    benchmark.group = "tiered hit in memory"
    benchmark.extra_info["role"] = "candidate"
    with TieredStore(MemoryStore(max_entries=1000), DiskStore(tmp_path)) as store:
        store.set(KEY, _entry(), ttl=3600)
        assert benchmark(store.get, KEY) is not None


def test_tiered_ahit_baseline_memory_store_get(benchmark: Any) -> None:
    benchmark.group = f"tiered async hit in memory, {_AWAITS} per call"
    benchmark.extra_info["role"] = "baseline"
    store = MemoryStore(max_entries=1000)
    store.set(KEY, _entry(), ttl=3600)

    async def hits() -> CachedResponse | None:
        for _ in range(_AWAITS):
            got = store.get(KEY)
        return got

    loop = asyncio.new_event_loop()
    try:
        assert benchmark(lambda: loop.run_until_complete(hits())) is not None
    finally:
        loop.close()


def test_tiered_ahit_tiered_store_aget(benchmark: Any, tmp_path: Path) -> None:
    benchmark.group = f"tiered async hit in memory, {_AWAITS} per call"
    benchmark.extra_info["role"] = "candidate"
    store = TieredStore(MemoryStore(max_entries=1000), DiskStore(tmp_path))
    store.set(KEY, _entry(), ttl=3600)

    async def hits() -> CachedResponse | None:
        for _ in range(_AWAITS):
            got = await store.aget(KEY)
        return got

    loop = asyncio.new_event_loop()
    try:
        assert benchmark(lambda: loop.run_until_complete(hits())) is not None
        loop.run_until_complete(store.aclose())
    finally:
        loop.close()
