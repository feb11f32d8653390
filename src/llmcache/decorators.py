"""``@cached_generate``: put a cache in front of any sync or async generate function.

The key is computed from the call's *bound* arguments with defaults applied, so
``f("x", model="m")`` and ``f(prompt="x", model="m")`` share an entry, plus the function's
identity (`llmcache.keys.function_identity`: its name, code and captured values) and the
namespace. Arguments are keyed by type and value: ``1`` and ``1.0``, ``b"x"`` and ``"x"``,
a tuple and a list are different calls. Concurrent callers with one key make one call
(single-flight); the others get its result (their own copy of mutable data) or its
exception. Exceptions are never stored.
When the store is shared between processes and can hold locks (a `RedisStore`, alone or as a
tier of a `TieredStore`), callers in all those processes make one call (see
`llmcache.distributed`). An async function over a store with coroutine methods (``aget``,
``aset``: `RedisStore`) awaits them, so a round trip never blocks the event loop.

>>> from llmcache import cached_generate
>>> calls = []
>>> @cached_generate
... def generate(prompt: str, model: str = "m", temperature: float = 0.0) -> str:
...     calls.append(prompt)
...     return prompt.upper()
>>> generate("hi"), generate(prompt="hi", model="m"), len(calls)
('HI', 'HI', 1)
>>> generate.cache_info().hits
1
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast, overload

from llmcache._decorator_state import MISS as _MISS
from llmcache._decorator_state import CacheInfo, CallState, KeyFunc
from llmcache._semantic_glue import SemanticTier
from llmcache._values import for_followers
from llmcache.policy import CachePolicy, current_control
from llmcache.singleflight import AsyncSingleFlight, SingleFlight

__all__ = ["CacheInfo", "cached_generate"]

F = TypeVar("F", bound=Callable[..., Any])


def _wrap_sync(state: CallState, func: Callable[..., Any]) -> Callable[..., Any]:
    flight: SingleFlight[Any] = SingleFlight()
    shared_flight = state.flight

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key, fp, cacheable = state.key_of(args, kwargs)
        control = current_control()
        if not cacheable or not (control.read or control.write):
            return state.bypass(func, args, kwargs)
        if control.read:
            value = state.lookup(key, fp)
            if value is not _MISS:
                return value

        def compute() -> Any:
            request = (state._semantic_request(args, kwargs)
                       if state.semantic is not None else None)
            if control.read and request is not None:
                similar = state.semantic_lookup(request)
                if similar is not _MISS:
                    return similar
            state.misses += 1
            start = time.perf_counter()
            result = func(*args, **kwargs)
            state.miss_ms += (time.perf_counter() - start) * 1000.0
            if control.write:
                ttl = control.ttl or state.ttl
                state.store_result(key, fp, result, ttl)
                state.semantic_store(request, fp, result, ttl)
            return result

        def find() -> Any:
            if control.read:  # another flight may have stored it since our lookup
                again = state.lookup(key, fp)
                if again is not _MISS:
                    return again
                if shared_flight is not None and control.write:
                    # Other processes may miss this key too: one call among all of them.
                    return shared_flight.do(key, lambda: state.lookup(key, fp), compute,
                                            miss=_MISS)
            return compute()

        def lead() -> tuple[Any, Any]:
            # The followers' snapshot is taken before the leader's caller can mutate it.
            value = find()
            return value, for_followers(value)

        (value, snapshot), shared = flight.do_ex(key, lead)
        # Followers get what the leader got, their own copy of mutable data, whatever the
        # policy stored (a value it did not store, such as a set, is shared as it is).
        return for_followers(snapshot) if shared else value

    return wrapper


def _wrap_async(state: CallState, func: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    flight: AsyncSingleFlight[Any] = AsyncSingleFlight()
    shared_flight = state.flight
    alookup = state.alookup if state.aget is not None else None

    async def lookup(key: str, fp: str) -> Any:
        return await alookup(key, fp) if alookup is not None else state.lookup(key, fp)

    async def missed(args: tuple[Any, ...], kwargs: dict[str, Any], key: str, fp: str,
                     control: Any) -> Any:
        async def compute() -> Any:
            request = (state._semantic_request(args, kwargs)
                       if state.semantic is not None else None)
            if control.read and request is not None:
                similar = await state.asemantic_lookup(request)
                if similar is not _MISS:
                    return similar
            state.misses += 1
            start = time.perf_counter()
            result = await func(*args, **kwargs)
            state.miss_ms += (time.perf_counter() - start) * 1000.0
            if control.write:
                ttl = control.ttl or state.ttl
                await state.astore_result(key, fp, result, ttl)
                await state.asemantic_store(request, fp, result, ttl)
            return result

        async def find() -> Any:
            if control.read:
                again = await lookup(key, fp)
                if again is not _MISS:
                    return again
                if shared_flight is not None and control.write:
                    return await shared_flight.ado(key, lambda: lookup(key, fp), compute,
                                                   miss=_MISS)
            return await compute()

        async def lead() -> tuple[Any, Any]:
            value = await find()
            return value, for_followers(value)

        (value, snapshot), shared = await flight.do_ex(key, lead)
        return for_followers(snapshot) if shared else value

    # Two wrappers, chosen here, so the hit path of a sync store is exactly what it was.
    if alookup is None:
        @functools.wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            key, fp, cacheable = state.key_of(args, kwargs)
            control = current_control()
            if not cacheable or not (control.read or control.write):
                return await state.bypass(func, args, kwargs)
            if control.read:
                value = state.lookup(key, fp)
                if value is not _MISS:
                    return value
            return await missed(args, kwargs, key, fp, control)
    else:
        @functools.wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            key, fp, cacheable = state.key_of(args, kwargs)
            control = current_control()
            if not cacheable or not (control.read or control.write):
                return await state.bypass(func, args, kwargs)
            if control.read:
                value = await alookup(key, fp)
                if value is not _MISS:
                    return value
            return await missed(args, kwargs, key, fp, control)

    return wrapper


@overload
def cached_generate(func: F, /) -> F: ...


@overload
def cached_generate(*, cache: Any = None, ttl: float | None = None,
                    policy: CachePolicy | None = None, key: KeyFunc | None = None,
                    namespace: str = "", semantic: SemanticTier | None = None,
                    ) -> Callable[[F], F]: ...


def cached_generate(func: F | None = None, /, *, cache: Any = None, ttl: float | None = None,
                    policy: CachePolicy | None = None, key: KeyFunc | None = None,
                    namespace: str = "", semantic: SemanticTier | None = None,
                    ) -> F | Callable[[F], F]:
    """Cache a sync or async generate function; usable bare or with options.

    ``cache``: a store (default: a private ``MemoryStore(max_entries=1024)``) or a
    ``ResponseCache``. ``ttl``: seconds entries live (default: the policy's). ``policy``: a
    `CachePolicy` (default: temperature threshold 0.3, read from a ``temperature`` argument
    or ``options["temperature"]``; the two must agree when both are given). ``key``: a
    callable taking the function's arguments and returning data to key on instead of all
    the arguments. ``namespace``: keeps tenants or applications apart. ``semantic``: a
    `llmcache.vector.SemanticCache` asked after an exact miss, for a similar earlier call's
    answer (the function needs a ``prompt`` or ``messages`` argument; every other argument
    scopes the match).

    The function is keyed by what it computes (`llmcache.keys.function_identity`): its
    name, its code and the values it captured, so two closures from one factory never share
    entries, and a module-level function keeps its entries across restarts. On a store or
    semantic tier passed in, a function whose identity cannot be derived (it captures a
    client object or a list, or is a method bound to an object) raises TypeError here;
    ``key=`` or ``namespace=`` says the caller keeps such functions apart.

    Arguments may be str, bytes, numbers, bools, None, enum members, and lists, tuples,
    sets and dicts of them; anything else raises TypeError naming the argument (or use
    ``key=``). A call whose text the cache cannot hold (a lone surrogate) runs without the
    cache and counts as a bypass.

    Return values may be str, JSON-like data (dicts, lists, tuples, numbers, bools, None)
    and ``AIResponse``/``CachedResponse``; anything else raises TypeError and nothing is
    stored. A hit gives back the same types (a tuple stays a tuple). The wrapper has
    ``cache_info()``, ``cache_counters()`` (hits, misses, errors, bypasses ...),
    ``cache_clear()``, ``uncached`` (the original function) and ``cache`` (the store).

    >>> import asyncio
    >>> @cached_generate(ttl=60, namespace="docs")
    ... async def agenerate(prompt: str) -> dict:
    ...     return {"answer": prompt[::-1]}
    >>> asyncio.run(agenerate("abc"))
    {'answer': 'cba'}
    """

    def decorate(f: F) -> F:
        state = CallState(f, cache=cache, ttl=ttl, policy=policy or CachePolicy(), key=key,
                        namespace=namespace, semantic=semantic)
        if inspect.iscoroutinefunction(f):
            wrapper = _wrap_async(state, f)
        else:
            wrapper = _wrap_sync(state, f)
        wrapper.cache_info = state.info  # type: ignore[attr-defined]
        wrapper.cache_clear = state.clear  # type: ignore[attr-defined]
        wrapper.uncached = f  # type: ignore[attr-defined]
        wrapper.cache = state.store  # type: ignore[attr-defined]
        wrapper.cache_counters = state.counters  # type: ignore[attr-defined]
        state.mark(wrapper)
        _register_metrics(state)
        return cast(F, wrapper)

    if func is not None:
        return decorate(func)
    return decorate


def _register_metrics(state: CallState) -> None:
    from llmcache.metrics import metrics

    metrics.register_source(f"cached_generate:{state.name}", state.counters)
