"""Bounded-concurrency helpers: `parallel_map` and `parallel_first`.

`parallel_map` runs a pool of at most ``max_concurrent`` workers pulling from the input
iterator, so a million items never become a million coroutines; the first failure cancels the
rest. `parallel_first` returns the first *successful* result, not the first task to finish
when that one failed.

>>> import asyncio
>>> async def square(x: int) -> int:
...     return x * x
>>> asyncio.run(parallel_map(range(5), square, max_concurrent=2))
[0, 1, 4, 9, 16]
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Awaitable, Callable, Iterable, Sized
from typing import Any, Literal, TypeVar, overload

if sys.version_info < (3, 11):  # pragma: no cover - the backport of PEP 654 on 3.10
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = ["parallel_first", "parallel_map"]

T = TypeVar("T")
R = TypeVar("R")

_PENDING: Any = object()  # placeholder for a result not computed yet


def _is_async(func: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 - objects with an async __call__
    return call is not None and inspect.iscoroutinefunction(call)


@overload
async def parallel_map(
    items: Iterable[T],
    func: Callable[[T], Awaitable[R]],
    *,
    max_concurrent: int = 5,
    return_exceptions: Literal[False] = False,
) -> list[R]: ...
@overload
async def parallel_map(
    items: Iterable[T],
    func: Callable[[T], Awaitable[R]],
    *,
    max_concurrent: int = 5,
    return_exceptions: Literal[True],
) -> list[R | Exception]: ...
@overload
async def parallel_map(
    items: Iterable[T],
    func: Callable[[T], R],
    *,
    max_concurrent: int = 5,
    return_exceptions: Literal[False] = False,
) -> list[R]: ...
@overload
async def parallel_map(
    items: Iterable[T],
    func: Callable[[T], R],
    *,
    max_concurrent: int = 5,
    return_exceptions: Literal[True],
) -> list[R | Exception]: ...


async def parallel_map(
    items: Iterable[Any],
    func: Callable[[Any], Any],
    *,
    max_concurrent: int = 5,
    return_exceptions: bool = False,
) -> list[Any]:
    """Apply ``func`` to every item with at most ``max_concurrent`` calls running at once.

    Results come back in input order. ``func`` may be ``async def`` or a plain function (run
    in a thread with `asyncio.to_thread`; note a thread cannot be stopped, only abandoned).
    On the first exception every other call is cancelled and the exception is raised; with
    ``return_exceptions=True`` exceptions are returned in place and the others go on.

    >>> import asyncio
    >>> def parse(s: str) -> int:
    ...     return int(s)
    >>> asyncio.run(parallel_map(["1", "x", "3"], parse, return_exceptions=True))
    [1, ValueError("invalid literal for int() with base 10: 'x'"), 3]
    """
    if type(max_concurrent) is not int or max_concurrent < 1:
        raise ValueError(f"max_concurrent: expected a positive int, got {max_concurrent!r}")
    is_async = _is_async(func)
    source = enumerate(items)
    results: list[Any] = []

    async def call(item: Any) -> Any:
        if is_async:
            return await func(item)
        value = await asyncio.to_thread(func, item)
        # A plain function that returns an awaitable (a lambda around a coroutine): await it.
        return await value if inspect.isawaitable(value) else value

    async def worker() -> None:
        # Pull one item at a time: a single-threaded event loop makes next() race-free.
        for index, item in source:
            results.append(_PENDING)
            try:
                results[index] = await call(item)
            except Exception as exc:
                if not return_exceptions:
                    raise
                results[index] = exc

    # No more workers than items when the count is known (a list of 2 needs 2 workers).
    size = len(items) if isinstance(items, Sized) else max_concurrent
    if size == 0:
        return results
    workers = [asyncio.ensure_future(worker()) for _ in range(min(max_concurrent, size))]
    try:
        done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
        for task in workers:  # a failure (the others are cancelled in `finally`)
            if task in done and not task.cancelled():
                exc = task.exception()
                if exc is not None:
                    raise exc
    finally:
        await _cancel_all(workers)
    return results


async def _cancel_all(tasks: Iterable[asyncio.Future[Any]]) -> None:
    pending = [t for t in tasks if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        # Wait for them to finish unwinding, so nothing outlives the call that started it.
        await asyncio.gather(*pending, return_exceptions=True)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # mark retrieved: no "exception was never retrieved" noise


async def parallel_first(
    operations: Iterable[Callable[[], Awaitable[R]]], *, timeout: float | None = None
) -> tuple[int, R]:
    """Run all ``operations`` at once; return ``(index, result)`` of the first to SUCCEED.

    The others are cancelled (and awaited). If every one fails, an ``ExceptionGroup`` of
    their errors (in input order) is raised; after ``timeout`` seconds without a success,
    ``TimeoutError`` with everything cancelled.

    >>> import asyncio
    >>> async def broken() -> str:
    ...     raise ConnectionError("down")
    >>> async def slow() -> str:
    ...     await asyncio.sleep(0.01)
    ...     return "ok"
    >>> asyncio.run(parallel_first([broken, slow]))
    (1, 'ok')
    """
    ops = list(operations)
    if not ops:
        raise ValueError("operations: at least one operation is required")
    if timeout is not None and not timeout >= 0:
        raise ValueError(f"timeout: expected a number >= 0 or None, got {timeout!r}")
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout

    async def invoke(op: Callable[[], Awaitable[R]]) -> R:
        return await op()  # inside the task: an op that raises at call time just fails

    tasks: list[asyncio.Task[R]] = []
    try:
        for op in ops:
            tasks.append(loop.create_task(invoke(op)))
        pending: set[asyncio.Task[R]] = set(tasks)
        while pending:
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            done, pending = await asyncio.wait(
                pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                raise TimeoutError(f"no operation succeeded within {timeout} s")
            for index, task in enumerate(tasks):  # lowest index wins among simultaneous ones
                if task in done and not task.cancelled() and task.exception() is None:
                    return index, task.result()
            for task in done:
                exc = None if task.cancelled() else task.exception()
                if exc is not None and not isinstance(exc, Exception):
                    raise exc  # KeyboardInterrupt, SystemExit: not an operation's failure
        errors: list[BaseException] = []
        for task in tasks:
            exc = asyncio.CancelledError() if task.cancelled() else task.exception()
            errors.append(exc if exc is not None else RuntimeError("no result"))
        # BaseExceptionGroup gives an ExceptionGroup when every error is an Exception.
        raise BaseExceptionGroup(f"all {len(tasks)} operations failed", errors)
    finally:
        await _cancel_all(tasks)
