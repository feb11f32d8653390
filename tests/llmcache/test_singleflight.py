"""Single-flight: one call per key among concurrent callers, threads and asyncio."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from llmcache.singleflight import AsyncSingleFlight, SingleFlight


def test_threads_share_one_call() -> None:
    flight: SingleFlight[int] = SingleFlight()
    calls = 0
    barrier = threading.Barrier(100)
    results: list[int] = []
    lock = threading.Lock()

    def upstream() -> int:
        nonlocal calls
        with lock:
            calls += 1
        time.sleep(0.2)
        return 7

    def worker() -> None:
        barrier.wait()
        value = flight.do("k", upstream)
        with lock:
            results.append(value)

    threads = [threading.Thread(target=worker) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == 1
    assert results == [7] * 100
    assert flight.in_flight() == 0


def test_thread_followers_get_the_leaders_exception() -> None:
    flight: SingleFlight[int] = SingleFlight()
    started = threading.Event()
    errors: list[BaseException] = []

    def failing() -> int:
        started.set()
        time.sleep(0.1)
        raise RuntimeError("model down")

    def follower() -> None:
        started.wait()
        try:
            flight.do("k", lambda: 1)
        except RuntimeError as exc:
            errors.append(exc)

    followers = [threading.Thread(target=follower) for _ in range(5)]
    for t in followers:
        t.start()
    with pytest.raises(RuntimeError):
        flight.do("k", failing)
    for t in followers:
        t.join()
    assert len(errors) == 5
    # After the failure nothing is remembered: the next call runs afresh.
    assert flight.do("k", lambda: 2) == 2


async def test_tasks_share_one_call() -> None:
    flight: AsyncSingleFlight[str] = AsyncSingleFlight()
    calls = 0

    async def upstream() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return "x"

    results = await asyncio.gather(*(flight.do("k", upstream) for _ in range(100)))
    assert calls == 1
    assert results == ["x"] * 100


async def test_cancelled_leader_does_not_strand_followers() -> None:
    flight: AsyncSingleFlight[str] = AsyncSingleFlight()
    calls = 0

    async def upstream() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return "x"

    leader = asyncio.create_task(flight.do("k", upstream))
    await asyncio.sleep(0)
    followers = [asyncio.create_task(flight.do("k", upstream)) for _ in range(3)]
    await asyncio.sleep(0.01)
    leader.cancel()
    assert await asyncio.gather(*followers) == ["x"] * 3
    assert leader.cancelled()
    assert calls == 1


async def test_all_callers_cancelled_cancels_the_call() -> None:
    flight: AsyncSingleFlight[str] = AsyncSingleFlight()
    finished = False

    async def upstream() -> str:
        nonlocal finished
        await asyncio.sleep(10)
        finished = True
        return "x"

    tasks = [asyncio.create_task(flight.do("k", upstream)) for _ in range(2)]
    await asyncio.sleep(0.01)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(0.01)
    assert flight.in_flight() == 0
    assert not finished


async def test_async_followers_get_the_exception() -> None:
    flight: AsyncSingleFlight[str] = AsyncSingleFlight()

    async def failing() -> str:
        await asyncio.sleep(0.01)
        raise ValueError("bad")

    results = await asyncio.gather(*(flight.do("k", failing) for _ in range(10)),
                                   return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)
    assert flight.in_flight() == 0
