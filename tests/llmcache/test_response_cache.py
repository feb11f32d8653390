"""The chapter's ResponseCache, on the stores: shapes kept, defects fixed."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from llmcache import CachedResponse, ResponseCache


def test_chapter_shapes() -> None:
    cache = ResponseCache(max_entries=10, ttl_seconds=60)
    assert cache.get("p", 0.0, "m") is None
    cache.set("p", 0.0, "m", "answer", tokens_used=12)
    hit = cache.get("p", 0.0, "m")
    assert hit is not None and hit.content == "answer" and hit.tokens_used == 12
    assert cache.get("p", 0.0, "m", format="json") is None
    assert cache.get("p", 0.2, "m") is None
    stats = cache.stats()
    assert stats["memory_entries"] == 1 and stats["total_hits"] == 1
    cache.clear()
    assert cache.get("p", 0.0, "m") is None


def test_fields_cannot_bleed_into_each_other() -> None:
    cache = ResponseCache()
    cache.set("b|p", 0.0, "a", "one")
    assert cache.get("p", 0.0, "a|b") is None


def test_lru_not_fifo() -> None:
    cache = ResponseCache(max_entries=2)
    cache.set("a", 0.0, "m", "A")
    cache.set("b", 0.0, "m", "B")
    assert cache.get("a", 0.0, "m") is not None  # "a" is now recent
    cache.set("c", 0.0, "m", "C")
    assert cache.get("a", 0.0, "m") is not None
    assert cache.get("b", 0.0, "m") is None


def test_persistence_and_disk_counts(tmp_path: Path) -> None:
    with ResponseCache(persist_path=tmp_path / "cache") as cache:
        cache.set("p", 0.0, "m", "answer")
    with ResponseCache(persist_path=tmp_path / "cache") as cache:
        hit = cache.get("p", 0.0, "m")
        assert hit is not None and hit.content == "answer"
        stats = cache.stats()
        assert stats["disk_entries"] == 1 and stats["memory_entries"] == 1


def test_threads_do_not_corrupt_it() -> None:
    cache = ResponseCache(max_entries=50)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(200):
                cache.set(f"p{i % 80}", 0.0, "m", f"a{i % 80}")
                hit = cache.get(f"p{(i * n) % 80}", 0.0, "m")
                if hit is not None:
                    assert hit.content == f"a{(i * n) % 80}"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert cache.stats()["memory_entries"] <= 50


def test_a_planted_entry_is_a_miss() -> None:
    cache = ResponseCache()
    cache.set("p", 0.0, "m", "real")
    (key,) = cache.store._cache.keys()  # type: ignore[attr-defined]
    cache.store.set(key, CachedResponse(content="planted", fingerprint="deadbeefdeadbeef"))
    assert cache.get("p", 0.0, "m") is None


def test_bad_arguments_name_the_field() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        ResponseCache(max_entries=0)
    with pytest.raises(ValueError, match="ttl"):
        ResponseCache(ttl_seconds=-1)
    with pytest.raises(ValueError, match="temperature"):
        ResponseCache().get("p", float("nan"), "m")
