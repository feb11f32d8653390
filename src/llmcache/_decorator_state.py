"""The state behind one ``@cached_generate`` function: binding, keys, lookups, stores.

Kept apart from the wrappers in `llmcache.decorators` so each module stays small; nothing
here is public API except through the decorator.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from llmcache._semantic_glue import SAMPLING, SemanticTier, request_from_args
from llmcache._values import restore_value, to_entry
from llmcache.distributed import flight_for
from llmcache.entry import CachedResponse
from llmcache.keys import (
    IDENTITY_ATTR,
    NotKeyable,
    callable_name,
    canonical_call,
    fingerprint,
    function_identity,
    hash_bytes,
)
from llmcache.policy import CachePolicy
from llmcache.stores.base import Store, check_ttl
from llmcache.stores.memory import MemoryStore

__all__ = ["MISS", "CacheInfo", "CallState", "KeyFunc", "resolve_store"]

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
    call that is an error (Python's own TypeError, with the function's name put in front).
    """

    def __init__(self, func: Callable[..., Any], name: str) -> None:
        self._name = name
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
        try:
            ba = self._sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self._name}{self._sig}: {exc}") from None
        ba.apply_defaults()
        return dict(ba.arguments)

    def names(self) -> frozenset[str]:
        return self._names

    def position(self, name: str) -> int:
        """Where `name` is among the positional parameters, or -1."""
        for i, p in enumerate(self._sig.parameters.values()):
            if p.name == name:
                positional = p.kind in (inspect.Parameter.POSITIONAL_ONLY,
                                        inspect.Parameter.POSITIONAL_OR_KEYWORD)
                return i if positional else -1
        return -1


def _sampling(bound: Mapping[str, Any]) -> tuple[Any, Any]:
    """(temperature, seed) from the arguments or from an ``options`` mapping among them;
    options win over a parameter's default (`check_agreement` refused a passed argument
    that disagrees with them)."""
    temperature, seed = bound.get("temperature"), bound.get("seed")
    options = bound.get("options")
    if options is not None and isinstance(options, Mapping):
        temperature = options.get("temperature", temperature)
        seed = options.get("seed", seed)
    return temperature, seed


def check_agreement(bound: Mapping[str, Any], names: tuple[tuple[str, int], ...],
                    args: tuple[Any, ...], kwargs: Mapping[str, Any], func: str) -> None:
    """Raise ValueError when a sampling argument the caller passed (``temperature=``) and
    the same key in an ``options`` argument disagree: one of them would be silently
    dropped somewhere. A parameter's default is not something the caller said: ``options``
    overrides it. `names`: (parameter, its position or -1)."""
    options = bound.get("options")
    if not options or not isinstance(options, Mapping):
        return
    for name, position in names:
        value = bound.get(name)
        if value is None or name not in options:
            continue
        if name not in kwargs and not 0 <= position < len(args):
            continue
        other = options[name]
        same_kind = type(value) is type(other) or (_number(value) and _number(other))
        if not same_kind or value != other:  # 0 and 0.0 agree; True and 1 do not
            raise ValueError(f"{func}(): {name}={value!r} and options[{name!r}]={other!r} "
                             "disagree; pass only one of them")


def _number(value: Any) -> bool:
    return type(value) in (int, float)


class CallState:
    """State shared by the sync and async wrappers of one function."""

    def __init__(self, func: Callable[..., Any], *, cache: Any, ttl: float | None,
                 policy: CachePolicy, key: KeyFunc | None, namespace: str,
                 semantic: SemanticTier | None = None) -> None:
        self.func = func
        self.semantic = semantic
        self.semantic_hits = 0
        self.store = resolve_store(cache)
        self.policy = policy
        self.ttl = check_ttl(ttl) if ttl is not None else policy.ttl
        self.key = key
        self.namespace = namespace
        self.name = callable_name(func)
        # Computed once. Strict where the function's entries can meet another function's:
        # a store or semantic tier passed in (others may use it, in this process or
        # another), unless key= or namespace= says the caller has seen to it.
        private = cache is None and semantic is None
        self.ident = function_identity(
            func, strict=not (private or key is not None or namespace))
        self.binder = _Binder(func, self.name)
        self.check_sampling = policy.temperature_threshold is not None
        params = self.binder.names()
        self.agree = tuple((n, self.binder.position(n)) for n in SAMPLING if n in params) \
            if "options" in params else ()
        self.hits = self.misses = self.errors = self.tokens_saved = self.bypasses = 0
        self.miss_ms = 0.0
        # Decided once, here, so the hit path never asks: a lock shared between processes
        # (None: in-process single-flight only), and the store's coroutine methods.
        self.flight = flight_for(self.store)
        aget, aset = getattr(self.store, "aget", None), getattr(self.store, "aset", None)
        self.aget: Any = aget if inspect.iscoroutinefunction(aget) else None
        self.aset: Any = aset if inspect.iscoroutinefunction(aset) else None

    def mark(self, wrapper: Callable[..., Any]) -> None:
        """Let functions that capture `wrapper` be identified by this function's identity."""
        setattr(wrapper, IDENTITY_ATTR, (self.ident, id(wrapper)))

    def key_of(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str, bool]:
        """(key, fingerprint, cacheable) of a call; arguments the cache cannot hold (a lone
        surrogate) make it not cacheable. Bad arguments raise, naming the function."""
        bound = self.binder.bind(args, kwargs)
        if self.agree:
            check_agreement(bound, self.agree, args, kwargs, self.name)
        cacheable = True
        if self.check_sampling:
            temperature, seed = _sampling(bound)
            if temperature is not None:
                try:
                    cacheable = self.policy.cacheable(temperature=temperature, seed=seed)
                except TypeError as exc:
                    raise TypeError(f"{self.name}(): {exc}") from None
        ident: Any = self.key(*args, **kwargs) if self.key is not None else bound
        try:
            data = canonical_call(self.ident, self.namespace, ident)
        except NotKeyable:
            return "", "", False
        except (TypeError, ValueError) as exc:
            fix = ("make key= return str, numbers, bools, None, bytes, enums, or lists, "
                   "tuples and dicts of them" if self.key is not None else
                   "pass key= to @cached_generate to choose what identifies a call")
            raise type(exc)(f"{self.name}(): {exc}; {fix}") from None
        return hash_bytes(data), fingerprint(data), cacheable

    def lookup(self, key: str, fp: str) -> Any:
        # The memory hit path: `accept` is inlined here on purpose; the extra method call
        # measured 1.93x against 1.80x of the raw baseline (the target is 2x).
        try:
            entry = self.store.get(key)
        except Exception:
            self.errors += 1
            return MISS
        if entry is None or entry.fingerprint != fp:
            return MISS
        try:
            value = restore_value(entry)
        except (ValueError, TypeError, KeyError):
            self.errors += 1
            return MISS
        self.hits += 1
        self.tokens_saved += entry.tokens_used
        return value

    async def alookup(self, key: str, fp: str) -> Any:
        """`lookup` through the store's ``aget`` (same checks, without blocking the loop)."""
        try:
            entry = await self.aget(key)
        except Exception:
            self.errors += 1
            return MISS
        return self.accept(entry, fp)

    def accept(self, entry: CachedResponse | None, fp: str) -> Any:
        """The value a found entry gives back, or MISS for another request's entry."""
        if entry is None or entry.fingerprint != fp:
            return MISS
        try:
            value = restore_value(entry)
        except (ValueError, TypeError, KeyError):
            # An entry from a shared tier is untrusted input: a malformed one is a miss.
            self.errors += 1
            return MISS
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

    def bypass(self, func: Callable[..., Any], args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> Any:
        """Call `func` without the cache (counted)."""
        self.bypasses += 1
        return func(*args, **kwargs)

    def semantic_lookup(self, request: Any) -> Any:
        """A similar earlier call's answer from the semantic tier, or `MISS`."""
        if request is None or self.semantic is None:
            return MISS
        try:
            hit = self.semantic.get(request)
            return MISS if hit is None else self._semantic_value(hit)
        except Exception:
            self.errors += 1  # a failing semantic tier is a miss, never a failed call
            return MISS

    async def asemantic_lookup(self, request: Any) -> Any:
        if request is None or self.semantic is None:
            return MISS
        try:
            hit = await self.semantic.aget(request)
            return MISS if hit is None else self._semantic_value(hit)
        except Exception:
            self.errors += 1
            return MISS

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
                "bypasses": self.bypasses, "semantic_hits": self.semantic_hits,
                "tokens_saved": self.tokens_saved, "time_saved_ms": self.hits * avg_miss}

    def clear(self) -> None:
        self.store.clear()
        self.hits = self.misses = self.errors = self.tokens_saved = self.bypasses = 0
        self.miss_ms = 0.0


class _Missing:
    __slots__ = ()


MISS: Any = _Missing()


def resolve_store(cache: Any) -> Store:
    if cache is None:
        return MemoryStore(max_entries=1024)
    if isinstance(cache, Store):
        return cache
    store = getattr(cache, "store", None)
    if isinstance(store, Store):
        return store
    raise TypeError(f"cache: expected an llmcache Store (MemoryStore, DiskStore, RedisStore, "
                    f"TieredStore) or a ResponseCache, got {type(cache).__name__}")


