"""The steps of the cache path that do no I/O: plan a call, read an entry, choose what to
store.

- `decide` is the one policy decision of every door: `cache_control` (bypass, no_store,
  refresh, a TTL), a door's own bypass (``bypass_cache=True``), and the temperature rule.
  The rule: a call that names no temperature is cacheable (the caller left sampling to the
  server, and the key records that it named none); a temperature above the policy's
  threshold without a seed is not (``uncacheable``: counted, and said once per function or
  client). A backend's default temperature never enters the decision.
- `keyed` turns the decision and the request's key into a `Plan`; a door that cannot key a
  request (text with a lone surrogate) plans `UNKEYABLE` instead.
- The one read of an entry (the fingerprint check and the decode, so an entry written for
  another request, or one that does not decode, is a miss) is the runner's ``read``: it is
  where the store is called, and the hit path cannot afford another call.
- `entry_to_store` is what a fresh answer becomes before a store: the codec's entry, or
  nothing when the policy keeps it out (an answer cut by the token limit).
"""

from __future__ import annotations

from typing import Any, NamedTuple, TypeVar

from llmcache._pipeline.codec import ValueCodec
from llmcache._pipeline.counters import BYPASS, UNCACHEABLE, UNKEYABLE, Counters
from llmcache.entry import CachedResponse
from llmcache.keys import Request
from llmcache.policy import _DEFAULT, CacheControl, CachePolicy, _control

__all__ = [
    "BYPASS",
    "MISS",
    "UNCACHEABLE",
    "UNKEYABLE",
    "Plan",
    "decide",
    "entry_to_store",
    "keyed",
    "unkeyable",
]

V = TypeVar("V")


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISS"


#: What a read gives back when there is no answer (None can be a cached value).
MISS: Any = _Missing()


class Plan(NamedTuple):
    """One call, planned: its key and fingerprint, what the cache may do, and why not.

    ``read``/``write``: whether the cache is read and written; both False means the call
    skips the cache, for the reason in ``skip`` (``why`` says it in words, for the log).
    ``ttl``: the lifetime of what is written. ``request``: what a semantic tier matches.
    """

    key: str
    fingerprint: str
    read: bool
    write: bool
    ttl: float | None
    skip: str | None = None
    why: str | None = None
    request: Request | None = None


_new = tuple.__new__  # builds a Plan without the Python-level __new__ (hit path)


def _skipping(skip: str, why: str | None = None) -> Plan:
    return Plan("", "", False, False, None, skip, why)


_BYPASSED = _skipping(BYPASS)


def decide(
    policy: CachePolicy, temperature: Any = None, seed: Any = None, *, bypass: bool = False
) -> CacheControl | Plan:
    """The `CacheControl` in force when the cache may serve this call, or a skipping
    `Plan` saying why it may not. Raises TypeError for a temperature that is not a number.
    """
    control = _control.get() or _DEFAULT  # current_control(), inlined: this is the hit path
    if bypass or not (control.read or control.write):
        return _BYPASSED
    # A float at or below the threshold is cacheable whatever the seed: said here without
    # a call; everything else (seeds, ints, bad types, no threshold) is the policy's to say.
    if temperature is not None:
        threshold = policy.temperature_threshold
        if not (
            type(temperature) is float and threshold is not None and temperature <= threshold
        ) and not policy.cacheable(temperature=temperature, seed=seed):
            return _skipping(
                UNCACHEABLE,
                f"temperature={temperature!r} without a seed is "
                f"above the policy's threshold of {threshold}",
            )
    return control


def keyed(
    key: str,
    fingerprint: str,
    control: CacheControl,
    ttl: float | None,
    request: Request | None = None,
) -> Plan:
    """The plan of a cacheable call under `control` (`ttl`: the door's default)."""
    return _new(
        Plan,
        (
            key,
            fingerprint,
            control.read,
            control.write,
            ttl if control.ttl is None else control.ttl,
            None,
            None,
            request,
        ),
    )


def unkeyable(why: str) -> Plan:
    """The plan of a call no key can hold: it goes upstream without the cache."""
    return _skipping(UNKEYABLE, why)


def entry_to_store(
    codec: ValueCodec[V], value: V, plan: Plan, policy: CachePolicy, counters: Counters
) -> CachedResponse | None:
    """The entry to write for a fresh `value`, or None when nothing is written: the codec
    says the value is not an answer to keep (None: an HTTP error answer), the policy keeps
    out an answer cut by the token limit, and a lenient codec's unencodable value is a
    counted error (a strict codec raises: the caller returned something it cannot keep).
    """
    try:
        entry = codec.encode(value, plan.fingerprint, plan.ttl)
    except (TypeError, ValueError) as exc:
        if codec.strict:
            raise
        counters.failed("encode", exc)
        return None
    if entry is None:
        return None
    if not policy.storable_reason(entry.metadata.get("done_reason")):
        return None
    return entry
