"""A persisted SemanticCache: entries in a DiskStore, indexes saved beside, rebuilt when lost."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from llmcache.keys import Request
from llmcache.stores.disk import DiskStore
from llmcache.vector.embedders import HashingEmbedder, Matrix
from llmcache.vector.semantic import SemanticCache


class CountingEmbedder(HashingEmbedder):
    def __init__(self, dim: int = 64, seed: int = 0) -> None:
        super().__init__(dim=dim, seed=seed)
        self.texts: list[str] = []

    def embed(self, texts: Any) -> Matrix:
        self.texts.extend(texts)
        return super().embed(texts)


def req(prompt: str, **kw: Any) -> Request:
    return Request(model="m", prompt=prompt, **kw)


QUESTIONS = [
    "How do I reverse a list in Python?",
    "How do I sort a dict by value?",
    "What is the capital of France?",
]


def fill(path: Path, embedder: HashingEmbedder | None = None, **kw: Any) -> None:
    with SemanticCache(embedder or CountingEmbedder(), persist_path=path, **kw) as cache:
        for i, question in enumerate(QUESTIONS):
            cache.set(req(question), f"answer {i}")
        cache.set(req(QUESTIONS[0], namespace="tenant"), "tenant answer")


def check(cache: SemanticCache) -> None:
    hit = cache.get(req("how do i reverse a list in python"), threshold=0.5)
    assert hit is not None and hit.content == "answer 0" and not hit.exact
    exact = cache.get(req(QUESTIONS[2]))
    assert exact is not None and exact.exact and exact.content == "answer 2"
    tenant = cache.get(req("how do i reverse a list in python", namespace="tenant"), threshold=0.5)
    assert tenant is not None and tenant.content == "tenant answer"
    assert len(cache) == 4


def test_round_trip_loads_the_saved_index_without_embedding(tmp_path: Path) -> None:
    fill(tmp_path)
    assert (tmp_path / "entries" / "cache.db").exists()
    assert len(list((tmp_path / "index").glob("*.index"))) == 2  # two partitions
    embedder = CountingEmbedder()
    with SemanticCache(embedder, persist_path=tmp_path) as cache:
        assert embedder.texts == []  # nothing rebuilt
        check(cache)


def test_missing_index_files_are_rebuilt_from_the_entries(tmp_path: Path) -> None:
    fill(tmp_path)
    for path in (tmp_path / "index").glob("*.index"):
        path.unlink()
    embedder = CountingEmbedder()
    with SemanticCache(embedder, persist_path=tmp_path) as cache:
        assert sorted(embedder.texts) == sorted([*QUESTIONS, QUESTIONS[0]])
        check(cache)


def test_corrupt_index_and_manifest_are_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fill(tmp_path)
    for path in (tmp_path / "index").glob("*.index"):
        path.write_bytes(b"PK\x03\x04 not really a zip")
    caplog.set_level(logging.WARNING, logger="llmcache.vector.semantic")
    with SemanticCache(CountingEmbedder(), persist_path=tmp_path) as cache:
        check(cache)
    assert "unusable" in caplog.text
    (tmp_path / "index" / "manifest.json").write_bytes(b"{not json")
    embedder = CountingEmbedder()
    with SemanticCache(embedder, persist_path=tmp_path) as cache:
        assert len(embedder.texts) == 4  # no manifest: whose vectors? all embedded again
        check(cache)
    assert "manifest" in caplog.text


def test_entries_written_after_the_last_save_are_recovered(tmp_path: Path) -> None:
    cache = SemanticCache(CountingEmbedder(), persist_path=tmp_path)
    cache.set(req(QUESTIONS[0]), "answer 0")
    cache.save()
    cache.set(req(QUESTIONS[1]), "answer 1")  # then the process dies: no save, no close
    cache._store.close()
    embedder = CountingEmbedder()
    with SemanticCache(embedder, persist_path=tmp_path) as reopened:
        assert embedder.texts == [QUESTIONS[1]]  # only the unsaved one is embedded again
        hit = reopened.get(req("how do i sort a dict by value"), threshold=0.5)
        assert hit is not None and hit.content == "answer 1"
        assert len(reopened) == 2


def test_entries_deleted_from_the_store_are_dropped(tmp_path: Path) -> None:
    fill(tmp_path)
    with DiskStore(tmp_path / "entries") as store:
        store.clear()
    with SemanticCache(CountingEmbedder(), persist_path=tmp_path) as cache:
        assert len(cache) == 0
        assert cache.get(req("how do i reverse a list in python"), threshold=0.5) is None
    assert not list((tmp_path / "index").glob("*.index"))


def test_another_embedder_rebuilds_every_index(tmp_path: Path) -> None:
    fill(tmp_path)
    embedder = CountingEmbedder(seed=7)  # another name: the old vectors do not fit
    with SemanticCache(embedder, persist_path=tmp_path) as cache:
        assert len(embedder.texts) == 4
        check(cache)


def test_expiry_survives_a_restart(tmp_path: Path) -> None:
    now = [1_000.0]
    fill(tmp_path, ttl=60, clock=lambda: now[0])
    now[0] += 61
    with SemanticCache(CountingEmbedder(), persist_path=tmp_path, clock=lambda: now[0]) as cache:
        assert len(cache) == 0


def test_max_entries_is_applied_on_open(tmp_path: Path) -> None:
    fill(tmp_path)
    with SemanticCache(CountingEmbedder(), persist_path=tmp_path, max_entries=2) as cache:
        assert len(cache) == 2
        assert cache.get(req(QUESTIONS[0])) is None  # the oldest went first


def test_clear_removes_index_files_at_save(tmp_path: Path) -> None:
    fill(tmp_path)
    with SemanticCache(CountingEmbedder(), persist_path=tmp_path) as cache:
        cache.clear()
    assert not list((tmp_path / "index").glob("*.index"))
    with SemanticCache(CountingEmbedder(), persist_path=tmp_path) as cache:
        assert len(cache) == 0


def test_a_given_store_is_used_and_left_open(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "mine")
    with SemanticCache(CountingEmbedder(), persist_path=tmp_path / "sem", store=store) as cache:
        cache.set(req(QUESTIONS[0]), "x")
    assert len(store) == 1  # still open
    with SemanticCache(CountingEmbedder(), persist_path=tmp_path / "sem", store=store) as cache:
        assert cache.get(req("how do i reverse a list in python"), threshold=0.5)
    store.close()
