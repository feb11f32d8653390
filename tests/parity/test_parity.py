"""One behaviour through every door: the same scenarios, the same decisions, the same counts.

Every door (`conftest.DOORS`: the decorator, sync and async; `CachedClient` and
`AsyncCachedClient` over the mock backend and over both plugins on the test server; the
LangChain adapter, sync and async) goes through the same calls, and each test asserts the
same upstream calls and the same counters for all of them:

- ``hits`` (answered by the cache), ``misses`` (the cache could have answered but did not:
  the upstream was called), ``coalesced`` (waited for a concurrent identical call),
  ``bypasses`` (`cache_control(bypass=True)`), ``uncacheable`` (the policy refused: a
  temperature above the threshold without a seed) -- each call counted once, in one.
- The default temperature rule: a call that names no temperature is cacheable (the caller
  left it to the server, and the key records that it named none); a temperature above the
  threshold without a seed is not, and the door says so once in the log.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from llmcache_testserver import OllamaServer
from parity_doors import DOORS, STREAMING, Door, open_door

from llmcache import cache_control

COUNTED = ("hits", "misses", "coalesced", "bypasses", "uncacheable")


def counts(door: Door, **expected: int) -> None:
    got = door.counters()
    assert {k: got.get(k, 0) for k in COUNTED} == {k: expected.get(k, 0) for k in COUNTED}, (
        door.name,
        got,
    )


@pytest.fixture(params=DOORS)
async def door(
    request: pytest.FixtureRequest, server: OllamaServer, pool: ThreadPoolExecutor
) -> Any:
    opened = await open_door(request.param, server, pool)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(params=STREAMING)
async def streaming_door(
    request: pytest.FixtureRequest, server: OllamaServer, pool: ThreadPoolExecutor
) -> Any:
    opened = await open_door(request.param, server, pool)
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_miss_then_a_hit(door: Door) -> None:
    first = await door.call("what is 2 + 2?", temperature=0)
    again = await door.call("what is 2 + 2?", temperature=0)
    assert again == first or door.cached(again) is not None
    assert door.upstream.calls() == 1
    assert door.cached(first) in (False, None) and door.cached(again) in (True, None)
    counts(door, hits=1, misses=1)


async def test_no_temperature_is_cacheable(door: Door) -> None:
    await door.call("what is 2 + 2?")
    await door.call("what is 2 + 2?")
    assert door.upstream.calls() == 1
    counts(door, hits=1, misses=1)


async def test_concurrent_identical_misses_make_one_call(door: Door) -> None:
    if door.no_flight:
        pytest.skip(door.no_flight)
    door.upstream.slow(0.3)
    answers = await asyncio.gather(*(door.call("same", temperature=0) for _ in range(20)))
    assert len({str(getattr(a, "content", a)) for a in answers}) == 1
    assert door.upstream.calls() == 1
    counts(door, misses=1, coalesced=19)


async def test_bypass_neither_reads_nor_writes(door: Door) -> None:
    await door.call("q", temperature=0)
    with cache_control(bypass=True):
        await door.call("q", temperature=0)
        await door.call("other", temperature=0)
    await door.call("other", temperature=0)
    assert door.upstream.calls() == 4
    counts(door, misses=2, bypasses=2)


async def test_no_store_reads_but_does_not_write(door: Door) -> None:
    await door.call("kept", temperature=0)
    with cache_control(no_store=True):
        await door.call("kept", temperature=0)  # read: a hit
        await door.call("not kept", temperature=0)  # a miss, not written
    await door.call("not kept", temperature=0)  # so a miss again
    await door.call("not kept", temperature=0)
    assert door.upstream.calls() == 3
    counts(door, hits=2, misses=3)


async def test_refresh_calls_and_writes(door: Door) -> None:
    await door.call("q", temperature=0)
    with cache_control(refresh=True):
        await door.call("q", temperature=0)
    await door.call("q", temperature=0)
    assert door.upstream.calls() == 2
    counts(door, hits=1, misses=2)


async def test_a_sampled_call_is_uncacheable_counted_and_logged_once(
    door: Door, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="llmcache"):
        for _ in range(3):
            await door.call("write a poem", temperature=0.9)
    assert door.upstream.calls() == 3
    counts(door, uncacheable=3)
    told = [r for r in caplog.records if "not cached" in r.getMessage()]
    assert len(told) == 1, [r.getMessage() for r in caplog.records]
    assert "0.9" in told[0].getMessage() and "seed" in told[0].getMessage()


async def test_a_failing_upstream_is_not_stored(door: Door) -> None:
    door.upstream.fail(True)
    with pytest.raises(Exception):  # noqa: B017 - each door raises its own error type
        await door.call("q", temperature=0)
    door.upstream.fail(False)
    before = door.upstream.calls()
    await door.call("q", temperature=0)
    await door.call("q", temperature=0)
    assert door.upstream.calls() == before + 1
    counts(door, hits=1, misses=2)
    assert door.counters().get("errors", 0) == 0


async def test_a_replayed_stream_is_marked_cached(streaming_door: Door) -> None:
    door = streaming_door
    live = await door.stream("a b c", temperature=0)
    replayed = await door.stream("a b c", temperature=0)
    assert door.upstream.calls() == 1
    assert [c.content for c in replayed] == [c.content for c in live]
    assert [c.cached for c in live] == [False] * len(live)
    assert [c.cached for c in replayed] == [True] * len(replayed)
    counts(door, hits=1, misses=1)


async def test_streams_follow_the_same_rules(streaming_door: Door) -> None:
    door = streaming_door
    await door.stream("s")  # no temperature: cacheable
    await door.stream("s")
    with cache_control(bypass=True):
        await door.stream("s")
    await door.stream("poem", temperature=0.9)
    assert door.upstream.calls() == 3
    counts(door, hits=1, misses=1, bypasses=1, uncacheable=1)


async def test_every_method_of_the_chapters_client_has_one_default(server: OllamaServer) -> None:
    """`CachedOllamaClient` keeps the chapter's ``temperature=0.7`` default: in every method
    (plain and streamed), so a call that names none is uncacheable everywhere, counted and
    said once; a greedy call is cached everywhere."""
    from llmcache_ollama import CachedOllamaClient, OllamaClient

    chat = [{"role": "user", "content": "hi"}]
    with CachedOllamaClient(OllamaClient(server.url, timeout=10, retries=0)) as cached:
        cached.generate("x")
        list(cached.generate_stream("x"))
        cached.chat(chat)
        list(cached.chat_stream(chat))
        assert server.calls.total == 4
        assert cached.counters()["uncacheable"] == 4
        cached.generate("x", temperature=0)
        assert [c.cached for c in cached.generate_stream("x", temperature=0)][-1] is True
        assert server.calls.total == 5
