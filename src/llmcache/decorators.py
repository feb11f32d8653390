"""``@cached_generate``: put a cache in front of any sync or async generate function.

The key is computed from the call's *bound* arguments with defaults applied, so
``f("x", model="m")`` and ``f(prompt="x", model="m")`` share an entry, plus the function's
qualified name and the namespace. Concurrent callers with one key make one call
(single-flight); the others get its result or its exception. Exceptions are never stored.
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
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple, TypeVar, cast, overload

from llmcache._semantic_glue import SemanticTier, request_from_args
from llmcache._values import restore_value, to_entry
from llmcache.distributed import flight_for
from llmcache.entry import CachedResponse
from llmcache.keys import canonical_call, fingerprint, hash_bytes
from llmcache.policy import CachePolicy, current_control
from llmcache.singleflight import AsyncSingleFlight, SingleFlight
from llmcache.stores.base import Store, check_ttl
from llmcache.stores.memory import MemoryStore

__all__ = ["CacheInfo", "cached_generate"]

F = TypeVar("F", bound=Callable[..., Any])
KeyFunc = Callable[..., Any]

_EMPTY = inspect.Parameter.empty
_FAST_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class CacheInfo(NamedTuple):
    """Counters of one decorated function, shaped like ``functools.lru_cache``'s."""

    hits: int
    misses: int
    maxsize: int | None
    currsize: int


class _Binder:
    """Maps a call's arguments to ``{parameter: value}`` with defaults applied.

    ``inspect.Signature.bind`` costs several microseconds, more than the whole cache hit is
    allowed; this does the common case (no ``*args``/``**kwargs``, no positional-only) with
    a zip and a dict update, and falls back to ``bind`` for everything else, including every
    call that is an error (so the user sees Python's own TypeError).
    """

    def __init__(self, func: Callable[..., Any]) -> None:
        self._sig = inspect.signature(func)
        params = list(self._sig.parameters.values())
        self._fast = all(p.kind in _FAST_KINDS for p in params)
        self._positional = tuple(p.name for p in params
                                 if p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self._names = frozenset(p.name for p in params)
        self._defaults = {p.name: p.default for p in params if p.default is not _EMPTY}
        self._count = len(params)

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if self._fast and len(args) <= len(self._positional):
            bound = dict(zip(self._positional, args, strict=False))
            if kwargs:
                for name in kwargs:
                    if name in bound or name not in self._names:
                        return self._slow(args, kwargs)
                bound.update(kwargs)
            if len(bound) < self._count:
                for name, default in self._defaults.items():
                    if name not in bound:
                        bound[name] = default
                if len(bound) < self._count:
                    return self._slow(args, kwargs)  # a required argument is missing
            return bound
        return self._slow(args, kwargs)

    def _slow(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        ba = self._sig.bind(*args, **kwargs)
        ba.apply_defaults()
        return dict(ba.arguments)


def _sampling(bound: Mapping[str, Any]) -> tuple[Any, Any]:
    """(temperature, seed) from the arguments or from an ``options`` mapping among them."""
    temperature, seed = bound.get("temperature"), bound.get("seed")
    options = bound.get("options")
    if options is not None and isinstance(options, Mapping):
        temperature = options.get("temperature", temperature)
        seed = options.get("seed", seed)
    return temperature, seed


class _Cached:
    """State shared by the sync and async wrappers of one function."""

    def __init__(self, func: Callable[..., Any], *, cache: Any, ttl: float | None,
                 policy: CachePolicy, key: KeyFunc | None, namespace: str,
                 semantic: SemanticTier | None = None) -> None:
        self.func = func
        self.semantic = semantic
        self.semantic_hits = 0
        self.store = _resolve_store(cache)
        self.policy = policy
        self.ttl = check_ttl(ttl) if ttl is not None else policy.ttl
        self.key = key
        self.namespace = namespace
        self.ident = f"{func.__module__}.{func.__qualname__}"
        self.binder = _Binder(func)
        self.check_sampling = policy.temperature_threshold is not None
        self.hits = self.misses = self.errors = self.tokens_saved = 0
        self.miss_ms = 0.0
        # Decided once, here, so the hit path never asks: a lock shared between processes
        # (None: in-process single-flight only), and the store's coroutine methods.
        self.flight = flight_for(self.store)
        aget, aset = getattr(self.store, "aget", None), getattr(self.store, "aset", None)
        self.aget: Any = aget if inspect.iscoroutinefunction(aget) else None
        self.aset: Any = aset if inspect.iscoroutinefunction(aset) else None

    def key_of(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str, bool]:
        """(key, fingerprint, cacheable) of a call."""
        bound = self.binder.bind(args, kwargs)
        cacheable = True
        if self.check_sampling:
            temperature, seed = _sampling(bound)
            if temperature is not None:
                cacheable = self.policy.cacheable(temperature=temperature, seed=seed)
        ident: Any = self.key(*args, **kwargs) if self.key is not None else bound
        data = canonical_call(self.ident, self.namespace, ident)
        return hash_bytes(data), fingerprint(data), cacheable

    def lookup(self, key: str, fp: str) -> Any:
        try:
            entry = self.store.get(key)
        except Exception:
            self.errors += 1
            return _MISS
        if entry is None or entry.fingerprint != fp:
            return _MISS
        try:
            value = restore_value(entry)
        except (ValueError, TypeError, KeyError):
            # An entry from a shared tier is untrusted input: a malformed one is a miss.
            self.errors += 1
            return _MISS
        self.hits += 1
        self.tokens_saved += entry.tokens_used
        return value

    async def alookup(self, key: str, fp: str) -> Any:
        """`lookup` through the store's ``aget`` (same checks, without blocking the loop)."""
        try:
            entry = await self.aget(key)
        except Exception:
            self.errors += 1
            return _MISS
        if entry is None or entry.fingerprint != fp:
            return _MISS
        try:
            value = restore_value(entry)
        except (ValueError, TypeError, KeyError):
            self.errors += 1
            return _MISS
        self.hits += 1
        self.tokens_saved += entry.tokens_used
        return value

    def _storable(self, fp: str, value: Any, ttl: float | None) -> CachedResponse | None:
        entry = to_entry(value, fingerprint=fp, ttl=ttl)
        if not self.policy.storable_reason(entry.metadata.get("done_reason")):
            return None
        return entry

    def store_result(self, key: str, fp: str, value: Any, ttl: float | None) -> None:
        """Validate and store a fresh result. Raises TypeError for unstorable values."""
        entry = self._storable(fp, value, ttl)
        if entry is None:
            return
        try:
            self.store.set(key, entry, ttl)
        except Exception:
            self.errors += 1

    async def astore_result(self, key: str, fp: str, value: Any, ttl: float | None) -> None:
        """`store_result`, through the store's ``aset`` when it has one."""
        if self.aset is None:
            self.store_result(key, fp, value, ttl)
            return
        entry = self._storable(fp, value, ttl)
        if entry is None:
            return
        try:
            await self.aset(key, entry, ttl)
        except Exception:
            self.errors += 1

    def _semantic_request(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        bound = self.binder.bind(args, kwargs)
        return request_from_args(bound, ident=self.ident, namespace=self.namespace)

    def semantic_lookup(self, request: Any) -> Any:
        """A similar earlier call's answer from the semantic tier, or `_MISS`."""
        if request is None or self.semantic is None:
            return _MISS
        try:
            hit = self.semantic.get(request)
            return _MISS if hit is None else self._semantic_value(hit)
        except Exception:
            self.errors += 1  # a failing semantic tier is a miss, never a failed call
            return _MISS

    async def asemantic_lookup(self, request: Any) -> Any:
        if request is None or self.semantic is None:
            return _MISS
        try:
            hit = await self.semantic.aget(request)
            return _MISS if hit is None else self._semantic_value(hit)
        except Exception:
            self.errors += 1
            return _MISS

    def _semantic_value(self, hit: Any) -> Any:
        value = restore_value(hit.entry)
        self.hits += 1
        self.semantic_hits += 1
        self.tokens_saved += hit.entry.tokens_used
        return value

    def semantic_store(self, request: Any, fp: str, value: Any, ttl: float | None) -> None:
        if request is None or self.semantic is None:
            return
        entry = self._storable(fp, value, ttl)
        if entry is not None:
            try:
                self.semantic.set(request, entry, ttl=ttl)
            except Exception:
                self.errors += 1

    async def asemantic_store(self, request: Any, fp: str, value: Any,
                              ttl: float | None) -> None:
        if request is None or self.semantic is None:
            return
        entry = self._storable(fp, value, ttl)
        if entry is not None:
            try:
                await self.semantic.aset(request, entry, ttl=ttl)
            except Exception:
                self.errors += 1

    def info(self) -> CacheInfo:
        maxsize = getattr(self.store, "max_entries", None)
        return CacheInfo(self.hits, self.misses, maxsize, len(self.store))

    def counters(self) -> dict[str, int | float]:
        avg_miss = self.miss_ms / self.misses if self.misses else 0.0
        return {"hits": self.hits, "misses": self.misses, "errors": self.errors,
                "semantic_hits": self.semantic_hits, "tokens_saved": self.tokens_saved,
                "time_saved_ms": self.hits * avg_miss}

    def clear(self) -> None:
        self.store.clear()
        self.hits = self.misses = self.errors = self.tokens_saved = 0
        self.miss_ms = 0.0


class _Missing:
    __slots__ = ()


_MISS: Any = _Missing()


def _resolve_store(cache: Any) -> Store:
    if cache is None:
        return MemoryStore(max_entries=1024)
    if isinstance(cache, Store):
        return cache
    store = getattr(cache, "store", None)
    if isinstance(store, Store):
        return store
    raise TypeError(f"cache: expected an llmcache Store (MemoryStore, DiskStore, RedisStore, "
                    f"TieredStore) or a ResponseCache, got {type(cache).__name__}")


def _wrap_sync(state: _Cached, func: Callable[..., Any]) -> Callable[..., Any]:
    flight: SingleFlight[Any] = SingleFlight()
    shared_flight = state.flight

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key, fp, cacheable = state.key_of(args, kwargs)
        control = current_control()
        if not cacheable or not (control.read or control.write):
            return func(*args, **kwargs)
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

        def lead() -> Any:
            if control.read:  # another flight may have stored it since our lookup
                again = state.lookup(key, fp)
                if again is not _MISS:
                    return again
                if shared_flight is not None and control.write:
                    # Other processes may miss this key too: one call among all of them.
                    return shared_flight.do(key, lambda: state.lookup(key, fp), compute,
                                            miss=_MISS)
            return compute()

        result, shared = flight.do_ex(key, lead)
        if shared:
            # Followers get their own copy, so one caller mutating a dict cannot change
            # what another received.
            return restore_value(to_entry(result, fingerprint=fp, ttl=None))
        return result

    return wrapper


def _wrap_async(state: _Cached, func: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
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

        async def lead() -> Any:
            if control.read:
                again = await lookup(key, fp)
                if again is not _MISS:
                    return again
                if shared_flight is not None and control.write:
                    return await shared_flight.ado(key, lambda: lookup(key, fp), compute,
                                                   miss=_MISS)
            return await compute()

        result, shared = await flight.do_ex(key, lead)
        if shared:
            return restore_value(to_entry(result, fingerprint=fp, ttl=None))
        return result

    # Two wrappers, chosen here, so the hit path of a sync store is exactly what it was.
    if alookup is None:
        @functools.wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            key, fp, cacheable = state.key_of(args, kwargs)
            control = current_control()
            if not cacheable or not (control.read or control.write):
                return await func(*args, **kwargs)
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
                return await func(*args, **kwargs)
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
    or ``options["temperature"]``). ``key``: a callable taking the function's arguments and
    returning JSON-like data to key on instead of all the arguments. ``namespace``: keeps
    tenants or applications apart. ``semantic``: a `llmcache.vector.SemanticCache` asked
    after an exact miss, for a similar earlier call's answer (the function needs a
    ``prompt`` or ``messages`` argument; every other argument scopes the match).

    Return values may be str, JSON-like data (dicts, lists, numbers, bools, None) and
    ``AIResponse``/``CachedResponse``; anything else raises TypeError and nothing is stored.
    The wrapper has ``cache_info()``, ``cache_clear()``, ``uncached`` (the original function)
    and ``cache`` (the store).

    >>> import asyncio
    >>> @cached_generate(ttl=60, namespace="docs")
    ... async def agenerate(prompt: str) -> dict:
    ...     return {"answer": prompt[::-1]}
    >>> asyncio.run(agenerate("abc"))
    {'answer': 'cba'}
    """

    def decorate(f: F) -> F:
        state = _Cached(f, cache=cache, ttl=ttl, policy=policy or CachePolicy(), key=key,
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
        _register_metrics(state)
        return cast(F, wrapper)

    if func is not None:
        return decorate(func)
    return decorate


def _register_metrics(state: _Cached) -> None:
    from llmcache.metrics import metrics

    metrics.register_source(f"cached_generate:{state.ident}", state.counters)
