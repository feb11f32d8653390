"""SemanticCache: exact before semantic, partitions, thresholds, TTL, eviction, stats."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from llmcache._closing import Closing
from llmcache.entry import CachedResponse
from llmcache.keys import Request, make_key
from llmcache.stores.memory import MemoryStore
from llmcache.vector.embedders import HashingEmbedder, Matrix
from llmcache.vector.guards import NumberGuard
from llmcache.vector.semantic import DEFAULT_THRESHOLD, SemanticCache, split_request


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class CountingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__(dim=64)
        self.texts: list[str] = []

    def embed(self, texts: Any) -> Matrix:
        self.texts.extend(texts)
        return super().embed(texts)


def req(prompt: str, **kw: Any) -> Request:
    return Request(model=kw.pop("model", "m"), prompt=prompt, **kw)


@pytest.fixture
def cache() -> SemanticCache:
    return SemanticCache(HashingEmbedder(dim=128), threshold=0.6)


def test_exact_hit_comes_first_and_is_marked(cache: SemanticCache) -> None:
    cache.set(req("How do I reverse a list in Python?"), "exact answer")
    cache.set(req("how do I reverse a list in python"), "near answer")
    hit = cache.get(req("How do I reverse a list in Python?"))
    assert hit is not None and hit.exact and hit.similarity == 1.0
    assert hit.content == "exact answer"
    assert hit.entry.metadata["semantic"] == {
        "similarity": 1.0,
        "matched_prompt": "How do I reverse a list in Python?",
        "exact": True,
    }
    assert "_semantic" not in hit.entry.metadata
    assert cache.stats()["exact_hits"] == 1


def test_semantic_hit_carries_similarity_and_matched_prompt(cache: SemanticCache) -> None:
    cache.set(
        req("How do I reverse a list in Python?"),
        CachedResponse(content="xs[::-1]", model="m", metadata={"mine": 1}),
    )
    hit = cache.get(req("how do I reverse a list in python??"))
    assert hit is not None and not hit.exact and 0.6 <= hit.similarity <= 1.0
    meta = hit.entry.metadata
    assert meta["mine"] == 1 and meta["semantic"]["exact"] is False
    assert meta["semantic"]["matched_prompt"] == "How do I reverse a list in Python?"
    assert meta["semantic"]["similarity"] == hit.similarity
    assert hit.matched_prompt == "How do I reverse a list in Python?"
    stats = cache.stats()
    assert (stats["semantic_hits"], stats["hits"], stats["misses"]) == (1, 1, 0)


def test_guards_veto_and_are_counted(cache: SemanticCache) -> None:
    cache.set(req("Where is order 48213?"), "shipped")
    assert cache.get(req("Where is order 48231?")) is None
    assert cache.get(req("Where is order 48213 ?")) is not None
    assert cache.stats()["vetoes"]["numbers"] == 1
    assert cache.stats()["misses"] == 1


def test_guards_can_be_turned_off_or_chosen() -> None:
    off = SemanticCache(HashingEmbedder(dim=128), threshold=0.5, guards=())
    off.set(req("Where is order 48213?"), "shipped")
    assert off.get(req("Where is order 48231?")) is not None  # what the guards prevent
    only = SemanticCache(HashingEmbedder(dim=128), threshold=0.5, guards=[NumberGuard()])
    only.set(req("Where is order 48213?"), "shipped")
    assert only.get(req("Where is order 48231?")) is None
    assert only.stats()["vetoes"] == {"numbers": 1}


def test_threshold_per_cache_and_per_call() -> None:
    cache = SemanticCache(HashingEmbedder(dim=128), threshold=0.99)
    cache.set(req("How do I reverse a list in Python?"), "a")
    query = req("how do I reverse a list in python please")
    assert cache.get(query) is None
    assert cache.get(query, threshold=0.5) is not None
    with pytest.raises(ValueError):
        cache.get(query, threshold=1.5)
    with pytest.raises(ValueError):
        SemanticCache(HashingEmbedder(), threshold=True)
    assert SemanticCache(HashingEmbedder()).threshold == DEFAULT_THRESHOLD


@pytest.mark.parametrize(
    "other",
    [
        {"model": "other"},
        {"options": {"temperature": 0.5}},
        {"system": "Answer in French"},
        {"format": "json"},
        {"namespace": "tenant-b"},
        {"tools": [{"type": "function", "function": {"name": "f"}}]},
        {"images": [b"png"]},
    ],
)
def test_partitions_never_cross(cache: SemanticCache, other: dict[str, Any]) -> None:
    cache.set(req("How do I reverse a list in Python?"), "a")
    assert cache.get(req("How do I reverse a list in Python?", **other), threshold=-1) is None
    assert cache.get(req("how do i reverse a list in python"), threshold=0.5) is not None


def test_chat_history_scopes_the_match(cache: SemanticCache) -> None:
    def chat(*turns: str, system: str = "You help with code") -> Request:
        messages = [{"role": "system", "content": system}]
        for i, turn in enumerate(turns):
            messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": turn})
        return Request(model="m", messages=messages)

    cache.set(chat("I use Python.", "Great!", "How do I reverse a list?"), "xs[::-1]")
    hit = cache.get(chat("I use Python.", "Great!", "how do i reverse a list"))
    assert hit is not None and hit.matched_prompt == "How do I reverse a list?"
    assert cache.get(chat("I use Ruby.", "Great!", "how do i reverse a list"), threshold=-1) is None
    assert (
        cache.get(
            chat("I use Python.", "Great!", "how do i reverse a list", system="x"), threshold=-1
        )
        is None
    )
    assert cache.get(req("How do I reverse a list?"), threshold=-1) is None  # prompt vs chat


def test_split_request_shapes() -> None:
    scope, text = split_request(req("hi", system="s").to_canonical())  # type: ignore[misc]
    assert text == "hi" and scope["prompt"] is None and scope["system"] == "s"
    assert split_request(req("   ").to_canonical()) is None
    assert (
        split_request(
            Request(
                model="m", messages=[{"role": "assistant", "content": "only me"}]
            ).to_canonical()
        )
        is None
    )
    parts = [{"type": "text", "text": "hi"}]
    assert (
        split_request(
            Request(model="m", messages=[{"role": "user", "content": parts}]).to_canonical()
        )
        is None
    )


def test_requests_without_text_are_cached_exactly(cache: SemanticCache) -> None:
    parts = Request(model="m", messages=[{"role": "user", "content": [{"text": "hi"}]}])
    cache.set(parts, "hello")
    hit = cache.get(parts)
    assert hit is not None and hit.exact and hit.matched_prompt is None
    assert len(cache) == 1 and cache.stats()["partitions"] == 0


def test_texts_without_meaning_are_exact_only() -> None:
    cache = SemanticCache(HashingEmbedder(dim=64), threshold=-1)
    cache.set(req("???"), "punctuation")  # no words: a zero vector
    assert cache.get(req("???")) is not None
    assert cache.get(req("?!")) is None
    assert cache.stats()["partitions"] == 0


def test_a_miss_in_an_empty_partition_embeds_nothing() -> None:
    emb = CountingEmbedder()
    cache = SemanticCache(emb)
    assert cache.get(req("anything")) is None
    assert emb.texts == []
    cache.set(req("How do I reverse a list?"), "a")
    assert cache.get(req("how do I sort a list")) is None
    cache.set(req("how do I sort a list"), "b")  # the miss's vector is reused
    assert emb.texts == ["How do I reverse a list?", "how do I sort a list"]


def test_ttl_expires_entries_and_their_vectors() -> None:
    clock = Clock()
    cache = SemanticCache(HashingEmbedder(dim=128), threshold=0.5, ttl=10, clock=clock)
    cache.set(req("How do I reverse a list?"), "a")
    cache.set(req("How do I sort a list?"), "b", ttl=100)
    assert cache.get(req("how do i reverse a list")) is not None
    clock.now += 11
    assert cache.get(req("how do i reverse a list")) is None
    assert cache.get(req("How do I reverse a list?")) is None  # exact is gone too
    assert len(cache) == 1 and cache.stats()["expirations"] == 1
    assert cache.get(req("how do i sort a list")) is not None
    clock.now += 100
    assert len(cache) == 0 and cache.stats()["partitions"] == 0
    with pytest.raises(ValueError):
        cache.set(req("x"), "y", ttl=-1)


def test_max_entries_evicts_least_recently_used_from_the_index_too() -> None:
    cache = SemanticCache(HashingEmbedder(dim=128), threshold=0.5, max_entries=2)
    cache.set(req("How do I reverse a list?"), "a")
    cache.set(req("How do I sort a list?"), "b")
    assert cache.get(req("how do i reverse a list")) is not None  # "sort" is now oldest
    cache.set(req("How do I shuffle a list?"), "c")
    assert len(cache) == 2 and cache.stats()["evictions"] == 1
    assert cache.get(req("how do i sort a list")) is None
    assert cache.explain(req("how do i sort a list")) and all(
        c.text != "How do I sort a list?" for c in cache.explain(req("how do i sort a list"))
    )
    assert cache.get(req("how do i reverse a list")) is not None


def test_replacing_an_entry_keeps_one_vector(cache: SemanticCache) -> None:
    cache.set(req("How do I reverse a list?"), "old")
    cache.set(req("How do I reverse a list?"), "new")
    assert len(cache) == 1
    assert [c.text for c in cache.explain(req("reverse a list"))] == ["How do I reverse a list?"]
    hit = cache.get(req("how do i reverse a list"))
    assert hit is not None and hit.content == "new"


def test_delete_and_clear(cache: SemanticCache) -> None:
    cache.set(req("How do I reverse a list?"), "a")
    cache.set(req("How do I sort a list?"), "b")
    assert cache.delete(req("How do I reverse a list?"))
    assert not cache.delete(req("How do I reverse a list?"))
    assert cache.get(req("how do i reverse a list")) is None
    cache.clear()
    assert len(cache) == 0 and cache.get(req("how do i sort a list")) is None


def test_an_entry_gone_from_the_store_is_a_miss_and_is_forgotten() -> None:
    store = MemoryStore(max_entries=100)
    cache = SemanticCache(HashingEmbedder(dim=128), threshold=0.5, store=store)
    cache.set(req("How do I reverse a list?"), "a")
    store.clear()  # e.g. a shared tier evicted it
    assert cache.get(req("how do i reverse a list")) is None
    assert len(cache) == 0


def test_best_candidate_that_passes_the_guards_wins() -> None:
    cache = SemanticCache(HashingEmbedder(dim=256), threshold=0.3)
    cache.set(req("Where is my order 48213?"), "order 48213")
    cache.set(req("Where is my order 48214?"), "order 48214")
    hit = cache.get(req("where is my order 48214"))
    assert hit is not None and hit.content == "order 48214"


def test_explain_reports_every_candidate_without_side_effects(cache: SemanticCache) -> None:
    cache.set(req("Where is order 48213?"), "a")
    cache.set(req("Where is order 48213 now?"), "b")
    found = cache.explain(req("Where is order 48231?"))
    assert len(found) == 2 and all(c.veto and c.veto[0] == "numbers" for c in found)
    assert found[0].similarity >= found[1].similarity
    assert cache.stats()["misses"] == 0 and cache.stats()["vetoes"]["numbers"] == 0
    assert cache.explain(req("   ")) == []


def test_stats_and_repr(cache: SemanticCache) -> None:
    cache.set(req("How do I reverse a list?"), "a")
    stats = cache.stats()
    assert stats["entries"] == 1 and stats["partitions"] == 1 and stats["sets"] == 1
    assert stats["verifier"] is None and stats["embedder"] == "hashing-v1-128"
    assert set(stats["vetoes"]) == {
        "numbers",
        "negation",
        "antonyms",
        "quantifiers",
        "entities",
        "symbols",
        "direction",
        "order",
        "history",
        "scope",
    }
    assert "SemanticCache('hashing-v1-128'" in repr(cache)


def test_closed_cache_refuses_use() -> None:
    with SemanticCache(HashingEmbedder()) as cache:
        cache.set(req("a question"), "x")
    cache.close()  # idempotent
    with pytest.raises(RuntimeError):
        cache.get(req("a question"))
    with pytest.raises(RuntimeError):
        cache.set(req("a question"), "x")


def test_the_with_face_is_the_shared_closing_one() -> None:
    """``with SemanticCache(...)`` is `Closing`'s face (one copy in the package), not one
    of its own: it gives the cache and closes it on the way out."""
    assert issubclass(SemanticCache, Closing)
    assert SemanticCache.__exit__ is Closing.__exit__
    with SemanticCache(HashingEmbedder()) as cache:
        assert isinstance(cache, SemanticCache)
    with pytest.raises(RuntimeError):
        cache.get(req("a question"))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        SemanticCache(HashingEmbedder(), max_entries=0)
    with pytest.raises(ValueError):
        SemanticCache(HashingEmbedder(), grey_zone=(0.9, 0.8))
    with pytest.raises(ValueError):
        SemanticCache(HashingEmbedder(), candidates=0)


async def test_async_twins(cache: SemanticCache) -> None:
    await cache.aset(req("How do I reverse a list in Python?"), "a")
    hit = await cache.aget(req("how do i reverse a list in python"))
    assert hit is not None and hit.content == "a"
    assert await cache.aget(req("How do I reverse a list in Ruby?")) is None
    exact = await cache.aget(req("How do I reverse a list in Python?"))
    assert exact is not None and exact.exact


def test_custom_index_factory_is_used() -> None:
    from llmcache.vector.index import VectorIndex

    made: list[int] = []

    def factory(dim: int) -> VectorIndex:
        made.append(dim)
        return VectorIndex(dim, capacity=2)

    cache = SemanticCache(HashingEmbedder(dim=32), index_factory=factory)
    cache.set(req("a question about lists"), "x")
    cache.set(req("a question about lists", model="m2"), "y")
    assert made == [32, 32]
    assert np.isclose(cache.explain(req("a question about lists"))[0].similarity, 1.0)


def test_a_failing_embedder_degrades_to_exact_matching(caplog: pytest.LogCaptureFixture) -> None:
    from llmcache.backends.errors import BackendUnavailable
    from llmcache.backends.mock import MockBackend, MockCall
    from llmcache.vector.embedders import BackendEmbedder

    state = {"up": True}

    def server(call: MockCall) -> str:
        if not state["up"]:
            raise BackendUnavailable("embedding server down")
        return "ok"

    cache = SemanticCache(
        BackendEmbedder(MockBackend(server, embed_dim=32), model="e"), threshold=0.5
    )
    cache.set(req("How do I reverse a list?"), "a")
    state["up"] = False
    assert cache.get(req("how do i reverse a list")) is None  # a miss, not an exception
    cache.set(req("How do I sort a list?"), "b")  # stored for exact lookups
    hit = cache.get(req("How do I sort a list?"))
    assert hit is not None and hit.exact
    assert cache.stats()["embedding_errors"] == 2
    assert caplog.text.count("embedding server down") == 1  # logged once


def test_threads_share_one_cache_safely() -> None:
    import threading

    cache = SemanticCache(HashingEmbedder(dim=64), threshold=0.5, max_entries=50)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(60):
                cache.set(req(f"question number {i % 70} about topic {n}"), f"{n}-{i}")
                hit = cache.get(req(f"Question number {i % 70} about topic {n}?"))
                assert hit is None or hit.content == f"{n}-{i}", (n, i, hit)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(cache) == 50
    assert sum(len(i) for i in cache._indexes.values()) == 50  # index and records agree


def test_exact_entries_live_under_make_key_and_delete_finds_them() -> None:
    # One key scheme for every tier: an entry cached semantically can be read, inspected
    # and deleted by its `make_key`, like any other.
    store = MemoryStore()
    cache = SemanticCache(HashingEmbedder(dim=64), store=store)
    request = Request(model="m", prompt="how do I exit vim", options={"temperature": 0.0})
    cache.set(request, "type :q")
    entry = store.get(make_key(request))
    assert entry is not None and entry.content == "type :q"
    assert cache.delete(request)
    assert store.get(make_key(request)) is None and cache.get(request) is None


def test_lookups_racing_writes_and_clears_serve_only_right_answers() -> None:
    # Searches run outside the cache's lock; whatever they race with (replacing, deleting,
    # evicting, clearing), a hit must be the answer cached for a request of that partition
    # whose text is the matched one.
    cache = SemanticCache(HashingEmbedder(dim=128), threshold=0.3, guards=(), max_entries=60)
    models = ["m0", "m1", "m2"]
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(seed: int) -> None:
        try:
            for i in range(400):
                model, n = models[(seed + i) % 3], (seed * 7 + i) % 40
                request = Request(model=model, prompt=f"question {n} about topic {n}")
                if i % 50 == 49:
                    cache.clear()
                elif i % 5 == 4:
                    cache.delete(request)
                else:
                    cache.set(request, f"{model}:{n}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader(seed: int) -> None:
        try:
            i = 0
            while not stop.is_set():
                model, n = models[(seed + i) % 3], (seed * 3 + i) % 40
                hit = cache.get(Request(model=model, prompt=f"question {n} about topic {n}?"))
                if hit is not None:
                    assert hit.entry.content == f"{model}:{hit.matched_prompt.split()[1]}", hit
                i += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(s,)) for s in range(2)]
    readers = [threading.Thread(target=reader, args=(s,)) for s in range(3)]
    for thread in writers + readers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    assert not errors, errors[0]
    assert sum(len(i) for i in cache._indexes.values()) == len(
        [r for r in cache._records.values() if r.partition is not None]
    )
