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

    results = await asyncio.gather(
        *(flight.do("k", failing) for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(r, ValueError) for r in results)
    assert flight.in_flight() == 0


# --- re-entry (issue 13, finding 3): a call never waits on a flight its own chain leads ----


@pytest.mark.timeout(5)
def test_a_call_inside_the_leader_runs_on_its_own() -> None:
    flight: SingleFlight[str] = SingleFlight()

    def outer() -> str:
        inner, shared = flight.do_ex("k", lambda: "inner")
        assert not shared
        return f"outer({inner})"

    assert flight.do_ex("k", outer) == ("outer(inner)", False)
    assert flight.in_flight() == 0


@pytest.mark.timeout(5)
def test_a_cycle_through_two_flights_runs_on_its_own() -> None:
    first: SingleFlight[str] = SingleFlight()
    second: SingleFlight[str] = SingleFlight()

    def a() -> str:
        return "a>" + second.do("b", lambda: "b>" + first.do("a", lambda: "a!"))

    assert first.do("a", a) == "a>b>a!"


@pytest.mark.timeout(5)
def test_the_chain_ends_with_the_call() -> None:
    """After leading a key, the same thread follows another thread's call on it again."""
    flight: SingleFlight[str] = SingleFlight()
    assert flight.do("k", lambda: "mine") == "mine"
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(2)
        return "theirs"

    leader = threading.Thread(target=flight.do, args=("k", slow), daemon=True)
    leader.start()
    started.wait(2)
    threading.Timer(0.05, release.set).start()
    assert flight.do_ex("k", lambda: "mine") == ("theirs", True)
    leader.join()


@pytest.mark.timeout(5)
def test_a_thread_cycle_is_broken_by_the_second_waiter() -> None:
    flight: SingleFlight[str] = SingleFlight()
    both = threading.Barrier(2)
    results: dict[str, str] = {}

    def lead(mine: str, other: str) -> None:
        def body() -> str:
            both.wait(2)  # both keys are led now; each thread asks for the other key
            return f"{mine}>" + flight.do(other, lambda: f"{other}!")

        results[mine] = flight.do(mine, body)

    threads = [
        threading.Thread(target=lead, args=pair, daemon=True) for pair in (("a", "b"), ("b", "a"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results in ({"a": "a>b>a!", "b": "b>a!"}, {"a": "a>b!", "b": "b>a>b!"})
    assert flight.in_flight() == 0


@pytest.mark.timeout(5)
async def test_async_call_inside_the_leader_runs_on_its_own() -> None:
    flight: AsyncSingleFlight[str] = AsyncSingleFlight()

    async def inner() -> str:
        return "inner"

    async def outer() -> str:
        # Through a task the leader's call started: tasks inherit the chain.
        value, shared = await asyncio.create_task(flight.do_ex("k", inner))
        assert not shared
        return f"outer({value})"

    assert await flight.do_ex("k", outer) == ("outer(inner)", False)
    assert flight.in_flight() == 0


@pytest.mark.timeout(5)
async def test_async_follower_outside_the_chain_still_waits() -> None:
    flight: AsyncSingleFlight[str] = AsyncSingleFlight()
    calls = 0

    async def outer() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.02)
        return "x"

    results = await asyncio.gather(flight.do_ex("k", outer), flight.do_ex("k", outer))
    assert results == [("x", False), ("x", True)]
    assert calls == 1


@pytest.mark.timeout(5)
async def test_async_task_cycle_is_broken() -> None:
    flight: AsyncSingleFlight[str] = AsyncSingleFlight()
    arrived = 0

    async def lead(mine: str, other: str) -> str:
        async def body() -> str:
            nonlocal arrived
            arrived += 1
            while arrived < 2:
                await asyncio.sleep(0.001)

            async def theirs() -> str:
                return f"{other}!"

            return f"{mine}>" + await flight.do(other, theirs)

        return await flight.do(mine, body)

    a, b = await asyncio.gather(lead("a", "b"), lead("b", "a"))
    assert {"a": a, "b": b} in ({"a": "a>b>a!", "b": "b>a!"}, {"a": "a>b!", "b": "b>a>b!"})
