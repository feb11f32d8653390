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


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"content": object()}, TypeError, "content"),
        ({"content": b"answer"}, TypeError, "content"),
        ({"content": float("nan")}, ValueError, "content"),
        ({"content": {"score": float("inf")}}, ValueError, "content"),
        ({"content": {1: "not a str key"}}, TypeError, "content"),
        ({"content": "a", "tokens_used": "many"}, TypeError, "tokens_used"),
        ({"content": "a", "tokens_used": 2.5}, TypeError, "tokens_used"),
        ({"content": "a", "tokens_used": True}, TypeError, "tokens_used"),
        ({"content": "a", "tokens_used": -1}, ValueError, "tokens_used"),
    ],
)
def test_set_refuses_what_it_cannot_store_and_stores_nothing(
    tmp_path: Path, kwargs: dict[str, object], error: type[Exception], names: str
) -> None:
    with ResponseCache(persist_path=tmp_path / "cache") as cache:
        with pytest.raises(error, match=names):
            cache.set("p", 0.0, "m", **kwargs)  # type: ignore[arg-type]
        assert cache.get("p", 0.0, "m") is None
        assert cache.stats()["memory_entries"] == 0 and cache.stats()["disk_entries"] == 0


def test_set_request_refuses_an_entry_a_disk_tier_would_drop() -> None:
    from llmcache.keys import Request

    cache = ResponseCache()
    request = Request(model="m", prompt="p")
    with pytest.raises(ValueError, match="content"):
        cache.set_request(request, CachedResponse(content=float("nan")))
    with pytest.raises(TypeError, match="completion_tokens"):
        cache.set_request(request, CachedResponse(content="a", completion_tokens="3"))  # type: ignore[arg-type]
    assert cache.get_request(request) is None


def test_json_content_still_roundtrips(tmp_path: Path) -> None:
    with ResponseCache(persist_path=tmp_path / "cache") as cache:
        cache.set("p", 0.0, "m", {"tasks": [1, 2.5, None, True, "x"]})  # type: ignore[arg-type]
    with ResponseCache(persist_path=tmp_path / "cache") as cache:
        hit = cache.get("p", 0.0, "m")
        assert hit is not None and hit.content == {"tasks": [1, 2.5, None, True, "x"]}


def test_an_empty_persist_path_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="persist_path"):
        ResponseCache(persist_path="")
    assert list(tmp_path.iterdir()) == []  # no cache.db in the working directory
