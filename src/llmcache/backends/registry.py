"""Find backends by name: installed plugins (entry points) and in-process registrations.

A distribution makes a backend available by declaring an entry point in the group
``llmcache.backends``; the name is what users pass to `get_backend`::

    [project.entry-points."llmcache.backends"]
    ollama = "llmcache_ollama.backend:OllamaBackend"

The target is a `Backend` or `AsyncBackend` subclass, or any callable returning one; it is
called with the keyword arguments given to `get_backend`.

Rules, in the spirit of fsspec's ``known_implementations`` and keyring's ``_load_plugins``:

- Listing never imports a plugin (`list_backends` reads metadata only); `get_backend` imports
  exactly the one asked for. ``import llmcache`` never touches plugins at all.
- A plugin that fails to import is logged (logger ``llmcache.backends``, naming its
  distribution) and skipped by `load_backends`; asking for it raises `BackendLoadError`
  chained to the cause.
- Two distributions claiming one name is a `BackendConflict` when that name is requested,
  naming both; one distribution seen twice (duplicate metadata directories, as editable
  installs sometimes leave) is not a conflict.
- `register_backend` adds a factory in-process (apps, tests); it wins over entry points, and
  refuses to shadow an existing name unless ``replace=True``. `registry` is a read-only view.

Discovery is cached; call `refresh` after installing or removing a distribution at run time.

>>> from llmcache.backends.registry import get_backend, list_backends
>>> "mock" in [info.name for info in list_backends()]
True
>>> get_backend("mock", model="m").generate("hello").content
'echo: hello'
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from llmcache.backends.base import AsyncBackend, Backend
from llmcache.errors import LLMCacheError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = [
    "GROUP",
    "BackendConflict",
    "BackendFactory",
    "BackendInfo",
    "BackendLoadError",
    "BackendNotFound",
    "get_backend",
    "list_backends",
    "load_backend",
    "load_backends",
    "refresh",
    "register_backend",
    "registry",
    "unregister_backend",
]

GROUP = "llmcache.backends"

logger = logging.getLogger("llmcache.backends")

BackendFactory = Callable[..., Backend | AsyncBackend]
"""A `Backend`/`AsyncBackend` class, or a callable taking config keywords and returning one."""


class BackendNotFound(LLMCacheError, KeyError):
    """No backend of that name is installed or registered. A `KeyError` (so a `LookupError`).

    ``available`` holds the names that do exist, sorted.
    """

    def __init__(self, name: str, available: list[str]) -> None:
        listing = ", ".join(available) if available else "none"
        super().__init__(f"no llmcache backend named {name!r}; available: {listing}")
        self.name = name
        self.available = available

    def __str__(self) -> str:
        # KeyError's own __str__ would repr() the message, quoting it.
        return str(self.args[0])

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from the constructor's arguments, not the message (pickling, processes).
        return type(self), (self.name, self.available)


class BackendLoadError(LLMCacheError, ImportError):
    """A backend plugin failed to import or load; ``__cause__`` holds the original error."""

    def __init__(self, message: str, *, backend: str = "", distribution: str | None = None) -> None:
        super().__init__(message)
        self.backend = backend
        self.distribution = distribution

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (str(self),), self.__dict__


class BackendConflict(LLMCacheError, ValueError):
    """A name claimed twice: by two installed distributions, or by a `register_backend`
    call for a name that exists. ``sources`` names the claimants."""

    def __init__(self, message: str, *, backend: str = "", sources: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.backend = backend
        self.sources = sources


@dataclass(frozen=True, slots=True)
class BackendInfo:
    """One claim on a backend name, read from metadata without importing the plugin.

    ``target`` is the entry point's ``module:attr``; ``distribution`` and ``version`` are
    ``None`` for in-process registrations. ``conflicts`` lists the *other* distributions
    claiming the same name (empty when there is no conflict).
    """

    name: str
    target: str
    distribution: str | None
    version: str | None
    source: Literal["entry-point", "in-process"] = "entry-point"
    conflicts: tuple[str, ...] = ()

    @property
    def status(self) -> Literal["ok", "conflict"]:
        return "conflict" if self.conflicts else "ok"


@dataclass(frozen=True, slots=True)
class _Claim:
    entry_point: EntryPoint
    distribution: str | None
    version: str | None


_lock = threading.RLock()
_registered: dict[str, BackendFactory] = {}
registry: Mapping[str, BackendFactory] = MappingProxyType(_registered)
"""Read-only live view of the in-process registrations (see `register_backend`)."""

# Loaded entry-point targets and the errors of those that failed, so a broken plugin is
# imported (and logged) once per `refresh`, not on every lookup.
_loaded: dict[str, BackendFactory] = {}
_failed: dict[str, Exception] = {}


def _discover() -> list[EntryPoint]:
    """All entry points of the group, in sys.path order. Tests replace this function."""
    from importlib.metadata import entry_points  # about 10 ms: paid by the first lookup

    return list(entry_points(group=GROUP))


def _normalize_dist(name: str) -> str:
    # PEP 503 normalisation: "LLMCache_Test.Plugins" and "llmcache-test-plugins" are one.
    return re.sub(r"[-_.]+", "-", name).lower()


def _dist_of(ep: EntryPoint) -> tuple[str | None, str | None]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None, None
    try:
        return dist.metadata["Name"] or dist.name, dist.version
    except Exception:  # broken METADATA must not break listing
        return None, None


@functools.lru_cache(maxsize=1)
def _claims() -> Mapping[str, tuple[_Claim, ...]]:
    """Entry-point claims by backend name; one per distribution, first on sys.path wins."""
    by_name: dict[str, dict[str, _Claim]] = {}
    for ep in _discover():
        dist, version = _dist_of(ep)
        # A nameless distribution cannot be told apart from another by name, so its
        # target stands in for it: the same target twice is still one claim.
        ident = _normalize_dist(dist) if dist else f"<unknown>:{ep.value}"
        by_name.setdefault(ep.name, {}).setdefault(ident, _Claim(ep, dist, version))
    return MappingProxyType({name: tuple(c.values()) for name, c in by_name.items()})


def _describe(claim: _Claim) -> str:
    if claim.distribution is None:
        return f"<unknown distribution> ({claim.entry_point.value})"
    return f"{claim.distribution} {claim.version} ({claim.entry_point.value})"


def _target_of(factory: BackendFactory) -> str:
    module = getattr(factory, "__module__", None) or "?"
    qualname = getattr(factory, "__qualname__", None) or type(factory).__qualname__
    return f"{module}:{qualname}"


def list_backends() -> list[BackendInfo]:
    """Every known backend, sorted by name, without importing any plugin.

    A name claimed by two distributions gives one row per claimant, each with
    ``status == "conflict"``. An in-process registration hides entry points of its name.

    >>> [i.distribution for i in list_backends() if i.name == "mock"]
    ['llmcache']
    """
    infos: list[BackendInfo] = []
    with _lock:
        registered = dict(_registered)
    for name, factory in registered.items():
        infos.append(BackendInfo(name, _target_of(factory), None, None, "in-process"))
    for name, claims in _claims().items():
        if name in registered:
            continue
        for claim in claims:
            others = tuple(c.distribution or "<unknown>" for c in claims if c is not claim)
            infos.append(
                BackendInfo(
                    name,
                    claim.entry_point.value,
                    claim.distribution,
                    claim.version,
                    "entry-point",
                    others,
                )
            )
    infos.sort(key=lambda i: (i.name, i.distribution or ""))
    return infos


def _available() -> list[str]:
    with _lock:
        return sorted(set(_registered) | set(_claims()))


def _load_error(name: str, claim: _Claim, exc: Exception) -> BackendLoadError:
    error = BackendLoadError(
        f"llmcache backend {name!r} from {_describe(claim)} failed to load: "
        f"{type(exc).__name__}: {exc}",
        backend=name,
        distribution=claim.distribution,
    )
    error.__cause__ = exc
    return error


def _load_claim(name: str, claim: _Claim) -> BackendFactory:
    with _lock:
        if name in _loaded:
            return _loaded[name]
        if name in _failed:
            # A fresh error each time: re-raising one instance would grow its traceback.
            raise _load_error(name, claim, _failed[name])
    # Imported outside the lock: a plugin that calls into this module while being imported
    # from another thread must not deadlock against the import system's module locks.
    try:
        target = claim.entry_point.load()
        if not callable(target):
            raise TypeError(
                f"{claim.entry_point.value} is a {type(target).__name__}, not a class or factory"
            )
    except Exception as exc:
        with _lock:
            first = _failed.setdefault(name, exc) is exc
        if first:
            logger.warning(
                "skipping llmcache backend %r from distribution %s: %s: %s",
                name,
                claim.distribution or "<unknown>",
                type(exc).__name__,
                exc,
                exc_info=exc,
            )
        raise _load_error(name, claim, exc) from exc
    with _lock:
        return _loaded.setdefault(name, target)


def load_backend(name: str) -> BackendFactory:
    """Import the plugin registered as `name` and return its class or factory, uncalled.

    Raises `BackendNotFound`, `BackendConflict` or `BackendLoadError`.

    >>> from llmcache.backends.mock import MockBackend
    >>> load_backend("mock") is MockBackend
    True
    """
    with _lock:
        factory = _registered.get(name)
    if factory is not None:
        return factory
    claims = _claims().get(name)
    if not claims:
        raise BackendNotFound(name, _available())
    if len(claims) > 1:
        listing = "; ".join(_describe(c) for c in claims)
        raise BackendConflict(
            f"llmcache backend {name!r} is provided by {len(claims)} distributions: "
            f"{listing}. Uninstall all but one, or choose one in-process with "
            f"register_backend({name!r}, factory, replace=True).",
            backend=name,
            sources=tuple(c.distribution or "<unknown>" for c in claims),
        )
    return _load_claim(name, claims[0])


def get_backend(name: str, /, **config: Any) -> Backend | AsyncBackend:
    """Build the backend registered as `name`, passing `config` to its class or factory.

    >>> backend = get_backend("mock", model="tiny")
    >>> backend.model
    'tiny'
    >>> get_backend("no-such-backend")
    Traceback (most recent call last):
    ...
    llmcache.backends.registry.BackendNotFound: no llmcache backend named 'no-such-backend'; ...
    """
    backend = load_backend(name)(**config)
    if not isinstance(backend, (Backend, AsyncBackend)):
        raise TypeError(
            f"llmcache backend {name!r} returned a {type(backend).__name__}, "
            "not a Backend or AsyncBackend"
        )
    return backend


def load_backends() -> dict[str, BackendFactory]:
    """Import every backend that can be imported; log and skip the others.

    Broken plugins are logged (once per `refresh`) with their distribution, and names
    claimed by several distributions are logged and left out.

    >>> "mock" in load_backends()
    True
    """
    loaded: dict[str, BackendFactory] = {}
    for name in _available():
        try:
            loaded[name] = load_backend(name)
        except BackendLoadError:
            continue  # already logged by _load_claim
        except BackendConflict as exc:
            logger.warning("skipping llmcache backend: %s", exc)
    return loaded


def register_backend(name: str, factory: BackendFactory, *, replace: bool = False) -> None:
    """Make `factory` available as `name` in this process, ahead of any entry point.

    Refuses (`BackendConflict`) a name already registered or installed unless
    ``replace=True``.

    >>> from llmcache.backends.mock import MockBackend
    >>> register_backend("canned", lambda **kw: MockBackend(lambda call: "42", **kw))
    >>> get_backend("canned").generate("anything").content
    '42'
    >>> unregister_backend("canned")
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"backend name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory for {name!r} must be callable, got {type(factory).__name__}")
    with _lock:
        if not replace:
            if name in _registered:
                raise BackendConflict(
                    f"llmcache backend {name!r} is already registered in-process "
                    f"({_target_of(_registered[name])}); pass replace=True to replace it",
                    backend=name,
                    sources=(_target_of(_registered[name]),),
                )
            claims = _claims().get(name, ())
            if claims:
                listing = "; ".join(_describe(c) for c in claims)
                raise BackendConflict(
                    f"llmcache backend {name!r} is already installed by {listing}; "
                    "pass replace=True to shadow it in this process",
                    backend=name,
                    sources=tuple(c.distribution or "<unknown>" for c in claims),
                )
        _registered[name] = factory


def unregister_backend(name: str) -> None:
    """Remove an in-process registration; installed entry points of `name` show again.

    Raises `BackendNotFound` if `name` was not registered with `register_backend`.
    """
    with _lock:
        if name not in _registered:
            raise BackendNotFound(name, sorted(_registered))
        del _registered[name]


def refresh() -> None:
    """Forget discovered entry points and load results (not in-process registrations).

    Call it after installing or removing a plugin distribution while the process runs.
    """
    with _lock:
        _claims.cache_clear()
        _loaded.clear()
        _failed.clear()
