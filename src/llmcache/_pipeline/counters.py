"""What a door counts, in one place, and what it says once.

Every call a door makes is counted once, in one of: ``hits`` (the cache answered; a
semantic hit is one too, and also counts in ``semantic_hits``), ``coalesced`` (it waited
for a concurrent identical call and got that call's answer), ``misses`` (the cache could
serve it but had no answer: the upstream was called), ``bypasses`` (`cache_control` or the
door's own ``bypass_cache``, or a request no key can hold) and ``uncacheable`` (the policy
refused it: a temperature above the threshold without a seed). ``errors`` counts failures
of a tier or of an entry, which the call survives as a miss.
"""

from __future__ import annotations

import logging
from typing import NamedTuple, Protocol

__all__ = ["BYPASS", "UNCACHEABLE", "UNKEYABLE", "CacheInfo", "CountedDoor", "Counters"]

logger = logging.getLogger("llmcache.pipeline")

#: Why a call skips the cache (a plan's ``skip``): asked to (`cache_control(bypass=True)`,
#: a door's ``bypass_cache=True``), no key can hold the request, or the policy refuses it.
BYPASS = "bypass"
UNKEYABLE = "unkeyable"
UNCACHEABLE = "uncacheable"


class Skipped(Protocol):
    """A plan that skips the cache: why (``skip``, one of the reasons above), in words."""

    @property
    def skip(self) -> str | None: ...

    @property
    def why(self) -> str | None: ...


class CacheInfo(NamedTuple):
    """Counters of one decorated function, shaped like ``functools.lru_cache``'s: ``hits``
    are calls answered without calling the function (from the cache, or by waiting for a
    concurrent identical call), ``misses`` calls that called it through the cache."""

    hits: int
    misses: int
    maxsize: int | None
    currsize: int


class Counters:
    """The counts of one function or client (see the module docstring)."""

    __slots__ = (
        "_told",
        "bypasses",
        "coalesced",
        "errors",
        "hits",
        "miss_ms",
        "misses",
        "name",
        "semantic_hits",
        "tokens_saved",
        "uncacheable",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self._told: set[str] = set()
        self.reset()

    def reset(self) -> None:
        """Back to zero (what was said once may be said again)."""
        self.hits = self.misses = self.coalesced = self.bypasses = self.uncacheable = 0
        self.errors = self.semantic_hits = self.tokens_saved = 0
        self.miss_ms = 0.0
        self._told.clear()

    def skipped(self, plan: Skipped) -> None:
        """Count a call that skips the cache; the first of each kind that surprises (the
        policy refused it, or it cannot be keyed) is logged."""
        if plan.skip == UNCACHEABLE:
            self.uncacheable += 1
            self._tell(
                UNCACHEABLE,
                f"{self.name}: not cached: {plan.why} (CachePolicy); "
                "pass a temperature at or below it, or a seed, to cache such calls. "
                "They are counted in 'uncacheable'; this is logged once",
            )
        else:
            self.bypasses += 1
            if plan.skip == UNKEYABLE:
                self._tell(
                    UNKEYABLE,
                    f"{self.name}: calling without the cache, not cached: "
                    f"the request cannot be keyed ({plan.why}); counted in "
                    "'bypasses', logged once",
                )

    def failed(self, operation: str, exc: BaseException) -> None:
        """Count a failure the call survives; the first of each operation is logged."""
        self.errors += 1
        self._tell(
            f"failed:{operation}",
            f"{self.name}: {operation} failed, the call goes "
            f"on without it ({type(exc).__name__}: {exc}); counted in 'errors', "
            "logged once",
        )

    def _tell(self, what: str, message: str) -> None:
        if what not in self._told:
            self._told.add(what)
            logger.warning("%s", message)

    def as_dict(self) -> dict[str, int | float]:
        """The counts, plus ``time_saved_ms``: hits times the average miss's duration."""
        average_miss = self.miss_ms / self.misses if self.misses else 0.0
        return {
            "hits": self.hits,
            "misses": self.misses,
            "coalesced": self.coalesced,
            "bypasses": self.bypasses,
            "uncacheable": self.uncacheable,
            "errors": self.errors,
            "semantic_hits": self.semantic_hits,
            "tokens_saved": self.tokens_saved,
            "time_saved_ms": (self.hits + self.coalesced) * average_miss,
        }


class CountedDoor:
    """The counts a door (a client, the LangChain cache) shows, read from its `Counters`."""

    _counters: Counters

    def counters(self) -> dict[str, int | float]:
        """Every call counted once: hits (exact and semantic), misses, coalesced, bypasses,
        uncacheable; and errors, semantic_hits, tokens_saved, time_saved_ms (see
        `llmcache._pipeline`)."""
        return self._counters.as_dict()

    @property
    def hits(self) -> int:
        """Calls (and embedded texts) answered by the cache, exact or semantic."""
        return self._counters.hits

    @property
    def misses(self) -> int:
        """Calls (and embedded texts) the cache could have answered but did not."""
        return self._counters.misses

    @property
    def errors(self) -> int:
        """Failures of a tier or an entry that calls survived as misses."""
        return self._counters.errors
