"""Everyone waiting on one single-flight gets what the leader got (issue 13, finding 7)."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from llmcache import DiskStore, MemoryStore, cache_control, cached_generate


def _threads(n: int, call: Any) -> list[Any]:
    barrier = threading.Barrier(n)
    outcomes: list[Any] = [None] * n

    def worker(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = call()
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_thread_followers_get_a_set_under_no_store() -> None:
    calls: list[str] = []

    @cached_generate
    def tags(prompt: str) -> set[str]:
        calls.append(prompt)
        time.sleep(0.2)
        return {"a", "b"}

    def no_store() -> set[str]:
        with cache_control(no_store=True):  # per thread: threads do not inherit contexts
            return tags("x")  # type: ignore[no-any-return]

    outcomes = _threads(50, no_store)
    assert outcomes == [{"a", "b"}] * 50
    assert len(calls) == 1


def test_thread_followers_get_the_leaders_types_and_their_own_copy() -> None:
    @cached_generate
    def pair(prompt: str) -> tuple[str, dict[str, Any]]:
        time.sleep(0.2)
        return ("answer", {"items": [1, (2, 3)]})

    outcomes = _threads(20, lambda: pair("x"))
    assert outcomes == [("answer", {"items": [1, (2, 3)]})] * 20
    assert len({id(o[1]) for o in outcomes}) == 20  # a mutable value is copied per caller


def test_thread_followers_share_the_leaders_error_for_an_unstorable_result() -> None:
    store = MemoryStore()

    @cached_generate(cache=store)
    def tags(prompt: str) -> set[str]:
        time.sleep(0.2)
        return {"a"}

    outcomes = _threads(10, lambda: tags("x"))
    assert all(isinstance(o, TypeError) for o in outcomes)
    assert len(store) == 0


async def test_task_followers_get_a_set_under_no_store() -> None:
    calls: list[str] = []

    @cached_generate
    async def tags(prompt: str) -> set[str]:
        calls.append(prompt)
        await asyncio.sleep(0.05)
        return {"a", "b"}

    with cache_control(no_store=True):
        outcomes = await asyncio.gather(*(tags("x") for _ in range(50)), return_exceptions=True)
    assert outcomes == [{"a", "b"}] * 50
    assert len(calls) == 1


async def test_task_followers_get_the_leaders_types() -> None:
    @cached_generate
    async def pair(prompt: str) -> tuple[str, list[int]]:
        await asyncio.sleep(0.05)
        return ("answer", [1, 2])

    outcomes = await asyncio.gather(*(pair("x") for _ in range(20)))
    assert outcomes == [("answer", [1, 2])] * 20
    assert len({id(o[1]) for o in outcomes}) == 20


@pytest.mark.parametrize("value", [("a", 1), ("a", (1, [2, (3,)])), {"t": (1, 2)}])
def test_a_tuple_comes_back_as_a_tuple_on_a_hit(value: Any) -> None:
    @cached_generate
    def f(prompt: str) -> Any:
        return value

    assert f("x") == value
    assert f("x") == value and f.cache_info().hits == 1
    hit = f("x")
    assert repr(hit) == repr(value)


def test_a_tuple_comes_back_as_a_tuple_from_disk(tmp_path: Path) -> None:
    def pair(prompt: str) -> tuple[str, list[tuple[int, int]]]:
        return (prompt, [(1, 2)])

    with DiskStore(tmp_path) as store:
        assert cached_generate(cache=store)(pair)("x") == ("x", [(1, 2)])
    with DiskStore(tmp_path) as store:
        again = cached_generate(cache=store)(pair)
        assert repr(again("x")) == repr(("x", [(1, 2)]))
        assert again.cache_info().hits == 1


@pytest.mark.parametrize("paths", [[["nope"]], [[0, 5]], "x", [[[1]]], [[1]]])
def test_a_planted_tuple_path_is_a_miss(paths: Any) -> None:
    store = MemoryStore()
    calls: list[str] = []

    @cached_generate(cache=store, namespace="planted")
    def f(prompt: str) -> Any:
        calls.append(prompt)
        return {"a": ["b"]}

    f("x")
    (key,) = list(store._cache.keys())  # type: ignore[attr-defined]
    entry = store.get(key)
    assert entry is not None
    store.set(key, replace(entry, metadata={**entry.metadata, "tuples": paths}))
    assert f("x") == {"a": ["b"]}
    assert len(calls) == 2 and f.cache_counters()["errors"] >= 1


def test_followers_are_counted_once_in_cache_info_and_cache_counters() -> None:
    """Issue 14: a call that waited for a concurrent identical call was counted nowhere."""
    release = threading.Event()

    @cached_generate
    def slow(prompt: str) -> str:
        release.wait(5)
        return prompt.upper()

    timer = threading.Timer(0.3, release.set)  # every caller is waiting by then
    timer.start()
    outcomes = _threads(8, lambda: slow("same"))
    timer.join()
    assert outcomes == ["SAME"] * 8
    counts = slow.cache_counters()
    assert (counts["misses"], counts["coalesced"], counts["hits"]) == (1, 7, 0)
    # cache_info, shaped like lru_cache's: hits are calls answered without calling the
    # function, so the followers are there too, and hits + misses is every call.
    assert (slow.cache_info().hits, slow.cache_info().misses) == (7, 1)
