"""DiskStore on a real diskcache: expiry, persistence across processes, corruption, planted
pickles, failures that degrade to misses."""

from __future__ import annotations

import logging
import multiprocessing
import os
import pathlib
import sqlite3
from pathlib import Path
from typing import Any

import diskcache
import pytest

from llmcache.entry import CachedResponse, JSONCodec
from llmcache.stores import DiskStore


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
    entry = CachedResponse(content={"a": [1, 2.5, None]}, model="m", prompt_tokens=1,
                           completion_tokens=2, tokens_used=3, fingerprint="fp",
                           chunks=["a", "b"], metadata={"k": "v"})
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
def test_a_planted_pickle_is_never_unpickled(tmp_path: Path, size: int,
                                             caplog: pytest.LogCaptureFixture) -> None:
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
        plain._sql("UPDATE Cache SET mode = 2, filename = ?, value = NULL WHERE key = 'k'",
                   ("../victim.txt",))
    with DiskStore(tmp_path / "cache") as store:
        assert store.get("k") is None
        store.clear()
    assert victim.read_text() == "keep me"


# --- failures degrade to misses -------------------------------------------------------------


def test_a_garbage_database_is_moved_aside_at_open(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
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


@pytest.mark.parametrize("error", [sqlite3.OperationalError("database or disk is full"),
                                   sqlite3.OperationalError("attempt to write a readonly database"),
                                   OSError(28, "No space left on device"), diskcache.Timeout()])
def test_set_and_get_failures_are_counted_logged_once_never_raised(
        store: DiskStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        error: Exception) -> None:
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
        target=_child_reads_without_closing, args=(str(tmp_path),))
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
