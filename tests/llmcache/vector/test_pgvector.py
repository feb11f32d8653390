"""`PostgresSemanticCache` on a real Postgres with pgvector (pgserver, see
``tests/conftest.py``): the same scoping, guards and verifier as `SemanticCache`, shared by
processes. Every test keeps to its own table."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmcache import CachedClient, CachedResponse, MemoryStore
from llmcache.backends.mock import MockBackend
from llmcache.entry import JSONCodec
from llmcache.errors import StoreError
from llmcache.keys import Request, hash_bytes, make_key
from llmcache.testing import FakeClock
from llmcache.vector.embedders import HashingEmbedder
from llmcache.vector.pgvector import PostgresSemanticCache, SchemaError
from llmcache.vector.semantic import split_request
from llmcache.vector.verifier import Verifier

PYTHON = Request(model="m", prompt="How do I reverse a list in Python?")
SIMILAR = Request(model="m", prompt="how do i reverse a list in python")


def _cache(url: str, table: str, **kwargs: Any) -> PostgresSemanticCache:
    kwargs.setdefault("threshold", 0.6)
    return PostgresSemanticCache(HashingEmbedder(), url, table=table, **kwargs)


@pytest.fixture
def cache(postgres_url: str, pg_table: str) -> Iterator[PostgresSemanticCache]:
    with _cache(postgres_url, pg_table) as c:
        yield c


def _raw(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)


# -- what SemanticCache does, on Postgres -----------------------------------------------------


def test_exact_then_semantic_then_scoped(cache: PostgresSemanticCache) -> None:
    assert cache.get(PYTHON) is None
    cache.set(PYTHON, "xs[::-1]")
    exact = cache.get(PYTHON)
    assert exact is not None and exact.exact and exact.content == "xs[::-1]"
    hit = cache.get(SIMILAR)
    assert hit is not None and not hit.exact and hit.content == "xs[::-1]"
    assert hit.entry.metadata["semantic"]["matched_prompt"] == PYTHON.prompt
    assert cache.get(Request(model="m", prompt="How do I reverse a list in Java?")) is None
    assert cache.get(Request(model="other", prompt=PYTHON.prompt)) is None
    assert cache.get(Request(model="m", system="Answer in French", prompt=PYTHON.prompt)) is None
    stats = cache.stats()
    assert (stats["exact_hits"], stats["semantic_hits"], stats["misses"]) == (1, 1, 4)
    assert stats["vetoes"]["entities"] == 1 and stats["entries"] == 1 == len(cache)
    assert [
        c.veto and c.veto[0]
        for c in cache.explain(Request(model="m", prompt="How do I reverse a list in Java?"))
    ] == ["entities"]


async def test_async_twins(postgres_url: str, pg_table: str) -> None:
    async with _cache(postgres_url, pg_table) as cache:
        await cache.aset(PYTHON, "xs[::-1]")
        hit = await cache.aget(SIMILAR)
        assert hit is not None and hit.content == "xs[::-1]" and not hit.exact
        assert (await cache.aexplain(SIMILAR))[0].text == PYTHON.prompt
        assert await cache.adelete(PYTHON) is True and await cache.adelete(PYTHON) is False
        await cache.aset(PYTHON, "again")
        await cache.aclear()
        assert await cache.aget(PYTHON) is None


def test_the_verifier_judges_the_grey_zone(postgres_url: str, pg_table: str) -> None:
    calls: list[str] = []

    def judge(call: Any) -> str:
        calls.append(call.prompt or "")
        return "no"

    verifier = Verifier(MockBackend(judge))
    with _cache(postgres_url, pg_table, verifier=verifier) as cache:  # it judges every one
        cache.set(PYTHON, "xs[::-1]")
        assert cache.get(SIMILAR) is None  # the judge said no
        assert calls and cache.stats()["refused"] == 1


def test_the_search_is_the_same_exact_or_through_hnsw(postgres_url: str, pg_table: str) -> None:
    prompts = [
        f"How do I sort a list of {thing} in Python?"
        for thing in ["numbers", "strings", "tuples", "dates", "floats", "objects"]
    ]
    found = []
    for exact_below in (10_000, 0):  # every partition searched exactly, then through HNSW
        with _cache(
            postgres_url, pg_table, exact_below=exact_below, namespace=f"n{exact_below}"
        ) as cache:
            for i, prompt in enumerate(prompts):
                cache.set(Request(model="m", prompt=prompt), i)
            hit = cache.get(Request(model="m", prompt="how do i sort a list of dates in python"))
            found.append(None if hit is None else hit.content)
            assert cache._sync_query("SHOW hnsw.ef_search", (), "one") == (str(cache.ef_search),)
    assert found == [3, 3]


def test_a_write_is_seen_by_another_cache_at_once(postgres_url: str, pg_table: str) -> None:
    with _cache(postgres_url, pg_table) as a, _cache(postgres_url, pg_table) as b:
        assert b.get(SIMILAR) is None
        a.set(PYTHON, "xs[::-1]")
        hit = b.get(SIMILAR)
        assert hit is not None and hit.content == "xs[::-1]"
        b.clear()
        assert a.get(PYTHON) is None and a.get(SIMILAR) is None


def _write_in_another_process(url: str, table: str) -> None:
    with _cache(url, table) as cache:
        cache.set(PYTHON, "from another process")


def test_an_entry_written_by_one_process_is_found_by_another(
    postgres_url: str, pg_table: str
) -> None:
    ctx = multiprocessing.get_context("spawn")
    writer = ctx.Process(target=_write_in_another_process, args=(postgres_url, pg_table))
    writer.start()
    writer.join(60)
    assert writer.exitcode == 0
    with _cache(postgres_url, pg_table) as cache:
        hit = cache.get(SIMILAR)
        assert hit is not None and not hit.exact and hit.content == "from another process"


def test_the_clients_take_it_as_their_semantic_tier(cache: PostgresSemanticCache) -> None:
    backend = MockBackend(lambda call: f"answer to {call.prompt}")
    client = CachedClient(backend, MemoryStore(), semantic=cache)
    first = client.generate("How do I reverse a list in Python?", model="m")
    second = client.generate("how do i reverse a list in python", model="m")
    assert second.content == first.content and backend.call_count == 1


# -- partitions never cross ----------------------------------------------------------------------

_PROMPTS = ["How do I reverse a list?", "how do i reverse a list", "Reverse a list"]
_SCOPES = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["llama3", "qwen"]),
        "system": st.sampled_from([None, "Be brief", "Answer in French"]),
        "options": st.sampled_from([None, {"temperature": 0.7}]),
        "namespace": st.sampled_from(["", "tenant-a"]),
    }
)


def _scope_of(request: Request) -> str:
    split = split_request(request.to_canonical())
    assert split is not None
    return hash_bytes(orjson.dumps(split[0], option=orjson.OPT_SORT_KEYS))


@pytest.fixture(scope="module")
def property_cache(postgres_server: Any) -> Iterator[PostgresSemanticCache]:
    if not postgres_server.alive():
        postgres_server.start()
    table = f"t_{uuid.uuid4().hex[:16]}"
    with PostgresSemanticCache(
        HashingEmbedder(dim=32), postgres_server.url, table=table, threshold=-1.0, guards=()
    ) as c:
        yield c


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stored=st.lists(st.tuples(_SCOPES, st.sampled_from(_PROMPTS)), min_size=1, max_size=5),
    queries=st.lists(st.tuples(_SCOPES, st.sampled_from(_PROMPTS)), min_size=1, max_size=5),
)
def test_no_hit_crosses_a_partition(
    property_cache: PostgresSemanticCache,
    stored: list[tuple[dict[str, Any], str]],
    queries: list[tuple[dict[str, Any], str]],
) -> None:
    cache = property_cache
    cache.clear()
    for fields, prompt in stored:
        request = Request(prompt=prompt, **fields)
        cache.set(request, _scope_of(request))  # the answer names its partition
    stored_scopes = {_scope_of(Request(prompt=p, **f)) for f, p in stored}
    for fields, prompt in queries:
        request = Request(prompt=prompt, **fields)
        hit = cache.get(request)
        if hit is not None:
            assert hit.content == _scope_of(request), "a hit crossed partitions"
        elif _scope_of(request) in stored_scopes:
            pytest.fail("threshold -1 and no guards: a stored scope must hit")


# -- the embedder is recorded ---------------------------------------------------------------


class _Named(HashingEmbedder):
    def __init__(self, name: str, dim: int) -> None:
        super().__init__(dim=dim)
        self.name = name


def test_another_embedder_is_a_clear_error(postgres_url: str, pg_table: str) -> None:
    with PostgresSemanticCache(_Named("model-a", 64), postgres_url, table=pg_table) as cache:
        cache.set(PYTHON, "x")
    for other, message in (
        (_Named("model-a", 32), "'model-a' \\(64 dims\\).*\\(32 dims\\)"),
        (_Named("model-b", 64), "'model-a'.*'model-b'"),
    ):
        with (
            PostgresSemanticCache(other, postgres_url, table=pg_table) as cache,
            pytest.raises(SchemaError, match=message),
        ):
            cache.get(PYTHON)


def test_an_exact_table_is_not_a_semantic_one(postgres_url: str, pg_table: str) -> None:
    from llmcache.stores.postgres import PostgresStore

    with PostgresStore(postgres_url, table=pg_table) as store:
        store.set("k", CachedResponse(content="v"))
    with (
        _cache(postgres_url, pg_table) as cache,
        pytest.raises(SchemaError, match="exact entries, not semantic"),
    ):
        cache.get(PYTHON)


def test_an_embedder_without_a_size_needs_dim() -> None:
    class Unsized:
        name = "unsized"
        dim = None

        def embed(self, texts: Any) -> Any:
            raise NotImplementedError

    with pytest.raises(ValueError, match="pass dim="):
        PostgresSemanticCache(Unsized(), "postgresql:///x")  # type: ignore[arg-type]


# -- TTL, bounds ------------------------------------------------------------------------------


def test_ttl_and_max_entries_apply_per_namespace(postgres_url: str, pg_table: str) -> None:
    clock = FakeClock()
    with (
        _cache(postgres_url, pg_table, clock=clock, ttl=60, max_entries=3, namespace="a") as a,
        _cache(postgres_url, pg_table, clock=clock, namespace="b") as b,
    ):
        b.set(PYTHON, "b's")
        a.set(PYTHON, "a's")
        clock.advance(61)
        assert a.get(PYTHON) is None and a.get(SIMILAR) is None  # expired
        got = b.get(PYTHON)
        assert got is not None and got.content == "b's"  # another namespace, no TTL
        for i in range(6):
            clock.advance(1)
            a.set(Request(model="m", prompt=f"question number {i}"), i)
        assert len(a) == 3 and len(b) == 1
        assert a.get(Request(model="m", prompt="question number 5")) is not None
        assert a.get(Request(model="m", prompt="question number 0")) is None
        assert a.stats()["evictions"] >= 3


def test_refreshing_recency_writes_no_index(
    cache: PostgresSemanticCache, postgres_url: str, pg_table: str
) -> None:
    # A hit refreshes accessed_at (at most every touch_after seconds). With that column in
    # an index the update could not be HOT, and every refresh would insert the row into
    # every index again, the HNSW graph included (about 1 ms a refresh, measured).
    cache.set(PYTHON, "x")
    with _raw(postgres_url) as raw:
        indexed = [
            d
            for (d,) in raw.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = %s", (pg_table,)
            )
        ]
        options = raw.execute(
            "SELECT reloptions FROM pg_class WHERE relname = %s", (pg_table,)
        ).fetchone()
    assert indexed and not [d for d in indexed if "accessed_at" in d], indexed
    assert options is not None and "fillfactor=90" in (options[0] or []), options


def test_the_schema_has_every_index_and_the_namespace_table(
    cache: PostgresSemanticCache, postgres_url: str, pg_table: str
) -> None:
    # The tiers share the schema's common part (PgBase._schema_ddl); this one adds its
    # columns and the partition and HNSW indexes.
    cache.set(PYTHON, "x")
    with _raw(postgres_url) as raw:
        indexes = {
            name
            for (name,) in raw.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = %s", (pg_table,)
            )
        }
        columns = {
            name: kind
            for name, kind in raw.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                (pg_table,),
            )
        }
        namespaces = raw.execute(f"SELECT namespace FROM {pg_table}_ns").fetchall()
    assert indexes == {
        f"{pg_table}_pkey",
        f"{pg_table}_partition",
        f"{pg_table}_expiry",
        f"{pg_table}_hnsw",
    }, indexes
    assert columns == {
        "namespace": "text",
        "key": "text",
        "partition": "text",
        "text": "text",
        "fingerprint": "text",
        "value": "bytea",
        "expires_at": "double precision",
        "accessed_at": "double precision",
        "embedding": f"vector({cache.stats()['dim']})",
    }, columns
    assert namespaces == [("default",)]


def test_a_missing_namespace_row_drops_a_write_then_heals(
    cache: PostgresSemanticCache, postgres_url: str, pg_table: str
) -> None:
    cache.set(PYTHON, "x")
    with _raw(postgres_url) as raw:
        raw.execute(f"DELETE FROM {pg_table}_ns")
    other = Request(model="m", prompt="What is the capital of France?")
    cache.set(other, "Paris")  # dropped, counted, no exception
    assert cache.stats()["errors"] == 1
    assert cache.get(other) is None
    cache.set(other, "Paris")  # the namespace row is back
    hit = cache.get(other)
    assert hit is not None and hit.content == "Paris"


# -- planted rows ------------------------------------------------------------------------------


def test_planted_rows_are_misses(postgres_url: str, pg_table: str) -> None:
    sort = Request(model="m", prompt="How do I sort a dict in Python?")
    other = Request(model="other", prompt=PYTHON.prompt)
    codec = JSONCodec()
    with _cache(postgres_url, pg_table, threshold=0.9) as cache, _raw(postgres_url) as raw:
        cache.set(PYTHON, "xs[::-1]")
        cache.set(sort, "sorted(d.items())")
        cache.set(other, "another model's answer")
        values = dict(raw.execute(f"SELECT key, value FROM {pg_table}").fetchall())

        def plant(value: bytes) -> None:
            raw.execute(
                f"UPDATE {pg_table} SET value = %s WHERE key = %s", (value, make_key(PYTHON))
            )
            assert cache.get(PYTHON) is None and cache.get(SIMILAR) is None

        plant(values[make_key(sort)])  # another key's value
        plant(values[make_key(other)])  # the same text's answer in another partition
        entry = codec.decode(values[make_key(PYTHON)])
        plant(codec.encode(replace(entry, content="planted", fingerprint="0" * 16)))
        plant(b"LMC1{not json")  # malformed JSON
        plant(b"\x80\x04pickle")  # foreign bytes
        # A vector of another dimension: the typed column refuses it.
        with pytest.raises(psycopg.errors.DataException):
            raw.execute(
                f"INSERT INTO {pg_table} (namespace, key, partition, text, "
                f"fingerprint, value, accessed_at, embedding) SELECT namespace, "
                f"'planted', partition, text, fingerprint, value, 0, "
                f"'[1,0,0]'::vector FROM {pg_table} WHERE key = %s",
                (make_key(sort),),
            )
        stats = cache.stats()
        assert stats["planted"] >= 3 and stats["errors"] >= 2
        assert stats["semantic_hits"] == stats["exact_hits"] == 0
        hit = cache.get(Request(model="m", prompt="how do i sort a dict in python"))
        assert hit is not None and hit.content == "sorted(d.items())"  # the rest serves


# -- faults --------------------------------------------------------------------------------------


def test_postgres_down_is_a_counted_miss(tmp_path: Path) -> None:
    url = f"postgresql://postgres@/postgres?host={tmp_path}"
    with PostgresSemanticCache(
        HashingEmbedder(), url, connect_timeout=0.2, retry_after=60
    ) as cache:
        assert cache.get(PYTHON) is None and cache.get(SIMILAR) is None
        cache.set(PYTHON, "dropped")
        with pytest.raises(StoreError):
            cache.delete(PYTHON)
        with pytest.raises(StoreError):
            cache.clear()
        stats = cache.stats()
        assert stats["misses"] == 2 and stats["errors"] >= 1 and stats["circuit_open"]


def test_killed_then_restarted(postgres_fault_server: Any, pg_table: str) -> None:
    server = postgres_fault_server
    with PostgresSemanticCache(
        HashingEmbedder(),
        server.url,
        table=pg_table,
        threshold=0.6,
        connect_timeout=0.5,
        retry_after=0.2,
    ) as cache:
        cache.set(PYTHON, "xs[::-1]")
        assert cache.get(SIMILAR) is not None
        with _raw(server.url) as raw:  # writes commit asynchronously: flush them first
            raw.execute("CHECKPOINT")
        server.kill()
        assert cache.get(SIMILAR) is None  # a miss, not an exception
        cache.set(PYTHON, "dropped")
        server.start()
        deadline = time.monotonic() + 20
        while (hit := cache.get(SIMILAR)) is None:
            assert time.monotonic() < deadline, "hits never resumed"
            time.sleep(0.1)
        assert hit.content == "xs[::-1]"


def test_a_slow_search_is_cancelled(postgres_url: str, pg_table: str) -> None:
    with _cache(postgres_url, pg_table, statement_timeout=0.2, retry_after=0.1) as cache:
        cache.set(PYTHON, "xs[::-1]")
        with _raw(postgres_url) as raw:
            raw.autocommit = False
            raw.execute(f"LOCK TABLE {pg_table} IN ACCESS EXCLUSIVE MODE")
            done = threading.Event()
            result: list[Any] = []
            worker = threading.Thread(
                target=lambda: (result.append(cache.get(SIMILAR)), done.set())
            )
            worker.start()
            assert done.wait(10), "the lookup waited past its statement timeout"
            raw.rollback()
        worker.join()
        assert result == [None] and "statement timeout" in (cache.stats()["last_error"] or "")
