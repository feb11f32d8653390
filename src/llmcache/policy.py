"""What may be cached, and for how long.

`CachePolicy` is the standing rule of a cache (a temperature threshold, TTLs); `cache_control`
changes one call or one block of calls (bypass, no_store, refresh, a TTL override) without
touching any function's signature.

Only deterministic requests are worth caching: at a temperature above the threshold a model
is asked for variety, and replaying one sample would defeat that. A fixed ``seed`` makes a
sampled answer reproducible, so by default a seeded request is cacheable at any temperature.

>>> policy = CachePolicy()
>>> policy.cacheable(temperature=0.0), policy.cacheable(temperature=0.9)
(True, False)
>>> policy.cacheable(temperature=0.9, seed=7)
True
>>> with cache_control(refresh=True):
...     current_control().read, current_control().write
(False, True)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from llmcache._numbers import is_number
from llmcache.stores.base import check_ttl

__all__ = ["CacheControl", "CachePolicy", "cache_control", "current_control"]


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """The standing rules of a cache.

    ``temperature_threshold``: requests with a higher temperature are neither read nor
    written (``None`` caches every temperature). ``cache_seeded``: a request with a seed is
    cacheable whatever its temperature. ``ttl``: seconds an entry lives (``None``: until
    evicted). ``store_length_limited``: whether an answer cut by the token limit
    (``done_reason == "length"``) may be stored; off by default because it is a partial answer.
    """

    temperature_threshold: float | None = 0.3
    cache_seeded: bool = True
    ttl: float | None = None
    store_length_limited: bool = False

    def __post_init__(self) -> None:
        check_ttl(self.ttl)
        threshold = self.temperature_threshold
        if threshold is not None and not is_number(threshold):
            raise TypeError(
                f"temperature_threshold: expected a number or None, got {type(threshold).__name__}"
            )

    def cacheable(self, *, temperature: float | None = None, seed: int | None = None) -> bool:
        """Whether a request with this temperature and seed may be read from and written to
        the cache. A missing temperature counts as cacheable (the caller chose no sampling).

        A temperature that is not a number (``"0.0"``, a list, ``True``) raises TypeError.
        """
        if temperature is None or self.temperature_threshold is None:
            return True
        if not is_number(temperature):
            raise TypeError(
                f"temperature={temperature!r} is not a number "
                f"({type(temperature).__name__}); pass a number such as 0.0, or "
                "None to leave it to the model"
            )
        if seed is not None and self.cache_seeded:
            return True
        return bool(temperature <= self.temperature_threshold)

    def storable_reason(self, done_reason: str | None) -> bool:
        """Whether an answer that ended for `done_reason` may be stored."""
        return done_reason != "length" or self.store_length_limited


@dataclass(frozen=True, slots=True)
class CacheControl:
    """Per-call switches. ``read``/``write`` say what the cache may do; ``ttl`` overrides."""

    read: bool = True
    write: bool = True
    ttl: float | None = None


_control: ContextVar[CacheControl | None] = ContextVar("llmcache_control", default=None)


def current_control() -> CacheControl:
    """The switches in force for calls made now (defaults when none are set)."""
    return _control.get() or _DEFAULT


_DEFAULT = CacheControl()


@contextmanager
def cache_control(
    *, bypass: bool = False, no_store: bool = False, refresh: bool = False, ttl: float | None = None
) -> Iterator[CacheControl]:
    """Change caching for the calls made inside the block (tasks started inside inherit it
    through contextvars; a `threading.Thread` does not: enter the block in the thread, or
    run the thread's target with ``contextvars.copy_context().run``).

    ``bypass``: no read, no write. ``no_store``: read, but do not write. ``refresh``: skip
    the read, call the model, and write the fresh answer. ``ttl``: lifetime of what is
    written.
    """
    if bypass and refresh:
        raise ValueError(
            "cache_control: bypass and refresh contradict each other "
            "(bypass skips the write that refresh asks for); pass one"
        )
    control = CacheControl(
        read=not (bypass or refresh), write=not (bypass or no_store), ttl=check_ttl(ttl)
    )
    token = _control.set(control)
    try:
        yield control
    finally:
        _control.reset(token)
