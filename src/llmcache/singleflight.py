"""One upstream call per key among concurrent callers.

When many callers miss the same key at once, the first (the *leader*) makes the call and the
others (*followers*) wait for its outcome: its result, or its exception. Nothing is shared
after the call ends, so a later caller starts a fresh flight (by then the cache has the
answer, or the call failed and should be retried).

`SingleFlight` serves threads; `AsyncSingleFlight` serves asyncio tasks. In the async twin
the call runs as its own task and every caller awaits it through `asyncio.shield`, so a
cancelled leader does not cancel the call the followers wait for; the call is cancelled
only when every caller has gone.

Re-entry never deadlocks. A call that would wait on a flight it leads itself (a decorated
function calling itself with the same arguments, or ``f(a) -> g(b) -> f(a)``) would wait
forever, so it runs on its own instead: it calls its function without waiting (one more
upstream call, counted as a miss by the decorator). What "itself" means is the *call
chain*: a `contextvars.ContextVar` holds the flights the current chain leads. A thread
keeps it for the leader's call; an asyncio task inherits it from the code that created it
(so the task `AsyncSingleFlight` creates for the call, and any task the call starts, are
in the chain), and so does a function run by `asyncio.to_thread`. A thread started with
`threading.Thread` or `ThreadPoolExecutor.submit` starts a chain of its own: a leader that
blocks on such a thread, which waits on the leader's key, is not seen (run the thread with
``contextvars.copy_context().run`` to keep it in the chain).

A cycle across chains (thread 1 leads ``a`` and waits on ``b`` while thread 2 leads ``b``
and waits on ``a``; tasks alike) is *detected*, not bounded by a timeout: every wait of a
chain that leads flights is an edge of a process-wide wait-for graph (each flight the
waiter's chain leads waits on the flight it waits on), and a wait that would close a cycle
runs on its own instead, so the graph never holds one. The check and the edge are taken
under one lock, so of two chains closing a cycle at once exactly one runs on its own.
A caller that leads nothing (the usual follower) cannot be in a cycle and skips the graph.
`llmcache.distributed` puts the cross-process locks this process holds into the same graph
(`InFlight`, `lead`, `begin_wait`), so a chain never waits on a lock it holds itself.

>>> flight = SingleFlight()
>>> flight.do("k", lambda: 42)
42
>>> flight.do("k", lambda: flight.do("k", lambda: 42) + 1)  # re-entry: runs on its own
43
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

__all__ = [
    "AsyncSingleFlight",
    "InFlight",
    "SingleFlight",
    "begin_wait",
    "end_wait",
    "lead",
    "unlead",
]

T = TypeVar("T")


class InFlight:
    """A call in progress that other callers may wait on (a single-flight call, or a shared
    lock this process holds): a node of the wait-for graph.

    `blocked_on` lists the flights the chains leading this one wait on now (one entry per
    wait, so two waits on one flight are two entries); read and written under the graph's
    lock only.
    """

    __slots__ = ("blocked_on",)

    def __init__(self) -> None:
        self.blocked_on: list[InFlight] = []


Chain = frozenset[InFlight]

# The flights the current call chain leads (see the module docstring). Tasks and
# `asyncio.to_thread` inherit it; set only on a miss, so a hit never touches it.
_leading: contextvars.ContextVar[Chain] = contextvars.ContextVar(
    "llmcache_leading", default=frozenset()
)
_graph_lock = threading.Lock()


def lead(flight: InFlight) -> contextvars.Token[Chain]:
    """Mark the current chain as leading `flight` until `unlead` is given the token."""
    return _leading.set(_leading.get() | {flight})


def unlead(token: contextvars.Token[Chain]) -> None:
    """End what `lead` started (in the same context: the same thread or task)."""
    _leading.reset(token)


def begin_wait(flight: InFlight) -> Chain | None:
    """Record that the current chain is about to wait on `flight`.

    Returns ``None`` when that wait would never end (the chain leads `flight`, or `flight`
    waits, through other chains, on a flight this chain leads): the caller must run on its
    own instead. Otherwise returns a value to hand to `end_wait` once the wait is over.
    """
    chain = _leading.get()
    if flight in chain:
        return None
    if not chain:
        return chain  # a chain that leads nothing is no one's blocker: no edge needed
    with _graph_lock:
        if _reaches(flight, chain):
            return None
        for held in chain:
            held.blocked_on.append(flight)
    return chain


def end_wait(flight: InFlight, chain: Chain) -> None:
    """Remove the edges `begin_wait` added for this wait."""
    if chain:
        with _graph_lock:
            for held in chain:
                held.blocked_on.remove(flight)


def _reaches(start: InFlight, targets: Chain) -> bool:
    """Whether `start` waits, directly or through other flights, on one of `targets`."""
    stack, seen = [start], {start}
    while stack:
        for nxt in stack.pop().blocked_on:
            if nxt in targets:
                return True
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return False


class _Call(InFlight):
    __slots__ = ("done", "error", "result", "waiters")

    def __init__(self) -> None:
        super().__init__()
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
        """Like `do`, and also say whether the result came from another caller's call.

        A call whose wait would never end (re-entry, a cycle) runs `fn` on its own and
        returns ``(fn(), False)``.
        """
        with self._lock:
            call = self._calls.get(key)
            if call is None:
                call = self._calls[key] = _Call()
                leader = True
            else:
                call.waiters += 1
                leader = False
        if not leader:
            return self._follow(call, fn)
        token = lead(call)
        try:
            call.result = fn()
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            unlead(token)
            with self._lock:
                del self._calls[key]
            call.done.set()
        return call.result, False

    def _follow(self, call: _Call, fn: Callable[[], T]) -> tuple[T, bool]:
        waiting = begin_wait(call)
        if waiting is None:
            return fn(), False
        try:
            call.done.wait()
        finally:
            end_wait(call, waiting)
        if call.error is not None:
            raise call.error
        return call.result, True

    def in_flight(self) -> int:
        """How many keys have a call running now."""
        with self._lock:
            return len(self._calls)


class _AsyncCall(InFlight):
    __slots__ = ("callers", "task")

    task: asyncio.Task[Any]

    def __init__(self) -> None:
        super().__init__()
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
        """Like `do`, and also say whether the result came from another caller's call.

        A call whose wait would never end (re-entry from the call's own task or a task it
        started, a cycle) awaits `fn()` on its own and returns ``(result, False)``.
        """
        loop = asyncio.get_running_loop()
        slot = (id(loop), key)
        call = self._calls.get(slot)
        if call is None:
            call = self._calls[slot] = _AsyncCall()
            call.task = loop.create_task(_run(fn, call))
            call.task.add_done_callback(lambda _t: self._forget(slot, call))
            return await self._await(call), False
        waiting = begin_wait(call)
        if waiting is None:
            return await fn(), False
        try:
            return await self._await(call), True
        finally:
            end_wait(call, waiting)

    async def _await(self, call: _AsyncCall) -> T:
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
        return result

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


async def _run(fn: Callable[[], Awaitable[T]], call: _AsyncCall) -> T:
    # The task has its own copy of the creator's context: marking it here puts the call in
    # the chain of everything it runs, and in no one else's.
    lead(call)
    return await fn()
