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
`llmcache.distributed`). An async function awaits the store's coroutine face, so a network
tier's round trip never blocks the event loop.

The wrapper is a door of the cache pipeline (`llmcache._pipeline`): the same decisions and
counts as `CachedClient` and the other doors.

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
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, cast, overload

from llmcache._pipeline import AsyncRunner, CacheInfo, Counters, Runner
from llmcache._pipeline.function_key import FunctionKey, HasStore, KeyFunc, resolve_store
from llmcache._pipeline.function_values import FUNCTION_VALUES
from llmcache._pipeline.semantic import SemanticTier
from llmcache.keys import IDENTITY_ATTR, callable_name, function_identity
from llmcache.policy import CachePolicy
from llmcache.stores.base import Store, check_ttl

__all__ = ["CacheInfo", "CachedFunction", "cached_generate"]

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class CachedFunction(Protocol[P, R_co]):
    """What ``@cached_generate`` gives back: the function, called as before (a coroutine
    function stays one), plus its cache.

    ``cache_info()``: `CacheInfo` (hits, misses, maxsize, currsize) as ``functools.lru_cache``
    shapes it; ``cache_counters()``: every count (hits, misses, coalesced, bypasses,
    uncacheable, errors, semantic_hits, tokens_saved, time_saved_ms); ``cache_clear()``:
    empty the store and the counts; ``uncached``: the original function; ``cache``: the
    store.
    """

    __name__: str
    __qualname__: str

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    def cache_info(self) -> CacheInfo: ...

    def cache_counters(self) -> dict[str, int | float]: ...

    def cache_clear(self) -> None: ...

    @property
    def uncached(self) -> Callable[P, R_co]: ...

    @property
    def cache(self) -> Store: ...


class _Cache(Generic[R]):
    """The cache of one decorated function: its store, counters and runner."""

    def __init__(
        self,
        func: Callable[..., R],
        *,
        cache: Store | HasStore | None,
        ttl: float | None,
        policy: CachePolicy,
        key: KeyFunc | None,
        namespace: str,
        semantic: SemanticTier | None,
    ) -> None:
        self.store = resolve_store(cache)
        name = callable_name(func)
        # Strict where the function's entries can meet another function's: a store or
        # semantic tier passed in (others may use it, in this process or another), unless
        # key= or namespace= says the caller has seen to it.
        private = cache is None and semantic is None
        self.ident = function_identity(func, strict=not (private or key is not None or namespace))
        self.planner = FunctionKey(
            func,
            name=name,
            ident=self.ident,
            policy=policy,
            ttl=check_ttl(ttl) if ttl is not None else policy.ttl,
            key=key,
            namespace=namespace,
        )
        self.counters = Counters(name)
        request_of = self.planner.semantic_request if semantic is not None else None
        self.runner: Any = (AsyncRunner if inspect.iscoroutinefunction(func) else Runner)(
            self.store,
            FUNCTION_VALUES,
            self.counters,
            policy=policy,
            semantic=semantic,
            request_of=request_of,
            model_of=self.planner.model_of,
        )

    def info(self) -> CacheInfo:
        c = self.counters
        return CacheInfo(
            c.hits + c.coalesced,
            c.misses,
            getattr(self.store, "max_entries", None),
            len(self.store),
        )

    def counts(self) -> dict[str, int | float]:
        return self.counters.as_dict()

    def clear(self) -> None:
        self.store.clear()
        self.counters.reset()


def _door(func: Callable[..., Any], cache: _Cache[Any]) -> Callable[..., Any]:
    plan, call = cache.planner.plan, cache.runner.call
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def adoor(*args: Any, **kwargs: Any) -> Any:
            return await call(plan(args, kwargs), func, args, kwargs)

        return adoor

    @functools.wraps(func)
    def door(*args: Any, **kwargs: Any) -> Any:
        return call(plan(args, kwargs), func, args, kwargs)

    return door


@overload
def cached_generate(func: Callable[P, R], /) -> CachedFunction[P, R]: ...


@overload
def cached_generate(
    *,
    cache: Store | HasStore | None = None,
    ttl: float | None = None,
    policy: CachePolicy | None = None,
    key: KeyFunc | None = None,
    namespace: str = "",
    semantic: SemanticTier | None = None,
) -> Callable[[Callable[P, R]], CachedFunction[P, R]]: ...


def cached_generate(
    func: Callable[P, R] | None = None,
    /,
    *,
    cache: Store | HasStore | None = None,
    ttl: float | None = None,
    policy: CachePolicy | None = None,
    key: KeyFunc | None = None,
    namespace: str = "",
    semantic: SemanticTier | None = None,
) -> CachedFunction[P, R] | Callable[[Callable[P, R]], CachedFunction[P, R]]:
    """Cache a sync or async generate function; usable bare or with options.

    ``cache``: a store (default: a private ``MemoryStore(max_entries=1024)``) or a
    ``ResponseCache``. ``ttl``: seconds entries live (default: the policy's). ``policy``: a
    `CachePolicy` (default: temperature threshold 0.3, read from a ``temperature`` argument
    or ``options["temperature"]``; the two must agree when both are given). A call that
    carries no temperature is cached; one above the threshold without a seed is not (counted
    in ``uncacheable``, and logged once). ``key``: a callable taking the function's
    arguments and returning data to key on instead of all the arguments. ``namespace``:
    keeps tenants or applications apart. ``semantic``: a `llmcache.vector.SemanticCache`
    asked after an exact miss, for a similar earlier call's answer (the function needs a
    ``prompt`` or ``messages`` argument; every other argument scopes the match).

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
    stored. A hit gives back the same types (a tuple stays a tuple). The wrapper is a
    `CachedFunction`: ``cache_info()``, ``cache_counters()``, ``cache_clear()``,
    ``uncached`` (the original function) and ``cache`` (the store).

    >>> import asyncio
    >>> @cached_generate(ttl=60, namespace="docs")
    ... async def agenerate(prompt: str) -> dict:
    ...     return {"answer": prompt[::-1]}
    >>> asyncio.run(agenerate("abc"))
    {'answer': 'cba'}
    """

    def decorate(f: Callable[P, R]) -> CachedFunction[P, R]:
        state = _Cache(
            f,
            cache=cache,
            ttl=ttl,
            policy=policy or CachePolicy(),
            key=key,
            namespace=namespace,
            semantic=semantic,
        )
        wrapper: Any = _door(f, state)
        wrapper.cache_info = state.info
        wrapper.cache_clear = state.clear
        wrapper.cache_counters = state.counts
        wrapper.uncached = f
        wrapper.cache = state.store
        # Functions that capture this wrapper are identified by this function's identity.
        setattr(wrapper, IDENTITY_ATTR, (state.ident, id(wrapper)))
        _register_metrics(state)
        return cast("CachedFunction[P, R]", wrapper)

    if func is not None:
        return decorate(func)
    return decorate


def _register_metrics(state: _Cache[Any]) -> None:
    from llmcache.metrics import metrics

    metrics.register_source(f"cached_generate:{state.counters.name}", state.counts)
