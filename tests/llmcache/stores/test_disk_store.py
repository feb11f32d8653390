"""DiskStore on a real diskcache: expiry, persistence across processes, corruption, planted
pickles, failures that degrade to misses."""

from __future__ import annotations

import logging
import multiprocessing
import os
import pathlib
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import diskcache
import pytest

from llmcache.entry import CachedResponse, JSONCodec
from llmcache.errors import StoreError
from llmcache.stores import DiskStore
from llmcache.stores.disk import DiskReader


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with DiskStore(tmp_path / "cache") as opened:
        yield opened


def test_roundtrip_keeps_every_field(store: DiskStore) -> None:
    entry = CachedResponse(
        content={"a": [1, 2.5, None]},
        model="m",
        prompt_tokens=1,
        completion_tokens=2,
        tokens_used=3,
        fingerprint="fp",
        chunks=["a", "b"],
        metadata={"k": "v"},
    )
    store.set("k", entry, ttl=60)
    got = store.get("k")
    assert got is not None
    assert got.expires_at is not None
    assert got == entry.with_ttl(60, got.expires_at - 60)


def test_a_large_entry_lives_in_a_file_and_goes_with_it(store: DiskStore) -> None:
    store.set("big", CachedResponse(content="x" * 100_000))
    got = store.get("big")
    assert got is not None and len(got.content) == 100_000
    assert len(list(store.path.glob("*/*/*.val"))) == 1
    assert store.delete("big") is True
    assert list(store.path.glob("*/*/*.val")) == []


def test_values_are_codec_bytes_not_pickles(store: DiskStore) -> None:
    store.set("k", CachedResponse(content="v"))
    with diskcache.Cache(str(store.path)) as plain:
        raw = plain.get("k")
    assert isinstance(raw, bytes) and raw.startswith(JSONCodec.MAGIC)


def test_expiry_follows_the_injected_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    with DiskStore(tmp_path, clock=clock, default_ttl=30) as store:
        store.set("default", CachedResponse(content="a"))
        store.set("long", CachedResponse(content="b"), ttl=300)
        store.set("never", CachedResponse(content="c"), ttl=None)
        clock.now += 30
        assert store.get("default") is None
        assert store.get("long") is not None
        clock.now += 10_000
        assert store.get("long") is None
        # default_ttl applies to ttl=None too: "never" means "use the store default".
        assert store.get("never") is None
        stats = store.stats()
        assert (stats["expirations"], stats["entries"]) == (3, 0)


def test_delete_clear_len_keys(store: DiskStore) -> None:
    for key in "abc":
        store.set(key, CachedResponse(content=key))
    assert len(store) == 3
    assert sorted(store.keys()) == ["a", "b", "c"]
    assert store.delete("a") is True
    assert store.delete("a") is False
    store.clear()
    assert len(store) == 0 and store.keys() == []
    stats = store.stats()
    assert (stats["sets"], stats["deletes"]) == (3, 1)


def test_get_many_uses_one_transaction(store: DiskStore, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in "abc":
        store.set(key, CachedResponse(content=key))
    cache = store._cache
    calls = []
    real = cache.transact

    def counting_transact(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(cache, "transact", counting_transact)
    found = store.get_many(["a", "b", "zz", "c", "a"])
    assert {k: v.content for k, v in found.items()} == {"a": "a", "b": "b", "c": "c"}
    assert len(calls) == 1


def test_lru_by_access_store_reads_through_the_public_api(tmp_path: Path) -> None:
    with DiskStore(tmp_path, lru_by_access=True) as store:
        store.set("k", CachedResponse(content="v"))
        got = store.get("k")
        assert got is not None and got.content == "v"
        assert store.get("missing") is None
        assert store.stats()["lru_by_access"] is True


def test_size_limit_keeps_the_volume_bounded(tmp_path: Path) -> None:
    limit = 256 * 1024
    with DiskStore(tmp_path, size_limit=limit) as store:
        for i in range(1500):  # 3 MB written into a 256 KB cache
            store.set(str(i), CachedResponse(content="x" * 2000))
        stats = store.stats()
        assert stats["volume"] <= 2 * limit
        assert 0 < stats["entries"] < 1500
        assert store.get("1499") is not None  # the newest survive, the oldest go
        assert store.get("0") is None


def test_stats_persist_across_instances(tmp_path: Path) -> None:
    with DiskStore(tmp_path) as store:
        store.set("k", CachedResponse(content="v"))
        for _ in range(5):
            store.get("k")
        store.get("missing")
    with DiskStore(tmp_path) as again:
        stats = again.stats()
        assert (stats["hits"], stats["misses"], stats["sets"]) == (5, 1, 1)
        assert stats["this_process"]["hits"] == 0
        assert len(again) == 1  # the counters are not entries
        again.reset_stats()
        assert again.stats()["hits"] == 0


def test_close_is_idempotent_and_use_after_close_raises(tmp_path: Path) -> None:
    store = DiskStore(tmp_path)
    store.close()
    store.close()
    with pytest.raises(RuntimeError):
        store.get("k")
    with pytest.raises(RuntimeError):
        len(store)


def test_misuse_raises(store: DiskStore) -> None:
    with pytest.raises(ValueError):
        store.set("k", CachedResponse(content="v"), ttl=-1)
    with pytest.raises(TypeError):
        store.get(b"k")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.set("k", CachedResponse(content=object()))


# --- untrusted contents ---------------------------------------------------------------------


class _Planted:
    """Pickles to a call that creates `marker` when unpickled (the attack under test)."""

    def __init__(self, marker: Path, size: int = 10) -> None:
        self.marker, self.size = marker, size

    def __reduce__(self) -> Any:
        return (pathlib.Path.write_text, (self.marker, "pwned" * self.size))


@pytest.mark.parametrize("size", [10, 20_000], ids=["inline", "file-backed"])
def test_a_planted_pickle_is_never_unpickled(
    tmp_path: Path, size: int, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "pwned"
    with diskcache.Cache(str(tmp_path / "cache")) as plain:
        plain.set("k", _Planted(marker, size))  # another client, pickling as diskcache does
    with DiskStore(tmp_path / "cache") as store:
        with caplog.at_level(logging.WARNING):
            assert store.get("k") is None
            assert store.get_many(["k"]) == {}
        assert not marker.exists()
        assert store.stats()["errors"] == 1  # the bad entry was deleted after the first read
        assert "k" not in store.keys()
    assert any("unpickle" in r.getMessage() for r in caplog.records)
    assert not marker.exists()


def test_a_planted_pickled_key_is_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with diskcache.Cache(str(tmp_path / "cache")) as plain:
        plain.set(_Planted(marker), b"x")  # not a str key, so diskcache pickles the key
        plain.set("ok", b"x")
    with DiskStore(tmp_path / "cache") as store:
        assert store.keys() == ["ok"]
    assert not marker.exists()


@pytest.mark.parametrize("value", [b"not an entry", 42, "text", b"LMC1{broken"])
def test_foreign_values_are_misses_and_get_deleted(tmp_path: Path, value: object) -> None:
    with diskcache.Cache(str(tmp_path)) as plain:
        plain.set("k", value)
    with DiskStore(tmp_path) as store:
        assert store.get("k") is None
        assert len(store) == 0
        assert store.stats()["errors"] == 1


def test_a_planted_file_path_is_neither_read_nor_deleted(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    with diskcache.Cache(str(tmp_path / "cache")) as plain:
        plain.set("k", b"x" * 100)
        # Point the row at a file outside the cache directory, as a hostile writer could.
        plain._sql(
            "UPDATE Cache SET mode = 2, filename = ?, value = NULL WHERE key = 'k'",
            ("../victim.txt",),
        )
    with DiskStore(tmp_path / "cache") as store:
        assert store.get("k") is None
        store.clear()
    assert victim.read_text() == "keep me"


# --- failures degrade to misses -------------------------------------------------------------


def test_a_garbage_database_is_moved_aside_at_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with DiskStore(tmp_path) as store:
        store.set("k", CachedResponse(content="v"))
    (tmp_path / "cache.db").write_bytes(os.urandom(64 * 1024))
    with caplog.at_level(logging.WARNING, logger="llmcache.stores.disk"):
        store = DiskStore(tmp_path)
    with store:
        assert store.get("k") is None
        store.set("k2", CachedResponse(content="fresh"))
        got = store.get("k2")
        assert got is not None and got.content == "fresh"
    [record] = [r for r in caplog.records if "corrupt" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert list(tmp_path.glob("cache.db.corrupt-*"))


def test_corruption_while_open_never_raises(tmp_path: Path) -> None:
    store = DiskStore(tmp_path)
    store.set("k", CachedResponse(content="v"))
    (tmp_path / "cache.db").write_bytes(os.urandom(64 * 1024))
    store.get("k")
    store.set("k2", CachedResponse(content="v"))
    store.get_many(["k", "k2"])
    store.delete("k")
    store.keys()
    len(store)
    assert store.stats()["errors"] >= 1
    store.close()


@pytest.mark.parametrize(
    "error",
    [
        sqlite3.OperationalError("database or disk is full"),
        sqlite3.OperationalError("attempt to write a readonly database"),
        OSError(28, "No space left on device"),
        diskcache.Timeout(),
    ],
)
def test_set_and_get_failures_are_counted_logged_once_never_raised(
    store: DiskStore,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(store._cache, "set", fail)
    monkeypatch.setattr(store, "_read", fail)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            store.set("k", CachedResponse(content="v"))
            assert store.get("k") is None
    stats = store.stats()
    assert (stats["errors"], stats["sets"], stats["misses"]) == (6, 0, 3)
    assert len([r for r in caplog.records if "set failed" in r.getMessage()]) == 1
    assert len([r for r in caplog.records if "get failed" in r.getMessage()]) == 1


# --- several processes ----------------------------------------------------------------------


def _child_reads_and_writes(path: str) -> str | None:
    with DiskStore(path) as store:
        seen = store.get("from-parent")
        for _ in range(9):
            store.get("from-parent")
        store.set("from-child", CachedResponse(content=f"pid {os.getpid()}"))
        return None if seen is None else seen.content


def _child_stats(path: str) -> dict[str, Any]:
    return DiskStore(path).stats()


def test_processes_share_entries_and_hit_counts(tmp_path: Path) -> None:
    path = str(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2, maxtasksperchild=1) as pool:  # every task in a fresh process
        with DiskStore(path) as store:
            store.set("from-parent", CachedResponse(content="hello"))
            store.get("from-parent")
            assert pool.apply(_child_reads_and_writes, (path,)) == "hello"
            got = store.get("from-child")
            assert got is not None and got.content.startswith("pid ")
        # Both earlier processes are done (the parent's store closed, which flushes).
        stats = pool.apply(_child_stats, (path,))
    assert stats["hits"] == 1 + 10 + 1
    assert stats["sets"] == 2
    assert stats["this_process"]["hits"] == 0
    assert stats["entries"] == 2


def _child_writes_many(path: str, prefix: str) -> None:
    with DiskStore(path) as store:
        for i in range(50):
            store.set(f"{prefix}{i}", CachedResponse(content=prefix))


def test_concurrent_writers_in_two_processes(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        pool.starmap(_child_writes_many, [(str(tmp_path), "a"), (str(tmp_path), "b")])
    with DiskStore(tmp_path) as store:
        assert len(store) == 100
        assert store.stats()["errors"] == 0
        found = store.get_many([f"{p}{i}" for p in "ab" for i in range(50)])
        assert len(found) == 100


def test_expiry_boundary_is_exact(tmp_path: Path) -> None:
    clock = FakeClock()
    with DiskStore(tmp_path, clock=clock) as store:
        store.set("k", CachedResponse(content="v"), ttl=30)
        clock.now = 1029.999
        assert store.get("k") is not None
        clock.now = 1030.0
        assert store.get("k") is None


def _child_reads_without_closing(path: str) -> None:
    store = DiskStore(path)  # never closed: the counts are flushed at interpreter exit
    for _ in range(4):
        store.get("k")


def test_counts_of_a_process_that_never_closes_are_flushed_at_exit(tmp_path: Path) -> None:
    with DiskStore(tmp_path) as store:
        store.set("k", CachedResponse(content="v"))
    child = multiprocessing.get_context("spawn").Process(
        target=_child_reads_without_closing, args=(str(tmp_path),)
    )
    child.start()
    child.join(60)
    assert child.exitcode == 0
    with DiskStore(tmp_path) as store:
        assert store.stats()["hits"] == 4


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork of a threaded process
def test_a_forked_child_counts_only_its_own_hits(tmp_path: Path) -> None:
    with DiskStore(tmp_path) as store:
        store.set("k", CachedResponse(content="v"))
        for _ in range(3):
            assert store.get("k") is not None  # not flushed yet when the fork happens
        parent_connection = store._tls.con
        pid = os.fork()
        if pid == 0:  # the child: reads through its own connection, then leaves at once
            code = 0
            try:
                code = 0 if store.get("k") is not None else 1
                if store._tls.con is parent_connection:  # sqlite forbids sharing it
                    code = 3
                store.set("from-child", CachedResponse(content="c"))
                store.close()
            except BaseException:  # reported through the exit code only
                code = 2
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert store.get("from-child") is not None
        stats = store.stats()
    assert (stats["hits"], stats["sets"]) == (3 + 1 + 1, 2)


def test_threads_share_one_store(tmp_path: Path) -> None:
    import threading

    errors: list[BaseException] = []
    with DiskStore(tmp_path) as store:

        def work(n: int) -> None:
            try:
                for i in range(100):
                    key = f"k{(n * 7 + i) % 20}"
                    store.set(key, CachedResponse(content=key))
                    got = store.get(key)
                    assert got is None or got.content == key
                    store.get_many([key, "k1"])
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        stats = store.stats()
        assert stats["errors"] == 0 and stats["sets"] == 400 and len(store) == 20


class CountingCodec(JSONCodec):
    """A codec of the caller's own: the store must use it, not its JSON fast path."""

    def __init__(self) -> None:
        self.decoded = 0

    def decode(self, data: bytes) -> CachedResponse:
        self.decoded += 1
        return super().decode(data)


def test_a_custom_codec_is_used_for_reading(tmp_path: Path) -> None:
    codec = CountingCodec()
    with DiskStore(tmp_path, codec=codec) as store:
        store.set("k", CachedResponse(content="v"))
        got = store.get("k")
        assert got is not None and got.content == "v"
    assert codec.decoded == 1


@pytest.mark.parametrize("content", ["text", {"a": [1, 2.5]}, [1, "x"], 3, 2.5, True, None])
def test_every_json_content_type_roundtrips(store: DiskStore, content: object) -> None:
    store.set("k", CachedResponse(content=content, chunks=["a"], expires_at=None))
    got = store.get("k")
    assert got is not None and got.content == content and got.chunks == ["a"]


# --- a tier that cannot open, corruption anywhere, operations that did not happen ----------


def _filled(path: Path, n: int = 20) -> Path:
    with DiskStore(path) as store:
        for i in range(n):
            store.set(f"k{i}", CachedResponse(content=f"v{i}" * 200))
    return path


def _copies(directory: Path) -> list[Path]:
    """The copies of recovered databases in `directory` (without their -wal files)."""
    return [
        p for p in directory.glob("cache.db.corrupt-*") if not p.name.endswith(("-wal", "-shm"))
    ]


def _corrupt_the_entries(db: Path) -> None:
    """Random bytes over every page from the Cache table's root on: the header, the schema
    and the Settings table (pages 1-4, read at open) stay intact, so the database opens and
    fails on use, as a database damaged in the middle does."""
    size = db.stat().st_size
    with db.open("r+b") as f:
        f.seek(4 * 4096)
        f.write(random.Random(13).randbytes(size - 4 * 4096))


def test_an_empty_path_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="path"):
        DiskStore("")
    assert list(tmp_path.iterdir()) == []  # no cache.db in the working directory


def test_a_path_that_is_a_file_is_a_miss_only_tier(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "not-a-dir"
    path.write_text("a file")
    with caplog.at_level(logging.WARNING, logger="llmcache.stores.disk"):
        store = DiskStore(path)
        with store:
            assert store.available is False
            for _ in range(3):
                store.set("k", CachedResponse(content="v"))
                assert store.get("k") is None
            assert store.get_many(["k"]) == {} and len(store) == 0 and store.keys() == []
            stats = store.stats()
            assert stats["errors"] >= 1 and stats["sets"] == 0 and stats["misses"] == 3
    assert path.read_text() == "a file"
    logged = [r for r in caplog.records if str(path) in r.getMessage()]
    assert len(logged) == 1 and "open" in logged[0].getMessage()


def test_strict_raises_a_store_error_with_the_cause(tmp_path: Path) -> None:
    path = tmp_path / "not-a-dir"
    path.write_text("a file")
    with pytest.raises(StoreError, match="not-a-dir") as info:
        DiskStore(path, strict=True)
    assert isinstance(info.value.__cause__, (sqlite3.Error, OSError))
    assert info.value.operation == "open"


def test_an_unavailable_tier_retries_opening_after_retry_after(tmp_path: Path) -> None:
    path = tmp_path / "later"
    path.write_text("a file for now")
    with DiskStore(path, retry_after=3600) as patient, DiskStore(path, retry_after=0.01) as eager:
        path.unlink()  # the operator fixes the mistake
        time.sleep(0.02)  # past eager's retry_after: its next call reopens
        for store in (patient, eager):
            store.set("k", CachedResponse(content="v"))
        assert patient.available is False and patient.get("k") is None
        assert eager.available is True
        got = eager.get("k")
        assert got is not None and got.content == "v"


def test_delete_and_clear_under_lock_contention_raise(tmp_path: Path) -> None:
    with DiskStore(_filled(tmp_path), timeout=0.05) as store:
        holder = sqlite3.connect(tmp_path / "cache.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            with pytest.raises(StoreError, match="delete") as deleted:
                store.delete("k1")
            assert deleted.value.operation == "delete"
            with pytest.raises(StoreError, match="clear"):
                store.clear()
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert store.get("k1") is not None  # nothing was deleted
        assert store.delete("k1") is True
        assert store.delete("k1") is False
        store.clear()
        assert len(store) == 0


def test_delete_and_clear_on_an_unavailable_tier_raise(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    with DiskStore(path) as store:
        with pytest.raises(StoreError):
            store.delete("k")
        with pytest.raises(StoreError):
            store.clear()


def test_a_database_corrupt_in_the_middle_is_recovered_and_started_empty(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _corrupt_the_entries(_filled(tmp_path) / "cache.db")
    with caplog.at_level(logging.WARNING, logger="llmcache.stores.disk"):
        with DiskStore(tmp_path) as store:
            assert store.recovered == []  # it opens: the damage is met on use
            assert store.get("k1") is None
            store.set("fresh", CachedResponse(content="new"))
            got = store.get("fresh")
            assert got is not None and got.content == "new"
            assert store.delete("fresh") is True
            assert store.stats()["recoveries"] == 1
            [aside] = store.recovered
    assert aside.parent == tmp_path and aside.name.startswith("cache.db.corrupt-")
    assert _copies(tmp_path) == [aside]
    assert DiskStore.check_database(tmp_path) is None
    assert DiskStore.check_database(aside.parent / aside.name) is not None
    warnings = [r.getMessage() for r in caplog.records if "corrupt" in r.getMessage()]
    assert len(warnings) == 1 and str(aside) in warnings[0]


def test_two_stores_on_one_corrupt_database_recover_it_once(tmp_path: Path) -> None:
    _filled(tmp_path)
    with DiskStore(tmp_path) as store:  # open on the sound file, as another process would be
        assert store.get("k3") is not None
        _corrupt_the_entries(tmp_path / "cache.db")
        with DiskStore(tmp_path) as other:
            assert other.get("k3") is None  # meets the damage first and recovers
            got = store.get("k4")
            assert got is None or got.content == "v4" * 200  # never another entry's value
            store.set("after", CachedResponse(content="a"))
            got = other.get("after")
            assert got is not None and got.content == "a"  # one database for both
            assert len(other.recovered) == 1 and store.recovered == []
            assert other.stats()["recoveries"] == 1
    assert len(_copies(tmp_path)) == 1


def test_a_store_follows_a_database_renamed_aside_by_another(tmp_path: Path) -> None:
    _filled(tmp_path)
    with DiskStore(tmp_path) as store:
        assert store.get("k1") is not None
        with (tmp_path / "cache.db").open("r+b") as f:
            f.write(os.urandom(100))  # the header destroyed: sqlite can no longer write it
        with DiskStore(tmp_path) as other:  # renames it aside at open, starts a new file
            assert len(other.recovered) == 1
            got = store.get("k2")
            assert got is None or got.content == "v2" * 200
            store.set("after", CachedResponse(content="a"))
            got = other.get("after")
            assert got is not None and got.content == "a"


def test_threads_meeting_corruption_recover_once(tmp_path: Path) -> None:
    import threading

    _corrupt_the_entries(_filled(tmp_path, n=60) / "cache.db")
    errors: list[BaseException] = []
    with DiskStore(tmp_path) as store:
        barrier = threading.Barrier(8)

        def work(n: int) -> None:
            try:
                barrier.wait()
                for i in range(30):
                    got = store.get(f"k{(n + i) % 60}")
                    assert got is None or got.content == f"v{(n + i) % 60}" * 200
                    store.set(f"t{n}-{i}", CachedResponse(content=f"{n}-{i}"))
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert store.stats()["recoveries"] == 1
        store.set("after", CachedResponse(content="a"))  # (the threads may all have
        got = store.get("after")  # finished while the recovery ran)
        assert got is not None and got.content == "a"
    assert len(_copies(tmp_path)) == 1


@pytest.mark.timeout(10)  # before: each key's recovery waited for this thread's own lock
def test_get_many_meeting_corruption_recovers_after_its_transaction(tmp_path: Path) -> None:
    _corrupt_the_entries(_filled(tmp_path) / "cache.db")
    with DiskStore(tmp_path) as store:
        assert store.get_many([f"k{i}" for i in range(20)]) == {}
        assert store.stats()["recoveries"] == 1
        store.set("k1", CachedResponse(content="fresh"))
        assert {k: v.content for k, v in store.get_many(["k1", "k2"]).items()} == {"k1": "fresh"}


def test_a_corrupt_stats_database_is_recovered_too(tmp_path: Path) -> None:
    _filled(tmp_path)
    _corrupt_the_entries(tmp_path / ".llmcache-stats" / "cache.db")
    with DiskStore(tmp_path) as store:
        for _ in range(3):
            assert store.get("k1") is not None
            store.stats()  # flushes this process's counts
        assert store.stats()["hits"] == 3  # counted and persisted again
    with DiskStore(tmp_path) as store:
        assert store.stats()["hits"] == 3
    assert len(_copies(tmp_path / ".llmcache-stats")) == 1


# --- call counts of the doors, entry hits, repairs (what `llmcache` shows and does) -----------


def test_a_doors_call_counts_are_added_as_they_grow_and_after_a_reset(tmp_path: Path) -> None:
    counts = {"hits": 0, "misses": 0, "bypasses": 0}
    with DiskStore(tmp_path) as store:
        store.count_calls_from(lambda: counts)
        counts.update(hits=3, misses=2)
        assert store.stats()["calls"]["hits"] == 3  # pulled at the flush stats() makes
        counts.update(hits=5, bypasses=1)
        calls = store.stats()["calls"]
        assert (calls["hits"], calls["misses"], calls["bypasses"]) == (5, 2, 1)
        counts.update(hits=1, misses=0, bypasses=0)  # the door's counters were reset
        assert store.stats()["calls"]["hits"] == 6
        assert store.stats()["hits"] == 0  # the store's reads are another figure
    with DiskStore(tmp_path) as again:  # persisted
        assert (again.stats()["calls"]["hits"], again.stats()["calls"]["misses"]) == (6, 2)


def test_a_failing_door_source_is_logged_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> dict[str, int]:
        raise RuntimeError("door gone")

    with DiskStore(tmp_path) as store:
        store.count_calls_from(broken)
        store.count_calls_from(lambda: {"misses": 2, "hits": "many", "coalesced": 1.5})
        store.set("k", CachedResponse(content="v"))
        with caplog.at_level(logging.WARNING):
            calls = store.stats()["calls"]
        assert (calls["misses"], calls["hits"], calls["coalesced"]) == (2, 0, 0)
        assert store.get("k") is not None
    assert "door gone" in caplog.text
    with pytest.raises(TypeError, match="callable"):
        DiskStore(tmp_path).count_calls_from({"hits": 1})  # type: ignore[arg-type]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork of a threaded process
def test_a_forked_child_counts_only_the_calls_it_made(tmp_path: Path) -> None:
    counts = {"hits": 0, "misses": 0}
    with DiskStore(tmp_path) as store:
        store.count_calls_from(lambda: counts)
        counts.update(hits=3, misses=1)  # not pulled yet when the fork happens
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                counts["hits"] += 2  # the child's own calls
                store.close()
            except BaseException:
                code = 2
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        calls = store.stats()["calls"]
    assert (calls["hits"], calls["misses"]) == (3 + 2, 1)


def test_delete_damaged_deletes_only_what_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "pwned"
    with diskcache.Cache(str(tmp_path / "cache")) as plain:
        plain.set("planted", _Planted(marker))
        plain.set("foreign", b"not an entry")
        plain.set("later-fixed", b"not an entry either")
    with DiskStore(tmp_path / "cache") as store:
        store.set("sound", CachedResponse(content="v" * 40_000))  # in a value file
        with DiskReader(tmp_path / "cache") as reader:
            found = list(reader.damaged())
        assert sorted(d.key for d in found) == ["foreign", "later-fixed", "planted"]
        # Another process rewrites one of them between the scan and the delete.
        store.set("later-fixed", CachedResponse(content="fixed"))
        monkeypatch.setattr(DiskReader, "damaged", lambda self: iter(found))
        deleted = store.delete_damaged()
        assert sorted(d.key for d in deleted) == ["foreign", "planted"]
        assert sorted(store.keys()) == ["later-fixed", "sound"]
        sound = store.get("sound")
        assert sound is not None and sound.content == "v" * 40_000
        assert store.stats()["deletes"] == 2
    assert not marker.exists()


def test_recover_statistics_copies_them_aside_and_counts_from_zero(tmp_path: Path) -> None:
    _filled(tmp_path)
    with DiskStore(tmp_path) as store:
        for i in range(300):
            store.get(f"none{i}")
            store.set(f"e{i}", CachedResponse(content="e"))
    _corrupt_the_entries(tmp_path / ".llmcache-stats" / "cache.db")
    with DiskReader(tmp_path) as reader:
        assert reader.check_statistics() is not None
    with DiskStore(tmp_path) as store:
        aside = store.recover_statistics("found by a test")
        assert aside is not None and aside.exists()
        assert store.stats()["misses"] == 0
        store.get("k1")
    with DiskReader(tmp_path) as reader:
        assert reader.check_statistics() is None
        assert reader.counters()["hits"] == 1
        assert reader.counters()["since"] is not None
