"""`PostgresStore` on a real Postgres (pgserver, see ``tests/conftest.py``).

Every test keeps to its own table. Processes are started with 'spawn' (fresh interpreters,
as on another host); the "model" counts its calls in Postgres so every process adds to one
count.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from llmcache import CachedClient, CachedResponse, MemoryStore, TieredStore, cached_generate
from llmcache.backends.mock import AsyncMockBackend, MockBackend, MockCall
from llmcache.client import AsyncCachedClient
from llmcache.distributed import find_lock_provider, flight_for
from llmcache.errors import StoreError
from llmcache.stores.postgres import PostgresStore, SchemaError
from llmcache.testing import FakeClock, StoreConformance

# -- the conformance suite -----------------------------------------------------------------


class TestPostgresStoreConformance(StoreConformance):
    uses_clock = True

    @pytest.fixture(autouse=True)
    def _server(self, postgres_url: str, pg_table: str) -> None:
        self.url = postgres_url
        self.table = pg_table
        self.made = 0

    def make_store(self) -> PostgresStore:
        self.made += 1  # a test that makes two stores gets two namespaces
        return PostgresStore(
            self.url, table=self.table, namespace=f"n{self.made}", clock=self.clock
        )


@pytest.fixture
def store(postgres_url: str, pg_table: str) -> Iterator[PostgresStore]:
    with PostgresStore(postgres_url, table=pg_table, statement_timeout=5.0) as s:
        yield s


def _raw(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)


# -- the async face behaves like the sync one ------------------------------------------------


async def test_async_twins_match_the_sync_methods(postgres_url: str, pg_table: str) -> None:
    async with PostgresStore(postgres_url, table=pg_table) as store:
        assert await store.aget("k") is None
        await store.aset("k", CachedResponse(content="v", fingerprint="f"), ttl=60)
        got = await store.aget("k")
        assert got is not None and got.content == "v" and got.fingerprint == "f"
        assert store.get("k") == got  # one table for both faces
        await store.aset_many({"a": CachedResponse(content=1), "b": CachedResponse(content=2)})
        found = await store.aget_many(["a", "b", "missing", "a"])
        assert {k: e.content for k, e in found.items()} == {"a": 1, "b": 2}
        assert await store.adelete("a") is True and await store.adelete("a") is False
        await store.aclear()
        assert await store.aget_many(["k", "b"]) == {} and len(store) == 0
        stats = store.stats()
        assert stats["hits"] == 4 and stats["sets"] == 3 and stats["deletes"] == 1


async def test_async_lock_twins(postgres_url: str, pg_table: str) -> None:
    async with PostgresStore(postgres_url, table=pg_table) as store:
        token = await store.atry_lock("k", 5)
        assert token is not None
        assert await store.atry_lock("k", 5) is None  # another session: refused
        assert store.try_lock("k", 5) is None  # and from the sync face too
        assert await store.arenew("k", token, 5) and not await store.arenew("k", "other", 5)
        assert not await store.aunlock("k", "not-the-token")
        assert await store.aunlock("k", token) and not await store.aunlock("k", token)
        again = await store.atry_lock("k", 5)
        assert again is not None and await store.aunlock("k", again)


# -- clear, TTL sweeps, LRU eviction -----------------------------------------------------------


def test_clear_waits_for_a_write_in_flight_and_deletes_it(
    store: PostgresStore, postgres_url: str
) -> None:
    store.set("before", CachedResponse(content="old"))
    with _raw(postgres_url) as raw:
        # A write that began before the clear and commits while the clear runs: the
        # store's own statement, in an open transaction.
        raw.autocommit = False
        raw.execute(store._sql_set, ("late", b"LMC1{}", None, 0.0, store.namespace))
        done = threading.Event()
        clearer = threading.Thread(target=lambda: (store.clear(), done.set()))
        clearer.start()
        assert not done.wait(0.3), "clear must wait for the write holding the namespace"
        raw.commit()
        clearer.join(10)
    assert done.is_set()
    assert store.get("before") is None and store.get("late") is None, (
        "an entry written before the clear is served after it"
    )
    store.set("after", CachedResponse(content="new"))
    assert store.get("after") is not None


def test_writes_after_a_clear_of_another_process_land(postgres_url: str, pg_table: str) -> None:
    with (
        PostgresStore(postgres_url, table=pg_table) as a,
        PostgresStore(postgres_url, table=pg_table) as b,
    ):
        a.set("k", CachedResponse(content="1"))
        b.clear()
        assert a.get("k") is None
        a.set("k", CachedResponse(content="2"))
        got = b.get("k")
        assert got is not None and got.content == "2"


def test_expired_rows_are_misses_then_swept(postgres_url: str, pg_table: str) -> None:
    clock = FakeClock()
    with (
        PostgresStore(postgres_url, table=pg_table, clock=clock, sweep_interval=1e-6) as store,
        _raw(postgres_url) as raw,
    ):
        store.set("short", CachedResponse(content="s"), ttl=10)
        store.set("long", CachedResponse(content="l"), ttl=1000)
        clock.advance(11)
        assert store.get("short") is None
        store.set("other", CachedResponse(content="o"))  # a write sweeps
        keys = {k for (k,) in raw.execute(f"SELECT key FROM {pg_table}")}
        assert keys == {"long", "other"}
        stats = store.stats()
        assert stats["swept"] == 1 and stats["expirations"] == 1


def test_the_least_recently_used_are_evicted(postgres_url: str, pg_table: str) -> None:
    clock = FakeClock()
    with PostgresStore(
        postgres_url,
        table=pg_table,
        clock=clock,
        max_entries=10,
        touch_after=5,
        sweep_interval=3600,
    ) as store:
        for i in range(10):
            store.set(f"k{i}", CachedResponse(content=i))
        clock.advance(60)
        for i in range(5):  # read: their accessed_at moves on (older than touch_after)
            assert store.get(f"k{i}") is not None
        clock.advance(60)
        for i in range(10, 15):
            store.set(f"k{i}", CachedResponse(content=i))
        assert len(store) == 10
        kept = set(store.get_many([f"k{i}" for i in range(15)]))
        assert kept == {f"k{i}" for i in [*range(5), *range(10, 15)]}
        assert store.stats()["evictions"] == 5


def test_a_hit_writes_at_most_once_per_touch_after(store: PostgresStore, postgres_url: str) -> None:
    store.set("k", CachedResponse(content="v"))
    with _raw(postgres_url) as raw:
        before = raw.execute(f"SELECT accessed_at FROM {store.table}").fetchone()
        for _ in range(20):
            assert store.get("k") is not None
        after = raw.execute(f"SELECT accessed_at FROM {store.table}").fetchone()
    assert before == after, "fresh hits must not write"


def test_refreshing_recency_writes_no_index(store: PostgresStore, postgres_url: str) -> None:
    # accessed_at is not indexed (and pages keep room) so a hit's refresh is a HOT update.
    store.set("k", CachedResponse(content="v"))
    with _raw(postgres_url) as raw:
        indexed = [
            d
            for (d,) in raw.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = %s", (store.table,)
            )
        ]
    assert indexed and not [d for d in indexed if "accessed_at" in d], indexed


def test_the_schema_has_its_indexes_and_the_namespace_table(
    store: PostgresStore, postgres_url: str
) -> None:
    store.set("k", CachedResponse(content="v"))
    t = store.table
    with _raw(postgres_url) as raw:
        indexes = {
            name
            for (name,) in raw.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = %s", (t,)
            )
        }
        columns = [
            name
            for (name,) in raw.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
                "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                (t,),
            )
        ]
        options = raw.execute("SELECT reloptions FROM pg_class WHERE relname = %s", (t,)).fetchone()
        namespaces = raw.execute(f"SELECT namespace FROM {t}_ns").fetchall()
    assert indexes == {f"{t}_pkey", f"{t}_expiry"}, indexes
    assert columns == ["namespace", "key", "value", "expires_at", "accessed_at"]
    assert options is not None and "fillfactor=90" in (options[0] or []), options
    assert namespaces == [(store.namespace,)]


# -- the schema -------------------------------------------------------------------------------


def test_a_schema_version_it_does_not_know_is_a_clear_error(
    postgres_url: str, pg_table: str
) -> None:
    with PostgresStore(postgres_url, table=pg_table) as store:
        store.set("k", CachedResponse(content="v"))
    with _raw(postgres_url) as raw:
        raw.execute("UPDATE llmcache_schema SET version = 99 WHERE name = %s", (pg_table,))
    with PostgresStore(postgres_url, table=pg_table) as store:
        with pytest.raises(SchemaError, match="version 99.*knows version 1"):
            store.get("k")
        with pytest.raises(SchemaError):  # every call, not only the first
            store.set("k", CachedResponse(content="v"))


def test_every_refusal_names_the_table_and_the_open(postgres_url: str, pg_table: str) -> None:
    with PostgresStore(postgres_url, table=pg_table) as store:
        store.set("k", CachedResponse(content="v"))
    for sql, message in (
        (
            "UPDATE llmcache_schema SET version = 7 WHERE name = %s",
            f"table {pg_table!r} has llmcache schema version 7; this llmcache knows version "
            f"1 only (upgrade llmcache, or use another table)",
        ),
        (
            "UPDATE llmcache_schema SET version = 1, kind = 'semantic' WHERE name = %s",
            f"table {pg_table!r} holds llmcache semantic entries, not exact ones: give this "
            f"tier another table",
        ),
        (
            "DELETE FROM llmcache_schema WHERE name = %s",
            f"table {pg_table!r} exists but was not created by llmcache (it is not in "
            f"llmcache_schema): give this tier another table",
        ),
    ):
        with _raw(postgres_url) as raw:
            raw.execute(sql, (pg_table,))
        with PostgresStore(postgres_url, table=pg_table) as store:
            with pytest.raises(SchemaError) as caught:
                store.get("k")
            assert str(caught.value) == message
            assert (caught.value.store, caught.value.operation) == (store._label, "open")


def test_the_lock_pool_keeps_no_idle_session_the_entry_pool_one(postgres_url: str) -> None:
    # A lock session goes back to its pool unlocked (its reset hook), and none waits idle.
    store = PostgresStore(postgres_url)
    try:
        assert store._pools.sync_pool().min_size == 1
        assert store._lock_pools.sync_pool().min_size == 0
    finally:
        store.close()


async def test_the_async_pools_are_sized_as_the_sync_ones(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    try:
        assert (await store._pools.async_pool()).min_size == 1
        assert (await store._lock_pools.async_pool()).min_size == 0
    finally:
        await store.aclose()


def test_a_table_llmcache_did_not_create_is_refused(postgres_url: str, pg_table: str) -> None:
    with _raw(postgres_url) as raw:
        raw.execute(f"CREATE TABLE {pg_table} (id int)")
    with (
        PostgresStore(postgres_url, table=pg_table) as store,
        pytest.raises(SchemaError, match="not created by llmcache"),
    ):
        store.get("k")


def test_a_missing_namespace_row_drops_writes_then_heals(
    store: PostgresStore, postgres_url: str
) -> None:
    store.set("k", CachedResponse(content="v"))
    with _raw(postgres_url) as raw:
        raw.execute(f"DELETE FROM {store.table}_ns")
    store.set("k2", CachedResponse(content="v"))  # dropped, counted, no exception
    assert store.stats()["errors"] == 1
    store.set("k3", CachedResponse(content="v"))  # the namespace row is back
    assert store.get("k3") is not None


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="table"):
        PostgresStore("postgresql:///x", table="Robert'); DROP TABLE students;--")
    with pytest.raises(ValueError, match="namespace"):
        PostgresStore("postgresql:///x", namespace="")
    with pytest.raises(ValueError, match="max_entries"):
        PostgresStore("postgresql:///x", max_entries=0)
    with pytest.raises(ValueError, match="statement_timeout"):
        PostgresStore("postgresql:///x", statement_timeout=0)
    with pytest.raises(ValueError) as caught:
        PostgresStore("postgresql:///x", table="T")
    assert str(caught.value) == (
        "table: expected a lower-case identifier of at most 48 characters (letters, digits, "
        "'_'), got 'T'"
    )
    with pytest.raises(ValueError) as caught:
        PostgresStore("postgresql:///x", lock_wait=True)
    assert str(caught.value) == "lock_wait: expected seconds > 0, got True"


def test_the_password_is_never_shown() -> None:
    store = PostgresStore("postgresql://app:s3cret@db.example:5432/cache")
    assert "s3cret" not in repr(store) and "***" in repr(store)
    store.close()


def test_import_llmcache_needs_no_psycopg_and_the_extra_is_named() -> None:
    code = (
        "import sys; import llmcache, llmcache.stores.postgres\n"
        "assert 'psycopg' not in sys.modules, 'psycopg imported eagerly'\n"
        "sys.modules['psycopg'] = None\n"
        "from llmcache.stores.postgres import PostgresStore\n"
        "try:\n"
        "    PostgresStore('postgresql:///x')\n"
        "except ImportError as exc:\n"
        "    assert 'install llmcache[postgres]' in str(exc), exc\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_without_psycopg_pool_the_extra_is_named_too() -> None:
    code = (
        "import sys; sys.modules['psycopg_pool'] = None\n"
        "from llmcache.stores.postgres import PostgresStore\n"
        "try:\n    PostgresStore('postgresql:///x')\nexcept ImportError as e:\n    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == (
        "the Postgres tiers need the postgres extra: install llmcache[postgres] "
        "(pip install 'llmcache[postgres]')"
    )


# -- planted rows ----------------------------------------------------------------------------


def _answer_of(prompt: str) -> str:
    return f"answer:{prompt}"


def test_planted_rows_are_misses(store: PostgresStore, postgres_url: str) -> None:
    backend = MockBackend(lambda call: _answer_of(call.prompt or ""))
    client = CachedClient(backend, store)
    assert client.generate("q1").content == "answer:q1"
    assert client.generate("q2").content == "answer:q2"
    assert backend.call_count == 2
    with _raw(postgres_url) as raw:
        rows = dict(raw.execute(f"SELECT key, value FROM {store.table}").fetchall())
        (k1, v1), (k2, v2) = sorted(rows.items(), key=lambda kv: kv[1])
        # Another key's value under each key, then malformed JSON and foreign bytes.
        raw.execute(f"UPDATE {store.table} SET value = %s WHERE key = %s", (v2, k1))
        raw.execute(f"UPDATE {store.table} SET value = %s WHERE key = %s", (v1, k2))
    answers = {client.generate("q1").content, client.generate("q2").content}
    assert answers == {"answer:q1", "answer:q2"} and backend.call_count == 4
    with _raw(postgres_url) as raw:
        raw.execute(f"UPDATE {store.table} SET value = %s", (b"LMC1{not json",))
    assert client.generate("q1").content == "answer:q1" and backend.call_count == 5
    with _raw(postgres_url) as raw:
        raw.execute(f"UPDATE {store.table} SET value = %s", (b"\x80\x04pickle",))
        raw.execute(
            f"INSERT INTO {store.table} VALUES (%s, 'x', %s, NULL, 0)", (store.namespace, b"LMC1[]")
        )
    assert store.get("x") is None
    assert client.generate("q2").content == "answer:q2" and backend.call_count == 6
    assert store.stats()["errors"] >= 3  # undecodable rows are counted


# -- faults ------------------------------------------------------------------------------------


def test_postgres_down_is_a_counted_miss(tmp_path: Path) -> None:
    url = f"postgresql://postgres@/postgres?host={tmp_path}"  # no server on that socket
    with PostgresStore(url, connect_timeout=0.2, retry_after=60) as store:
        assert store.get("k") is None
        store.set("k", CachedResponse(content="v"))  # dropped
        assert store.get_many(["a", "b"]) == {}
        with pytest.raises(StoreError, match="delete did not happen"):
            store.delete("k")
        with pytest.raises(StoreError, match="clear did not happen"):
            store.clear()
        stats = store.stats()
        assert stats["circuit_open"] and not stats["connected"]
        assert stats["misses"] == 3 and stats["errors"] >= 1 and stats["skipped"] >= 3
        client = CachedClient(MockBackend(), store)
        assert client.generate("hi").content == "echo: hi"  # the app still gets its answer


async def test_postgres_down_is_a_counted_miss_async(tmp_path: Path) -> None:
    url = f"postgresql://postgres@/postgres?host={tmp_path}"
    async with PostgresStore(url, connect_timeout=0.2, retry_after=60) as store:
        assert await store.aget("k") is None
        await store.aset("k", CachedResponse(content="v"))
        with pytest.raises(StoreError):
            await store.adelete("k")
        client = AsyncCachedClient(AsyncMockBackend(), store)
        assert (await client.generate("hi")).content == "echo: hi"
        assert store.stats()["misses"] >= 2


def test_a_slow_statement_is_cancelled_and_counted(postgres_url: str, pg_table: str) -> None:
    with (
        PostgresStore(
            postgres_url, table=pg_table, statement_timeout=0.2, retry_after=0.2
        ) as store,
        _raw(postgres_url) as raw,
    ):
        store.set("k", CachedResponse(content="v"))
        raw.autocommit = False
        raw.execute(f"LOCK TABLE {pg_table} IN ACCESS EXCLUSIVE MODE")  # every read waits
        assert store.get("k") is None
        store.set("k2", CachedResponse(content="v"))  # dropped
        assert "statement timeout" in (store.stats()["last_error"] or "")
        raw.rollback()
        deadline = time.monotonic() + 10
        while store.get("k") is None:  # the circuit closes after retry_after
            assert time.monotonic() < deadline, "hits never resumed"
            time.sleep(0.05)
        assert store.stats()["errors"] >= 1


def test_after_a_restart_the_first_call_hits(postgres_fault_server: Any, pg_table: str) -> None:
    # The pooled connections died with the server: the first call finds one broken, drops
    # the idle ones and runs again on a fresh connection, instead of serving a miss.
    server = postgres_fault_server
    with PostgresStore(server.url, table=pg_table, connect_timeout=5.0) as store:
        store.set("k", CachedResponse(content="v"))
        for _ in range(3):
            assert store.get("k") is not None
        with _raw(server.url) as raw:  # writes commit asynchronously: flush them first
            raw.execute("CHECKPOINT")
        server.kill()
        server.start()
        got = store.get("k")
        assert got is not None and got.content == "v"
        assert store.stats()["errors"] == 0 and not store.stats()["circuit_opened"]


def test_a_clear_or_delete_survives_a_crash_right_after_it(
    postgres_fault_server: Any, pg_table: str
) -> None:
    # Writes commit asynchronously (a crash may lose the last few hundred milliseconds of
    # them: a cache can afford that); a clear or a delete that returned must not be undone.
    server = postgres_fault_server
    with PostgresStore(server.url, table=pg_table) as store:
        store.set("a", CachedResponse(content="a"))
        store.set("b", CachedResponse(content="b"))
        store.set("c", CachedResponse(content="c"))
        with _raw(server.url) as raw:
            raw.execute("CHECKPOINT")  # the three entries are on disk
        store.clear()
        store.set("a", CachedResponse(content="a2"))
        with _raw(server.url) as raw:
            raw.execute("CHECKPOINT")
        assert store.delete("a")
        server.kill()
        server.start()
        assert store.get_many(["a", "b", "c"]) == {}, "an entry came back after a crash"


def _hammer(store: PostgresStore, stop: threading.Event, results: list[Any]) -> None:
    backend = MockBackend(lambda call: _answer_of(call.prompt or ""))
    client = CachedClient(backend, store)
    i = 0
    while not stop.is_set():
        prompt = f"q{i % 5}"
        try:
            results.append((prompt, client.generate(prompt).content, backend.call_count))
        except BaseException as exc:  # a failed call fails the test below
            results.append((prompt, exc, backend.call_count))
        i += 1
        time.sleep(0.005)


def test_postgres_killed_mid_run_then_restarted(postgres_fault_server: Any, pg_table: str) -> None:
    server = postgres_fault_server
    store = PostgresStore(server.url, table=pg_table, connect_timeout=0.5, retry_after=0.2)
    stop = threading.Event()
    results: list[Any] = []
    worker = threading.Thread(target=_hammer, args=(store, stop, results))
    worker.start()
    try:
        time.sleep(0.5)
        server.kill()
        time.sleep(1.0)
        server.start()
        deadline = time.monotonic() + 20
        while True:  # hits resume: five calls in a row without a model call
            time.sleep(0.2)
            calls = [c for _, _, c in results[-5:]]
            if len(calls) == 5 and calls[0] == calls[-1]:
                break
            assert time.monotonic() < deadline, "hits never resumed after the restart"
    finally:
        stop.set()
        worker.join(30)
        store.close()
    failures = [r for r in results if not isinstance(r[1], str)]
    assert not failures, failures[:3]
    assert all(answer == _answer_of(prompt) for prompt, answer, _ in results)
    assert store.stats()["errors"] >= 1  # the outage was seen, and counted


# -- single-flight across processes -----------------------------------------------------------


def test_lock_primitives(store: PostgresStore, postgres_url: str, pg_table: str) -> None:
    token = store.try_lock("k", 5)
    assert token is not None and store.try_lock("k", 5) is None
    assert store.try_lock("other", 5) is not None  # keys are independent
    assert not store.renew("k", "not-the-token", 5) and not store.unlock("k", "nope")
    assert store.renew("k", token, 5)
    assert store.unlock("k", token) and not store.unlock("k", token)
    again = store.try_lock("k", 5)
    assert again is not None and store.unlock("k", again)
    assert find_lock_provider(TieredStore(MemoryStore(), store)) is store
    with PostgresStore(postgres_url, table=pg_table, lock_lease=0) as off:
        assert flight_for(off) is None


def test_all_lock_sessions_held_is_no_outage(postgres_url: str, pg_table: str) -> None:
    with PostgresStore(postgres_url, table=pg_table, lock_connections=2) as store:
        store.set("k", CachedResponse(content="v"))
        tokens = [store.try_lock("a", 5), store.try_lock("b", 5)]
        assert None not in tokens
        with pytest.raises(ConnectionError, match="lock_connections"):
            store.try_lock("c", 5)  # the flight then calls the model without waiting
        assert not store.stats()["circuit_open"]
        assert store.get("k") is not None  # entries are still served
        assert store.unlock("a", tokens[0]) and store.try_lock("c", 5) is not None


def _hold_lock(url: str, table: str, key: str, ready: Any) -> None:
    store = PostgresStore(url, table=table)
    assert store.try_lock(key, 60) is not None
    ready.set()
    time.sleep(60)  # killed long before


def test_a_dead_holder_releases_its_lock_at_once(postgres_url: str, pg_table: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(postgres_url, pg_table, "k", ready))
    holder.start()
    try:
        assert ready.wait(60)
        with PostgresStore(postgres_url, table=pg_table) as store:
            assert store.try_lock("k", 60) is None
            holder.kill()
            holder.join(10)
            deadline = time.monotonic() + 10
            while (token := store.try_lock("k", 60)) is None:  # no lease to wait out
                assert time.monotonic() < deadline, "the dead holder's lock stayed"
                time.sleep(0.02)
            assert store.unlock("k", token)
    finally:
        holder.kill()
        holder.join(10)


def _count_call(url: str, name: str) -> None:
    with _raw(url) as raw:
        raw.execute(
            "INSERT INTO test_model_calls VALUES (%s, 1) ON CONFLICT (name) "
            "DO UPDATE SET n = test_model_calls.n + 1",
            (name,),
        )


def _calls(url: str, name: str) -> int:
    with _raw(url) as raw:
        row = raw.execute("SELECT n FROM test_model_calls WHERE name = %s", (name,)).fetchone()
    return 0 if row is None else int(row[0])


def _fleet_worker(
    url: str, table: str, name: str, mode: str, n: int, barrier: Any, results: Any
) -> None:
    # Generous timeouts: this test is about single-flight, and on a loaded 2-core machine a
    # fresh process can miss a short connect timeout, which (by design) degrades to a miss
    # and an extra model call.
    store = PostgresStore(
        url,
        table=table,
        lock_lease=2.0,
        lock_wait=30.0,
        statement_timeout=10.0,
        connect_timeout=10.0,
        lock_connections=4,
    )
    tiered = TieredStore(MemoryStore(), store)

    def handler(call: MockCall) -> str:
        _count_call(url, name)
        time.sleep(0.3)
        return _answer_of(call.prompt or "")

    async def ahandler(call: MockCall) -> str:
        await asyncio.to_thread(_count_call, url, name)
        await asyncio.sleep(0.3)
        return _answer_of(call.prompt or "")

    try:
        if mode == "threads":
            client = CachedClient(MockBackend(handler), tiered)
            store.get("warm-up")  # connect before the start line, not after it
            barrier.wait(60)
            start = threading.Barrier(n)

            def call(_: int) -> str:
                start.wait(30)
                return str(client.generate("the question").content)

            with ThreadPoolExecutor(n) as pool:
                answers = list(pool.map(call, range(n)))
        else:

            async def main() -> list[str]:
                aclient = AsyncCachedClient(AsyncMockBackend(ahandler), tiered)
                try:
                    await store.aget("warm-up")
                    await asyncio.to_thread(barrier.wait, 60)
                    replies = await asyncio.gather(
                        *(aclient.generate("the question") for _ in range(n))
                    )
                    return [str(r.content) for r in replies]
                finally:
                    await store.aclose()

            answers = asyncio.run(main())
        results.extend(answers)
    finally:
        store.close()


def test_four_processes_of_25_concurrent_callers_make_one_call(
    postgres_url: str, pg_table: str
) -> None:
    with _raw(postgres_url) as raw:
        raw.execute(
            "CREATE TABLE IF NOT EXISTS test_model_calls (name text PRIMARY KEY, n int NOT NULL)"
        )
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(4)
        results = manager.list()
        procs = [
            ctx.Process(
                target=_fleet_worker,
                args=(postgres_url, pg_table, pg_table, mode, 25, barrier, results),
            )
            for mode in ["threads", "asyncio", "threads", "asyncio"]
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        assert [p.exitcode for p in procs] == [0, 0, 0, 0]
        assert list(results) == ["answer:the question"] * 100
    assert _calls(postgres_url, pg_table) == 1


def _write_through_decorator(url: str, table: str) -> None:
    with PostgresStore(url, table=table) as store:
        assert _shared(store)("written elsewhere") == "computed:written elsewhere"


def _compute(prompt: str) -> str:
    _COMPUTED.append(prompt)
    return f"computed:{prompt}"


_COMPUTED: list[str] = []


def _shared(store: PostgresStore) -> Any:
    return cached_generate(cache=store)(_compute)


def test_an_entry_written_by_one_process_is_served_to_another(
    postgres_url: str, pg_table: str
) -> None:
    ctx = multiprocessing.get_context("spawn")
    writer = ctx.Process(target=_write_through_decorator, args=(postgres_url, pg_table))
    writer.start()
    writer.join(60)
    assert writer.exitcode == 0
    _COMPUTED.clear()
    with PostgresStore(postgres_url, table=pg_table) as store:
        assert _shared(store)("written elsewhere") == "computed:written elsewhere"
    assert _COMPUTED == [], "the other process's entry was not served"
