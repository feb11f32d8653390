"""EmbeddingCache: scoping, persistence, one-query batches, TTL, bounds, corruption, safety."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from llmcache import embeddings as emb_mod
from llmcache.embeddings import EmbeddingCache, as_vector
from llmcache.keys import KEY_VERSION


def _vec(i: int, dim: int = 4) -> list[float]:
    return [float(i + k) for k in range(dim)]


def test_memory_get_set_and_model_scope() -> None:
    c = EmbeddingCache()
    c.set("hello", "m1", [1.0, 2.0])
    got = c.get("hello", "m1")
    assert got is not None and got.dtype == np.float32 and got.tolist() == [1.0, 2.0]
    assert c.get("hello", "m2") is None
    assert c.get("hello!", "m1") is None


def test_keys_are_unambiguous() -> None:
    # The chapter's f"{model}|{text}" made these collide.
    assert EmbeddingCache.make_key("b|c", "a") != EmbeddingCache.make_key("c", "a|b")
    assert EmbeddingCache.make_key("t", "m").startswith(f"v{KEY_VERSION}:")


def test_returned_arrays_are_read_only_and_not_aliased() -> None:
    c = EmbeddingCache()
    source = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    c.set("t", "m", source)
    source[0] = 99.0  # the caller's array is copied on set
    got = c.get("t", "m")
    assert got is not None and got[0] == 1.0
    with pytest.raises(ValueError):
        got[0] = 5.0
    with pytest.raises(ValueError):
        got.setflags(write=True)
    again = c.get("t", "m")
    assert again is not None and again.tolist() == [1.0, 2.0, 3.0]


def test_read_only_after_reload_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    with EmbeddingCache(path) as c:
        c.set("t", "m", [1.0, 2.0])
    with EmbeddingCache(path) as c:
        got = c.get("t", "m")
        assert got is not None and not got.flags.writeable
        with pytest.raises(ValueError):
            got.setflags(write=True)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ([[1.0, 2.0]], "1-D"),
        ([], "empty"),
        ([1.0, float("nan")], "NaN"),
        ([1.0, float("inf")], "NaN or infinite"),
        ([1e300], "NaN or infinite"),  # overflows float32
        (["a", "b"], "numbers"),
        ([True, False], "numbers"),
        ({"x": 1}, "numbers"),
    ],
)
def test_invalid_vectors_rejected(bad: object, match: str) -> None:
    c = EmbeddingCache()
    with pytest.raises(ValueError, match=f"vector: .*{match}"):
        c.set("t", "m", bad)
    with pytest.raises(ValueError, match=r"embeddings\['u'\]"):
        c.set_batch({"ok": [1.0], "u": bad}, "m")
    assert len(c) == 0  # validated before anything is stored


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        EmbeddingCache(max_entries=0)
    with pytest.raises(ValueError, match="ttl_seconds"):
        EmbeddingCache(ttl_seconds=0)
    c = EmbeddingCache()
    with pytest.raises(ValueError, match="model"):
        c.get("t", "")
    with pytest.raises(TypeError, match="text"):
        c.get(b"t", "m")  # type: ignore[arg-type]


def test_persistence_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "emb.db"
    with EmbeddingCache(path) as c:
        c.set_batch({f"t{i}": _vec(i) for i in range(20)}, "m")
        c.set("solo", "other", [0.5])
    with EmbeddingCache(path) as c:
        assert len(c) == 0  # nothing in memory yet: everything comes from the file
        found = c.get_batch([f"t{i}" for i in range(20)] + ["nope"], "m")
        for i in range(20):
            v = found[f"t{i}"]
            assert v is not None and v.tolist() == _vec(i)
        assert found["nope"] is None
        solo = c.get("solo", "other")
        assert solo is not None and solo.tolist() == [0.5]
        assert c.stats()["persisted_entries"] == 21
        counters = c.counters()
        assert counters["disk_hits"] == 21 and counters["misses"] == 1


def test_get_batch_uses_one_query(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    texts = [f"text {i}" for i in range(300)]
    with EmbeddingCache(path) as c:
        c.set_batch({t: _vec(i) for i, t in enumerate(texts)}, "m")
    with EmbeddingCache(path) as c:
        c.get("text 0", "m")  # one in memory: it must not be asked from the database
        statements: list[str] = []
        assert c._db is not None
        c._db.set_trace_callback(statements.append)
        found = c.get_batch(texts + ["missing"], "m")
        selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        assert len(selects) == 1
        assert EmbeddingCache.make_key("text 0", "m") not in selects[0]  # served from memory
        assert all(found[t] is not None for t in texts)
        statements.clear()
        c.get_batch(texts, "m")  # now all in memory: no query at all
        assert statements == []


def test_get_batch_chunks_large_requests(tmp_path: Path) -> None:
    with EmbeddingCache(tmp_path / "e.db") as c:
        statements: list[str] = []
        assert c._db is not None
        c._db.set_trace_callback(statements.append)
        c.get_batch([f"t{i}" for i in range(1200)], "m")
        assert len([s for s in statements if s.startswith("SELECT")]) == 3


def test_set_batch_is_one_transaction(tmp_path: Path) -> None:
    with EmbeddingCache(tmp_path / "e.db") as c:
        statements: list[str] = []
        assert c._db is not None
        c._db.set_trace_callback(statements.append)
        c.set_batch({f"t{i}": _vec(i) for i in range(50)}, "m")
        assert statements.count("BEGIN IMMEDIATE") == 1
        assert statements.count("COMMIT") == 1


def test_ttl_on_memory_and_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_000_000.0]
    monkeypatch.setattr(emb_mod.time, "time", lambda: now[0])
    path = tmp_path / "e.db"
    with EmbeddingCache(path, ttl_seconds=60) as c:
        c.set("t", "m", [1.0])
        now[0] += 30
        assert c.get("t", "m") is not None
        now[0] += 31
        assert c.get("t", "m") is None
    now[0] = 1_000_000.0 + 30
    with EmbeddingCache(path, ttl_seconds=60) as c:
        assert c.get("t", "m") is not None  # from disk, not yet expired
    now[0] += 31
    with EmbeddingCache(path, ttl_seconds=60) as c:
        assert c.get("t", "m") is None
        c.sweep()
        assert c.stats()["persisted_entries"] == 0  # expired rows are deleted


def test_memory_is_bounded_lru() -> None:
    c = EmbeddingCache(max_entries=3)
    for t in "abc":
        c.set(t, "m", [1.0])
    assert c.get("a", "m") is not None  # touch a: b is now least recently used
    c.set("d", "m", [1.0])
    assert len(c) == 3
    assert c.get("b", "m") is None
    assert all(c.get(t, "m") is not None for t in "acd")


def test_disk_is_trimmed_to_max_entries(tmp_path: Path) -> None:
    with EmbeddingCache(tmp_path / "e.db", max_entries=10) as c:
        c.set_batch({f"t{i}": [float(i)] for i in range(25)}, "m")
        c.sweep()
        assert c.stats()["persisted_entries"] == 10


def test_writes_sweep_periodically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emb_mod, "_SWEEP_EVERY", 5)
    with EmbeddingCache(tmp_path / "e.db", max_entries=4) as c:
        for i in range(5):
            c.set(f"t{i}", "m", [float(i)])
        assert c.stats()["persisted_entries"] <= 4


def test_corrupt_file_is_moved_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "e.db"
    path.write_bytes(b"this is not a sqlite database at all" * 100)
    with caplog.at_level(logging.WARNING, logger="llmcache.embeddings"):
        c = EmbeddingCache(path)
    assert "unreadable" in caplog.text
    asides = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len(asides) == 1 and asides[0].read_bytes().startswith(b"this is not")
    c.set("t", "m", [1.0])
    c.close()
    with EmbeddingCache(path) as c2:
        assert c2.get("t", "m") is not None


def test_failing_disk_degrades_to_memory(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    c = EmbeddingCache(tmp_path / "e.db")

    class Broken:
        def execute(self, *args: object) -> None:
            raise sqlite3.OperationalError("disk I/O error")

        executemany = execute

        def close(self) -> None:
            pass

    real = c._db
    c._db = Broken()  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING, logger="llmcache.embeddings"):
        c.set("t", "m", [1.0])  # memory still gets it
        assert c.get("t", "m") is not None
        assert c.get("u", "m") is None
        c.set("u", "m", [2.0])
    assert c.counters()["errors"] >= 2
    assert caplog.text.count("continuing from memory") == 1  # logged once
    c._db = real
    c.close()


def test_clear_and_close(tmp_path: Path) -> None:
    c = EmbeddingCache(tmp_path / "e.db")
    c.set("t", "m", [1.0])
    c.clear()
    assert c.get("t", "m") is None and c.stats()["persisted_entries"] == 0
    c.close()
    c.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        c.get("t", "m")


def test_threads_share_one_cache(tmp_path: Path) -> None:
    c = EmbeddingCache(tmp_path / "e.db", max_entries=50)
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def work(n: int) -> None:
        try:
            barrier.wait()
            for i in range(100):
                key = f"t{(n * 7 + i) % 80}"
                c.set(key, "m", [float(i), float(n)])
                got = c.get_batch([key, f"t{i % 80}"], "m")
                assert got[key] is not None
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    assert len(c) <= 50
    c.close()


def test_as_vector_copies() -> None:
    src = np.arange(3, dtype=np.float32)
    v = as_vector(src)
    assert not np.shares_memory(v, src)
    assert v.dtype == np.float32 and v.ndim == 1


def test_stats_shape() -> None:
    c = EmbeddingCache(max_entries=5, ttl_seconds=10)
    c.set("a", "m", [1.0])
    c.get("a", "m")
    c.get("b", "m")
    s = c.stats()
    assert s["hits"] == 1 and s["misses"] == 1 and s["hit_rate"] == 50.0
    assert s["memory_entries"] == 1 and s["persisted_entries"] == 0
    assert s["max_entries"] == 5 and s["ttl_seconds"] == 10.0 and s["persist_path"] is None
    assert time.time() > 0
