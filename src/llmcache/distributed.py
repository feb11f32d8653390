"""Single-flight across processes and hosts, through short leases held in a shared store.

`singleflight` collapses concurrent misses inside one process. Here the process that wins
a lock key in the shared store (`LockProvider.try_lock`, e.g. Redis ``SET NX PX``) makes
the model call; the others poll the cache for its answer. The algorithm knows nothing of
Redis: any store implementing `LockProvider` (and, for coroutines, `AsyncLockProvider`)
takes part, and `flight_for` finds one in a store or among a `TieredStore`'s tiers.

- The holder's lease is renewed every third of its length (a thread, or a task), so a long
  model call keeps its lock; only the holder's token can renew or release it.
- The holder stores the answer *before* it releases the lock, so a waiter that sees the lock
  gone finds the answer, or (the call failed, or its result was not storable) takes the
  lock and calls the model itself.
- A holder that dies stops renewing: its lock expires after the lease and a waiter takes
  over.
- Waiting is bounded: past `wait` seconds a waiter calls the model itself. A lock service
  that fails (Redis down) means no coordination: every caller calls the model. Never a hang.
- A call never waits on a lock its own call chain holds (a decorated function calling
  itself, ``f(a) -> g(b) -> f(a)``): that wait could only end with `wait`, so it calls the
  model at once (counted in ``reentered``). The chain is `llmcache.singleflight`'s: a lock
  this process holds is a node of its wait-for graph while held, in the holder's chain (a
  thread, or a task and the tasks it starts), so a wait on a lock another chain of this
  process holds that would close a cycle (thread 1 holds ``a`` and waits on ``b``, thread 2
  holds ``b`` and waits on ``a``) calls the model at once too. Locks are told apart by
  provider object and key. A cycle across processes cannot be seen from here: `wait`
  bounds it.

Waiters poll rather than subscribe to a pub/sub channel: a message published before a
waiter subscribes is lost and a holder that dies publishes nothing, so a subscriber would
need the same polling as a fallback, plus a connection per waiter. With the in-process
single-flight in front, each process has at most one waiter per key, polling with a backoff
from 5 ms to 50 ms: at most ~20 cheap reads a second per process, and an answer picked up
at most 50 ms after it lands, next to model calls that take seconds.

>>> import threading
>>> class Locks:  # an in-memory LockProvider, for the example
...     lock_lease, lock_wait = 5.0, 1.0
...     def __init__(self): self.held, self.mutex = {}, threading.Lock()
...     def try_lock(self, key, lease):
...         with self.mutex:
...             return None if key in self.held else self.held.setdefault(key, "t")
...     def renew(self, key, token, lease): return self.held.get(key) == token
...     def unlock(self, key, token): return self.held.pop(key, None) == token
>>> flight = DistributedFlight(Locks(), lease=5.0, wait=1.0)
>>> flight.do("k", lambda: None, lambda: "answer")
'answer'
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol, TypeVar, runtime_checkable

from llmcache.singleflight import InFlight, begin_wait, end_wait, lead, unlead

__all__ = [
    "AsyncLockProvider",
    "DistributedFlight",
    "LockProvider",
    "find_lock_provider",
    "flight_for",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_POLL_FIRST = 0.005  # seconds between a waiter's first polls; doubles up to _POLL_MAX
_POLL_MAX = 0.05

# The locks this process holds now, by (id of the provider, key): nodes of the in-process
# wait-for graph, so that a waiter here can tell whether the holder's chain is its own, or
# waits on its own. An entry lives while its holder holds the lock (which keeps the provider,
# and so its id, alive).
_Ident = tuple[int, str]
_holders: dict[_Ident, InFlight] = {}
_holders_lock = threading.Lock()


@runtime_checkable
class LockProvider(Protocol):
    """A shared store that can hold short leases on keys.

    `try_lock` returns a token when the caller got the lock, ``None`` when another caller
    holds it, and raises when it cannot tell (the service is down). `renew` and `unlock` act
    only while `token` still holds the lock and say whether it did. `lock_lease` is the
    lease in seconds (0: the provider takes no part); `lock_wait` the bound on waiting.
    """

    lock_lease: float
    lock_wait: float

    def try_lock(self, key: str, lease: float) -> str | None: ...

    def renew(self, key: str, token: str, lease: float) -> bool: ...

    def unlock(self, key: str, token: str) -> bool: ...


@runtime_checkable
class AsyncLockProvider(LockProvider, Protocol):
    """A `LockProvider` with coroutine twins, used from async code."""

    async def atry_lock(self, key: str, lease: float) -> str | None: ...

    async def arenew(self, key: str, token: str, lease: float) -> bool: ...

    async def aunlock(self, key: str, token: str) -> bool: ...


def find_lock_provider(store: Any) -> LockProvider | None:
    """The `LockProvider` behind `store`: the store itself or, for a store with ``tiers``
    (`TieredStore`), the slowest tier that is one (the shared one). ``None`` if there is
    none or its ``lock_lease`` is 0."""
    candidates = [store]
    tiers = getattr(store, "tiers", None)
    if isinstance(tiers, tuple):
        candidates.extend(tiers)
    for candidate in reversed(candidates):
        if isinstance(candidate, LockProvider) and candidate.lock_lease > 0:
            return candidate
    return None


def flight_for(store: Any) -> DistributedFlight | None:
    """A `DistributedFlight` over `store`'s lock provider, or ``None`` when it has none."""
    provider = find_lock_provider(store)
    if provider is None:
        return None
    return DistributedFlight(provider, lease=provider.lock_lease, wait=provider.lock_wait)


class _Renewal:
    """Renews a held lease every third of its length from a daemon thread until stopped."""

    def __init__(self, provider: LockProvider, key: str, token: str, lease: float) -> None:
        self._stop = threading.Event()
        self._args = (provider, key, token, lease)
        self._thread = threading.Thread(target=self._run, name="llmcache-lease", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        provider, key, token, lease = self._args
        while not self._stop.wait(lease / 3):
            try:
                if not provider.renew(key, token, lease):
                    logger.warning(
                        "lost the lock of %s before the call ended: another "
                        "process may call the model too",
                        key,
                    )
                    return
            except Exception:  # a blip: the lease outlives two missed renewals
                continue

    def stop(self) -> None:
        # Not joined: the thread may be inside a renew round trip; the compare in `renew`
        # makes a late renewal after `unlock` a no-op.
        self._stop.set()


class _Waiting:
    """The waiting side of one `DistributedFlight.do` / `ado`: the polls' back-off, the
    deadline, and what a wait counts (written once for both loops)."""

    __slots__ = ("_bump", "_delay", "_key", "_wait", "deadline", "waited")

    def __init__(self, bump: Callable[[str], None], wait: float, key: str) -> None:
        self._bump = bump
        self._wait = wait
        self._key = key
        self.deadline = time.monotonic() + wait
        self._delay = _POLL_FIRST
        self.waited = False

    def next_pause(self) -> float | None:
        """Seconds to pause before the next poll, or ``None`` when the wait is over (the
        caller computes; counted and logged here)."""
        if not self.waited:
            self.waited = True
            self._bump("waited")
        now = time.monotonic()
        if now >= self.deadline:
            self._bump("wait_timeouts")
            logger.warning(
                "waited %.1fs for another process's answer to %s; calling the model here",
                self._wait,
                self._key,
            )
            return None
        pause = min(self._delay, self.deadline - now)
        self._delay = min(self._delay * 2, _POLL_MAX)
        return pause

    def found(self, value: Any, miss: Any) -> bool:
        """Whether a poll's `value` is another holder's answer (counted)."""
        if value is miss:
            return False
        self._bump("found")
        return True


class DistributedFlight:
    """Make one call per key across processes that share a `LockProvider`.

    `do(key, lookup, compute, miss=...)`: `lookup()` reads the cache (returns `miss` when
    absent); `compute()` calls the model *and stores the result*. `ado` is the coroutine
    twin (it uses `AsyncLockProvider` methods when the provider has them). Counters in
    `stats()`.
    """

    def __init__(self, provider: LockProvider, *, lease: float, wait: float) -> None:
        if not lease > 0 or not wait > 0:
            raise ValueError(f"lease and wait: expected seconds > 0, got {lease!r}, {wait!r}")
        self.provider = provider
        self.lease = float(lease)
        self.wait = float(wait)
        # Decided once: the provider's coroutines when it has them (see `_alock`).
        self._aprovider = provider if isinstance(provider, AsyncLockProvider) else None
        self._counts = {
            "led": 0,
            "waited": 0,
            "found": 0,
            "wait_timeouts": 0,
            "unavailable": 0,
            "reentered": 0,
        }

    def stats(self) -> dict[str, int]:
        """``led``: calls made holding the lock; ``waited``: callers that found it held;
        ``found``: answers read after waiting; ``wait_timeouts``: waits that passed `wait`;
        ``unavailable``: calls made without coordination because the lock service failed;
        ``reentered``: calls made at once because the lock was held by their own call chain
        (or by a chain of this process waiting on theirs)."""
        return dict(self._counts)

    def _bump(self, name: str) -> None:
        self._counts[name] += 1  # statistics only: a rare lost update under threads is fine

    def do(
        self, key: str, lookup: Callable[[], Any], compute: Callable[[], T], *, miss: Any = None
    ) -> T:
        """The value of `key`: read after another holder's call, or `compute()`d holding the
        lock (or without it: lock service down, `wait` passed, re-entry)."""
        ident = (id(self.provider), key)
        waiting = _Waiting(self._bump, self.wait, key)
        while True:
            try:
                token = self.provider.try_lock(key, self.lease)
            except Exception:
                self._bump("unavailable")
                return compute()
            if token is not None:
                return self._hold(ident, token, lookup, compute, miss)
            pause = waiting.next_pause()
            if pause is None or not self._pause(ident, pause):
                return compute()
            value = lookup()
            if waiting.found(value, miss):
                return value  # type: ignore[no-any-return]

    def _pause(self, ident: _Ident, seconds: float) -> bool:
        """Sleep between polls; ``False`` (at once) for a wait that would never end."""
        with self._waiting_here(ident) as ok:
            if ok:
                time.sleep(seconds)
        return ok

    @contextlib.contextmanager
    def _waiting_here(self, ident: _Ident) -> Iterator[bool]:
        """Around a pause between polls: while this process holds the lock itself, record
        that this chain waits on that holder, and yield ``False`` (counted as re-entered)
        when that wait would never end (see the module docstring)."""
        holder = _holders.get(ident)
        if holder is None:
            yield True
            return
        waiting = begin_wait(holder)
        if waiting is None:
            self._reentered(ident[1])
            yield False
            return
        try:
            yield True
        finally:
            end_wait(holder, waiting)

    def _reentered(self, key: str) -> None:
        self._bump("reentered")
        logger.debug(
            "the lock of %s is held by this call's own chain: calling the model without waiting",
            key,
        )

    def _hold(
        self,
        ident: _Ident,
        token: str,
        lookup: Callable[[], Any],
        compute: Callable[[], T],
        miss: Any,
    ) -> T:
        key = ident[1]
        renewal = _Renewal(self.provider, key, token, self.lease)
        holder, leading = _hold_here(ident)
        try:
            # The previous holder may have stored the answer between our miss and our lock.
            value = lookup()
            if value is not miss:
                self._bump("found")
                return value  # type: ignore[no-any-return]
            self._bump("led")
            return compute()
        finally:
            _release_here(ident, holder, leading)
            renewal.stop()
            with contextlib.suppress(Exception):  # unreleased, it expires after the lease
                self.provider.unlock(key, token)

    async def ado(
        self,
        key: str,
        lookup: Callable[[], Awaitable[Any]],
        compute: Callable[[], Awaitable[T]],
        *,
        miss: Any = None,
    ) -> T:
        """The coroutine twin of `do`."""
        ident = (id(self.provider), key)
        waiting = _Waiting(self._bump, self.wait, key)
        while True:
            try:
                token = await self._alock(key)
            except Exception:
                self._bump("unavailable")
                return await compute()
            if token is not None:
                return await self._ahold(ident, token, lookup, compute, miss)
            pause = waiting.next_pause()
            if pause is None or not await self._apause(ident, pause):
                return await compute()
            value = await lookup()
            if waiting.found(value, miss):
                return value  # type: ignore[no-any-return]

    async def _apause(self, ident: _Ident, seconds: float) -> bool:
        with self._waiting_here(ident) as ok:
            if ok:
                await asyncio.sleep(seconds)
        return ok

    async def _ahold(
        self,
        ident: _Ident,
        token: str,
        lookup: Callable[[], Awaitable[Any]],
        compute: Callable[[], Awaitable[T]],
        miss: Any,
    ) -> T:
        key = ident[1]
        holder, leading = _hold_here(ident)
        renewal = asyncio.create_task(self._arenew(key, token))
        try:
            value = await lookup()
            if value is not miss:
                self._bump("found")
                return value  # type: ignore[no-any-return]
            self._bump("led")
            return await compute()
        finally:
            _release_here(ident, holder, leading)
            renewal.cancel()  # not awaited: a late renewal after `unlock` is a no-op
            with contextlib.suppress(Exception):
                await self._aunlock(key, token)

    async def _arenew(self, key: str, token: str) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                if not await self._arenew_once(key, token):
                    logger.warning(
                        "lost the lock of %s before the call ended: another "
                        "process may call the model too",
                        key,
                    )
                    return
            except Exception:
                continue

    # The provider's coroutines when it has them, else its sync methods in a worker thread:
    # a lock round trip must not block the event loop.

    async def _alock(self, key: str) -> str | None:
        if self._aprovider is not None:
            return await self._aprovider.atry_lock(key, self.lease)
        return await asyncio.to_thread(self.provider.try_lock, key, self.lease)

    async def _arenew_once(self, key: str, token: str) -> bool:
        if self._aprovider is not None:
            return await self._aprovider.arenew(key, token, self.lease)
        return await asyncio.to_thread(self.provider.renew, key, token, self.lease)

    async def _aunlock(self, key: str, token: str) -> bool:
        if self._aprovider is not None:
            return await self._aprovider.aunlock(key, token)
        return await asyncio.to_thread(self.provider.unlock, key, token)


def _hold_here(ident: _Ident) -> tuple[InFlight, contextvars.Token[frozenset[InFlight]]]:
    """Register the lock just taken as held by this process and led by the current chain."""
    holder = InFlight()
    with _holders_lock:
        # A holder already there lost its lease (the lock was free for us to take): ours is
        # the one a waiter now waits on.
        _holders[ident] = holder
    return holder, lead(holder)


def _release_here(
    ident: _Ident, holder: InFlight, leading: contextvars.Token[frozenset[InFlight]]
) -> None:
    unlead(leading)
    with _holders_lock:
        if _holders.get(ident) is holder:
            del _holders[ident]
