"""One upstream call per key among concurrent callers.

When many callers miss the same key at once, the first (the *leader*) makes the call and the
others (*followers*) wait for its outcome: its result, or its exception. Nothing is shared
after the call ends, so a later caller starts a fresh flight (by then the cache has the
answer, or the call failed and should be retried).

`SingleFlight` serves threads; `AsyncSingleFlight` serves asyncio tasks. In the async twin
the call runs as its own task and every caller awaits it through `asyncio.shield`, so a
cancelled leader does not cancel the call the followers wait for; the call is cancelled
only when every caller has gone.

>>> flight = SingleFlight()
>>> flight.do("k", lambda: 42)
42
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

__all__ = ["AsyncSingleFlight", "SingleFlight"]

T = TypeVar("T")


class _Call:
    __slots__ = ("done", "error", "result", "waiters")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.waiters = 0


class SingleFlight(Generic[T]):
    """Collapse concurrent calls with one key, across threads, into one call.

    `do(key, fn)` returns ``(fn(), shared)`` semantics through `do_ex`; `do` returns just the
    value. Followers re-raise the leader's exception.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, _Call] = {}

    def do(self, key: str, fn: Callable[[], T]) -> T:
        """Run `fn` unless a call for `key` is in flight; then wait for that call's outcome."""
        return self.do_ex(key, fn)[0]

    def do_ex(self, key: str, fn: Callable[[], T]) -> tuple[T, bool]:
        """Like `do`, and also say whether the result came from another caller's call."""
        with self._lock:
            call = self._calls.get(key)
            if call is None:
                call = self._calls[key] = _Call()
                leader = True
            else:
                call.waiters += 1
                leader = False
        if not leader:
            call.done.wait()
            if call.error is not None:
                raise call.error
            return call.result, True
        try:
            call.result = fn()
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            with self._lock:
                del self._calls[key]
            call.done.set()
        return call.result, False

    def in_flight(self) -> int:
        """How many keys have a call running now."""
        with self._lock:
            return len(self._calls)


class _AsyncCall:
    __slots__ = ("callers", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.callers = 0


class AsyncSingleFlight(Generic[T]):
    """The asyncio twin of `SingleFlight`.

    >>> async def main():
    ...     flight = AsyncSingleFlight()
    ...     async def call():
    ...         await asyncio.sleep(0.01)
    ...         return "answer"
    ...     return await asyncio.gather(*(flight.do("k", call) for _ in range(3)))
    >>> asyncio.run(main())
    ['answer', 'answer', 'answer']
    """

    def __init__(self) -> None:
        # Keyed by (loop, key): a task belongs to one event loop and cannot be awaited from
        # another, so callers on different loops (threads running asyncio.run) never share.
        self._calls: dict[tuple[int, str], _AsyncCall] = {}

    async def do(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Await `fn()` unless a call for `key` is in flight; then await that call."""
        return (await self.do_ex(key, fn))[0]

    async def do_ex(self, key: str, fn: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Like `do`, and also say whether the result came from another caller's call."""
        loop = asyncio.get_running_loop()
        slot = (id(loop), key)
        call = self._calls.get(slot)
        shared = call is not None
        if call is None:
            call = self._calls[slot] = _AsyncCall(loop.create_task(_run(fn)))
            call.task.add_done_callback(lambda _t: self._forget(slot, call))
        call.callers += 1
        try:
            result: T = await asyncio.shield(call.task)
        except asyncio.CancelledError:
            call.callers -= 1
            if call.callers == 0 and not call.task.done():
                # Nobody is left to receive the answer: stop the upstream call.
                call.task.cancel()
            raise
        call.callers -= 1
        return result, shared

    def _forget(self, slot: tuple[int, str], call: _AsyncCall) -> None:
        if self._calls.get(slot) is call:
            del self._calls[slot]
        if not call.task.cancelled():
            # Mark the exception as retrieved: when every caller was cancelled, nobody else
            # reads it, and asyncio would log "exception was never retrieved".
            call.task.exception()

    def in_flight(self) -> int:
        """How many keys have a call running now (on any loop)."""
        return len(self._calls)


async def _run(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()
