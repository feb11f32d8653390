"""The Postgres tier against raw psycopg and against the Redis tier, side by side.

    .venv/bin/pytest benchmarks/test_bench_postgres.py --benchmark-enable --benchmark-only -q

Postgres runs from the ``pgserver`` wheel on a Unix socket (Redis on loopback TCP: each
tier as it is usually deployed next to its app). Targets: a `PostgresStore` hit (a pooled
connection, one primary-key SELECT, decode, expiry checks) within 1.3x of a raw psycopg
``SELECT`` of the same bytes on one open connection (``conn.execute``); the ratios against
the same SELECT on a reused cursor (psycopg's floor) and against a `RedisStore` hit are
shown without a target. A hit does not write: ``accessed_at`` is refreshed at most once
per ``touch_after`` seconds (the group "hit that writes" shows what a write on every hit
would cost).
"""

from __future__ import annotations

import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from llmcache.entry import CachedResponse, JSONCodec
from llmcache.stores.postgres import PostgresStore
from llmcache.stores.redis import RedisStore

TABLE = "bench_entries"


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


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver
    base = Path(tempfile.mkdtemp(prefix="llmcache-bench-pg-"))
    server = pgserver.get_server(base / "data", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def store(postgres_url: str) -> Iterator[PostgresStore]:
    with PostgresStore(postgres_url, table=TABLE, namespace="bench") as s:
        s.set("v1:key", _entry(), ttl=3600)
        yield s


@pytest.fixture(scope="module")
def raw(postgres_url: str, store: PostgresStore) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        yield conn


@pytest.mark.benchmark(group="postgres hit, 1 KB")
def test_postgres_hit_baseline_raw_select(
    benchmark: BenchmarkFixture, raw: psycopg.Connection[Any]
) -> None:
    benchmark.extra_info["role"] = "baseline"
    sql = f"SELECT value FROM {TABLE} WHERE namespace = %s AND key = %s"

    def select() -> bytes:
        row = raw.execute(sql, ("bench", "v1:key"), binary=True).fetchone()
        assert row is not None
        return bytes(row[0])

    data = select()
    assert 900 <= len(data) <= 1200
    assert benchmark(select) == data


@pytest.mark.benchmark(group="postgres hit, 1 KB")
def test_postgres_hit_postgres_store_get(benchmark: BenchmarkFixture, store: PostgresStore) -> None:
    benchmark.extra_info.update(role="candidate", target=1.3)
    got = benchmark(store.get, "v1:key")
    assert got is not None and got.content == _entry().content


@pytest.mark.benchmark(group="postgres hit vs a reused raw cursor")
def test_cursor_baseline_raw_reused_cursor(
    benchmark: BenchmarkFixture, raw: psycopg.Connection[Any]
) -> None:
    # The floor psycopg allows: one cursor kept open on one connection (what the store does
    # per pooled connection), no pool, no decode.
    benchmark.extra_info["role"] = "baseline"
    sql = f"SELECT value FROM {TABLE} WHERE namespace = %s AND key = %s"
    cur = raw.cursor(binary=True)

    def select() -> Any:
        cur.execute(sql, ("bench", "v1:key"))
        return cur.fetchone()

    assert benchmark(select) is not None


@pytest.mark.benchmark(group="postgres hit vs a reused raw cursor")
def test_cursor_postgres_store_get(benchmark: BenchmarkFixture, store: PostgresStore) -> None:
    benchmark.extra_info["role"] = "candidate"
    assert benchmark(store.get, "v1:key") is not None


@pytest.mark.benchmark(group="postgres hit vs redis hit")
def test_redis_hit_baseline_redis_store(benchmark: BenchmarkFixture, redis_url: str) -> None:
    benchmark.extra_info["role"] = "baseline"
    with RedisStore(redis_url, namespace="bench") as redis_store:
        redis_store.set("v1:key", _entry(), ttl=3600)
        got = benchmark(redis_store.get, "v1:key")
    assert got is not None


@pytest.mark.benchmark(group="postgres hit vs redis hit")
def test_redis_hit_postgres_store(benchmark: BenchmarkFixture, store: PostgresStore) -> None:
    benchmark.extra_info["role"] = "candidate"
    assert benchmark(store.get, "v1:key") is not None


@pytest.mark.benchmark(group="postgres hit that writes")
def test_touch_baseline_hit(benchmark: BenchmarkFixture, store: PostgresStore) -> None:
    benchmark.extra_info["role"] = "baseline"
    assert benchmark(store.get, "v1:key") is not None


@pytest.mark.benchmark(group="postgres hit that writes")
def test_touch_every_hit(benchmark: BenchmarkFixture, postgres_url: str) -> None:
    benchmark.extra_info["role"] = "candidate"
    clock = [time.time()]

    def tick() -> float:
        clock[0] += 1.0  # every hit finds accessed_at a second old: refreshed each time
        return clock[0]

    with PostgresStore(
        postgres_url, table=TABLE, namespace="touch", touch_after=0.5, clock=tick
    ) as touching:
        touching.set("v1:key", _entry())
        assert benchmark(touching.get, "v1:key") is not None


@pytest.mark.benchmark(group="postgres get_many 100 keys")
def test_get_many_baseline_100_gets(benchmark: BenchmarkFixture, store: PostgresStore) -> None:
    benchmark.extra_info["role"] = "baseline"
    keys = [f"v1:key{i:03d}" for i in range(100)]
    store.set_many({key: _entry() for key in keys}, ttl=3600)
    assert len(benchmark(lambda: [store.get(key) for key in keys])) == 100


@pytest.mark.benchmark(group="postgres get_many 100 keys")
def test_get_many_one_round_trip(benchmark: BenchmarkFixture, store: PostgresStore) -> None:
    benchmark.extra_info["role"] = "candidate"
    keys = [f"v1:key{i:03d}" for i in range(100)]
    store.set_many({key: _entry() for key in keys}, ttl=3600)
    assert len(benchmark(store.get_many, keys)) == 100


def test_encoded_size_is_about_1kb() -> None:
    assert 900 <= len(JSONCodec().encode(_entry())) <= 1200
