"""An embedder's identity is its name, its dimension and its version: a cache that meets
vectors of another size (a reopened cache, an embedder that changed, one that misbehaves)
rebuilds or misses, counts it, and never raises (issue 13, finding 11)."""

from __future__ import annotations

import doctest
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llmcache import cached_generate
from llmcache.keys import Request
from llmcache.vector import embedders as embedders_module
from llmcache.vector.embedders import HashingEmbedder, Matrix
from llmcache.vector.semantic import SemanticCache

LOGGER = "llmcache.vector.semantic"
QUESTION = "How do I reverse a list in Python?"
PARAPHRASE = "how do i reverse a list in python"


class Named(HashingEmbedder):
    """A hashing embedder under a fixed name, whatever its size (the user's own embedder
    upgraded to another model without a new name), counting the texts it embeds."""

    def __init__(self, dim: int, *, seed: int = 0, version: str | None = None) -> None:
        super().__init__(dim=dim, seed=seed)
        self.name = "my-embedder"
        if version is not None:
            self.version = version
        self.texts: list[str] = []

    def embed(self, texts: Any) -> Matrix:
        self.texts.extend(texts)
        return super().embed(texts)


class Rogue(HashingEmbedder):
    """Declares one dimension, and answers with whatever ``rows`` makes of its vectors."""

    def __init__(self, rows: Callable[[Matrix, int], Any], dim: int = 32) -> None:
        super().__init__(dim=dim)
        self.rows = rows
        self.calls = 0

    def embed(self, texts: Any) -> Matrix:
        self.calls += 1
        out: Matrix = self.rows(super().embed(texts), self.calls)
        return out


def req(prompt: str, **kw: Any) -> Request:
    return Request(model="m", prompt=prompt, **kw)


def fill(path: Path, embedder: Named) -> None:
    with SemanticCache(embedder, persist_path=path, threshold=0.5) as cache:
        cache.set(req(QUESTION), "xs[::-1]")
        cache.set(req("What is the capital of France?"), "Paris")


# ----------------------------------------------------------------- a persisted cache reopened


def test_reopened_with_another_dimension_re_embeds_the_stored_texts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fill(tmp_path, Named(64))
    caplog.set_level(logging.INFO, logger=LOGGER)
    embedder = Named(32)
    with SemanticCache(embedder, persist_path=tmp_path, threshold=0.5) as cache:
        assert sorted(embedder.texts) == sorted([QUESTION, "What is the capital of France?"])
        hit = cache.get(req(PARAPHRASE))
        assert hit is not None and hit.content == "xs[::-1]" and not hit.exact
        cache.set(req("How do I sort a list in Python?"), "sorted(xs)")
        assert cache.get(req("how do i sort a list in python")) is not None
        assert cache.stats()["embedding_errors"] == 0
    assert "embedder" in caplog.text and "64" in caplog.text and "32" in caplog.text
    again = Named(32)
    with SemanticCache(again, persist_path=tmp_path, threshold=0.5) as cache:
        assert again.texts == []  # the rebuilt indexes were saved: nothing to embed now
        assert cache.get(req(PARAPHRASE)) is not None


def test_a_manifest_without_the_size_is_checked_against_each_index(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A manifest written before llmcache recorded the embedder's size: the saved indexes'
    # own sizes tell. Three partitions, one warning.
    with SemanticCache(Named(64), persist_path=tmp_path, threshold=0.5) as cache:
        for tenant in ("a", "b", "c"):
            cache.set(req(QUESTION, namespace=tenant), f"answer {tenant}")
    manifest = tmp_path / "index" / "manifest.json"
    data = json.loads(manifest.read_text())
    del data["embedder_dim"], data["embedder_version"]
    manifest.write_text(json.dumps(data))
    caplog.set_level(logging.WARNING, logger=LOGGER)
    embedder = Named(32)
    with SemanticCache(embedder, persist_path=tmp_path, threshold=0.5) as cache:
        assert len(embedder.texts) == 3
        for tenant in ("a", "b", "c"):
            hit = cache.get(req(PARAPHRASE, namespace=tenant))
            assert hit is not None and hit.content == f"answer {tenant}"
        assert cache.stats()["stale_partitions"] == 3
    assert len([r for r in caplog.records if "64-dim" in r.getMessage()]) == 1


async def test_reopened_with_another_dimension_async(tmp_path: Path) -> None:
    fill(tmp_path, Named(64))
    with SemanticCache(Named(128), persist_path=tmp_path, threshold=0.5) as cache:
        hit = await cache.aget(req(PARAPHRASE))
        assert hit is not None and hit.content == "xs[::-1]"
        await cache.aset(req("How do I sort a list in Python?"), "sorted(xs)")
        assert await cache.aget(req("how do i sort a list in python")) is not None


def test_reopened_with_another_version_re_embeds(tmp_path: Path) -> None:
    # Same name and size, other vectors (new weights): the saved ones are not comparable.
    fill(tmp_path, Named(64, seed=0, version="1"))
    same = Named(64, seed=0, version="1")
    with SemanticCache(same, persist_path=tmp_path, threshold=0.5):
        assert same.texts == []
    newer = Named(64, seed=7, version="2")
    with SemanticCache(newer, persist_path=tmp_path, threshold=0.5) as cache:
        assert len(newer.texts) == 2
        assert cache.get(req(PARAPHRASE)) is not None


def test_reopened_with_an_embedder_that_fails_still_opens(tmp_path: Path) -> None:
    fill(tmp_path, Named(64))

    def down(rows: Matrix, call: int) -> Matrix:
        raise ConnectionError("embedding server down")

    with SemanticCache(Rogue(down), persist_path=tmp_path, threshold=0.5) as cache:
        assert cache.get(req(PARAPHRASE)) is None  # no vectors: a miss
        exact = cache.get(req(QUESTION))
        assert exact is not None and exact.exact and exact.content == "xs[::-1]"
        cache.set(req("Another question?"), "x")
        assert cache.stats()["embedding_errors"] >= 1


CALLS: list[str] = []


def answer(prompt: str, model: str = "m") -> str:
    """Module level, so its identity is the same in both "processes" of the test."""
    CALLS.append(prompt)
    return f"answer to {prompt}"


def shout(prompt: str) -> str:
    CALLS.append(prompt)
    return prompt.upper()


def test_reopened_through_the_decorator_keeps_hitting(tmp_path: Path) -> None:
    CALLS.clear()
    with SemanticCache(Named(64), persist_path=tmp_path, threshold=0.5) as semantic:
        cached_generate(semantic=semantic)(answer)(QUESTION)
    with SemanticCache(Named(32), persist_path=tmp_path, threshold=0.5) as semantic:
        wrapped = cached_generate(semantic=semantic)(answer)
        assert wrapped(PARAPHRASE) == f"answer to {QUESTION}"
        wrapped("How do I sort a list in Python?")
        assert (
            wrapped("how do i sort a list in python") == "answer to How do I sort a list in Python?"
        )
        counters = wrapped.cache_counters()  # type: ignore[attr-defined]
    assert CALLS == [QUESTION, "How do I sort a list in Python?"]
    assert counters["errors"] == 0 and counters["semantic_hits"] == 2


# ---------------------------------------------------------- an embedder that changes in flight


class Switchable(HashingEmbedder):
    """An embedder whose model is swapped while the cache runs (same name, new size)."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim=dim)
        self.name = "switchable"

    def switch(self, dim: int) -> None:
        self.dim = dim


@pytest.mark.parametrize("face", ["sync", "async"])
async def test_an_embedder_that_changes_size_in_flight_starts_the_partition_anew(
    face: str, caplog: pytest.LogCaptureFixture
) -> None:
    embedder = Switchable(64)
    cache = SemanticCache(embedder, threshold=0.5)
    cache.set(req(QUESTION), "old")
    cache.set(req("What is the capital of France?"), "Paris")
    embedder.switch(32)
    caplog.set_level(logging.INFO, logger=LOGGER)

    async def get(prompt: str) -> Any:
        return cache.get(req(prompt)) if face == "sync" else await cache.aget(req(prompt))

    async def set_(prompt: str, value: str) -> None:
        if face == "sync":
            cache.set(req(prompt), value)
        else:
            await cache.aset(req(prompt), value)

    assert await get(PARAPHRASE) is None  # the old vectors cannot be compared: a miss
    await set_("How do I sort a list in Python?", "sorted(xs)")
    hit = await get("how do i sort a list in python")
    assert hit is not None and hit.content == "sorted(xs)"
    exact = await get("What is the capital of France?")
    assert exact is not None and exact.exact  # exact entries are kept
    stats = cache.stats()
    assert stats["stale_partitions"] == 1 and stats["embedding_errors"] == 0
    assert caplog.text.count("switchable") == 1  # logged once


# ------------------------------------------------------------------ an embedder that misbehaves


def wrong_size(rows: Matrix, call: int) -> Matrix:
    return np.concatenate([rows, rows], axis=1)  # declares 32, answers 64


def alternating(rows: Matrix, call: int) -> Matrix:
    return rows if call % 2 else rows[:, :16]


def nan_rows(rows: Matrix, call: int) -> Matrix:
    return np.full_like(rows, np.nan)


def half_nan(rows: Matrix, call: int) -> Matrix:
    out = rows.copy()
    out[:, 0] = np.nan
    return out


def zero_rows(rows: Matrix, call: int) -> Matrix:
    return np.zeros_like(rows)


def huge_rows(rows: Matrix, call: int) -> Matrix:
    return rows * np.float32(3e38)


def too_many_rows(rows: Matrix, call: int) -> Matrix:
    return np.concatenate([rows, rows])


def no_rows(rows: Matrix, call: int) -> Matrix:
    return rows[:0]


def a_list(rows: Matrix, call: int) -> Any:
    return rows.tolist()


def flat(rows: Matrix, call: int) -> Any:
    return rows[0]


def strings(rows: Matrix, call: int) -> Any:
    return np.array([["x"] * rows.shape[1]] * rows.shape[0])


ROGUES = [
    wrong_size,
    alternating,
    nan_rows,
    half_nan,
    zero_rows,
    huge_rows,
    too_many_rows,
    no_rows,
    a_list,
    flat,
    strings,
]


@pytest.mark.parametrize("rows", ROGUES, ids=[f.__name__ for f in ROGUES])
async def test_a_misbehaving_embedder_is_a_miss_never_an_exception(
    rows: Callable[[Matrix, int], Any],
) -> None:
    cache = SemanticCache(Rogue(rows), threshold=0.5)
    for i in range(3):
        cache.set(req(f"{QUESTION} ({i})"), f"sync {i}")
        await cache.aset(req(f"What is the capital of France? ({i})"), f"async {i}")
        cache.get(req(f"{PARAPHRASE} ({i})"))
        await cache.aget(req(f"what is the capital of france ({i})"))
    exact = cache.get(req(f"{QUESTION} (0)"))
    assert exact is not None and exact.exact and exact.content == "sync 0"
    cache.explain(req(PARAPHRASE))


@pytest.mark.parametrize(
    "rows",
    [wrong_size, nan_rows, half_nan, flat, strings],
    ids=["wrong_size", "nan_rows", "half_nan", "flat", "strings"],
)
def test_bad_vectors_are_counted_and_logged_once(
    rows: Callable[[Matrix, int], Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    cache = SemanticCache(Rogue(rows), threshold=0.5)
    cache.set(req(QUESTION), "a")
    cache.set(req("What is the capital of France?"), "Paris")
    assert cache.get(req(PARAPHRASE)) is None
    assert cache.stats()["embedding_errors"] == 2
    assert len([r for r in caplog.records if r.name == LOGGER]) == 1


def test_an_embedder_alternating_sizes_serves_only_its_declared_size() -> None:
    cache = SemanticCache(Rogue(alternating), threshold=0.5)
    cache.set(req(QUESTION), "a")  # call 1: 32 dims, as declared
    assert cache.get(req(PARAPHRASE)) is None  # call 2: 16 dims, refused
    hit = cache.get(req("How do I reverse a list in python"))  # call 3: 32 dims again
    assert hit is not None and hit.content == "a"
    assert cache.stats()["embedding_errors"] == 1


def test_a_vector_too_large_to_normalise_is_scaled_not_refused() -> None:
    cache = SemanticCache(Rogue(huge_rows), threshold=0.5)
    cache.set(req(QUESTION), "a")
    hit = cache.get(req(PARAPHRASE))
    assert hit is not None and hit.content == "a"


def test_zero_vectors_mean_exact_matching_only() -> None:
    cache = SemanticCache(Rogue(zero_rows), threshold=0.5)
    cache.set(req(QUESTION), "a")
    assert cache.get(req(PARAPHRASE)) is None
    assert cache.get(req(QUESTION)) is not None
    assert cache.stats()["embedding_errors"] == 0  # no meaning is not an error


def test_a_misbehaving_embedder_through_the_decorator() -> None:
    semantic = SemanticCache(Rogue(alternating), threshold=0.5)
    wrapped = cached_generate(semantic=semantic)(shout)
    assert wrapped(QUESTION) == QUESTION.upper()  # stored under a 32-dim vector
    for variant in (PARAPHRASE, "How do I reverse a list in python", "how do I reverse a list"):
        assert wrapped(variant) in (QUESTION.upper(), variant.upper())
    assert wrapped.cache_counters()["errors"] == 0  # type: ignore[attr-defined]
    assert semantic.stats()["embedding_errors"] >= 1  # the 16-dim answers, counted


def test_restore_with_a_misbehaving_embedder_opens(tmp_path: Path) -> None:
    fill(tmp_path, Named(32))
    for path in (tmp_path / "index").glob("*.index"):
        path.unlink()  # rebuilt at open, by an embedder answering the wrong size
    for rows in (wrong_size, nan_rows, a_list, too_many_rows):
        with SemanticCache(Rogue(rows), persist_path=tmp_path, threshold=0.5) as cache:
            assert cache.get(req(QUESTION)) is not None
            cache.get(req(PARAPHRASE))


def test_embedders_doctests_run() -> None:
    failures, tried = doctest.testmod(embedders_module)
    assert failures == 0 and tried > 0
