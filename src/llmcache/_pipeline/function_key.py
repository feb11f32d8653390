"""A decorated function's side of the pipeline: its arguments, bound, become a `Plan`.

`FunctionKey` binds a call's arguments with the defaults applied (``f("x", model="m")``
and ``f(prompt="x", model="m")`` are one call), checks that a ``temperature=``/``seed=``
argument agrees with the same key in an ``options`` argument, reads the temperature and
seed the call carries for the policy, and keys the call by the function's identity, the
namespace and the typed canonical bytes of its arguments (or of what ``key=`` returns).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from llmcache._pipeline.semantic import SAMPLING, request_from_args
from llmcache._pipeline.steps import Plan, decide, keyed, unkeyable
from llmcache.keys import NotKeyable, canonical_call, key_and_fingerprint
from llmcache.policy import CachePolicy
from llmcache.stores.base import Store
from llmcache.stores.memory import MemoryStore

__all__ = ["FunctionKey", "HasStore", "KeyFunc", "check_agreement", "resolve_store"]

KeyFunc = Callable[..., Any]
"""A callable taking a decorated function's arguments, returning what to key the call on."""

_EMPTY = inspect.Parameter.empty
_FAST_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


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
        self._positional = tuple(
            p.name for p in params if p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD
        )
        self._names = frozenset(p.name for p in params)
        defaults = {p.name: p.default for p in params if p.default is not _EMPTY}
        self._count = len(params)
        # By the number n of positional arguments given: the names they fill, and the
        # defaults of the parameters they leave (keyword arguments then override those).
        self._npos = len(self._positional)
        self._filled = tuple(frozenset(self._positional[:n]) for n in range(self._npos + 1))
        self._rest = tuple(
            {k: v for k, v in defaults.items() if k not in self._filled[n]}
            for n in range(self._npos + 1)
        )
        self.bind = self._binder()

    def _binder(self) -> Callable[[tuple[Any, ...], dict[str, Any]], dict[str, Any]]:
        """`bind(args, kwargs)`: a closure over what it reads (it runs on every hit)."""
        slow, names, count = self._slow, self._names, self._count
        positional, filled_by, rest = self._positional, self._filled, self._rest
        most = self._npos if self._fast else -1

        def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
            n = len(args)
            if n > most:
                return slow(args, kwargs)
            bound = rest[n].copy()
            i = 0
            for value in args:  # no zip: its object costs more than this loop
                bound[positional[i]] = value
                i += 1
            if kwargs:
                filled = filled_by[n]
                for name in kwargs:
                    if name in filled or name not in names:
                        return slow(args, kwargs)
                bound.update(kwargs)
            if len(bound) < count:
                return slow(args, kwargs)  # a required argument is missing
            return bound

        return bind

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
                positional = p.kind in (
                    inspect.Parameter.POSITIONAL_ONLY,
                    inspect.Parameter.POSITIONAL_OR_KEYWORD,
                )
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


def check_agreement(
    bound: Mapping[str, Any],
    names: tuple[tuple[str, int], ...],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    func: str,
) -> None:
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
            raise ValueError(
                f"{func}(): {name}={value!r} and options[{name!r}]={other!r} "
                "disagree; pass only one of them"
            )


def _number(value: Any) -> bool:
    return type(value) in (int, float)


class FunctionKey:
    """Plans the calls of one decorated function (see the module docstring)."""

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str,
        ident: str,
        policy: CachePolicy,
        ttl: float | None,
        key: KeyFunc | None,
        namespace: str,
    ) -> None:
        self.name = name
        self.ident = ident
        self.policy = policy
        self.ttl = ttl
        self.key = key
        self.namespace = namespace
        self.binder = _Binder(func, name)
        self.check_sampling = policy.temperature_threshold is not None
        params = self.binder.names()
        # Read once: where the temperature and seed can be (an ``options`` mapping too).
        self.options = "options" in params
        self.agree = (
            tuple((n, self.binder.position(n)) for n in SAMPLING if n in params)
            if "options" in params
            else ()
        )

        self.plan: Callable[[tuple[Any, ...], dict[str, Any]], Plan] = self._planner()

    def _planner(self) -> Callable[[tuple[Any, ...], dict[str, Any]], Plan]:
        """`plan(args, kwargs)`: the plan of one call (bad arguments raise, naming the
        function). A closure over what it reads, since it runs on every hit."""
        bind, agree, name, policy, ttl = (
            self.binder.bind,
            self.agree,
            self.name,
            self.policy,
            self.ttl,
        )
        key_of, ident, namespace = self.key, self.ident, self.namespace
        sampling = self.check_sampling
        in_options = self.options
        names = self.binder.names()
        has_temperature, has_seed = "temperature" in names, "seed" in names

        def plan(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Plan:
            bound = bind(args, kwargs)
            if agree:
                check_agreement(bound, agree, args, kwargs, name)
            temperature = seed = None
            if sampling:
                if in_options:
                    temperature, seed = _sampling(bound)
                else:
                    if has_temperature:
                        temperature = bound["temperature"]
                    if has_seed:
                        seed = bound["seed"]
            try:
                control = decide(policy, temperature, seed)
            except TypeError as exc:
                raise TypeError(f"{name}(): {exc}") from None
            if type(control) is Plan:
                return control
            keyed_on = bound if key_of is None else key_of(*args, **kwargs)
            try:
                data = canonical_call(ident, namespace, keyed_on)
            except NotKeyable as exc:
                return unkeyable(str(exc))
            except (TypeError, ValueError) as exc:
                fix = (
                    "make key= return str, numbers, bools, None, bytes, enums, or lists, "
                    "tuples and dicts of them"
                    if key_of is not None
                    else "pass key= to @cached_generate to choose what identifies a call"
                )
                raise type(exc)(f"{name}(): {exc}; {fix}") from None
            key, fp = key_and_fingerprint(data)
            return keyed(key, fp, control, ttl)  # type: ignore[arg-type]

        return plan

    def model_of(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """The model a call named (a ``model`` argument that is a str), or ""."""
        model = self.binder.bind(args, kwargs).get("model")
        return model if type(model) is str else ""

    def semantic_request(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The `Request` a semantic tier matches for this call (the miss path only)."""
        bound = self.binder.bind(args, kwargs)
        return request_from_args(bound, ident=self.ident, namespace=self.namespace)


class HasStore(Protocol):
    """What holds a store for the doors' ``cache=``: a `ResponseCache`, for one."""

    @property
    def store(self) -> Store: ...


def resolve_store(cache: Store | HasStore | None) -> Store:
    """The store behind a door's ``cache=`` argument (a new bounded `MemoryStore` for None)."""
    if cache is None:
        return MemoryStore(max_entries=1024)
    if isinstance(cache, Store):
        return cache
    store = getattr(cache, "store", None)
    if isinstance(store, Store):
        return store
    raise TypeError(
        f"cache: expected an llmcache Store (MemoryStore, DiskStore, RedisStore, "
        f"TieredStore) or a ResponseCache, got {type(cache).__name__}"
    )
