"""parallel_map and parallel_first: order, bounds, failure and cancellation semantics."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmcache.parallel import parallel_first, parallel_map

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup

HANG = 10.0


class Gauge:
    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    def __enter__(self) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)

    def __exit__(self, *exc: object) -> None:
        self.now -= 1


@given(delays=st.lists(st.integers(0, 2), max_size=30), limit=st.integers(1, 6))
def test_order_and_bound_hold_for_any_timing(delays: list[int], limit: int) -> None:
    gauge = Gauge()

    async def work(i: int) -> int:
        with gauge:
            await asyncio.sleep(delays[i] / 1000)
            return i * 3

    got = asyncio.run(parallel_map(range(len(delays)), work, max_concurrent=limit))
    assert got == [i * 3 for i in range(len(delays))]
    assert gauge.peak <= limit


async def test_concurrency_reaches_the_limit() -> None:
    gauge = Gauge()
    release = asyncio.Event()

    async def work(i: int) -> int:
        with gauge:
            await release.wait()
            return i

    task = asyncio.create_task(parallel_map(range(10), work, max_concurrent=3))
    await asyncio.sleep(0.01)
    assert gauge.now == 3
    release.set()
    assert await asyncio.wait_for(task, HANG) == list(range(10))
    assert gauge.peak == 3


async def test_accepts_any_iterable_lazily() -> None:
    pulled = 0

    def gen() -> Iterator[int]:
        nonlocal pulled
        for i in range(1000):
            pulled += 1
            yield i

    started = 0
    gate = asyncio.Event()

    async def work(i: int) -> int:
        nonlocal started
        started += 1
        await gate.wait()
        return i

    task = asyncio.create_task(parallel_map(gen(), work, max_concurrent=4))
    await asyncio.sleep(0.01)
    assert pulled == 4 and started == 4  # not all 1000 coroutines up front
    gate.set()
    assert await asyncio.wait_for(task, HANG) == list(range(1000))


async def test_first_failure_cancels_the_rest_and_raises() -> None:
    cancelled: list[int] = []
    started: list[int] = []

    async def work(i: int) -> int:
        started.append(i)
        if i == 2:
            await asyncio.sleep(0.001)
            raise KeyError(i)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(i)
            raise
        return i

    with pytest.raises(KeyError):
        await asyncio.wait_for(parallel_map(range(100), work, max_concurrent=4), HANG)
    assert sorted(cancelled) == [0, 1, 3]  # the others were running and got cancelled
    assert len(started) == 4  # nothing new started after the failure


async def test_return_exceptions_keeps_going() -> None:
    async def work(i: int) -> int:
        if i % 3 == 0:
            raise ValueError(i)
        return i

    got = await parallel_map(range(7), work, max_concurrent=2, return_exceptions=True)
    assert [type(x).__name__ if isinstance(x, Exception) else x for x in got] == [
        "ValueError",
        1,
        2,
        "ValueError",
        4,
        5,
        "ValueError",
    ]


async def test_sync_functions_run_in_threads() -> None:
    main = threading.get_ident()
    threads: set[int] = set()
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            threads.add(threading.get_ident())
        time.sleep(0.001)
        return -i

    assert await parallel_map([1, 2, 3, 4], work, max_concurrent=2) == [-1, -2, -3, -4]
    assert main not in threads


async def test_lambda_returning_a_coroutine_is_awaited() -> None:
    async def double(x: int) -> int:
        return 2 * x

    assert await parallel_map([1, 2], lambda x: double(x)) == [2, 4]


async def test_empty_input_and_bad_limit() -> None:
    async def work(i: int) -> int:
        return i

    assert await parallel_map([], work) == []
    with pytest.raises(ValueError, match="max_concurrent"):
        await parallel_map([1], work, max_concurrent=0)


async def test_cancelling_parallel_map_cancels_workers() -> None:
    cancelled = 0

    async def work(i: int) -> int:
        nonlocal cancelled
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled += 1
            raise
        return i

    task = asyncio.create_task(parallel_map(range(10), work, max_concurrent=3))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled == 3


# -- parallel_first -------------------------------------------------------------------------


def _op(
    delay: float,
    result: int | None = None,
    error: Exception | None = None,
    log: list[str] | None = None,
) -> Callable[[], Awaitable[int]]:
    async def run() -> int:
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            if log is not None:
                log.append(f"cancelled {result}")
            raise
        if error is not None:
            raise error
        assert result is not None
        return result

    return run


async def test_first_success_wins_over_first_completed_failure() -> None:
    # The chapter's defect: the fastest task fails, a slower one succeeds -> we return it.
    index, value = await parallel_first(
        [
            _op(0.0, error=ConnectionError("down")),
            _op(0.02, result=2),
            _op(5.0, result=3),
        ]
    )
    assert (index, value) == (1, 2)


async def test_losers_are_cancelled_and_awaited() -> None:
    log: list[str] = []
    assert await parallel_first([_op(5.0, 1, log=log), _op(0.0, 2, log=log)]) == (1, 2)
    assert log == ["cancelled 1"]  # already unwound when parallel_first returns


async def test_all_failed_raises_exception_group_in_input_order() -> None:
    errors = [ValueError("a"), KeyError("b"), OSError("c")]
    with pytest.raises(ExceptionGroup) as info:
        await parallel_first(
            [_op(0.003, error=errors[0]), _op(0.0, error=errors[1]), _op(0.001, error=errors[2])]
        )
    assert list(info.value.exceptions) == errors


async def test_op_raising_at_call_time_is_a_failure() -> None:
    def broken() -> Awaitable[int]:
        raise RuntimeError("cannot even start")

    assert await parallel_first([broken, _op(0.0, 5)]) == (1, 5)


async def test_timeout_cancels_everything() -> None:
    log: list[str] = []
    with pytest.raises(TimeoutError):
        await parallel_first([_op(5.0, 1, log=log), _op(5.0, 2, log=log)], timeout=0.01)
    assert sorted(log) == ["cancelled 1", "cancelled 2"]


async def test_timeout_not_hit_when_success_comes_first() -> None:
    assert await parallel_first([_op(0.0, error=ValueError()), _op(0.0, 4)], timeout=HANG) == (1, 4)


async def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one"):
        await parallel_first([])
    with pytest.raises(ValueError, match="timeout"):
        await parallel_first([_op(0.0, 1)], timeout=-1)


async def test_cancelling_parallel_first_cancels_operations() -> None:
    log: list[str] = []
    task = asyncio.create_task(parallel_first([_op(5.0, 1, log=log), _op(5.0, 2, log=log)]))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(log) == ["cancelled 1", "cancelled 2"]
