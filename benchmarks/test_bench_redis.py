"""The Redis tier against raw redis-py, side by side on one local redis-server.

    .venv/bin/pytest benchmarks/test_bench_redis.py --benchmark-enable --benchmark-only -q

Targets: a `RedisStore` hit (GET + decode + checks) within 1.3x of a raw redis-py ``GET``
of the same bytes; a pipelined `get_many` of 100 keys against 100 sequential ``GET``s (one
round trip against a hundred), and against one raw ``MGET`` of the same keys. The same hit
through the coroutine (``aget`` against a raw ``redis.asyncio`` GET, target 1.3x), and
through a `TieredStore` whose memory tier misses (sync and async, a watch).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio
from pytest_benchmark.fixture import BenchmarkFixture

from llmcache.entry import CachedResponse, JSONCodec
from llmcache.stores import MemoryStore, TieredStore
from llmcache.stores.redis import RedisStore


def _entry() -> CachedResponse:
    # About 1 KB encoded: a typical short answer with its bookkeeping fields.
    return CachedResponse(
        content="The answer is " + "x" * 880,
        model="llama3.2",
        prompt_tokens=12,
        completion_tokens=220,
        tokens_used=232,
        fingerprint="9f2c4e1a7b3d5f60",
    )


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStore]:
    with RedisStore(redis_url, namespace="bench") as s:
        yield s


KEYS = [f"v1:key{i:03d}" for i in range(100)]


@pytest.mark.benchmark(group="redis hit, 1 KB")
def test_redis_hit_baseline_raw_get(benchmark: BenchmarkFixture, raw: redis.Redis) -> None:
    benchmark.extra_info["role"] = "baseline"
    data = JSONCodec().encode(_entry().with_ttl(3600, time.time()))
    assert 900 <= len(data) <= 1200
    raw.set("bench:v1:key", data, px=3_600_000)
    assert benchmark(raw.get, "bench:v1:key") == data


@pytest.mark.benchmark(group="redis hit, 1 KB")
def test_redis_hit_redis_store_get(
    benchmark: BenchmarkFixture, raw: redis.Redis, store: RedisStore
) -> None:
    benchmark.extra_info.update(role="candidate", target=1.3)
    store.set("v1:key", _entry(), ttl=3600)
    got = benchmark(store.get, "v1:key")
    assert got is not None and got.content == _entry().content


@pytest.mark.benchmark(group="redis 100 keys vs 100 GETs")
def test_redis_100_baseline_sequential_gets(benchmark: BenchmarkFixture, raw: redis.Redis) -> None:
    benchmark.extra_info["role"] = "baseline"
    data = JSONCodec().encode(_entry())
    for key in KEYS:
        raw.set(f"bench:{key}", data)
    names = [f"bench:{key}" for key in KEYS]

    def sequential() -> list[bytes | None]:
        return [raw.get(name) for name in names]

    assert benchmark(sequential) == [data] * 100


@pytest.mark.benchmark(group="redis 100 keys vs 100 GETs")
def test_redis_100_redis_store_get_many(
    benchmark: BenchmarkFixture, raw: redis.Redis, store: RedisStore
) -> None:
    benchmark.extra_info.update(role="candidate", target=0.25)
    store.set_many({key: _entry() for key in KEYS}, ttl=3600)
    assert len(benchmark(store.get_many, KEYS)) == 100


@pytest.mark.benchmark(group="redis 100 keys vs raw MGET")
def test_redis_mget_baseline_raw_mget(benchmark: BenchmarkFixture, raw: redis.Redis) -> None:
    benchmark.extra_info["role"] = "baseline"
    data = JSONCodec().encode(_entry())
    for key in KEYS:
        raw.set(f"bench:{key}", data)
    names = [f"bench:{key}" for key in KEYS]
    assert benchmark(raw.mget, names) == [data] * 100


@pytest.mark.benchmark(group="redis 100 keys vs raw MGET")
def test_redis_mget_redis_store_get_many(
    benchmark: BenchmarkFixture, raw: redis.Redis, store: RedisStore
) -> None:
    # The difference is decoding and validating 100 untrusted entries.
    benchmark.extra_info.update(role="candidate")
    store.set_many({key: _entry() for key in KEYS}, ttl=3600)
    assert len(benchmark(store.get_many, KEYS)) == 100


# -- the coroutine face, and Redis as the last tier of a TieredStore ------------------------

_AWAITS = 50  # hits per event-loop turn in the async cases: amortizes run_until_complete


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.mark.benchmark(group=f"redis async hit, 1 KB, {_AWAITS} per call")
def test_redis_ahit_baseline_raw_get(
    benchmark: BenchmarkFixture, raw: redis.Redis, redis_url: str, loop: asyncio.AbstractEventLoop
) -> None:
    benchmark.extra_info["role"] = "baseline"
    data = JSONCodec().encode(_entry().with_ttl(3600, time.time()))
    raw.set("bench:v1:key", data, px=3_600_000)
    client = redis.asyncio.Redis.from_url(redis_url)

    async def hits() -> bytes | None:
        for _ in range(_AWAITS):
            got = await client.get("bench:v1:key")
        return got

    assert benchmark(lambda: loop.run_until_complete(hits())) == data
    loop.run_until_complete(client.aclose())


@pytest.mark.benchmark(group=f"redis async hit, 1 KB, {_AWAITS} per call")
def test_redis_ahit_redis_store_aget(
    benchmark: BenchmarkFixture,
    raw: redis.Redis,
    store: RedisStore,
    loop: asyncio.AbstractEventLoop,
) -> None:
    benchmark.extra_info.update(role="candidate", target=1.3)
    store.set("v1:key", _entry(), ttl=3600)

    async def hits() -> CachedResponse | None:
        for _ in range(_AWAITS):
            got = await store.aget("v1:key")
        return got

    got = benchmark(lambda: loop.run_until_complete(hits()))
    assert got is not None and got.content == _entry().content
    loop.run_until_complete(store.aclose())


@pytest.mark.benchmark(group="redis hit, 1 KB")
def test_redis_hit_tiered_store_get(
    benchmark: BenchmarkFixture, raw: redis.Redis, store: RedisStore
) -> None:
    # Memory in front, never filled (no promotion): every read walks down to Redis.
    benchmark.extra_info.update(role="candidate")
    tiered = TieredStore(MemoryStore(), store, promote=False)
    store.set("v1:key", _entry(), ttl=3600)
    got = benchmark(tiered.get, "v1:key")
    assert got is not None and got.content == _entry().content


@pytest.mark.benchmark(group=f"redis async hit, 1 KB, {_AWAITS} per call")
def test_redis_ahit_tiered_store_aget(
    benchmark: BenchmarkFixture,
    raw: redis.Redis,
    store: RedisStore,
    loop: asyncio.AbstractEventLoop,
) -> None:
    benchmark.extra_info.update(role="candidate")
    tiered = TieredStore(MemoryStore(), store, promote=False)
    store.set("v1:key", _entry(), ttl=3600)

    async def hits() -> CachedResponse | None:
        for _ in range(_AWAITS):
            got = await tiered.aget("v1:key")
        return got

    got = benchmark(lambda: loop.run_until_complete(hits()))
    assert got is not None and got.content == _entry().content
    loop.run_until_complete(store.aclose())
